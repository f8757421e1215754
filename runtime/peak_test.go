package runtime

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// A small probe: the median rate is 2*n^3 over the median time, and the
// peak (the fastest run) at least as high.
func TestMeasurePeak(t *testing.T) {
	initRuntime(t)
	p, err := MeasurePeak(context.Background(), PeakConfig{Size: 128, Runs: 5, Session: SessionOptions{IntraOpThreads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	want := 2 * 128.0 * 128 * 128 / (p.Median / 1000) / 1e9
	if p.Size != 128 || p.MedianGFLOPs <= 0 || p.GFLOPs < p.MedianGFLOPs || (p.MedianGFLOPs-want)*(p.MedianGFLOPs-want) > 1e-9*want*want {
		t.Errorf("peak %+v, want %.3f GFLOP/s at the median", p, want)
	}
	if _, err := MeasurePeak(context.Background(), PeakConfig{Size: -1}); err == nil {
		t.Error("negative size accepted")
	}
}

func TestMeasureLatency(t *testing.T) {
	initRuntime(t)
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
	l, err := MeasureLatency(context.Background(), model, LatencyConfig{Batch: 2, Runs: 10, Session: SessionOptions{IntraOpThreads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if l.Batch != 2 || l.Runs != 10 || l.Median <= 0 || l.P90 < l.Median {
		t.Errorf("latency %+v", l)
	}
	if _, err := MeasureLatency(context.Background(), []byte("not a model"), LatencyConfig{}); err == nil {
		t.Error("a bad model was accepted")
	}
}

func TestMedianQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if m := median(xs); m != 3 {
		t.Errorf("median %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("even median %v", m)
	}
	if q := quantile(xs, 0.9); q != 5 {
		t.Errorf("0.9 quantile %v", q)
	}
	if xs[0] != 5 {
		t.Error("median reordered its input")
	}
}
