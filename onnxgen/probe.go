package onnxgen

import (
	"fmt"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// Names of the MatMul probe's values.
const (
	ProbeA = "a" // [M, K] float32
	ProbeB = "b" // [K, N] float32
	ProbeC = "c" // [M, N] float32
)

// MatMulProbe compiles a graph of one float32 MatMul, c = a b with a [m, k]
// and b [k, n]: the kernel that reaches a CPU's highest arithmetic rate, used
// to measure the peak against which training steps are compared. It costs
// 2*m*k*n floating-point operations.
func MatMulProbe(m, k, n int) (*Compiled, error) {
	if m < 1 || k < 1 || n < 1 {
		return nil, fmt.Errorf("matmul probe: sizes %dx%d times %dx%d must be positive", m, k, k, n)
	}
	g := newGraph()
	g.input(ProbeA, onnx.TensorProto_FLOAT, int64(m), int64(k))
	g.input(ProbeB, onnx.TensorProto_FLOAT, int64(k), int64(n))
	g.opTo(ProbeC, "MatMul", []string{ProbeA, ProbeB})
	g.output(ProbeC, onnx.TensorProto_FLOAT, int64(m), int64(n))
	b, err := proto.Marshal(g.model("nasctl_matmul_probe", nil))
	if err != nil {
		return nil, fmt.Errorf("serializing the matmul probe: %w", err)
	}
	return &Compiled{Model: b, Inputs: []string{ProbeA, ProbeB}, Outputs: []string{ProbeC}}, nil
}
