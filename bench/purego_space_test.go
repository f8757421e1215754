package bench_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
)

// Every export of a layer sequence runs in onnx-go, as it is or in the form
// export --pure-go writes, and agrees with ONNX Runtime within
// bench.Tolerance: architectures drawn at random from the CPU search's
// space (search.CPUSpace, its filter counts and MAC bound) at odd, partly
// non-square inputs of 1 or 3 channels, with 2 or 3 classes, random weights
// and random images. Odd sizes give 'same' poolings pads at one end only
// (and non-square ones pads that differ between height and width), which
// onnx-go miscomputes as they are: exactly those models are compared in
// the --pure-go form; the test checks that it drew such poolings.
func TestPureGoAgreesOnCPUSpace(t *testing.T) {
	if err := runtime.Init(""); err != nil {
		t.Fatal(err)
	}
	sizes := []int{15, 17, 21, 25, 29, 31, 33, 35}
	r := rand.New(rand.NewPCG(17, 1))
	dir := t.TempDir()
	unequal := 0
	const archs = 24
	for i := range archs {
		in := genotype.Input{Height: sizes[r.IntN(len(sizes))], Width: sizes[r.IntN(len(sizes))], Channels: 1 + 2*r.IntN(2)}
		agent, err := controller.NewMetaQNN(search.CPUSpace, in, controller.QConfig{}, controller.ScheduleCPU, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		arch, _ := agent.Sample(1, r)
		classes := []string{"a", "b", "c"}[:2+r.IntN(2)]
		net, err := arch.Build(in, len(classes))
		if err != nil {
			t.Fatalf("%s at %s: %v", arch, in, err)
		}
		uneven := false
		for _, nd := range net.Nodes {
			if p := nd.Pads; (nd.Op == genotype.OpMaxPool || nd.Op == genotype.OpConv) && (p.Top != p.Bottom || p.Left != p.Right || p.Top != p.Left) {
				uneven = true
			}
		}
		if uneven {
			unequal++
		}
		b, err := onnxgen.Inference(net, onnxgen.Init(onnxgen.Params(net), r), onnxgen.Metadata{Arch: arch.String(), Input: in, Classes: classes})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("m%d.onnx", i))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := bench.Measure(context.Background(), path, bench.Options{Runs: 1, Warmup: 1, Batch: 1, BatchRuns: 1, PureGoRuns: 1, Compare: 4,
			Session: runtime.SessionOptions{IntraOpThreads: 1}})
		if err != nil {
			t.Fatalf("%s at %s: %v", arch, in, err)
		}
		if p := res.PureGo; p.MaxAbsDiff == nil || !p.Agree || (p.Rewritten > 0) != uneven {
			t.Errorf("%s at %s, %d classes: pure Go %+v (unequal pads: %v)", arch, in, len(classes), p, uneven)
		} else {
			t.Logf("%s at %s: %.1e", arch, in, *p.MaxAbsDiff)
		}
	}
	if unequal < archs/4 {
		t.Errorf("only %d of %d architectures have unequal pads; draw more", unequal, archs)
	}
	t.Logf("%d of %d architectures have unequal pads", unequal, archs)
}
