package runtime

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// bnNet is a nasnet-style cell network whose stem is a 3x3 convolution
// (node 1, no bias) and a batch normalisation (node 2) of the image.
const bnNet = "net(stem=3, filters=2, normal=1, reductions=0, style=nasnet) normal: b0 = add(conv_3x3(h1), identity(h0)) | " +
	"reduction: b0 = add(conv_3x3(h1), identity(h0))"

func buildNet(t *testing.T, text string, in genotype.Input) *genotype.Net {
	t.Helper()
	g, err := genotype.ParseGenotype(text)
	if err != nil {
		t.Fatal(err)
	}
	net, err := g.Build(in, 2)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// One training step updates a batch normalisation's running statistics as
// a float64 computation of the same step does: mean and unbiased variance
// of its input (the stem convolution of the images, recomputed in float64)
// over the batch and positions, blended with momentum 0.1 into the old
// values. Tolerance 1e-5 relative (float32 sums).
func TestBatchNormRunningStatistics(t *testing.T) {
	initRuntime(t)
	in := genotype.Input{Height: 7, Width: 6, Channels: 1}
	net := buildNet(t, bnNet, in)
	tg, err := onnxgen.Training(net, onnxgen.TrainOptions{Optimizer: onnxgen.SGD{Momentum: 0.9}})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := NewSession(tg.Model, tg.Inputs, []string{"n2.mean/new", "n2.var/new"}, SessionOptions{IntraOpThreads: 1, Optimization: TrainOptimization})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	r := rand.New(rand.NewPCG(5, 5))
	const batch = 4
	params := onnxgen.Init(tg.Params, r)
	old := [2][]float32{{0.3, -0.2, 0.1}, {0.5, 1.5, 2}} // running mean, variance
	ts := &testTensors{t: t}
	defer ts.close()
	x := make([]float32, batch*in.Height*in.Width)
	for i := range x {
		x[i] = r.Float32()
	}
	inputs := []Value{ts.make([]int64{batch, 1, int64(in.Height), int64(in.Width)}, x), ts.make([]int64{batch, 1}, []float32{0, 1, 0, 1}),
		ts.make([]int64{1}, []float32{1}), ts.make([]int64{1}, []float32{0.01})}
	for i, p := range tg.Params {
		switch p.Name {
		case "n2.mean":
			params[i] = old[0]
		case "n2.var":
			params[i] = old[1]
		}
		inputs = append(inputs, ts.make(p.Shape, params[i]))
	}
	for _, p := range tg.Params {
		for range tg.Slots {
			inputs = append(inputs, ts.make(p.Shape, make([]float32, p.Size())))
		}
	}
	got := [2]*Tensor[float32]{ts.make([]int64{3}, make([]float32, 3)), ts.make([]int64{3}, make([]float32, 3))}
	if err := sess.Run(inputs, []Value{got[0], got[1]}); err != nil {
		t.Fatal(err)
	}
	w := params[0] // n1.weight [3, 1, 3, 3]
	for f := range 3 {
		var vals []float64
		for n := range batch {
			for i := range in.Height {
				for j := range in.Width {
					s := 0.0
					for a := range 3 {
						for b := range 3 {
							y, xx := i+a-1, j+b-1 // 'same': one cell of padding on each side
							if y >= 0 && y < in.Height && xx >= 0 && xx < in.Width {
								s += float64(w[f*9+a*3+b]) * float64(x[(n*in.Height+y)*in.Width+xx])
							}
						}
					}
					vals = append(vals, s)
				}
			}
		}
		mean, v := 0.0, 0.0
		for _, s := range vals {
			mean += s / float64(len(vals))
		}
		for _, s := range vals {
			v += (s - mean) * (s - mean) / float64(len(vals)-1)
		}
		want := [2]float64{0.9*float64(old[0][f]) + 0.1*mean, 0.9*float64(old[1][f]) + 0.1*v}
		for k, name := range []string{"mean", "variance"} {
			if g := float64(got[k].Data()[f]); math.Abs(g-want[k]) > 1e-5*math.Max(1, math.Abs(want[k])) {
				t.Errorf("channel %d running %s: %.7g, float64 reference %.7g", f, name, g, want[k])
			}
		}
	}
}

// An exported model with its batch normalisations folded into the
// convolutions predicts what the unfolded one (ONNX Runtime's
// BatchNormalization with the running statistics) does, with random scales,
// shifts and running statistics, within 1e-5.
func TestBatchNormFolding(t *testing.T) {
	initRuntime(t)
	in := genotype.Input{Height: 9, Width: 9, Channels: 1}
	net := buildNet(t, "net(stem=4, filters=3, normal=1, reductions=1, style=nasnet) normal: b0 = add(sep_conv_3x3(h1), conv_1x3_3x1(h0)) | "+
		"reduction: b0 = concat(dil_conv_3x3(h0), max_pool_3x3(h1))", in)
	params := onnxgen.Params(net)
	r := rand.New(rand.NewPCG(8, 8))
	w := onnxgen.Init(params, r)
	for i, p := range params {
		if p.Ones || p.Bias {
			for j := range w[i] {
				w[i][j] = float32(0.5 + r.Float64()) // scales, variances in [0.5, 1.5)
				if p.Bias {
					w[i][j] -= 1 // shifts, means in [-0.5, 0.5)
				}
			}
		}
	}
	predict := func(fold bool) []float32 {
		compile := onnxgen.InferenceUnfolded
		if fold {
			compile = onnxgen.Inference
		}
		b, err := compile(net, w, onnxgen.Metadata{Arch: net.Genotype.String(), Classes: []string{"a", "b"}, Input: in})
		if err != nil {
			t.Fatal(err)
		}
		info, err := onnxgen.ReadModelInfo(b)
		if err != nil {
			t.Fatal(err)
		}
		if hasBN := slices.Contains(info.Ops, "BatchNormalization"); hasBN == fold {
			t.Fatalf("folded %v: operators %v", fold, info.Ops)
		}
		// Graph optimisations off: ONNX Runtime would otherwise fold the
		// unfolded model's batch normalisations itself.
		m, err := NewModel(b, SessionOptions{IntraOpThreads: 1, Optimization: OptDisabled})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		x := make([]float32, 6*in.Height*in.Width)
		xr := rand.New(rand.NewPCG(1, 1))
		for i := range x {
			x[i] = xr.Float32()
		}
		p, err := m.Predict(context.Background(), x, 6)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	folded, unfolded := predict(true), predict(false)
	worst := 0.0
	for i := range folded {
		worst = math.Max(worst, math.Abs(float64(folded[i]-unfolded[i])))
	}
	if worst > 1e-5 {
		t.Errorf("folded and unfolded models differ by %.3g", worst)
	}
	t.Logf("largest difference of the probabilities: %.3g", worst)
}
