package onnxgen

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/genotype"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// handModel is a graph of x [1, 2, 5, 5] through one node of op with
// attrs (and initializers inits).
func handModel(t *testing.T, op string, ins []string, attrs []*onnx.AttributeProto, inits ...*onnx.TensorProto) []byte {
	t.Helper()
	dims := func(d ...int64) *onnx.TypeProto {
		var shape []*onnx.TensorShapeProto_Dimension
		for _, v := range d {
			shape = append(shape, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: v}})
		}
		return &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{
			ElemType: int32(onnx.TensorProto_FLOAT), Shape: &onnx.TensorShapeProto{Dim: shape}}}}
	}
	m := &onnx.ModelProto{IrVersion: 8, OpsetImport: []*onnx.OperatorSetIdProto{{Version: 17}}, Graph: &onnx.GraphProto{
		Input:       []*onnx.ValueInfoProto{{Name: "x", Type: dims(1, 2, 5, 5)}},
		Output:      []*onnx.ValueInfoProto{{Name: "y"}},
		Initializer: inits,
		Node:        []*onnx.NodeProto{{Name: "n", OpType: op, Input: ins, Output: []string{"y"}, Attribute: attrs}},
	}}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rewritten runs PureGo and returns the graph and its added constants.
func rewritten(t *testing.T, b []byte) (*onnx.GraphProto, map[string]*onnx.TensorProto) {
	t.Helper()
	out, n, err := PureGo(b)
	if err != nil || n != 1 {
		t.Fatalf("%d rewritten (%v), want 1", n, err)
	}
	var m onnx.ModelProto
	if err := proto.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	inits := map[string]*onnx.TensorProto{}
	for _, i := range m.GetGraph().GetInitializer() {
		inits[i.GetName()] = i
	}
	return m.GetGraph(), inits
}

// An average pooling of 3x3 windows, stride 2, pads 1 on a 5x5 input
// that leaves pads out of its count divides by the cells inside the input,
// counted by hand: 4 at the corners of the 3x3 output, 6 on its edges, 9
// in the middle; the window sum is a Conv by ones on the channel diagonal.
func TestPureGoAveragePoolCounts(t *testing.T) {
	b := handModel(t, "AveragePool", []string{"x"}, []*onnx.AttributeProto{intsAttr("kernel_shape", 3, 3), intsAttr("strides", 2, 2),
		intsAttr("pads", 1, 1, 1, 1), {Name: "count_include_pad", Type: onnx.AttributeProto_INT, I: 0}})
	g, inits := rewritten(t, b)
	ops := []string{}
	for _, n := range g.GetNode() {
		ops = append(ops, n.GetOpType())
	}
	if !slices.Equal(ops, []string{"Conv", "Mul"}) {
		t.Fatalf("operators %v, want Conv, Mul", ops)
	}
	ones, _ := floatValues(inits[g.GetNode()[0].GetInput()[1]])
	for o := range 2 {
		for i := range 2 {
			for k := range 9 {
				want := float32(0)
				if o == i {
					want = 1
				}
				if ones[(o*2+i)*9+k] != want {
					t.Fatalf("sum kernel [%d, %d, %d] = %g, want %g", o, i, k, ones[(o*2+i)*9+k], want)
				}
			}
		}
	}
	scale, _ := floatValues(inits[g.GetNode()[1].GetInput()[1]])
	counts := []float32{4, 6, 4, 6, 9, 6, 4, 6, 4}
	for ch := range 2 {
		for i, c := range counts {
			if got := scale[ch*9+i]; got != 1/c {
				t.Errorf("channel %d position %d: scale %g, want 1/%g", ch, i, got, c)
			}
		}
	}
}

// A depthwise convolution (2 channels, group 2, 1x1 weights w0 and w1)
// becomes a plain one whose weight is [[w0, 0], [0, w1]]; its unequal pads
// [0, 1, 0, 1] (a 1 x 3 window) become one column of zeros on each side
// and pads 0.
func TestPureGoDepthwise(t *testing.T) {
	w := &onnx.TensorProto{Name: "w", DataType: int32(onnx.TensorProto_FLOAT), Dims: []int64{2, 1, 1, 3}, FloatData: []float32{1, 2, 3, 4, 5, 6}}
	b := handModel(t, "Conv", []string{"x", "w"}, []*onnx.AttributeProto{intsAttr("kernel_shape", 1, 3), intsAttr("pads", 0, 1, 0, 1),
		{Name: "group", Type: onnx.AttributeProto_INT, I: 2}}, w)
	g, inits := rewritten(t, b)
	var conv *onnx.NodeProto
	concats := 0
	for _, n := range g.GetNode() {
		switch n.GetOpType() {
		case "Conv":
			conv = n
		case "Concat":
			concats++
			if attrOf(n, "axis").GetI() != 3 || len(n.GetInput()) != 3 {
				t.Errorf("border %v: want a column before and after", n)
			}
		}
	}
	if conv == nil || concats != 1 || attrOf(conv, "group") != nil || !slices.Equal(attrOf(conv, "pads").GetInts(), []int64{0, 0, 0, 0}) {
		t.Fatalf("conv %v, %d concats", conv, concats)
	}
	dense, _ := floatValues(inits[conv.GetInput()[1]])
	want := []float32{1, 2, 3, 0, 0, 0, 0, 0, 0, 4, 5, 6}
	if !slices.Equal(dense, want) {
		t.Errorf("dense weight %v, want %v", dense, want)
	}
}

