package controller

import "math"

// adam is the Adam optimizer (Kingma & Ba 2015) over the policy's weights,
// kept here rather than in gorgonia so that its moments can be saved and
// restored with the controller.
type adam struct {
	lr, beta1, beta2, eps float64
	step                  int         // updates taken
	m, v                  [][]float64 // first and second moments, one slice per param
}

func newAdam(p *policy, lr, beta1, beta2, eps float64) *adam {
	a := &adam{lr: lr, beta1: beta1, beta2: beta2, eps: eps}
	for _, q := range p.params {
		a.m = append(a.m, make([]float64, len(q.data)))
		a.v = append(a.v, make([]float64, len(q.data)))
	}
	return a
}

// update takes one step: w -= lr * mhat / (sqrt(vhat) + eps).
func (a *adam) update(p *policy, grads [][]float64) {
	a.step++
	c1 := 1 - math.Pow(a.beta1, float64(a.step))
	c2 := 1 - math.Pow(a.beta2, float64(a.step))
	for i, q := range p.params {
		m, v, g := a.m[i], a.v[i], grads[i]
		for j := range q.data {
			m[j] = a.beta1*m[j] + (1-a.beta1)*g[j]
			v[j] = a.beta2*v[j] + (1-a.beta2)*g[j]*g[j]
			q.data[j] -= a.lr * (m[j] / c1) / (math.Sqrt(v[j]/c2) + a.eps)
		}
	}
}

// globalNorm returns the Euclidean norm of all gradients together.
func globalNorm(grads [][]float64) float64 {
	s := 0.0
	for _, g := range grads {
		for _, x := range g {
			s += x * x
		}
	}
	return math.Sqrt(s)
}

// clipNorm scales grads so that their global norm is at most maxNorm and
// returns the norm before clipping.
func clipNorm(grads [][]float64, maxNorm float64) float64 {
	n := globalNorm(grads)
	if maxNorm > 0 && n > maxNorm {
		f := maxNorm / n
		for _, g := range grads {
			for j := range g {
				g[j] *= f
			}
		}
	}
	return n
}
