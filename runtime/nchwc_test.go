package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
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

// A depthwise convolution (one channel per group, as many groups as
// channels) runs on ONNX Runtime's NCHWc depthwise kernel and gives what its
// standard Conv gives: kernels 3, 5 and 7, strides 1 and 2, dilations 1 and
// 2, 4 to 32 channels (fewer than a block, which take 4 or 2 images as one,
// whole blocks, and a block and a half, with the 16-channel block of
// AVX-512), pads as 'same' gives them on a
// 9x9 input (split unevenly at stride 2), with and without a bias, the 5x5
// kernels declared of a width known only when run (as the packed depthwise
// weight gradient's is). The two kernels sum in different orders, so
// outputs of about unit size agree to 1e-5 (relative above 1), not exactly.
func TestBlockConvsDepthwise(t *testing.T) {
	initRuntime(t)
	block := nchwcBlockSize()
	if block == 0 {
		t.Fatalf("no NCHWc kernels in this library on %s", goruntime.GOARCH)
	}
	const n, h, w = 4, 9, 9
	r := rand.New(rand.NewPCG(5, 7))
	for _, k := range []int64{3, 5, 7} {
		for _, stride := range []int64{1, 2} {
			for _, dil := range []int64{1, 2} {
				for _, ch := range []int64{4, 8, 16, 24, 32} {
					bias := ch == 24 || ch == 4 // 4: the bias repeated for images taken as one
					name := fmt.Sprintf("k%d s%d d%d c%d", k, stride, dil, ch)
					t.Run(name, func(t *testing.T) {
						ho, top, bottom := samePads(h, dil*(k-1)+1, stride)
						wo, left, right := samePads(w, dil*(k-1)+1, stride)
						ins := []string{"x", "w"}
						kw := k
						if k == 5 {
							kw = -1
						}
						inputs := []*onnx.ValueInfoProto{floatInfo("x", -1, ch, h, w), floatInfo("w", ch, 1, k, kw)}
						if bias {
							ins = append(ins, "b")
							inputs = append(inputs, floatInfo("b", ch))
						}
						g := &onnx.GraphProto{
							Name: "depthwise",
							Node: []*onnx.NodeProto{node("Conv", ins, []string{"y"}, intAttr("group", ch),
								intsAttr("kernel_shape", k, k), intsAttr("strides", stride, stride),
								intsAttr("dilations", dil, dil), intsAttr("pads", top, left, bottom, right))},
							Input:  inputs,
							Output: []*onnx.ValueInfoProto{floatInfo("y", -1, ch, ho, wo)},
						}
						m := model(t, g)
						bg, err := blockConvs(m, block)
						if err != nil {
							t.Fatal(err)
						}
						if got := nchwcDepthwiseConvs(t, bg.model); bg.convs != 1 || got != 1 {
							t.Fatalf("%d convolutions rewritten, %d NCHWc depthwise convolutions in the graph; want 1 and 1", bg.convs, got)
						}
						if bg.batchChannels {
							t.Fatal("a graph without the batch as channels asks for batches of a multiple of 4")
						}
						// Images taken as one, forced: asks for multiples of 4.
						pg, err := blockConvsPairing(m, block, true)
						if err != nil {
							t.Fatal(err)
						}
						if paired := block%ch == 0 && ch < block; pg.batchChannels != paired {
							t.Fatalf("paired: batches of a multiple of 4: %v, want %v (images taken %d as one)", pg.batchChannels, paired, block/ch)
						}
						values := [][]float32{randomFloats(r, int(n*ch*h*w)), randomFloats(r, int(ch*k*k))}
						shapes := [][]int64{{n, ch, h, w}, {ch, 1, k, k}}
						if bias {
							values, shapes = append(values, randomFloats(r, int(ch))), append(shapes, []int64{ch})
						}
						want := runConv(t, m, ins, values, shapes, []int64{n, ch, ho, wo}, false)
						got := runConv(t, m, ins, values, shapes, []int64{n, ch, ho, wo}, true)
						// The paired graph holds the NCHWc operators already.
						gotPaired := runConv(t, pg.model, ins, values, shapes, []int64{n, ch, ho, wo}, false)
						for i := range want {
							if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*math.Max(1, math.Abs(float64(want[i]))) {
								t.Fatalf("y[%d] = %g on NCHWc kernels, %g on the standard Conv", i, got[i], want[i])
							}
							if d := math.Abs(float64(gotPaired[i] - want[i])); d > 1e-5*math.Max(1, math.Abs(float64(want[i]))) {
								t.Fatalf("y[%d] = %g on NCHWc kernels, images taken as one, %g on the standard Conv", i, gotPaired[i], want[i])
							}
						}
					})
				}
			}
		}
	}
	// Depthwise convolutions ReorderInput cannot take (channels not a
	// multiple of 4) and grouped ones with several channels per group stay
	// standard.
	g := &onnx.GraphProto{
		Name: "grouped",
		Node: []*onnx.NodeProto{
			node("Conv", []string{"x", "w1"}, []string{"a"}, intAttr("group", 18)),
			node("Conv", []string{"x", "w2"}, []string{"b"}, intAttr("group", 9)),
		},
		Input:  []*onnx.ValueInfoProto{floatInfo("x", -1, 18, 5, 5), floatInfo("w1", 18, 1, 3, 3), floatInfo("w2", 18, 2, 3, 3)},
		Output: []*onnx.ValueInfoProto{floatInfo("a", -1, 18, 3, 3), floatInfo("b", -1, 18, 3, 3)},
	}
	if bg, err := blockConvs(model(t, g), block); err != nil || bg.convs != 0 {
		t.Errorf("18 channels in 18 or 9 groups: %v, %v; want none rewritten", bg, err)
	}
}