// A layer sequence's export keeps ONNX's pads in its Conv and MaxPool
// nodes; PureGo writes out the unequal ones as borders, rewriting exactly
// the nodes that have them, with two classes (a sigmoid and a Concat of
// the two probabilities) or three, on one channel or three. (That the
// rewritten models agree with ONNX Runtime in onnx-go: package bench.)
func TestPureGoLayerSequences(t *testing.T) {
	for _, tc := range []struct {
		arch    string
		in      genotype.Input
		classes int
	}{
		{"C(8,3,1) - P(2,2) - C(8,3,1) - SM()", genotype.Input{Height: 33, Width: 33, Channels: 1}, 2},
		{"C(8,1,1) - C(32,3,1) - P(3,3) - C(32,1,1) - C(8,5,1) - C(16,3,1) - GAP()", genotype.Input{Height: 32, Width: 32, Channels: 1}, 2},
		{"C(4,5,1) - P(2,3) - C(8,3,1) - FC(16) - SM()", genotype.Input{Height: 20, Width: 17, Channels: 3}, 3},
		{"C(8,3,1) - P(2,2) - SM()", genotype.Input{Height: 32, Width: 32, Channels: 1}, 2},
	} {
		n, err := genotype.MustParse(tc.arch).Build(tc.in, tc.classes)
		if err != nil {
			t.Fatal(err)
		}
		uneven := 0
		for _, nd := range n.Nodes {
			if p := nd.Pads; (nd.Op == genotype.OpConv || nd.Op == genotype.OpMaxPool) && !(p.Top == p.Bottom && p.Left == p.Right && p.Top == p.Left) {
				uneven++
			}
		}
		classes := strings.Split("abc"[:tc.classes], "")
		b, err := Inference(n, Init(Params(n), rand.New(rand.NewPCG(1, 3))), Metadata{Arch: tc.arch, Input: tc.in, Classes: classes})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("GlobalAveragePool")) != strings.Contains(tc.arch, "GAP()") {
			t.Errorf("%s: the export builds borders (GlobalAveragePool of the images)", tc.arch)
		}
		if _, k, err := PureGo(b); err != nil || k != uneven {
			t.Errorf("%s at %v: %d rewritten, %v; want %d, nil", tc.arch, tc.in, k, err, uneven)
		}
	}
}

// Shapes through broadcasting and reshapes, a 0 being the batch's size.
func TestPureGoShapes(t *testing.T) {
	for _, tc := range []struct {
		in   [][]int64
		want []int64
	}{
		{[][]int64{{0, 1, 1, 1}, {8, 2, 33}}, []int64{0, 8, 2, 33}},
		{[][]int64{{}, {0, 1}}, []int64{0, 1}},
		{[][]int64{{0, 4, 5, 5}, {4, 1, 1}}, []int64{0, 4, 5, 5}},
		{[][]int64{{2, 3}, {4, 3}}, nil},
		{nil, nil},
	} {
		if got := broadcastShape(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("broadcastShape(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ x, spec, want []int64 }{
		{nil, []int64{1, 1, 1}, []int64{1, 1, 1}},
		{[]int64{2, 3, 4}, []int64{0, -1}, []int64{2, 12}},
		{[]int64{0, 3, 4}, []int64{0, -1}, nil},
		{nil, []int64{0, 4}, nil},
	} {
		if got := reshapeShape(tc.x, tc.spec); !slices.Equal(got, tc.want) {
			t.Errorf("reshapeShape(%v, %v) = %v, want %v", tc.x, tc.spec, got, tc.want)
		}
	}
	if got := concatShape([][]int64{{0, 8, 32, 1}, {0, 8, 32, 33}}, -1); !slices.Equal(got, []int64{0, 8, 32, 34}) {
		t.Errorf("concatShape along -1 = %v", got)
	}
}
