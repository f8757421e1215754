package quantize

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// exportBiased is export with every bias drawn in [-0.5, 0.5) instead of
// onnxgen.Init's zeros, so that the int32 biases have something to round.
func exportBiased(t *testing.T, arch string, in genotype.Input) ([]byte, *genotype.Net, [][]float32) {
	t.Helper()
	return exportEdited(t, arch, in, func(params []onnxgen.Param, w [][]float32, r *rand.Rand) {
		for i, p := range params {
			if p.Bias && !p.State {
				for j := range w[i] {
					w[i][j] = r.Float32() - 0.5
				}
			}
		}
	})
}

// The int32 biases are the float biases rounded to the nearest multiple of
// their scale (input scale x weight scale): dequantized, each lies within
// half a step of its float value (checkQuantizedWeights). The export's own
// biases are zero, which any rounding keeps exact, hence biases drawn here.
func TestBiasesRoundToNearest(t *testing.T) {
	in := genotype.Input{Height: 12, Width: 12, Channels: 1}
	b, net, weights := exportBiased(t, "C(4,3,1) - C(8,3,1) - FC(16) - SM()", in)
	f := &fakeRanges{}
	q, err := Model(b, f.run, Options{Method: MinMax})
	if err != nil {
		t.Fatal(err)
	}
	g := newGraph(decode(t, q).GetGraph())
	params := onnxgen.Params(net)
	wi, checked := 0, 0
	for _, n := range g.g.GetNode() {
		if op := n.GetOpType(); op == "Conv" || op == "Gemm" {
			nonzero := 0
			for _, v := range weights[wi+1] {
				if v != 0 {
					nonzero++
				}
			}
			if nonzero == 0 {
				t.Fatalf("%s %d: the test's biases are all zero", op, wi/2)
			}
			checkQuantizedWeights(t, g, n, weights[wi], weights[wi+1], params[wi].Shape)
			wi += 2
			checked++
		}
	}
	if checked != 4 {
		t.Errorf("%d quantized operators checked, want 4 (2 Conv, 2 Gemm)", checked)
	}
}

// A MaxPool between quantized operators keeps its input's range: it reads
// a DequantizeLinear and its output gets a pair with the same scale and
// zero point initializers as its input's, so that ONNX Runtime drops both
// pairs and runs it in int8 (the plan's pass-through operators).
func TestMaxPoolSharesItsInputsPair(t *testing.T) {
	b, _, _ := export(t, "C(4,3,1) - P(2,2) - C(8,3,1) - P(2,2) - FC(16) - SM()", genotype.Input{Height: 16, Width: 16, Channels: 1})
	f := &fakeRanges{}
	q, err := Model(b, f.run, Options{Method: MinMax})
	if err != nil {
		t.Fatal(err)
	}
	g := newGraph(decode(t, q).GetGraph())
	pools := 0
	for _, n := range g.g.GetNode() {
		if n.GetOpType() != "MaxPool" {
			continue
		}
		pools++
		d := g.producer[n.GetInput()[0]]
		if d == nil || d.GetOpType() != "DequantizeLinear" {
			t.Fatalf("MaxPool reads %v, want a DequantizeLinear", d)
		}
		cs := g.consumers[n.GetOutput()[0]]
		if len(cs) != 1 || cs[0].GetOpType() != "QuantizeLinear" {
			t.Fatalf("MaxPool output goes to %v, want one QuantizeLinear", cs)
		}
		in, out := d.GetInput(), cs[0].GetInput()
		if in[1] != out[1] || in[2] != out[2] {
			t.Errorf("MaxPool: input pair scale/zero %s/%s, output pair %s/%s; want the same", in[1], in[2], out[1], out[2])
		}
	}
	if pools != 2 {
		t.Errorf("%d MaxPool, want 2", pools)
	}
}

