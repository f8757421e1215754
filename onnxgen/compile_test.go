package onnxgen

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/genotype"
	"google.golang.org/protobuf/proto"
)

func build(t *testing.T, arch string, in genotype.Input, classes int) *genotype.Net {
	t.Helper()
	n, err := genotype.MustParse(arch).Build(in, classes)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestParams(t *testing.T) {
	n := build(t, "C(4,3,1) - P(2,2) - FC(8) - SM()", genotype.Input{Height: 8, Width: 8, Channels: 2}, 2)
	ps := Params(n)
	var got []string
	var total int64
	for _, p := range ps {
		got = append(got, p.Name+":"+strings.Join(strings.Fields(strings.Trim(fmt.Sprint(p.Shape), "[]")), "x"))
		total += int64(p.Size())
	}
	// 8x8 'valid' 3x3 -> 6x6, pooled to 3x3 x 4 channels = 36 inputs of fc3.
	want := []string{"conv1.weight:4x2x3x3", "conv1.bias:4", "fc3.weight:36x8", "fc3.bias:8", "classifier.weight:8x1", "classifier.bias:1"}
	if !slices.Equal(got, want) {
		t.Errorf("params %v, want %v", got, want)
	}
	// The independent count of genotype.Net must agree with the tensors.
	if total != n.Params() {
		t.Errorf("tensors hold %d values, the network has %d parameters", total, n.Params())
	}
}

// The same agreement for cell networks, whose separable convolutions are
// depthwise (groups = channels) and whose nasnet style adds batch
// normalisations: genotype's parameter count must equal the number of
// values in the trainable tensors that onnxgen bakes into the exported model
// (InferenceUnfolded, so no batch normalisation is folded away), read back
// from the decoded initializers. A batch normalisation's running mean and
// variance are state, not parameters: they are in the model but not in the
// count.
func TestCellNetParamsMatchTensors(t *testing.T) {
	const study = "normal: b0 = add(sep_conv_3x3(h1), identity(h0)); b1 = concat(max_pool_3x3(b0), conv_1x3_3x1(h0)) | " +
		"reduction: b0 = add(dil_conv_3x3(h0), avg_pool_3x3(h1)); b1 = add(identity(b0), sep_conv_5x5(h1))"
	const wide = "normal: b0 = add(sep_conv_7x7(h0), sep_conv_3x3(h1)); b1 = concat(conv_1x7_7x1(b0), avg_pool_3x3(h1)); b2 = add(conv_3x3(h1), max_pool_5x5(b1)) | " +
		"reduction: b0 = concat(sep_conv_5x5(h1), max_pool_7x7(h0)); b1 = add(conv_1x1(b0), dil_conv_3x3(h1)); b2 = add(sep_conv_3x3(b0), identity(h0))"
	for _, tc := range []struct {
		net     string
		in      genotype.Input
		classes int
	}{
		{"net(stem=8, filters=8, normal=1, reductions=1, style=study) " + study, genotype.Input{Height: 16, Width: 16, Channels: 1}, 2},
		{"net(stem=8, filters=8, normal=1, reductions=1, style=nasnet) " + study, genotype.Input{Height: 16, Width: 16, Channels: 1}, 2},
		{"net(stem=6, filters=4, normal=2, reductions=2, style=nasnet) " + wide, genotype.Input{Height: 20, Width: 20, Channels: 3}, 5},
		{"net(stem=4, filters=6, normal=1, reductions=1, style=study) " + wide, genotype.Input{Height: 12, Width: 12, Channels: 2}, 3},
	} {
		g, err := genotype.ParseCellNet(tc.net)
		if err != nil {
			t.Fatal(err)
		}
		n, err := g.Build(tc.in, tc.classes)
		if err != nil {
			t.Fatal(err)
		}
		var depthwise, bns int
		for _, nd := range n.Nodes {
			if nd.Op == genotype.OpConv && nd.Groups > 1 {
				depthwise++
			}
			if nd.Op == genotype.OpBatchNorm {
				bns++
			}
		}
		if depthwise == 0 || (strings.Contains(tc.net, "nasnet") && bns == 0) {
			t.Fatalf("%s: %d depthwise convolutions, %d batch normalisations: the case tests nothing", tc.net, depthwise, bns)
		}
		ps := Params(n)
		b, err := InferenceUnfolded(n, Init(ps, rand.New(rand.NewPCG(3, 4))), Metadata{Arch: tc.net, Input: tc.in})
		if err != nil {
			t.Fatal(err)
		}
		inits := map[string]*onnx.TensorProto{}
		for _, tp := range decode(t, b).GetGraph().GetInitializer() {
			inits[tp.GetName()] = tp
		}
		var total int64
		var state int
		for _, p := range ps {
			tp, ok := inits[p.Name]
			if !ok {
				t.Fatalf("%s: no initializer %s", tc.net, p.Name)
			}
			size := int64(1)
			for _, d := range tp.GetDims() {
				size *= d
			}
			if size != int64(len(tp.GetFloatData())) {
				t.Fatalf("%s: %s shaped %v holds %d values", tc.net, p.Name, tp.GetDims(), len(tp.GetFloatData()))
			}
			if p.State {
				state++
				continue
			}
			total += size
		}
		if state != 2*bns {
			t.Errorf("%s: %d running statistics for %d batch normalisations", tc.net, state, bns)
		}
		if total != n.Params() {
			t.Errorf("%s: the trainable tensors hold %d values, the network has %d parameters", tc.net, total, n.Params())
		}
	}
}

// Glorot-uniform weights lie within sqrt(6/(fan_in+fan_out)) and their variance
// is limit^2/3; biases start at zero.
func TestInit(t *testing.T) {
	n := build(t, "C(32,3,1) - FC(64) - SM()", genotype.Input{Height: 6, Width: 6, Channels: 4}, 2)
	ps := Params(n)
	w := Init(ps, rand.New(rand.NewPCG(1, 2)))
	for i, p := range ps {
		if p.Bias {
			for _, v := range w[i] {
				if v != 0 {
					t.Fatalf("%s not zero", p.Name)
				}
			}
			continue
		}
		limit := math.Sqrt(6 / float64(p.FanIn+p.FanOut))
		var sum2 float64
		for _, v := range w[i] {
			if math.Abs(float64(v)) > limit {
				t.Fatalf("%s: %v outside ±%v", p.Name, v, limit)
			}
			sum2 += float64(v) * float64(v)
		}
		variance := sum2 / float64(len(w[i]))
		// With n values the sample variance is within 5 standard errors
		// (the variance of u^2 for u uniform on ±L is 4L^4/45).
		se := math.Sqrt(4 * math.Pow(limit, 4) / 45 / float64(len(w[i])))
		if math.Abs(variance-limit*limit/3) > 5*se {
			t.Errorf("%s: variance %.4g, want %.4g ± %.2g", p.Name, variance, limit*limit/3, 5*se)
		}
	}
}

func TestDropoutScale(t *testing.T) {
	for _, rate := range []float64{0.125, 1.0 / 6, 0.25, 0.5} {
		thr := DropoutThreshold(rate)
		keep := float64(MaskResolution-thr) / MaskResolution
		if math.Abs(float64(thr)/MaskResolution-rate) > 1.0/MaskResolution {
			t.Errorf("rate %v: threshold %d", rate, thr)
		}
		if got := float64(DropoutScale(rate)) * keep; math.Abs(got-1) > 1e-6 {
			t.Errorf("rate %v: scale x keep probability = %v, want 1", rate, got)
		}
	}
}

func decode(t *testing.T, b []byte) *onnx.ModelProto {
	t.Helper()
	var m onnx.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

func names(vs []*onnx.ValueInfoProto) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.GetName())
	}
	return out
}

