package runtime

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// A small probe (2*128^3 = 4.2 MFLOP per run; 2 warm-up and 5 timed runs)
// on one thread. Bounds that do not restate the formula: the call's wall
// time holds all 7 runs, so the fastest run's rate is at least 7 runs' FLOPs
// over it (a rate taken from seconds as milliseconds would be 1000x below);
// and one thread does not reach 1000 GFLOP/s (two 16-lane FMA units at 5 GHz
// make 320).
func TestMeasurePeak(t *testing.T) {
	initRuntime(t)
	start := time.Now()
	p, err := MeasurePeak(context.Background(), PeakConfig{Size: 128, Runs: 5, Session: SessionOptions{IntraOpThreads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start).Seconds()
	floor := 7 * 2 * 128.0 * 128 * 128 / wall / 1e9
	for _, v := range []float64{p.GFLOPs, p.MedianGFLOPs, p.Median} {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("peak %+v: not positive and finite", p)
		}
	}
	if p.Size != 128 || p.GFLOPs < p.MedianGFLOPs || p.GFLOPs < floor || p.GFLOPs > 1000 {
		t.Errorf("peak %+v; want the fastest rate between %.2f (7 runs in %.1f ms) and 1000 GFLOP/s, and at least the median's", p, floor, 1000*wall)
	}
	if _, err := MeasurePeak(context.Background(), PeakConfig{Size: -1}); err == nil {
		t.Error("negative size accepted")
	}
}

func tinyModel(t *testing.T) []byte {
	t.Helper()
	in := genotype.Input{Height: 8, Width: 8, Channels: 1}
	net, err := genotype.MustParse("C(2,3,1) - P(2,2) - SM()").Build(in, 3)
	if err != nil {
		t.Fatal(err)
	}
	model, err := onnxgen.Inference(net, onnxgen.Init(onnxgen.Params(net), rand.New(rand.NewPCG(1, 1))),
		onnxgen.Metadata{Arch: net.Arch.String(), Input: in, Classes: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	return model
}

// Every timed run is recorded, positive and finite; together they fit in
// the call's wall time, and the median is above 1 us (a Run of this net took
// 5-12 us on this project's machine, in 4 runs of the test): a unit error of
// 1000x either way fails.
func TestMeasureLatency(t *testing.T) {
	initRuntime(t)
	model := tinyModel(t)
	start := time.Now()
	l, err := MeasureLatency(context.Background(), model, LatencyConfig{Batch: 2, Runs: 10, Session: SessionOptions{IntraOpThreads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	wall := 1000 * time.Since(start).Seconds()
	sum := 0.0
	for _, v := range l.Samples {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("sample %v", v)
		}
		sum += v
	}
	if l.Batch != 2 || l.Runs != 10 || len(l.Samples) != 10 || !(l.Median > 0.001) || sum > wall {
		t.Errorf("latency %+v: %d samples summing to %.3f ms in a call of %.3f ms", l, len(l.Samples), sum, wall)
	}
	if _, err := MeasureLatency(context.Background(), []byte("not a model"), LatencyConfig{}); err == nil {
		t.Error("a bad model was accepted")
	}
}

// Model.MeasureLatency fills the batch tensors Predict uses with its random
// images: Predict's output on the same images is unchanged by it.
func TestModelMeasureLatencySharesPredictTensors(t *testing.T) {
	initRuntime(t)
	m, err := NewModel(tinyModel(t), SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	px := make([]float32, 2*8*8)
	for i := range px {
		px[i] = float32(i%7) / 7
	}
	before, err := m.Predict(context.Background(), px, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.MeasureLatency(context.Background(), LatencyConfig{Batch: 2, Runs: 3, Warmup: 1}); err != nil {
		t.Fatal(err)
	}
	if len(m.x) != 1 {
		t.Errorf("%d input tensors after Predict and MeasureLatency at batch 2, want 1", len(m.x))
	}
	after, err := m.Predict(context.Background(), px, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) {
		t.Errorf("Predict gave %v, then %v after MeasureLatency", before, after)
	}
	if _, err := m.MeasureLatency(context.Background(), LatencyConfig{Warmup: -1}); err == nil {
		t.Error("a negative warm-up was accepted")
	}
}

func TestMedian(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if m := median(xs); m != 3 {
		t.Errorf("median %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("even median %v", m)
	}
	if xs[0] != 5 {
		t.Error("median reordered its input")
	}
}
