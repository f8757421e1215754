package bench

import (
	"math"
	"slices"
	"testing"
)

// Percentiles of a known sample, computed by hand with the linear
// interpolation rule (NumPy's default: numpy.percentile(x, p) gives the same).
func TestPercentile(t *testing.T) {
	// 1..10: rank for p is p/100*9.
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct{ p, want float64 }{
		{0, 1}, {50, 5.5}, {95, 9.55}, {99, 9.91}, {100, 10}, {25, 3.25},
	} {
		if got := Percentile(x, tc.p); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := Percentile([]float64{7}, 99); got != 7 {
		t.Errorf("one sample: %v", got)
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("empty sample is not NaN")
	}
	// Summarize sorts a copy: 100 samples 100..1 (reversed).
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
}

func TestParetoFront(t *testing.T) {
	pts := []Point{
		{Params: 100, LatencyMs: 1.0, Accuracy: 0.90}, // 0: smallest and fastest
		{Params: 200, LatencyMs: 2.0, Accuracy: 0.99}, // 1: most accurate
		{Params: 300, LatencyMs: 3.0, Accuracy: 0.95}, // 2: dominated by 1
		{Params: 150, LatencyMs: 0.9, Accuracy: 0.85}, // 3: fastest: on the front
		{Params: 100, LatencyMs: 1.0, Accuracy: 0.90}, // 4: equal to 0: both stay
		{Params: 100, LatencyMs: 1.5, Accuracy: 0.90}, // 5: dominated by 0 (slower)
	}
	got := ParetoFront(pts)
	want := []bool{true, true, false, true, true, false}
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
	got, err := fit(x, y)
	if err != nil {
		t.Fatal(err)
	}
	for j := range want {
		if math.Abs(got[j]-want[j]) > 1e-9*max(1, math.Abs(want[j]))+1e-6*math.Abs(want[j]) {
			t.Errorf("coefficient %d (%s): %g, want %g", j, Features[j], got[j], want[j])
		}
	}
}
