package runtime

import (
	goruntime "runtime"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// The library "make setup" installs has NCHWc kernels for x86-64: 16
// channels with AVX-512, 8 with AVX2.
func TestNCHWcBlockSize(t *testing.T) {
	initRuntime(t)
	b := nchwcBlockSize()
	if goruntime.GOARCH == "amd64" && b != 8 && b != 16 {
		t.Fatalf("block size %d, want 8 or 16 on x86-64", b)
	}
	t.Logf("NCHWc block: %d channels", b)
}

// blockConvs rewrites only the convolutions whose shapes are declared and
// that its kernels take, and fuses a ReLU only when it is the sole reader.
func TestBlockConvsSelects(t *testing.T) {
	conv := func(x, w, y string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
		n := node("Conv", []string{x, w}, []string{y}, attrs...)
		return n
	}
	g := &onnx.GraphProto{
		Name: "select",
		Node: []*onnx.NodeProto{
			conv("x", "w1", "a"),                        // declared, 16 channels: rewritten
			node("Relu", []string{"a"}, []string{"ar"}), // its only reader: fused
			conv("ar", "w2", "b"),                       // declared (ar), 16 channels, reads a blocked output
			node("Relu", []string{"b"}, []string{"br"}), // not fused: b is read twice
			node("Add", []string{"b", "br"}, []string{"c"}),
			conv("c", "w3", "d"),                      // undeclared shapes: left alone
			conv("x", "w4", "e", intAttr("group", 2)), // two groups: left alone
			conv("x2", "w5", "f"),                     // 18 channels: neither < 16 nor a multiple of 4
			conv("x3", "w6", "h"),                     // 3 channels, 5 filters: read as they are, filters padded
		},
		Input: []*onnx.ValueInfoProto{
			valueInfo("x", onnx.TensorProto_FLOAT, 2, 16, 5, 5), valueInfo("w1", onnx.TensorProto_FLOAT, 16, 16, 3, 3),
			valueInfo("w2", onnx.TensorProto_FLOAT, 16, 16, 1, 1), valueInfo("w3", onnx.TensorProto_FLOAT, 16, 16, 1, 1),
			valueInfo("w4", onnx.TensorProto_FLOAT, 16, 8, 1, 1), valueInfo("x2", onnx.TensorProto_FLOAT, 2, 18, 5, 5),
			valueInfo("w5", onnx.TensorProto_FLOAT, 16, 18, 1, 1), valueInfo("x3", onnx.TensorProto_FLOAT, 2, 3, 5, 5),
			valueInfo("w6", onnx.TensorProto_FLOAT, 5, 3, 3, 3),
		},
		ValueInfo: []*onnx.ValueInfoProto{valueInfo("ar", onnx.TensorProto_FLOAT, 2, 16, 3, 3)},
		Output: []*onnx.ValueInfoProto{
			valueInfo("d", onnx.TensorProto_FLOAT, 2, 16, 3, 3), valueInfo("e", onnx.TensorProto_FLOAT, 2, 16, 5, 5),
			valueInfo("f", onnx.TensorProto_FLOAT, 2, 16, 5, 5), valueInfo("h", onnx.TensorProto_FLOAT, 2, 5, 3, 3),
		},
	}
	bg, err := blockConvs(model(t, g), 16)
	if err != nil {
		t.Fatal(err)
	}
	if bg.convs != 3 || bg.batchChannels {
		t.Fatalf("%d convolutions rewritten (batch as channels: %v), want 3 (false)", bg.convs, bg.batchChannels)
	}
	m := &onnx.ModelProto{}
	if err := proto.Unmarshal(bg.model, m); err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	relus, plainConvs := 0, 0
	for _, n := range m.GetGraph().GetNode() {
		ops[n.GetDomain()+"."+n.GetOpType()]++
		if n.GetOpType() == "Relu" {
			relus++
		}
		if n.GetOpType() == "Conv" && n.GetDomain() == "" {
			plainConvs++
		}
	}
	if relus != 1 || plainConvs != 3 {
		t.Errorf("%d ReLU nodes and %d standard convolutions left, want 1 and 3 (%v)", relus, plainConvs, ops)
	}
	// x is reordered once for w1; w2 reads a's blocked form; x3 is read as
	// it is. The weights of the two blocked-input convolutions are
	// reordered with ReorderInput too.
	if got := ops[nchwcDomain+".ReorderInput"]; got != 3 {
		t.Errorf("%d ReorderInput nodes, want 3 (%v)", got, ops)
	}
	if got := ops[nchwcDomain+".ReorderOutput"]; got != 3 {
		t.Errorf("%d ReorderOutput nodes, want 3", got)
	}
	// An unknown batch as channels makes batches of a multiple of 4 a need.
	g2 := &onnx.GraphProto{
		Name:      "batch channels",
		Node:      []*onnx.NodeProto{conv("xt", "gt", "dw")},
		Input:     []*onnx.ValueInfoProto{valueInfo("x", onnx.TensorProto_FLOAT, 1)},
		ValueInfo: []*onnx.ValueInfoProto{floatInfo("xt", 16, -1, 5, 5), floatInfo("gt", 16, -1, 5, 5)},
		Output:    []*onnx.ValueInfoProto{valueInfo("dw", onnx.TensorProto_FLOAT, 16, 16, 1, 1)},
	}
	if bg, err = blockConvs(model(t, g2), 16); err != nil || bg.convs != 1 || !bg.batchChannels {
		t.Errorf("weight-gradient convolution: %+v, %v; want 1 rewritten with the batch as channels", bg, err)
	}
}
