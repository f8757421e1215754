package quantize

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/internal/buildinfo"
	"github.com/nasctl/nasctl/onnxgen"
	"google.golang.org/protobuf/proto"
)

// export compiles arch with random weights, as nasctl exports it, and
// returns the model, the network and its weights.
func export(t *testing.T, arch string, in genotype.Input) ([]byte, *genotype.Net, [][]float32) {
	t.Helper()
	return exportEdited(t, arch, in, nil)
}

// exportEdited is export with the weights changed by edit, when set, after
// they are drawn from r.
func exportEdited(t *testing.T, arch string, in genotype.Input, edit func(params []onnxgen.Param, w [][]float32, r *rand.Rand)) ([]byte, *genotype.Net, [][]float32) {
	t.Helper()
	g, err := genotype.ParseGenotype(arch)
	if err != nil {
		t.Fatal(err)
	}
	net, err := g.Build(in, 2)
	if err != nil {
		t.Fatal(err)
	}
	params, r := onnxgen.Params(net), rand.New(rand.NewPCG(3, 3))
	w := onnxgen.Init(params, r)
	if edit != nil {
		edit(params, w, r)
	}
	b, err := onnxgen.Inference(net, w, onnxgen.Metadata{Arch: arch, Input: in, Classes: []string{"a", "b"}, DatasetHash: "sha256:abc",
		Normalization: onnxgen.Normalization, Extra: map[onnxgen.MetaKey]string{onnxgen.MetaTestAccuracy: "0.9"}})
	if err != nil {
		t.Fatal(err)
	}
	return b, net, w
}

// fakeRanges is a Runner that reports, for output i, the values lo(i) and
// hi(i): the ranges the test expects to find in the scales.
type fakeRanges struct {
	calls   int
	outputs []string
}

func lo(i int) float32 { return -float32(i) / 4 }
func hi(i int) float32 { return float32(i) + 1 }

func (f *fakeRanges) run(probe []byte, outputs []string, observe func(int, []float32)) error {
	f.calls++
	f.outputs = outputs
	for i := range outputs {
		observe(i, []float32{lo(i), 0, hi(i)})
	}
	return nil
}

