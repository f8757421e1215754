package bench_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
)

// earlierFeatures are the latency model's features before 1x1 and wider
// convolutions were apart: constant, conv MACs, conv outputs, pool inputs,
// dense MACs and the operator count (dropout left out).
func earlierFeatures(net *genotype.Net) []float64 {
	f := make([]float64, 6)
	f[0] = 1
	for _, nd := range net.Nodes {
		switch nd.Op {
		case genotype.OpConv:
			f[1] += float64(nd.MACs)
			f[2] += float64(nd.Out.Size())
		case genotype.OpMaxPool:
			f[3] += float64(nd.In.Size())
		case genotype.OpDense:
			f[4] += float64(nd.MACs)
		}
		if nd.Op != genotype.OpDropout {
			f[5]++
		}
	}
	return f
}

// heldOutMAPE fits on x[held:] and returns the mean absolute percentage
// error on x[:held], as Calibrate does.
func heldOutMAPE(t testing.TB, x [][]float64, y []float64, held int) float64 {
	coef, err := bench.Fit(x[held:], y[held:])
	if err != nil {
		t.Fatal(err)
	}
	s := 0.0
	for i := range held {
		s += math.Abs(bench.PredictMs(coef, x[i])-y[i]) / y[i]
	}
	return 100 * s / float64(held)
}

// BenchmarkLatencyModel measures the figures of docs/performance.md,
// "Latency model": 150 random architectures of the CPU space at 32x32x1 (2
// classes), each timed with MeasureLatency (100 runs, 1 thread); the latency
// model and the earlier features fitted on four fifths and scored on the
// first fifth, as Calibrate does (metrics heldout-%, earlier-%); then the
// held-out networks timed again (retimed-%, the timing noise). A
// measurement, not a check: go test ./bench -run X -bench LatencyModel
// -benchtime 1x (about 3 s).
func BenchmarkLatencyModel(b *testing.B) {
	if err := runtime.Init(""); err != nil {
		b.Fatal(err)
	}
	in := genotype.Input{Height: 32, Width: 32, Channels: 1}
	agent, err := controller.NewMetaQNN(search.CPUSpace.Clone(), in, controller.QConfig{}, controller.ScheduleStudy, 1)
	if err != nil {
		b.Fatal(err)
	}
	const n, held = 150, 150 / 5
	ctx, sess := context.Background(), runtime.SessionOptions{IntraOpThreads: 1}
	for i := 0; b.Loop(); i++ {
		rng := rand.New(rand.NewPCG(1, uint64(3+i)))
		var nets []*genotype.Net
		var x, xe [][]float64
		var y []float64
		for len(nets) < n {
			arch, _ := agent.Sample(1, rng)
			net, err := arch.Build(in, 2)
			if err != nil {
				continue
			}
			ms, err := bench.MeasureLatency(ctx, net, sess, 100)
			if err != nil {
				b.Fatal(err)
			}
			nets, y = append(nets, net), append(y, ms)
			x, xe = append(x, bench.FeaturesOf(net)), append(xe, earlierFeatures(net))
		}
		d := 0.0
		for j := range held {
			ms, err := bench.MeasureLatency(ctx, nets[j], sess, 100)
			if err != nil {
				b.Fatal(err)
			}
			d += math.Abs(ms-y[j]) / y[j]
		}
		b.ReportMetric(heldOutMAPE(b, x, y, held), "heldout-%")
		b.ReportMetric(heldOutMAPE(b, xe, y, held), "earlier-%")
		b.ReportMetric(100*d/held, "retimed-%")
	}
}
