package bench

import (
	"slices"
	"testing"

	"github.com/nasctl/nasctl/internal/plottest"
)

// syntheticResults are six models a to f (named as files, which the
// figures label without their folder and extension).
func syntheticResults() []*Result {
	acc := func(v float64) *float64 { return &v }
	rs := []*Result{
		{Model: "winners/model-a.onnx", Params: 10_000, LatencyMs: Latency{P50: 0.20}, Accuracy: acc(0.95)},
		{Model: "winners/model-b.onnx", Params: 40_000, LatencyMs: Latency{P50: 0.35}, Accuracy: acc(0.99)},
		{Model: "winners/model-c.onnx", Params: 300_000, LatencyMs: Latency{P50: 0.60}, Accuracy: acc(0.97)},
		{Model: "winners/model-d.onnx", Params: 5_000, LatencyMs: Latency{P50: 0.15}, Accuracy: acc(0.90)},
		{Model: "winners/model-e.onnx", Params: 60_000, LatencyMs: Latency{P50: 0.50}, Accuracy: acc(0.985)},
		{Model: "winners/model-f.onnx", Params: 20_000, LatencyMs: Latency{P50: 0.40}},
	}
	MarkPareto(rs)
	return rs
}

func TestMarkPareto(t *testing.T) {
	rs := syntheticResults()
	// c is beaten by b in all three; e by b (more params, slower, less
	// accurate); f has no accuracy and is left out.
	for i, want := range []bool{true, true, false, true, false, false} {
		if rs[i].Pareto != want {
			t.Errorf("%s: pareto %v, want %v", rs[i].Model, rs[i].Pareto, want)
		}
	}
}

// The figures match the golden images (see plottest.Golden; regenerate with
// go test -regen-golden).
func TestPlotsGolden(t *testing.T) {
	rs := syntheticResults()
	p, err := ParamsLatencyPlot(rs)
	if err != nil {
		t.Fatal(err)
	}
	plottest.Golden(t, p, "pareto")
	p, err = AccuracyLatencyPlot(rs)
	if err != nil {
		t.Fatal(err)
	}
	plottest.Golden(t, p, "accuracy_latency")
}

// Points are named by their files; a name two models share (a winner and
// its int8 model) keeps its folder.
func TestModelLabels(t *testing.T) {
	rs := []*Result{{Model: "runs/a/winners/rank-01.onnx"}, {Model: "runs/a/winners/rank-02.onnx"}, {Model: "runs/a/winners/int8/rank-01.onnx"}}
	if got, want := modelLabels(rs), []string{"rank-01", "rank-02", "int8/rank-01"}; !slices.Equal(got, want) {
		t.Errorf("labels %q, want %q", got, want)
	}
}

// PlotFiles names exactly the files WritePlots writes.
func TestPlotFiles(t *testing.T) {
	dir := t.TempDir()
	written, err := WritePlots(dir, syntheticResults())
	if err != nil {
		t.Fatal(err)
	}
	if got := PlotFiles(dir); !slices.Equal(got, written) {
		t.Errorf("PlotFiles %q, WritePlots wrote %q", got, written)
	}
}

// The accuracy-latency figure rings the front of its own two objectives: a
// model on the three-objective front by its size alone (g: fewest
// parameters, but slower and less accurate than a) is not on it.
func TestAccuracyLatencyFront(t *testing.T) {
	acc := func(v float64) *float64 { return &v }
	rs := syntheticResults()[:5] // f has no accuracy
	rs = append(rs, &Result{Model: "g", Params: 1_000, LatencyMs: Latency{P50: 0.30}, Accuracy: acc(0.93)})
	MarkPareto(rs)
	if !rs[5].Pareto {
		t.Fatal("g is not on the three-objective front; the test needs it there")
	}
	if got, want := accuracyLatencyFront(rs), []bool{true, true, false, true, false, false}; !slices.Equal(got, want) {
		t.Errorf("front %v, want %v", got, want)
	}
}
