package bench

import (
	"errors"
	"fmt"
	"math"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/genotype"
	_ "github.com/nasctl/nasctl/internal/protoconflict" // before onnx-go: see the package
	onnxgo "github.com/owulveryck/onnx-go"
	"github.com/owulveryck/onnx-go/backend/x/gorgonnx"
	"google.golang.org/protobuf/proto"
	"gorgonia.org/tensor"
)

// PureGo is the comparison of ONNX Runtime's outputs with those of a second,
// pure-Go runtime (github.com/owulveryck/onnx-go with its gorgonia backend)
// on the same images. Exactly one of MaxAbsDiff, UnsupportedOp and Error is
// set.
type PureGo struct {
	Images int `json:"images"`
	// MaxAbsDiff is the largest absolute difference between the two
	// runtimes' class probabilities.
	MaxAbsDiff *float64 `json:"max_abs_diff,omitempty"`
	// Agree: MaxAbsDiff is at most Tolerance.
	Agree bool `json:"agree"`
	// UnsupportedOp names an operator (and attribute, if any) that onnx-go
	// does not implement.
	UnsupportedOp string `json:"unsupported_op,omitempty"`
	// Error is any other failure of onnx-go.
	Error string `json:"error,omitempty"`
}

// Tolerance is the agreement required between the two runtimes' outputs.
const Tolerance = 1e-4

// runPureGo runs an ONNX model with onnx-go on n images (NCHW pixels) and
// returns its first output, flattened.
func runPureGo(model []byte, in genotype.Input, pixels []float32, n int) (out []float32, err error) {
	// onnx-go panics on some graphs it cannot handle; report, do not crash.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("onnx-go panicked: %v", r)
		}
	}()
	backend := gorgonnx.NewGraph()
	m := onnxgo.NewModel(backend)
	if err := m.UnmarshalBinary(model); err != nil {
		return nil, err
	}
	x := tensor.New(tensor.WithShape(n, in.Channels, in.Height, in.Width), tensor.WithBacking(append([]float32(nil), pixels...)))
	if err := m.SetInput(0, x); err != nil {
		return nil, err
	}
	if err := backend.Run(); err != nil {
		return nil, err
	}
	outs, err := m.GetOutputTensors()
	if err != nil {
		return nil, err
	}
	if len(outs) == 0 {
		return nil, errors.New("onnx-go returned no output")
	}
	data, ok := outs[0].Data().([]float32)
	if !ok {
		return nil, fmt.Errorf("onnx-go returned %T, want []float32", outs[0].Data())
	}
	return data, nil
}

// onnx-go v0.5.0 hands an ONNX MaxPool's pads ([top, left, bottom, right])
// to gorgonia's MaxPool2D, which reads four pads as [top, bottom, left,
// right]: symmetric pads work, others give wrong values. The study's 'same'
// pooling pads one more cell at the end than at the start when the window
// overhangs by an odd amount, so such models are reported as unsupported
// rather than compared.
const asymmetricMaxPool = "MaxPool with asymmetric pads (onnx-go passes ONNX's [top, left, bottom, right] pads to gorgonia, which reads [top, bottom, left, right])"

// groupedConv: onnx-go v0.5.0 ignores a Conv's group attribute, so a
// depthwise convolution fails on its weights' shape (or, worse, could
// compute something else); such models are reported as unsupported.
const groupedConv = "Conv with groups (onnx-go ignores the group attribute of depthwise convolutions)"

// pureGoGap returns the operator of the model that onnx-go computes wrongly
// without saying so (see asymmetricMaxPool and groupedConv), or "".
func pureGoGap(model []byte) (string, error) {
	var m onnx.ModelProto
	if err := proto.Unmarshal(model, &m); err != nil {
		return "", err
	}
	for _, n := range m.GetGraph().GetNode() {
		for _, a := range n.GetAttribute() {
			switch p := a.GetInts(); {
			case n.GetOpType() == "MaxPool" && a.GetName() == "pads" && len(p) == 4 && (p[0] != p[2] || p[1] != p[3]):
				return asymmetricMaxPool, nil
			case n.GetOpType() == "Conv" && a.GetName() == "group" && a.GetI() > 1:
				return groupedConv, nil
			}
		}
	}
	return "", nil
}

// comparePureGo runs model in onnx-go and compares with want (ONNX Runtime's
// output on the same images).
func comparePureGo(model []byte, in genotype.Input, pixels []float32, n int, want []float32) PureGo {
	r := PureGo{Images: n}
	if gap, err := pureGoGap(model); err != nil {
		r.Error = err.Error()
		return r
	} else if gap != "" {
		r.UnsupportedOp = gap
		return r
	}
	got, err := runPureGo(model, in, pixels, n)
	var ni *onnxgo.ErrNotImplemented
	switch {
	case errors.As(err, &ni):
		r.UnsupportedOp = ni.Operator
		if ni.AttributeName != "" {
			r.UnsupportedOp += fmt.Sprintf(" (attribute %s = %v)", ni.AttributeName, ni.AttributeValue)
		}
		return r
	case err != nil:
		r.Error = err.Error()
		return r
	case len(got) != len(want):
		r.Error = fmt.Sprintf("onnx-go gave %d values, ONNX Runtime %d", len(got), len(want))
		return r
	}
	d := 0.0
	for i := range got {
		d = max(d, math.Abs(float64(got[i])-float64(want[i])))
	}
	r.MaxAbsDiff, r.Agree = &d, d <= Tolerance
	return r
}