// samePads is 'same' padding of a window of span (dilated kernel) at stride:
// the output size and the pads before and after (genotype's rule, the extra
// one after).
func samePads(n, span, stride int64) (out, before, after int64) {
	out = (n + stride - 1) / stride
	total := max((out-1)*stride+span-n, 0)
	return out, total / 2, total - total/2
}

// nchwcDepthwiseConvs counts the NCHWc convolutions of a model that have
// more than one group.
func nchwcDepthwiseConvs(t *testing.T, b []byte) int {
	t.Helper()
	m := &onnx.ModelProto{}
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, n := range m.GetGraph().GetNode() {
		if n.GetDomain() != nchwcDomain || n.GetOpType() != "Conv" {
			continue
		}
		for _, a := range n.GetAttribute() {
			if a.GetName() == "group" && a.GetI() > 1 {
				count++
			}
		}
	}
	return count
}

// pairedConvs counts the rewritten convolutions of a model that take
// several images as one (their output reshaped back to one image each).
func pairedConvs(t *testing.T, b []byte) int {
	t.Helper()
	m := &onnx.ModelProto{}
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, n := range m.GetGraph().GetNode() {
		if n.GetOpType() == "Reshape" && strings.Contains(n.GetName(), "/nchwc") && strings.HasSuffix(n.GetName(), "/Reshape") {
			count++
		}
	}
	return count
}

// runConv runs a model of one output "y" of shape out on the given inputs,
// with or without the NCHWc rewrite (failing unless it rewrote a
// convolution), and returns y.
func runConv(t *testing.T, m []byte, names []string, values [][]float32, shapes [][]int64, out []int64, nchwc bool) []float32 {
	t.Helper()
	s, err := NewSession(m, names, []string{"y"}, SessionOptions{IntraOpThreads: 1, Optimization: TrainOptimization, NCHWc: nchwc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if nchwc && s.BlockedConvs() == 0 {
		t.Fatal("the session runs no convolution on NCHWc kernels")
	}
	var ins []Value
	for i := range values {
		x, err := NewTensor(shapes[i], values[i])
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		ins = append(ins, x)
	}
	y, err := NewZeroTensor[float32](out...)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	if err := s.Run(ins, []Value{y}); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), y.Data()...)
}

// randomFloats returns n values uniform in [-1, 1).
func randomFloats(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 2*r.Float32() - 1
	}
	return v
}

func intsAttr(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INTS, Ints: v}
}

// A cell network's training step runs on the NCHWc kernels at batches of
// several sizes in one session. The packed depthwise weight gradient's
// values have widths that the batch sets without being it: declared as
// the batch, ONNX Runtime reused buffers of the wrong size at batch 32
// ("Shape mismatch attempting to re-use buffer").
func TestBlockedCellNetworkBatches(t *testing.T) {
	initRuntime(t)
	const arch = "net(stem=8, filters=8, normal=1, reductions=1, style=nasnet) " +
		"normal: b0 = add(conv_1x3_3x1(h1), dil_conv_3x3(h1)); b1 = concat(sep_conv_5x5(b0), sep_conv_7x7(b0)) | " +
		"reduction: b0 = concat(sep_conv_7x7(h0), conv_3x3(h0)); b1 = concat(conv_1x1(h1), max_pool_7x7(b0))"
	g, err := genotype.ParseGenotype(arch)
	if err != nil {
		t.Fatal(err)
	}
	net, err := g.Build(genotype.Input{Height: 16, Width: 16, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := newTrainer(net, TrainConfig{Threads: 1}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	bg, err := blockConvs(tr.tg.Model, nchwcBlockSize())
	if err != nil {
		t.Fatal(err)
	}
	if got := nchwcDepthwiseConvs(t, bg.model); got != 3*3 {
		t.Fatalf("%d depthwise convolutions on NCHWc kernels, want 9 (3 forward passes, weight and input gradients)", got)
	}
	tr.setWeights(onnxgen.Init(tr.tg.Params, rand.New(rand.NewPCG(1, 2))))
	if tr.train.BatchMultiple() != 4 || tr.eval.BatchMultiple() != 1 {
		t.Fatalf("batches of a multiple of %d in training, %d in evaluation; want 4 and 1", tr.train.BatchMultiple(), tr.eval.BatchMultiple())
	}
	// 6: not a multiple of 4, which the training graph without NCHWc takes.
	for _, n := range []int64{32, 12, 32, 6} {
		stepOnce(t, tr, n, 7)
	}
}