func TestTrainingGraphInterface(t *testing.T) {
	n := build(t, "C(4,3,1) - C(4,3,1) - P(2,2) - FC(8) - SM()", genotype.Input{Height: 8, Width: 8, Channels: 1}, 2)
	tg, err := Training(n, TrainOptions{Optimizer: SGD{Momentum: 0.9}, Gradients: true})
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, tg.Model)
	if got := names(m.GetGraph().GetInput()); !slices.Equal(got, tg.Inputs) {
		t.Errorf("graph inputs %v, declared %v", got, tg.Inputs)
	}
	if got := names(m.GetGraph().GetOutput()); !slices.Equal(got, tg.Outputs) {
		t.Errorf("graph outputs %v, declared %v", got, tg.Outputs)
	}
	// x, y, step, lr, 8 params, 8 velocity slots, 2 dropout masks (after
	// layers 2 and 4 of 4 non-SM layers).
	if len(tg.Inputs) != 4+8+8+2 || len(tg.Masks) != 2 || tg.Masks[0].Rate != 0.25 || tg.Masks[1].Rate != 0.5 {
		t.Errorf("inputs %v, masks %+v", tg.Inputs, tg.Masks)
	}
	// loss, correct, 8 new params, 8 new slots, 8 gradients.
	if len(tg.Outputs) != 2+8+8+8 || tg.Outputs[2] != "conv1.weight/new" || tg.Outputs[10] != "conv1.weight/velocity/new" || tg.Outputs[18] != "grad/conv1.weight" {
		t.Errorf("outputs %v", tg.Outputs)
	}
	if m.GetOpsetImport()[0].GetVersion() != Opset || m.GetIrVersion() != IRVersion {
		t.Errorf("opset %v, IR %v", m.GetOpsetImport(), m.GetIrVersion())
	}
}

