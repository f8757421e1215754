package bench

import (
	"math"
	"testing"
)

// The model is fitted on the networks after the first fifth and its error
// measured on that fifth. Ten networks of two features: the last eight lie
// exactly on 2 f0 + 3 f1 ms, so the fit must give [2, 3]; the first two
// are off it: (1, 1) at 10 ms, predicted 5, 50% off; (0, 1) at 3.6 ms,
// predicted 3, 16.67% off (dividing by the prediction instead would give
// 100% and 20%). The error is then 100 (0.5 + 0.6/3.6) / 2 = 33.33%.
func TestFitHeldOut(t *testing.T) {
	x := [][]float64{{1, 1}, {0, 1}}
	y := []float64{10, 3.6}
	for i := 2; i < 10; i++ {
		f := []float64{float64(i), float64(i%3 + 1)}
		x, y = append(x, f), append(y, 2*f[0]+3*f[1])
	}
	coef, mape, held, err := fitHeldOut(x, y)
	if err != nil {
		t.Fatal(err)
	}
	want := 100 * (0.5 + 0.6/3.6) / 2
	if held != 2 || len(coef) != 2 || math.Abs(coef[0]-2) > 1e-9 || math.Abs(coef[1]-3) > 1e-9 || math.Abs(mape-want) > 1e-9 {
		t.Errorf("held %d, coefficients %v, error %.6g%%; want 2, [2 3], %.6g%%", held, coef, mape, want)
	}
}
