package runtime

import (
	"math"
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
	// 1..5: p90 has rank 3.6, so 4.6 (the nearest-rank rule would give 5).
	if got := Percentile([]float64{1, 2, 3, 4, 5}, 90); math.Abs(got-4.6) > 1e-12 {
		t.Errorf("p90 of 1..5 = %v, want 4.6", got)
	}
	if got := Percentile([]float64{7}, 99); got != 7 {
		t.Errorf("one sample: %v", got)
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("empty sample is not NaN")
	}
}
