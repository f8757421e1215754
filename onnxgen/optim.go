package onnxgen

import (
	"cmp"
	"fmt"
)

// Optimizer emits the parameter update of a training-step graph. The step count
// and the learning rate are graph inputs, so one compiled graph serves a whole
// learning-rate schedule.
type Optimizer interface {
	// Name identifies the optimizer in logs and run records.
	Name() string
	// Slots names the state tensors kept per parameter (each of the parameter's
	// shape), e.g. Adam's "m" and "v".
	Slots() []string
	// update emits p' and the new slot values from p, its gradient grad and its
	// slots. step is the 1-based step count and lr the learning rate, both [1].
	update(g *graph, p, grad string, slots []string, h *hyper) (string, []string)
}

// hyper holds per-step values an optimizer shares between parameters.
type hyper struct {
	step, lr string
	cache    map[string]string
}

// Adam is Kingma & Ba's optimizer in PyTorch's form:
// p' = p - (lr/(1-b1^t)) * m' / (sqrt(v')/sqrt(1-b2^t) + eps).
// Zero fields take the study's values: Beta1 0.5, Beta2 0.999, Epsilon 1e-7
// (Keras's default, the study's framework).
type Adam struct {
	Beta1, Beta2, Epsilon float32
}

func (a Adam) withDefaults() Adam {
	a.Beta1 = cmp.Or(a.Beta1, 0.5)
	a.Beta2 = cmp.Or(a.Beta2, 0.999)
	a.Epsilon = cmp.Or(a.Epsilon, 1e-7)
	return a
}

// Name implements Optimizer.
func (a Adam) Name() string { return "adam" }

// String gives the name and the settings in effect, defaults filled in:
// "adam(beta1 0.5, beta2 0.999, eps 1e-07)".
func (a Adam) String() string {
	a = a.withDefaults()
	return fmt.Sprintf("adam(beta1 %g, beta2 %g, eps %g)", a.Beta1, a.Beta2, a.Epsilon)
}

// Slots implements Optimizer: first and second moments.
func (a Adam) Slots() []string { return []string{"m", "v"} }

func (a Adam) update(g *graph, p, grad string, slots []string, h *hyper) (string, []string) {
	a = a.withDefaults()
	alpha, ok := h.cache["adam.alpha"]
	if !ok {
		// alpha = lr / (1 - b1^t); root = sqrt(1 - b2^t), computed once per step.
		bc1 := g.op("Sub", []string{g.scalar(1), g.op("Pow", []string{g.scalar(a.Beta1), h.step})})
		bc2 := g.op("Sub", []string{g.scalar(1), g.op("Pow", []string{g.scalar(a.Beta2), h.step})})
		alpha = g.op("Div", []string{h.lr, bc1})
		h.cache["adam.alpha"] = alpha
		h.cache["adam.root"] = g.op("Sqrt", []string{bc2})
	}
	root := h.cache["adam.root"]
	m := g.op("Add", []string{g.op("Mul", []string{slots[0], g.scalar(a.Beta1)}), g.op("Mul", []string{grad, g.scalar(1 - a.Beta1)})})
	v := g.op("Add", []string{g.op("Mul", []string{slots[1], g.scalar(a.Beta2)}), g.op("Mul", []string{g.op("Mul", []string{grad, grad}), g.scalar(1 - a.Beta2)})})
	denom := g.op("Add", []string{g.op("Div", []string{g.op("Sqrt", []string{v}), root}), g.scalar(a.Epsilon)})
	stepv := g.op("Mul", []string{g.op("Div", []string{m, denom}), alpha})
	return g.op("Sub", []string{p, stepv}), []string{m, v}
}

// SGD is stochastic gradient descent with momentum in PyTorch's form:
// v' = mu*v + grad; p' = p - lr*v' (or p - lr*(grad + mu*v') with Nesterov).
// Zero Momentum is plain SGD (the velocity slot is still kept).
type SGD struct {
	Momentum float32
	Nesterov bool
}

// Name implements Optimizer.
func (s SGD) Name() string { return "sgd" }

// String gives the name and the settings: "sgd(momentum 0.9, nesterov)".
func (s SGD) String() string {
	nesterov := ""
	if s.Nesterov {
		nesterov = ", nesterov"
	}
	return fmt.Sprintf("sgd(momentum %g%s)", s.Momentum, nesterov)
}

// Slots implements Optimizer: the velocity.
func (s SGD) Slots() []string { return []string{"velocity"} }

func (s SGD) update(g *graph, p, grad string, slots []string, h *hyper) (string, []string) {
	v := g.op("Add", []string{g.op("Mul", []string{slots[0], g.scalar(s.Momentum)}), grad})
	dir := v
	if s.Nesterov {
		dir = g.op("Add", []string{grad, g.op("Mul", []string{v, g.scalar(s.Momentum)})})
	}
	return g.op("Sub", []string{p, g.op("Mul", []string{dir, h.lr})}), []string{v}
}