// A one-output classifier of 4096 inputs (a valid 3x3 convolution of a
// 66x66 image: 64x64) is exported as a multiplication
// (onnxgen's narrow dense layer), whose weight no quantized operator reads:
// it is stored in int8 behind a DequantizeLinear with one scale,
// max |w| / 127 (recomputed here from the float weights), each value
// within half a step of its float one, and counted in WeightOnly.
func TestWeightOnlyInt8(t *testing.T) {
	in := genotype.Input{Height: 66, Width: 66, Channels: 1}
	b, net, weights := export(t, "C(1,3,1) - SM()", in)
	params := onnxgen.Params(net)
	dense := -1
	for i, p := range params {
		if p.Classifier && p.Size() == 64*64 {
			dense = i
		}
	}
	if dense < 0 {
		t.Fatalf("test network: no dense weight of 4096 values in %v", params)
	}
	fw := weights[dense]
	var peak float64
	for _, v := range fw {
		peak = max(peak, math.Abs(float64(v)))
	}
	wantScale := float32(peak / 127)
	f := &fakeRanges{}
	q, err := Model(b, f.run, Options{Method: MinMax})
	if err != nil {
		t.Fatal(err)
	}
	info, err := onnxgen.ReadModelInfo(q)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := ReadSettings(info); err != nil || s == nil || s.WeightOnly != 1 {
		t.Errorf("settings %+v (%v), want WeightOnly 1", s, err)
	}
	g := newGraph(decode(t, q).GetGraph())
	found := 0
	for _, n := range g.g.GetNode() {
		if n.GetOpType() != "DequantizeLinear" {
			continue
		}
		wq := g.inits[n.GetInput()[0]]
		if wq == nil || len(wq.GetRawData()) != len(fw) {
			continue
		}
		found++
		s, _ := floats(g.inits[n.GetInput()[1]])
		if wq.GetDataType() != int32(onnx.TensorProto_INT8) || len(s) != 1 || s[0] != wantScale {
			t.Fatalf("weight-only tensor: type %v, scales %v; want int8 with the one scale %g", wq.GetDataType(), s, wantScale)
		}
		for i, v := range wq.GetRawData() {
			got := float64(int8(v)) * float64(s[0])
			if math.Abs(got-float64(fw[i])) > float64(s[0])/2+1e-9 {
				t.Fatalf("weight %d: dequantized %g, float %g (step %g)", i, got, fw[i], s[0])
			}
		}
	}
	if found != 1 {
		t.Errorf("%d int8 tensors of %d values, want the dense weight's", found, len(fw))
	}
}

// Percentile's clipped ends are the edges of the bins that hold the
// (tail+1)-th largest and smallest values, tail = floor(N x (100-p)/100).
// Worked by hand: the integers -1024..1024 (N = 2049) span 2048, so the
// bins are 1 wide, [-1024+k, -1023+k) for bin k (1023 and 1024 share the
// last). At p = 99, tail = floor(20.49) = 20: the 21st largest value is
// 1004, in [1004, 1005), so hi = 1005; the 21st smallest is -1004, in
// [-1004, -1003), so lo = -1004.
func TestPercentileBinEdges(t *testing.T) {
	var values []float32
	for v := -1024; v <= 1024; v++ {
		values = append(values, float32(v))
	}
	c := newCollector(2)
	c.observe(0, values)
	// Tensor 1 spans [-0.1, 0.3], whose difference does not add back
	// exactly in float64: -0.1 + (0.3 - -0.1) is 0.30000000000000004.
	c.lo[1], c.hi[1], c.seen[1] = -0.1, 0.3, true
	c.histograms()
	c.observe(0, values)
	if lo, hi := c.percentile(0, 99); lo != -1004 || hi != 1005 {
		t.Errorf("percentile 99 of -1024..1024: [%g, %g], want [-1004, 1005]", lo, hi)
	}
	// p = 100 keeps everything: tail 0, the full range, and never beyond
	// the values seen.
	c.hist[1][0], c.hist[1][bins-1] = 1, 1
	if lo, hi := c.percentile(1, 100); lo != -0.1 || hi != 0.3 {
		t.Errorf("percentile 100 of [-0.1, 0.3]: [%.17g, %.17g], want exactly [-0.1, 0.3]", lo, hi)
	}
}

// The clipping reaches into the end bins too: 99 zeros and one outlier at
// the 99th percentile keep only the zeros' bin. With 100 in the top bin
// and the zeros in bin 0, the range is [0, 100/bins]; mirrored, with -100,
// it is [-100/bins, 0]. (The scans used to stop one bin short of each end,
// which left the outlier's whole range in place.)
func TestPercentileClipsIntoEndBins(t *testing.T) {
	for _, outlier := range []float32{100, -100} {
		values := append(make([]float32, 99), outlier)
		c := newCollector(1)
		c.observe(0, values)
		c.histograms()
		c.observe(0, values)
		lo, hi := c.percentile(0, 99)
		wantLo, wantHi := 0.0, 100.0/bins
		if outlier < 0 {
			wantLo, wantHi = -100.0/bins, 0
		}
		if math.Abs(lo-wantLo) > 1e-9 || math.Abs(hi-wantHi) > 1e-9 {
			t.Errorf("99 zeros and %g at p99: [%g, %g], want [%g, %g]", outlier, lo, hi, wantLo, wantHi)
		}
	}
}