func TestInferenceMetadata(t *testing.T) {
	n := build(t, "C(4,3,1) - GAP()", genotype.Input{Height: 8, Width: 8, Channels: 3}, 3)
	w := Init(Params(n), rand.New(rand.NewPCG(1, 1)))
	meta := Metadata{Arch: n.Arch.String(), Input: n.Input, Normalization: "x/255", Classes: []string{"a", "b", "c"},
		DatasetHash: "sha256:abc", Extra: map[MetaKey]string{MetaTestAccuracy: "0.9"}}
	b, err := Inference(n, w, meta)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ReadModelInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	if info.Arch.Key() != n.Arch.Key() || info.Input != n.Input || !slices.Equal(info.Classes, meta.Classes) ||
		info.Meta[MetaDatasetHash] != "sha256:abc" || info.Meta[MetaTestAccuracy] != "0.9" || info.Meta[MetaNormalization] != "x/255" {
		t.Errorf("info %+v", info)
	}
	if !slices.Equal(info.Inputs, []string{InputImages}) || !slices.Equal(info.Outputs, []string{OutputProbs}) || info.Opset != Opset {
		t.Errorf("interface %v -> %v, opset %d", info.Inputs, info.Outputs, info.Opset)
	}
	// The declared types, as the constants' comments give them: images
	// [N, C, H, W] in, K probabilities out, float32, the batch named N.
	if want := map[string]string{InputImages: "float32[N,3,8,8]", OutputProbs: "float32[N,3]"}; !maps.Equal(info.Declared, want) {
		t.Errorf("declared %v, want %v", info.Declared, want)
	}
	if info.Weights != n.Params() {
		t.Errorf("initializers hold %d weights, want %d", info.Weights, n.Params())
	}
	for _, op := range info.Ops {
		if op == "Dropout" || op == "Where" {
			t.Errorf("inference graph uses %s", op)
		}
	}
	if _, err := Inference(n, w[:1], meta); err == nil {
		t.Error("wrong number of weight tensors accepted")
	}
	if _, err := ReadModelInfo([]byte("not a model")); err == nil {
		t.Error("garbage accepted as a model")
	}
	// An empty file parses as an empty message, and so does a byte string of
	// unknown fields (field 15, varint 1): neither is a model.
	for name, b := range map[string][]byte{"the file is empty": nil, "it holds no graph": {15 << 3, 1}} {
		if _, err := ReadModelInfo(b); err == nil || err.Error() != "not an ONNX model: "+name {
			t.Errorf("%v: %v, want \"not an ONNX model: %s\"", b, err, name)
		}
	}
}