func decode(t *testing.T, b []byte) *onnx.ModelProto {
	t.Helper()
	var m onnx.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// The quantized graph of a layer sequence whose poolings pad at one end
// (17x17 input): every Conv and Gemm reads DequantizeLinear outputs of an
// activation, an int8 weight with a scale per output channel (max |w| /
// 127, recomputed here from the float weights) and an int32 bias at the
// input's scale times the weight's; a Conv's ReLU is gone into the pair
// after it; the poolings' written-out padding is back in their pads; the
// metadata is kept, the float accuracy renamed and the settings added.
func TestModelStructure(t *testing.T) {
	in := genotype.Input{Height: 17, Width: 17, Channels: 1}
	arch := "C(4,3,1) - P(2,2) - C(8,3,1) - P(3,3) - FC(16) - SM()"
	b, net, weights := export(t, arch, in)
	// A float model from another build, one that wrote its unequal pads out
	// as borders (as --pure-go does): the int8 file names this build, and
	// the borders are folded back into the pads.
	b, k, err := onnxgen.PureGo(b)
	if err != nil || k != 2 {
		t.Fatalf("bordered: %d rewritten, %v", k, err)
	}
	old := decode(t, b)
	old.MetadataProps = slices.DeleteFunc(old.MetadataProps, func(p *onnx.StringStringEntryProto) bool { return p.GetKey() == string(onnxgen.MetaPureGo) })
	old.ProducerVersion = "v0.1.0"
	b, err = proto.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRanges{}
	q, err := Model(b, f.run, Options{Method: MinMax, Images: 7, Data: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if f.calls != 1 {
		t.Errorf("min-max calibration ran the probe %d times, want once", f.calls)
	}
	m := decode(t, q)
	if m.GetProducerName() != "nasctl" || m.GetProducerVersion() != buildinfo.Version() {
		t.Errorf("producer %q version %q, want this build's (%q)", m.GetProducerName(), m.GetProducerVersion(), buildinfo.Version())
	}
	g := newGraph(m.GetGraph())
	ops := map[string]int{}
	for _, n := range g.g.GetNode() {
		ops[n.GetOpType()]++
	}
	// 2 convs + 2 dense layers; ReLUs folded; the only Concat left is the
	// probabilities' (1 - p, p).
	if ops["Conv"] != 2 || ops["Gemm"] != 2 || ops["Relu"] != 0 || ops["Concat"] != 1 || ops["MaxPool"] != 2 {
		t.Errorf("operators %v", ops)
	}
	var pools []genotype.Node
	for _, nd := range net.Nodes {
		if nd.Op == genotype.OpMaxPool {
			pools = append(pools, nd)
		}
	}
	params := onnxgen.Params(net)
	wi := 0 // index of the next weight tensor in Params order
	for _, n := range g.g.GetNode() {
		switch n.GetOpType() {
		case "MaxPool":
			p := pools[0].Pads
			pools = pools[1:]
			if got := attr(n, "pads").GetInts(); !slices.Equal(got, []int64{int64(p.Top), int64(p.Left), int64(p.Bottom), int64(p.Right)}) {
				t.Errorf("MaxPool pads %v, want %+v", got, p)
			}
		case "Conv", "Gemm":
			checkQuantizedWeights(t, g, n, weights[wi], weights[wi+1], params[wi].Shape)
			wi += 2
			if n.GetOpType() == "Conv" {
				if cs := g.consumers[n.GetOutput()[0]]; len(cs) != 1 || cs[0].GetOpType() != "QuantizeLinear" {
					t.Errorf("a Conv's output goes to %v, want its QuantizeLinear only", cs)
				}
			}
		}
	}
	info, err := onnxgen.ReadModelInfo(q)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ReadSettings(info)
	if err != nil || s == nil {
		t.Fatalf("settings %v (%v)", s, err)
	}
	if s.Operators != 4 || s.FoldedPadding != 2 || s.Images != 7 || s.Calibration != "minmax" || s.Source != SHA256(b) {
		t.Errorf("settings %+v", s)
	}
	if info.Meta[onnxgen.MetaArch] != arch || info.Meta[onnxgen.MetaDatasetHash] != "sha256:abc" || info.Meta[onnxgen.MetaNormalization] != onnxgen.Normalization ||
		!slices.Equal(info.Classes, []string{"a", "b"}) || info.Input != in {
		t.Errorf("metadata %v", info.Meta)
	}
	if _, ok := info.Meta[onnxgen.MetaTestAccuracy]; ok || info.Meta[MetaFloatTestAccuracy] != "0.9" {
		t.Errorf("the float accuracy should move to %s: %v", MetaFloatTestAccuracy, info.Meta)
	}
	if len(info.Inputs) != 1 || info.Inputs[0] != onnxgen.InputImages || len(info.Outputs) != 1 || info.Outputs[0] != onnxgen.OutputProbs {
		t.Errorf("inputs %v, outputs %v", info.Inputs, info.Outputs)
	}
}

// Each calibrated activation's scale and zero point map its range,
// widened to hold 0, onto 0..255 (uint8) or -128..127 (int8), 0 exactly
// representable.
func TestActivationParams(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		a      Activations
		scale  float32
		zero   int32
	}{
		{0, 255, Uint8, 1, 0},
		{-1, 254, Uint8, 1, 1},
		{0, 255, Int8, 1, -128},
		{-127.5, 127.5, Int8, 1, 0}, // round half to even of -0.5
		{2, 3, Uint8, float32(3.0 / 255), 0},
		{-3, -2, Uint8, float32(3.0 / 255), 255},
		{0, 0, Uint8, 1, 0},
	} {
		p := activationParams(tc.lo, tc.hi, tc.a)
		if math.Abs(float64(p.scale-tc.scale)) > 1e-7 || p.zero != tc.zero {
			t.Errorf("[%g, %g] %v: scale %g zero %d, want %g and %d", tc.lo, tc.hi, tc.a, p.scale, p.zero, tc.scale, tc.zero)
		}
	}
}

// The calibrated ranges come from the probe's outputs: with the fake
// runner, output i spans [lo(i), hi(i)], which the scale and zero point of
// the activation calibrated by it must reproduce.
func TestCalibratedRanges(t *testing.T) {
	b, _, _ := export(t, "C(4,3,1) - C(8,3,1) - GAP()", genotype.Input{Height: 8, Width: 8, Channels: 1})
	f := &fakeRanges{}
	q, err := Model(b, f.run, Options{Method: MinMax, Activations: Int8})
	if err != nil {
		t.Fatal(err)
	}
	g := newGraph(decode(t, q).GetGraph())
	seen := 0
	for _, n := range g.g.GetNode() {
		if n.GetOpType() != "QuantizeLinear" {
			continue
		}
		s, _ := floats(g.inits[n.GetInput()[1]])
		z := g.inits[n.GetInput()[2]]
		if z.GetDataType() != int32(onnx.TensorProto_INT8) {
			t.Errorf("zero point type %v, want int8", z.GetDataType())
		}
		// Which output calibrated it: the one whose range gives this scale.
		found := false
		for i := range f.outputs {
			if want := activationParams(float64(lo(i)), float64(hi(i)), Int8); want.scale == s[0] && want.zero == int32(int8(z.GetRawData()[0])) {
				found = true
			}
		}
		if !found {
			t.Errorf("a QuantizeLinear with scale %g and zero point %d matches no calibrated range", s[0], int8(z.GetRawData()[0]))
		}
		seen++
	}
	// x, two Conv outputs, the pooled value and the flattened one (which
	// shares the pooling's parameters).
	if len(f.outputs) != 4 || seen != 5 {
		t.Errorf("%d calibrated outputs %v and %d QuantizeLinear, want 4 and 5", len(f.outputs), f.outputs, seen)
	}
}

// Percentile: on values 0..9999, the 99.9th percentile keeps the top at
// about 9990 (within a histogram bin) and the bottom at 0; with negative
// values, the bottom is clipped symmetrically.
func TestPercentile(t *testing.T) {
	values := make([]float32, 10000)
	for i := range values {
		values[i] = float32(i)
	}
	c := newCollector(2)
	neg := make([]float32, len(values))
	for i, v := range values {
		neg[i] = v - 5000
	}
	c.observe(0, values)
	c.observe(1, neg)
	c.histograms()
	c.observe(0, values)
	c.observe(1, neg)
	bin := 9999.0 / bins
	if lo, hi := c.percentile(0, 99.9); lo != 0 || math.Abs(hi-9990) > 2*bin {
		t.Errorf("percentile 99.9 of 0..9999: [%g, %g], want [0, about 9990]", lo, hi)
	}
	if lo, hi := c.percentile(1, 99.9); math.Abs(lo+4990) > 2*bin || math.Abs(hi-4990) > 2*bin {
		t.Errorf("percentile 99.9 of -5000..4999: [%g, %g], want about [-4990, 4990]", lo, hi)
	}
	if lo, hi := c.percentile(0, 100); lo != 0 || hi != 9999 {
		t.Errorf("percentile 100: [%g, %g], want the full range", lo, hi)
	}
}

// The form export --pure-go writes, as exports of earlier nasctl versions
// did, has unequal pads written out as borders, which the quantizer folds
// back into the operator's pads: a stride-2 'same' convolution pads more
// at the end (8x8 in, 3x3 window: [0, 0, 1, 1], zero borders), and so does
// a 'same' pooling over an odd size (P(2,2) at 9x9: borders of the lowest
// float).
func TestFoldPadding(t *testing.T) {
	for _, tc := range []struct {
		arch string
		in   genotype.Input
		op   string
		want []int64
	}{
		{"C(4,3,1) - C(8,3,2) - GAP()", genotype.Input{Height: 10, Width: 10, Channels: 1}, "Conv", []int64{0, 0, 1, 1}},
		{"C(4,3,1) - P(2,2) - GAP()", genotype.Input{Height: 9, Width: 9, Channels: 1}, "MaxPool", []int64{0, 0, 1, 1}},
	} {
		b, _, _ := export(t, tc.arch, tc.in)
		b, k, err := onnxgen.PureGo(b)
		if err != nil || k != 1 {
			t.Fatalf("%s, the --pure-go form: %d rewritten, %v", tc.arch, k, err)
		}
		g := newGraph(decode(t, b).GetGraph())
		if n := g.foldPadding(); n != 1 {
			t.Fatalf("%s: %d paddings folded, want 1", tc.arch, n)
		}
		folded := 0
		for _, n := range g.g.GetNode() {
			if n.GetOpType() == "Concat" && n.GetOutput()[0] != onnxgen.OutputProbs {
				t.Errorf("%s: a Concat is left: %v", tc.arch, n)
			}
			if n.GetOpType() == tc.op && slices.Equal(attr(n, "pads").GetInts(), tc.want) {
				folded++
			}
		}
		if folded != 1 {
			t.Errorf("%s: %d %s nodes with pads %v, want 1", tc.arch, folded, tc.op, tc.want)
		}
	}
}

// Settings round-trip through the metadata, and a model without them has
// none.
func TestReadSettings(t *testing.T) {
	want := Settings{Format: "QDQ", Calibration: "percentile 99.999", Operators: 3, Source: "ab"}
	js, _ := json.Marshal(want)
	got, err := ReadSettings(&onnxgen.ModelInfo{Meta: map[onnxgen.MetaKey]string{MetaQuantization: string(js)}})
	if err != nil || got == nil || *got != want {
		t.Errorf("read %+v (%v), want %+v", got, err, want)
	}
	if got, err := ReadSettings(&onnxgen.ModelInfo{Meta: map[onnxgen.MetaKey]string{}}); got != nil || err != nil {
		t.Errorf("no settings: %+v, %v", got, err)
	}
}

// Errors say what is wrong: a model without a quantizable operator, a
// percentile out of range.
func TestModelErrors(t *testing.T) {
	// A one-output classifier of 65x65 inputs is a multiplication, not a
	// Gemm (onnxgen's narrow dense layer).
	b, _, _ := export(t, "SM()", genotype.Input{Height: 65, Width: 65, Channels: 1})
	f := &fakeRanges{}
	if _, err := Model(b, f.run, Options{}); err == nil {
		t.Error("a model without Conv or Gemm weights was quantized")
	}
	b, _, _ = export(t, "C(2,3,1) - GAP()", genotype.Input{Height: 8, Width: 8, Channels: 1})
	if _, err := Model(b, f.run, Options{Method: Percentile, Percentile: 40}); err == nil {
		t.Error("percentile 40 accepted")
	}
}

// checkQuantizedWeights checks quantized operator n of g against its float
// weight fw (of shape) and bias fb: it reads DequantizeLinear outputs, an
// int8 weight with a scale per output channel equal to max |w| / 127 of
// the channel (recomputed here), within half a step of the float weight,
// and an int32 bias whose scale is the input's times the weight's.
func checkQuantizedWeights(t *testing.T, g *graph, n *onnx.NodeProto, fw, fb []float32, shape []int64) {
	t.Helper()
	x, w, bias := g.producer[n.GetInput()[0]], g.producer[n.GetInput()[1]], g.producer[n.GetInput()[2]]
	for _, d := range []*onnx.NodeProto{x, w, bias} {
		if d == nil || d.GetOpType() != "DequantizeLinear" {
			t.Fatalf("%s reads %v, want DequantizeLinear", n.GetOpType(), d)
		}
	}
	axis := 0
	if n.GetOpType() == "Gemm" {
		axis = 1
	}
	wq := g.inits[w.GetInput()[0]]
	ws, _ := floats(g.inits[w.GetInput()[1]])
	if wq.GetDataType() != int32(onnx.TensorProto_INT8) || attrInt(w, "axis", 1) != int64(axis) || len(ws) != int(shape[axis]) {
		t.Fatalf("weight: %v, axis %d, %d scales; want int8 per channel on axis %d of %v", wq.GetDataType(), attrInt(w, "axis", 1), len(ws), axis, shape)
	}
	inner := len(fw) / int(shape[0])
	channel := func(i int) int { return i / inner }
	if axis == 1 {
		channel = func(i int) int { return i % int(shape[1]) }
	}
	peak := make([]float64, len(ws))
	for i, v := range fw {
		peak[channel(i)] = max(peak[channel(i)], math.Abs(float64(v)))
	}
	for c := range ws {
		if want := float32(peak[c] / 127); ws[c] != want {
			t.Errorf("channel %d scale %g, want %g", c, ws[c], want)
		}
	}
	for i, v := range wq.GetRawData() {
		if d := math.Abs(float64(int8(v))*float64(ws[channel(i)]) - float64(fw[i])); d > float64(ws[channel(i)])/2+1e-9 {
			t.Fatalf("weight %d: dequantized %g, float %g", i, float64(int8(v))*float64(ws[channel(i)]), fw[i])
		}
	}
	xs, _ := floats(g.inits[x.GetInput()[1]])
	bs, _ := floats(g.inits[bias.GetInput()[1]])
	bq := g.inits[bias.GetInput()[0]]
	if bq.GetDataType() != int32(onnx.TensorProto_INT32) {
		t.Fatalf("bias type %v", bq.GetDataType())
	}
	for c, v := range fb {
		if bs[c] != xs[0]*ws[c] {
			t.Errorf("bias scale %g, want input %g x weight %g", bs[c], xs[0], ws[c])
		}
		got := float64(int32(binary.LittleEndian.Uint32(bq.GetRawData()[4*c:]))) * float64(bs[c])
		if math.Abs(got-float64(v)) > float64(bs[c])/2+1e-9 {
			t.Errorf("bias %d: dequantized %g, float %g", c, got, v)
		}
	}
}
