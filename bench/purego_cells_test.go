package bench_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
)

// randomCellNet returns a cell network whose eight operations are ops[0:8]
// (names of genotype's cell operations), with random inputs and combines.
func randomCellNet(r *rand.Rand, ops []string) string {
	cell := func(ops []string) string {
		combine := []string{"add", "concat"}
		in := func(block int) string {
			if block == 1 && r.IntN(2) == 0 {
				return "b0"
			}
			return fmt.Sprintf("h%d", r.IntN(2))
		}
		return fmt.Sprintf("b0 = %s(%s(%s), %s(%s)); b1 = %s(%s(%s), %s(%s))", combine[r.IntN(2)], ops[0], in(0), ops[1], in(0),
			combine[r.IntN(2)], ops[2], in(1), ops[3], in(1))
	}
	return fmt.Sprintf("net(stem=4, filters=4, normal=1, reductions=1, style=nasnet) normal: %s | reduction: %s", cell(ops[:4]), cell(ops[4:8]))
}

// onnx-go runs every cell network once it is rewritten by onnxgen.PureGo,
// and agrees with ONNX Runtime within bench.Tolerance; the rewrite computes
// the export's function (ONNX Runtime's outputs of both within 1e-5). The
// networks use every cell operation (average pooling, depthwise-separable,
// 1 x k and dilated convolutions among them) at odd, partly non-square
// inputs of 1 or 3 channels, where 'same' windows of stride 2 pad one side
// more, with random weights on random images.
func TestPureGoCellNetworks(t *testing.T) {
	if err := runtime.Init(""); err != nil {
		t.Fatal(err)
	}
	names := genotype.CellOpNames()
	r := rand.New(rand.NewPCG(23, 1))
	sizes := []int{15, 17, 21, 23, 27}
	dir := t.TempDir()
	const nets = 8
	for i := range nets {
		ops := make([]string, 8)
		for j := range ops {
			ops[j] = names[(i*8+j)%len(names)] // every operation, several times
		}
		arch := randomCellNet(r, ops)
		in := genotype.Input{Height: sizes[r.IntN(len(sizes))], Width: sizes[r.IntN(len(sizes))], Channels: 1 + 2*r.IntN(2)}
		g, err := genotype.ParseGenotype(arch)
		if err != nil {
			t.Fatal(err)
		}
		net, err := g.Build(in, 2)
		if err != nil {
			t.Fatalf("%s at %s: %v", arch, in, err)
		}
		b, err := onnxgen.Inference(net, onnxgen.Init(onnxgen.Params(net), r), onnxgen.Metadata{Arch: arch, Input: in, Classes: []string{"a", "b"}})
		if err != nil {
			t.Fatal(err)
		}
		pg, n, err := onnxgen.PureGo(b)
		if err != nil {
			t.Fatalf("%s at %s: %v", arch, in, err)
		}
		paths := [2]string{filepath.Join(dir, fmt.Sprintf("m%d.onnx", i)), filepath.Join(dir, fmt.Sprintf("m%d-purego.onnx", i))}
		for j, m := range [][]byte{b, pg} {
			if err := os.WriteFile(paths[j], m, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		res, err := bench.Measure(context.Background(), paths[1], bench.Options{Runs: 1, Warmup: 1, Batch: 1, BatchRuns: 1, PureGoRuns: 1, Compare: 4,
			Session: runtime.SessionOptions{IntraOpThreads: 1}})
		if err != nil {
			t.Fatalf("%s at %s: %v", arch, in, err)
		}
		if p := res.PureGo; p.MaxAbsDiff == nil || !p.Agree {
			t.Errorf("%s at %s: pure Go %+v", arch, in, p)
			continue
		}
		if d := ortDiff(t, paths, in); d > 1e-5 {
			t.Errorf("%s at %s: ONNX Runtime's outputs of the export and its rewrite differ by %g", arch, in, d)
		}
		t.Logf("%s at %s: %d operators rewritten, onnx-go within %.1e", arch, in, n, *res.PureGo.MaxAbsDiff)
	}
}

// ortDiff is the largest difference of ONNX Runtime's outputs of two
// models on 8 random images.
func ortDiff(t *testing.T, paths [2]string, in genotype.Input) float64 {
	t.Helper()
	r := rand.New(rand.NewPCG(4, 4))
	px := make([]float32, 8*in.Channels*in.Height*in.Width)
	for i := range px {
		px[i] = r.Float32()
	}
	var outs [2][]float32
	for i, p := range paths {
		m, err := runtime.LoadModel(p, runtime.SessionOptions{IntraOpThreads: 1})
		if err != nil {
			t.Fatal(err)
		}
		outs[i], err = m.Predict(context.Background(), px, 8)
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	d := 0.0
	for i := range outs[0] {
		d = max(d, math.Abs(float64(outs[0][i]-outs[1][i])))
	}
	return d
}