// Every architecture of a sample of the study's space compiles into the three
// graphs, whose inputs and outputs are the documented ones (see TrainGraph and
// Evaluation), written out here from the architecture's text: a weight and a
// bias per convolution and dense layer, named by the layer's position, the
// convolution's weight shaped [filters, input channels, k, k] with the
// channels followed through the layers, Adam's two slots per parameter, and
// as many weights in the exported model as genotype counts (runtime's tests
// run such samples through ONNX Runtime).
func TestCompileSampledArchitectures(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	space := genotype.Study
	in := genotype.Input{Height: 32, Width: 32, Channels: 1}
	for range 200 {
		a := sampleArch(r, space, in)
		classes := 2 + r.IntN(3)
		n, err := a.Build(in, classes)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		params, shapes := expectedParams(a, in.Channels, classes)
		tg, err := Training(n, TrainOptions{})
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		inputs, outputs := []string{"x", "y", "step", "lr"}, []string{"loss", "correct"}
		inputs = append(inputs, params...)
		outputs = slices.Grow(outputs, 3*len(params))
		for _, p := range params {
			inputs = append(inputs, p+"/m", p+"/v")
			outputs = append(outputs, p+"/new")
		}
		for _, p := range params {
			outputs = append(outputs, p+"/m/new", p+"/v/new")
		}
		for _, mk := range tg.Masks {
			inputs = append(inputs, mk.Name)
		}
		m := decode(t, tg.Model)
		if got := names(m.GetGraph().GetInput()); !slices.Equal(got, inputs) || !slices.Equal(tg.Inputs, inputs) {
			t.Fatalf("%s: training graph inputs %v (declared %v), want %v", a, got, tg.Inputs, inputs)
		}
		if got := names(m.GetGraph().GetOutput()); !slices.Equal(got, outputs) || !slices.Equal(tg.Outputs, outputs) {
			t.Fatalf("%s: training graph outputs %v (declared %v), want %v", a, got, tg.Outputs, outputs)
		}
		for _, v := range m.GetGraph().GetInput() {
			if want, ok := shapes[v.GetName()]; ok && !slices.Equal(dims(v), want) {
				t.Errorf("%s: %s shaped %v, want %v", a, v.GetName(), dims(v), want)
			}
		}
		ev, err := Evaluation(n)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		em := decode(t, ev.Model)
		if got := names(em.GetGraph().GetInput()); !slices.Equal(got, append([]string{"x", "y"}, params...)) {
			t.Fatalf("%s: evaluation graph inputs %v", a, got)
		}
		if got := names(em.GetGraph().GetOutput()); !slices.Equal(got, []string{"loss", "correct", "probabilities"}) {
			t.Fatalf("%s: evaluation graph outputs %v", a, got)
		}
		b, err := Inference(n, Init(Params(n), r), Metadata{Arch: a.String(), Input: in, Classes: []string{"a", "b"}})
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		if info, err := ReadModelInfo(b); err != nil || info.Weights != n.Params() {
			t.Fatalf("%s: %v, %d weights for %d parameters", a, err, info.Weights, n.Params())
		}
	}
}

// sampleArch walks space from in, taking random actions, with small widths
// to keep the test fast.
func sampleArch(r *rand.Rand, space genotype.Space, in genotype.Input) genotype.Arch {
	st := space.Start(in)
	var a genotype.Arch
	for !st.Done {
		acts := space.Actions(st)
		l := acts[r.IntN(len(acts))]
		if l.Kind == genotype.Conv {
			l.Filters = 2 + r.IntN(3)
		}
		if l.Kind == genotype.FC {
			l.Units = 4
		}
		a = append(a, l)
		st = space.Step(st, l)
	}
	return a
}

// expectedParams names a layer sequence's parameters in layer order and
// gives the shapes it can tell from the text alone: convolutions' weights
// and every bias.
func expectedParams(a genotype.Arch, channels, classes int) ([]string, map[string][]int64) {
	var params []string
	shapes := map[string][]int64{}
	logits := int64(classes)
	if classes == 2 {
		logits = 1
	}
	for i, l := range a {
		var prefix string
		var units int64
		switch l.Kind {
		case genotype.Conv:
			prefix, units = fmt.Sprintf("conv%d", i+1), int64(l.Filters)
			shapes[prefix+".weight"] = []int64{units, int64(channels), int64(l.Kernel), int64(l.Kernel)}
			channels = l.Filters
		case genotype.FC:
			prefix, units = fmt.Sprintf("fc%d", i+1), int64(l.Units)
		case genotype.Softmax, genotype.GAP: // both end in the dense classifier
			prefix, units = "classifier", logits
		default:
			continue
		}
		params = append(params, prefix+".weight", prefix+".bias")
		shapes[prefix+".bias"] = []int64{units}
	}
	return params, shapes
}

// dims is a value's shape (-1 for a symbolic dimension).
func dims(v *onnx.ValueInfoProto) []int64 {
	var out []int64
	for _, d := range v.GetType().GetTensorType().GetShape().GetDim() {
		if d.GetDimParam() != "" {
			out = append(out, -1)
			continue
		}
		out = append(out, d.GetDimValue())
	}
	return out
}

