package controller

import (
	"math"
	"testing"
)

// One and two steps of the controller's Adam, worked by hand with
// beta1 = 0.9, beta2 = 0.999, eps = 1e-8. After the first step
// m = (1-beta1) g = 0.1 g and v = (1-beta2) g^2 = 0.001 g^2; the bias
// corrections divide them by 1-beta1 = 0.1 and 1-beta2 = 0.001, so
// mhat = g, vhat = g^2 and the step is -lr g/(|g|+eps), about -lr sign(g)
// whatever |g| (for |g| = 1e-3 the eps makes it lr (1-1e-5)). Without the
// first-moment correction the step would be -0.1 lr sign(g).
//
// Second step, the first gradient g1 = 0.3 in both cases:
//   - g2 = g1: m = 0.9*0.03 + 0.1*0.3 = 0.057, divided by 1-0.81 = 0.19 gives
//     0.3; v = 0.999*0.00009 + 0.001*0.09 = 0.09*0.001999, divided by
//     1-0.999^2 = 0.001999 gives 0.09; the step is -lr 0.3/0.3 = -lr again.
//   - g2 = -g1: m = 0.027 - 0.03 = -0.003, mhat = -0.003/0.19; vhat = 0.09
//     as before; the step is +lr (0.003/0.19)/0.3 = +lr/19.
func TestAdamSteps(t *testing.T) {
	const lr = 0.01
	g1 := []float64{0.3, -2, 1e-3, 0.3}
	start := []float64{0.5, 0.5, -1, 0}
	// After one step: w - lr g/(|g|+eps).
	want1 := []float64{0.5 - lr*0.3/(0.3+1e-8), 0.5 + lr*2/(2+1e-8), -1 - lr*1e-3/(1e-3+1e-8), 0 - lr*0.3/(0.3+1e-8)}
	g2 := []float64{0.3, 0, 0, -0.3} // the first repeats, the last flips
	q := &param{name: "w", rows: 1, cols: 4, data: append([]float64(nil), start...)}
	p := &policy{params: []*param{q}}
	a := newAdam(p, lr, 0.9, 0.999, 1e-8)
	a.update(p, [][]float64{append([]float64(nil), g1...)})
	for j, w := range want1 {
		if d := q.data[j] - w; math.Abs(d) > 1e-12 {
			t.Errorf("step 1, weight %d (g = %v): %.10g, want %.10g (moved %.6g, want %.6g)", j, g1[j], q.data[j], w, q.data[j]-start[j], w-start[j])
		}
	}
	after1 := append([]float64(nil), q.data...)
	a.update(p, [][]float64{append([]float64(nil), g2...)})
	for _, c := range []struct {
		j    int
		move float64
	}{{0, -lr}, {3, lr / 19}} {
		if got := q.data[c.j] - after1[c.j]; math.Abs(got-c.move) > 1e-9 {
			t.Errorf("step 2, weight %d (g %v then %v): moved %.8g, want %.8g", c.j, g1[c.j], g2[c.j], got, c.move)
		}
	}
}
