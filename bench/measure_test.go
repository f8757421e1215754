package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := runtime.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "leak:", err)
		code = 1
	}
	os.Exit(code)
}

// export writes a model of arch with random weights and returns its path.
func export(t *testing.T, arch string, in genotype.Input, meta map[onnxgen.MetaKey]string) (string, *genotype.Net) {
	t.Helper()
	g, err := genotype.ParseGenotype(arch)
	if err != nil {
		t.Fatal(err)
	}
	net, err := g.Build(in, 2)
	if err != nil {
		t.Fatal(err)
	}
	w := onnxgen.Init(onnxgen.Params(net), rand.New(rand.NewPCG(4, 4)))
	b, err := onnxgen.Inference(net, w, onnxgen.Metadata{Arch: arch, Input: in, Classes: []string{"a", "b"}, Extra: meta})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, net
}

func TestMeasure(t *testing.T) {
	if err := runtime.Init(""); err != nil {
		t.Fatal(err)
	}
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	// 16 -> 'valid' 3x3 -> 14 -> P(2,2): 7, no padding: onnx-go agrees.
	path, net := export(t, "C(4,3,1) - P(2,2) - C(8,3,1) - GAP()", in, map[onnxgen.MetaKey]string{onnxgen.MetaTestAccuracy: "0.875"})
	// 37 timed runs in the 10 rounds: 4 in the first 7, 3 in the others.
	r, err := Measure(context.Background(), path, Options{Runs: 37, Warmup: 3, Batch: 8, BatchRuns: 2, Session: runtime.SessionOptions{IntraOpThreads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Params != net.Params() || r.MACs != net.MACs() || r.PeakActivationBytes != net.PeakActivationBytes() || r.FileBytes == 0 {
		t.Errorf("counts %+v", r)
	}
	if r.LatencyMs.Runs != 37 || !(r.LatencyMs.P50 > 0) || r.LatencyMs.P50 > r.LatencyMs.P95 || r.LatencyMs.P95 > r.LatencyMs.P99 || !(r.Throughput > 0) {
		t.Errorf("timing %+v, throughput %v", r.LatencyMs, r.Throughput)
	}
	if r.Accuracy == nil || *r.Accuracy != 0.875 || r.AccuracySource != "metadata: test accuracy" {
		t.Errorf("accuracy %v from %q", r.Accuracy, r.AccuracySource)
	}
	if r.PureGo.MaxAbsDiff == nil || !r.PureGo.Agree || r.PureGo.Images != 16 {
		t.Errorf("pure Go %+v", r.PureGo)
	}
	// Without a test accuracy, the validation accuracy, named balanced
	// when the model was trained under that metric.
	for _, c := range []struct{ training, want string }{{`{"metric":"balanced_accuracy"}`, "metadata: validation balanced accuracy"}, {`{}`, "metadata: validation accuracy"}} {
		path, _ := export(t, "C(4,3,1) - P(2,2) - C(8,3,1) - GAP()", in, map[onnxgen.MetaKey]string{onnxgen.MetaValAccuracy: "0.5", onnxgen.MetaTraining: c.training})
		r, err := Measure(context.Background(), path, Options{Runs: 2, Batch: 1, Session: runtime.SessionOptions{IntraOpThreads: 1}})
		if err != nil || r.Accuracy == nil || *r.Accuracy != 0.5 || r.AccuracySource != c.want {
			t.Errorf("training %s: accuracy %v from %q (%v), want 0.5 from %q", c.training, r.Accuracy, r.AccuracySource, err, c.want)
		}
	}

	if l := r.PureGo.LatencyMs; l == nil || l.Runs != 50 || !(l.P50 > 0) || l.P50 > l.P95 {
		t.Errorf("pure-Go latency %+v", l)
	}
}

// The batch-1 latency goes through the models in turn, round after round:
// each round times every model, with the warm-up runs in the first round
// and a few in the later ones, and a model's samples are those of all its
// rounds.
func TestInterleavedLatency(t *testing.T) {
	type call struct{ model, runs, warmup int }
	var calls []call
	got, err := interleavedLatency(2, Options{Runs: 7, Warmup: 5, Rounds: 3}.withDefaults(), func(i, runs, warmup int) ([]float64, error) {
		calls = append(calls, call{i, runs, warmup})
		s := make([]float64, runs)
		for k := range s {
			s[k] = float64(10*(i+1) + len(calls)) // a model's level, plus when it ran
		}
		return s, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []call{{0, 3, 5}, {1, 3, 5}, {0, 2, roundWarmup}, {1, 2, roundWarmup}, {0, 2, roundWarmup}, {1, 2, roundWarmup}}
	if !slices.Equal(calls, want) {
		t.Errorf("calls %v, want %v", calls, want)
	}
	// Model 0: 3 runs at 11, 2 at 13, 2 at 15; model 1: 3 at 22, 2 at 24, 2 at 26.
	if got[0].Runs != 7 || got[0].Min != 11 || got[0].Max != 15 || got[0].P50 != 13 ||
		got[1].Runs != 7 || got[1].Min != 22 || got[1].Max != 26 || got[1].P50 != 24 {
		t.Errorf("latencies %+v", got)
	}
	// At most one round per timed run.
	calls = nil
	if _, err := interleavedLatency(2, Options{Runs: 2}.withDefaults(), func(i, runs, warmup int) ([]float64, error) {
		calls = append(calls, call{i, runs, warmup})
		return make([]float64, runs), nil
	}); err != nil || len(calls) != 4 || calls[3] != (call{1, 1, roundWarmup}) {
		t.Errorf("2 runs: calls %v, %v", calls, err)
	}
}

// 17 -> 'valid' 3x3 -> 15 -> P(2,2) 'same' pads one cell at the end only
// (pads [0, 0, 1, 1]). The export keeps them on its MaxPool, where onnx-go
// computes something else: the gap is named, and the comparison is of the
// form export --pure-go writes (the padding written out), which agrees.
func TestMeasureUnequalPads(t *testing.T) {
	if err := runtime.Init(""); err != nil {
		t.Fatal(err)
	}
	in17 := genotype.Input{Height: 17, Width: 17, Channels: 1}
	path, net := export(t, "C(4,3,1) - P(2,2) - SM()", in17, nil)
	pool := net.Nodes[slices.IndexFunc(net.Nodes, func(nd genotype.Node) bool { return nd.Op == genotype.OpMaxPool })]
	if p := pool.Pads; p != (genotype.Pads{Bottom: 1, Right: 1}) {
		t.Fatalf("P(2,2) at 15x15 has pads %+v, want one cell at the end", p)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if gaps, err := pureGoGaps(b); err != nil || !slices.Equal(gaps, []string{unequalMaxPoolPads}) {
		t.Errorf("the export's MaxPool: gaps %q (%v), want its unequal pads", gaps, err)
	}
	r, err := Measure(context.Background(), path, Options{Runs: 5, Warmup: 1, Batch: 4, BatchRuns: 1, PureGoRuns: 3, Session: runtime.SessionOptions{IntraOpThreads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if r.PureGo.MaxAbsDiff == nil || !r.PureGo.Agree || r.PureGo.Rewritten != 1 || r.PureGo.UnsupportedOp != "" || r.PureGo.LatencyMs == nil {
		t.Errorf("the --pure-go form: pure Go %+v, want agreement with 1 operator rewritten, timed", r.PureGo)
	}

	// onnx-go really does compute something else on the pads as they are.
	m, err := runtime.NewModel(b, runtime.SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	px := make([]float32, 2*17*17)
	for i := range px {
		px[i] = float32(i%17) / 17
	}
	want, err := m.Predict(context.Background(), px, 2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := runPureGo(b, in17, px, 2)
	if err != nil {
		t.Fatalf("onnx-go failed on unequal pads (%v); it used to run them and differ from ONNX Runtime (by 0.018 on these images): see what changed in onnx-go", err)
	}
	d := 0.0
	for i := range min(len(got), len(want)) {
		d = max(d, math.Abs(float64(got[i]-want[i])))
	}
	if len(got) == len(want) && d <= Tolerance {
		t.Errorf("onnx-go agrees (%g) on unequal pads: the padding written out is no longer needed", d)
	}
	t.Logf("unequal pads: onnx-go differs from ONNX Runtime by up to %.3g (%d and %d values)", d, len(got), len(want))
}

// Cell networks: one whose operations onnx-go has (3x3 and 1x1
// convolutions with symmetric pads, additions, batch normalisations folded
// into the convolutions) agrees with ONNX Runtime; one with a depthwise
// convolution is compared in the form export --pure-go writes (onnx-go
// indeed fails on the model itself).
func TestMeasureCellNetworks(t *testing.T) {
	if err := runtime.Init(""); err != nil {
		t.Fatal(err)
	}
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	opts := Options{Runs: 5, Warmup: 1, Batch: 4, BatchRuns: 1, Session: runtime.SessionOptions{IntraOpThreads: 1}}
	plain := "net(stem=4, filters=4, normal=1, reductions=0, style=nasnet) normal: b0 = add(conv_3x3(h1), identity(h0)); b1 = add(conv_1x1(b0), conv_3x3(h0)) | " +
		"reduction: b0 = add(conv_3x3(h1), identity(h0)); b1 = add(conv_3x3(b0), identity(h1))"
	path, _ := export(t, plain, in, nil)
	r, err := Measure(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if r.PureGo.MaxAbsDiff == nil || !r.PureGo.Agree {
		t.Errorf("plain cell network: pure Go %+v", r.PureGo)
	} else {
		t.Logf("plain cell network: onnx-go and ONNX Runtime differ by up to %.3g", *r.PureGo.MaxAbsDiff)
	}
	sep := strings.Replace(plain, "conv_1x1(b0)", "sep_conv_3x3(b0)", 1)
	path, _ = export(t, sep, in, nil)
	if r, err = Measure(context.Background(), path, opts); err != nil {
		t.Fatal(err)
	}
	if r.PureGo.MaxAbsDiff == nil || !r.PureGo.Agree || r.PureGo.Rewritten < 1 {
		t.Errorf("depthwise convolution: pure Go %+v, want the --pure-go form's agreement", r.PureGo)
	}
	b, _ := os.ReadFile(path)
	if gaps, err := pureGoGaps(b); err != nil || !slices.Contains(gaps, groupedConv) {
		t.Errorf("depthwise convolution: gaps %q (%v)", gaps, err)
	}
	if _, err := runPureGo(b, in, make([]float32, 2*16*16), 2); err == nil {
		t.Error("onnx-go ran a depthwise convolution: check whether it now honours groups, and drop groupedConv if so")
	}
}

// Throughput counts the images of a batch: batches of 8 in 4 ms are 2,000
// images a second, batches of 1 in 0.5 ms 2,000 too.
func TestImagesPerSecond(t *testing.T) {
	for _, tc := range []struct {
		n        int
		ms, want float64
	}{{8, 4, 2000}, {1, 0.5, 2000}, {32, 1.6, 20000}} {
		if got := imagesPerSecond(tc.n, tc.ms); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("batches of %d in %g ms: %g images/s, want %g", tc.n, tc.ms, got, tc.want)
		}
	}
}
