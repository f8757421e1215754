package bench

import (
	"math"
	"slices"
	"testing"

	"github.com/nasctl/nasctl/genotype"
)

// Summarize sorts a copy and takes runtime.Percentile's percentiles
// (linear interpolation, tested there), computed here by hand.
func TestSummarize(t *testing.T) {
	// 100 samples 100..1 (reversed).
	var s []float64
	for i := 100; i >= 1; i-- {
		s = append(s, float64(i))
	}
	l := Summarize(s)
	// p50: rank 49.5 -> 50.5; p95: rank 94.05 -> 95.05; p99: rank 98.01 -> 99.01.
	if l.Runs != 100 || l.Min != 1 || l.Max != 100 || l.Mean != 50.5 || l.P50 != 50.5 ||
		math.Abs(l.P95-95.05) > 1e-9 || math.Abs(l.P99-99.01) > 1e-9 {
		t.Errorf("summary %+v", l)
	}
	if s[0] != 100 {
		t.Error("Summarize changed its input")
	}
	// Shuffled and asymmetric, so that the unsorted order gives other
	// percentiles: sorted 1 2 3 4 5; p50 at rank 0.5*4 = 2 -> 3 (the
	// unsorted order has 4 there); p95 at rank 3.8 -> 4 + 0.8*(5-4) = 4.8;
	// p99 at rank 3.96 -> 4.96; mean 15/5 = 3.
	l = Summarize([]float64{5, 1, 4, 2, 3})
	if l.Runs != 5 || l.Min != 1 || l.Max != 5 || l.Mean != 3 || l.P50 != 3 ||
		math.Abs(l.P95-4.8) > 1e-9 || math.Abs(l.P99-4.96) > 1e-9 {
		t.Errorf("summary of 5 1 4 2 3: %+v, want p50 3, p95 4.8, p99 4.96, mean 3", l)
	}
}

func TestParetoFront(t *testing.T) {
	pts := []Point{
		{Params: 100, LatencyMs: 1.0, Accuracy: 0.90}, // 0: smallest and fastest
		{Params: 200, LatencyMs: 2.0, Accuracy: 0.99}, // 1: most accurate
		{Params: 300, LatencyMs: 3.0, Accuracy: 0.95}, // 2: dominated by 1
		{Params: 150, LatencyMs: 0.9, Accuracy: 0.85}, // 3: fastest: on the front
		{Params: 100, LatencyMs: 1.0, Accuracy: 0.90}, // 4: equal to 0: both stay
		{Params: 100, LatencyMs: 1.5, Accuracy: 0.90}, // 5: dominated by 0 (slower)
		{Params: 100, LatencyMs: 1.0, Accuracy: 0.80}, // 6: dominated by 0 (less accurate, the rest equal)
	}
	got := ParetoFront(pts)
	want := []bool{true, true, false, true, true, false, false}
	if !slices.Equal(got, want) {
		t.Errorf("front %v, want %v", got, want)
	}
	if len(ParetoFront(nil)) != 0 {
		t.Error("empty input")
	}
}

// The least-squares fit recovers known coefficients from exact data.
func TestFitRecoversCoefficients(t *testing.T) {
	want := []float64{0.02, 1e-8, 3e-7, 1e-7, 2e-8, 0.004}
	var x [][]float64
	var y []float64
	for i := range 40 {
		f := []float64{1, float64(1e5 * (i%7 + 1)), float64(1e4 * (i%5 + 2)), float64(5e3 * (i%3 + 1)), float64(2e3 * (i%11 + 1)), float64(3 + i%4)}
		var v float64
		for j := range f {
			v += want[j] * f[j]
		}
		x, y = append(x, f), append(y, v)
	}
	// A feature no network has (a column of zeros) gets coefficient 0
	// instead of making the system singular.
	for i := range x {
		x[i] = append(x[i][:3], append([]float64{0}, x[i][3:]...)...)
	}
	want = append(want[:3], append([]float64{0}, want[3:]...)...)
	got, err := fit(x, y)
	if err != nil {
		t.Fatal(err)
	}
	for j := range want {
		if math.Abs(got[j]-want[j]) > 1e-9*max(1, math.Abs(want[j]))+1e-6*math.Abs(want[j]) {
			t.Errorf("coefficient %d: %g, want %g", j, got[j], want[j])
		}
	}
}