// Training and evaluation graphs declare the shapes of their convolutions'
// inputs and weights (a runtime picks kernels by them); with DirectConv the
// gradients are convolutions too, so more are declared. Exported models
// declare none.
func TestConvShapesDeclared(t *testing.T) {
	n := build(t, "C(8,3,1) - C(4,5,1) - GAP()", genotype.Input{Height: 9, Width: 9, Channels: 2}, 2)
	declared := func(b []byte) map[string][]int64 {
		m := &onnx.ModelProto{}
		if err := proto.Unmarshal(b, m); err != nil {
			t.Fatal(err)
		}
		out := map[string][]int64{}
		for _, v := range m.GetGraph().GetValueInfo() {
			var dims []int64
			for _, d := range v.GetType().GetTensorType().GetShape().GetDim() {
				if d.GetDimParam() != "" {
					dims = append(dims, -1)
				} else {
					dims = append(dims, d.GetDimValue())
				}
			}
			out[v.GetName()] = dims
		}
		return out
	}
	plain, err := Training(n, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := Training(n, TrainOptions{Formulas: Formulas{DirectConv: true}})
	if err != nil {
		t.Fatal(err)
	}
	// Plain: the second convolution's input [N, 8, 7, 7] (the first reads the
	// images, a graph input, declared with it).
	dp, dd := declared(plain.Model), declared(direct.Model)
	has := func(m map[string][]int64, dims ...int64) bool {
		for _, d := range m {
			if slices.Equal(d, dims) {
				return true
			}
		}
		return false
	}
	if !has(dp, -1, 8, 7, 7) {
		t.Errorf("plain training graph: the second convolution's input is not declared: %v", dp)
	}
	// DirectConv: the weight gradients as convolutions, batch as channels:
	// the second layer's output gradient [4, N, 7, 7] convolved with its
	// input [8, N, 7, 7] (fewer filters than channels: swapped).
	if !has(dd, 4, -1, 7, 7) || !has(dd, 8, -1, 7, 7) || len(dd) <= len(dp) {
		t.Errorf("DirectConv training graph declares %v (plain: %d values)", dd, len(dp))
	}
	ev, err := Evaluation(n)
	if err != nil {
		t.Fatal(err)
	}
	if !has(declared(ev.Model), -1, 8, 7, 7) {
		t.Error("evaluation graph: the second convolution's input is not declared")
	}
	b, err := Inference(n, Init(Params(n), rand.New(rand.NewPCG(1, 2))), Metadata{Arch: "C(8,3,1) - C(4,5,1) - GAP()", Input: n.Input, Classes: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if d := declared(b); len(d) != 0 {
		t.Errorf("exported model declares %v", d)
	}
}

// A model whose weights hold a NaN or an infinity (a damaged copy, a
// diverged training) is refused when read, naming the tensor: it would
// answer NaN, taken for class 0, for every image. Weights stored as floats
// are checked as raw bytes are.
func TestReadModelInfoNonFinite(t *testing.T) {
	n := build(t, "C(4,3,1) - GAP()", genotype.Input{Height: 8, Width: 8, Channels: 1}, 2)
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		w := Init(Params(n), rand.New(rand.NewPCG(1, 1)))
		w[0][3] = bad
		b, err := Inference(n, w, Metadata{Arch: n.Arch.String(), Input: n.Input, Classes: []string{"a", "b"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ReadModelInfo(b); err == nil || !strings.Contains(err.Error(), "a value of the weights ") || !strings.Contains(err.Error(), " is NaN or infinite: the file is damaged") {
			t.Errorf("weight %v: %v", bad, err)
		}
	}
	floats := &onnx.TensorProto{DataType: int32(onnx.TensorProto_FLOAT), Dims: []int64{3}, FloatData: []float32{1, float32(math.NaN()), float32(math.Inf(1))}}
	raw := &onnx.TensorProto{DataType: int32(onnx.TensorProto_FLOAT), Dims: []int64{3}, RawData: []byte{0, 0, 0x80, 0x3f, 0, 0, 0xc0, 0x7f, 0, 0, 0x80, 0xff}} // 1, NaN, -Inf
	if a, b := nonFinite(floats), nonFinite(raw); a != 2 || b != 2 {
		t.Errorf("non-finite values: %d as floats (want 2), %d as raw bytes (want 2)", a, b)
	}
	// An int8 tensor (a quantized model's weights) whose bytes would read
	// as a NaN and a -Inf were they floats holds neither.
	q := &onnx.TensorProto{DataType: int32(onnx.TensorProto_INT8), Dims: []int64{8}, RawData: []byte{0, 0, 0xc0, 0x7f, 0, 0, 0x80, 0xff}}
	if got := nonFinite(q); got != 0 {
		t.Errorf("int8 tensor: %d non-finite values, want 0", got)
	}
}
