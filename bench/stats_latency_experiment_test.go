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
// classes), timed (100 runs, 1 thread) network after network with
// MeasureLatency, as calibration did before, and together in rounds with
// MeasureLatencies, as Calibrate does now; each way twice, in turn. For
// each way, the latency model fitted on four fifths and scored on the first
// fifth, as Calibrate does (heldout-% for one stretch per network,
// rounds-heldout-% for rounds), and how far the second timing of the 30
// held-out networks is from the first (retimed-%, rounds-retimed-%: the
// timing noise); the earlier features on the one-stretch timings
// (earlier-%). A measurement, not a check: go test ./bench -run X -bench
// LatencyModel -benchtime 1x (about 5 s).
func BenchmarkLatencyModel(b *testing.B) {
	if err := runtime.Init(""); err != nil {
		b.Fatal(err)
	}
	in := genotype.Input{Height: 32, Width: 32, Channels: 1}
	agent, err := controller.NewMetaQNN(search.CPUSpace.Clone(), in, controller.QConfig{}, controller.ScheduleStudy, 1)
	if err != nil {
		b.Fatal(err)
	}
	const n, held, runs = 150, 150 / 5, 100
	ctx, sess := context.Background(), runtime.SessionOptions{IntraOpThreads: 1}
	oneByOne := func(nets []*genotype.Net) []float64 {
		y := make([]float64, len(nets))
		for j, net := range nets {
			ms, err := bench.MeasureLatency(ctx, net, sess, runs)
			if err != nil {
				b.Fatal(err)
			}
			y[j] = ms
		}
		return y
	}
	inRounds := func(nets []*genotype.Net) []float64 {
		y, err := bench.MeasureLatencies(ctx, nets, sess, runs)
		if err != nil {
			b.Fatal(err)
		}
		return y
	}
	retimed := func(y, again []float64) float64 {
		d := 0.0
		for j := range held {
			d += math.Abs(again[j]-y[j]) / y[j]
		}
		return 100 * d / held
	}
	for i := 0; b.Loop(); i++ {
		rng := rand.New(rand.NewPCG(1, uint64(3+i)))
		var nets []*genotype.Net
		var x, xe [][]float64
		for len(nets) < n {
			arch, _ := agent.Sample(1, rng)
			net, err := arch.Build(in, 2)
			if err != nil {
				continue
			}
			nets = append(nets, net)
			x, xe = append(x, bench.FeaturesOf(net)), append(xe, earlierFeatures(net))
		}
		y, r := oneByOne(nets), inRounds(nets)
		y2, r2 := oneByOne(nets), inRounds(nets)
		b.ReportMetric(heldOutMAPE(b, x, y, held), "heldout-%")
		b.ReportMetric(heldOutMAPE(b, xe, y, held), "earlier-%")
		b.ReportMetric(retimed(y, y2), "retimed-%")
		b.ReportMetric(heldOutMAPE(b, x, r, held), "rounds-heldout-%")
		b.ReportMetric(retimed(r, r2), "rounds-retimed-%")
	}
}