// features on a small net, counted by hand: 8x8x1 input, C(4,3,1) 'valid'
// (6x6x4: 36 positions x 4 filters x 9 weights = 1,296 MACs; it copies
// 1 channel x 9 x 36 = 324 window values; 144 outputs), C(8,1,1) (6x6x8:
// 36 x 8 x 4 = 1,152 MACs; 288 outputs), the dropout after it (not
// counted), P(2,2) over 288 inputs to 3x3x8, and the 3-class softmax
// classifier on the 72 flattened values (216 MACs).
func TestFeatures(t *testing.T) {
	net, err := genotype.MustParse("C(4,3,1) - C(8,1,1) - P(2,2) - SM()").Build(genotype.Input{Height: 8, Width: 8, Channels: 1}, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 1152, 1296, 324, 144 + 288, 1, 1, 288, 216, 0}
	if got := features(net); !slices.Equal(got, want) {
		for i := range Features {
			if got[i] != want[i] {
				t.Errorf("%s: %v, want %v", Features[i], got[i], want[i])
			}
		}
	}
	// Predict is the dot product with the coefficients, floored at 1e-4 ms.
	coef := []float64{0.01, 1e-6, 1e-6, 0, 0, 0, 0, 0, 1e-5, 0}
	m := LatencyModel{Coefficients: coef}
	if got, w := m.Predict(net), 0.01+1152e-6+1296e-6+216e-5; math.Abs(got-w) > 1e-12 {
		t.Errorf("prediction %v ms, want %v", got, w)
	}
	m.Coefficients = []float64{-1, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if got := m.Predict(net); got != 1e-4 {
		t.Errorf("negative prediction %v ms, want the floor 1e-4", got)
	}
}

// features of a nasnet-style cell network on a 4x4x1 input, counted by hand
// from its nodes: the stem (3x3 conv, 1 -> 2 channels: 288 MACs, 144
// window values, 32 outputs; batch norm of 32 values); each
// cell input projected to 3 channels (ReLU, 1x1 conv of 96 MACs and 48
// outputs, batch norm of 48 values: the ReLUs read 32 values of the stem and
// write 32); conv_1x3_3x1 (ReLU 48, 1x3 and 3x1 convs of 432 MACs, 144
// window values and 48 outputs each, batch norm 48); average and max pooling
// of 48 inputs each; the add (48), two concatenations (96, then 144), the
// classifier's ReLU (144) and its one-unit dense layer on 9 channels.
func TestFeaturesCellNetwork(t *testing.T) {
	g, err := genotype.ParseGenotype("net(stem=2, filters=3, normal=1, reductions=0, style=nasnet) " +
		"normal: b0 = add(conv_1x3_3x1(h1), avg_pool_3x3(h0)); b1 = concat(identity(h1), max_pool_3x3(h0)) | " +
		"reduction: b0 = add(identity(h1), identity(h0)); b1 = add(identity(h1), identity(h0))")
	if err != nil {
		t.Fatal(err)
	}
	net, err := g.Build(genotype.Input{Height: 4, Width: 4, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	elementwise := 32 + 2*(32+48) + (48 + 48) + 48 + 96 + 144 + 144
	want := []float64{1, 2 * 96, 288 + 2*432, 3 * 144, 32 + 4*48, 2, 3, 2 * 48, 9, float64(elementwise)}
	if got := features(net); !slices.Equal(got, want) {
		for i := range Features {
			if got[i] != want[i] {
				t.Errorf("%s: %v, want %v", Features[i], got[i], want[i])
			}
		}
	}
}
