package controller

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// param is one weight matrix of the policy, rows x cols, row-major. Its data
// is the one copy of the weights: the gorgonia graph's input tensors use it as
// their backing array, the sampler reads it and Adam updates it in place.
type param struct {
	name       string
	rows, cols int
	data       []float64
}

// policy is the LSTM policy of Zoph & Le (2017): at decision t the input is the
// embedding of decision t-1 (a learned start vector at t = 0); a stack of LSTM
// layers; a linear softmax head per decision type, whose logits are divided by
// the temperature and whose invalid choices are masked out.
type policy struct {
	types  []DecisionType
	steps  []int
	hidden int
	layers int
	embed  int

	params []*param
	start  *param   // 1 x embed
	emb    []*param // per type: Choices x embed
	headW  []*param // per type: hidden x Choices
	headB  []*param // per type: 1 x Choices
	wx     []*param // per layer: in x 4*hidden (gates i, f, g, o)
	wh     []*param // per layer: hidden x 4*hidden
	bias   []*param // per layer: 1 x 4*hidden
}

func newPolicy(s Space, hidden, layers, embed int, initScale float64, rng *rand.Rand) (*policy, error) {
	p := &policy{types: s.Types(), steps: s.Steps(), hidden: hidden, layers: layers, embed: embed}
	if len(p.steps) == 0 {
		return nil, fmt.Errorf("controller: the space has no decisions")
	}
	for i, t := range p.types {
		if t.Choices < 1 {
			return nil, fmt.Errorf("controller: decision type %d (%s) has %d choices", i, t.Name, t.Choices)
		}
	}
	for i, st := range p.steps {
		if st < 0 || st >= len(p.types) {
			return nil, fmt.Errorf("controller: decision %d has type %d; the space has %d types", i, st, len(p.types))
		}
	}
	add := func(name string, rows, cols int) *param {
		q := &param{name: name, rows: rows, cols: cols, data: make([]float64, rows*cols)}
		p.params = append(p.params, q)
		return q
	}
	p.start = add("start", 1, embed)
	for _, t := range p.types {
		p.emb = append(p.emb, add("emb."+t.Name, t.Choices, embed))
	}
	for l := range layers {
		in := hidden
		if l == 0 {
			in = embed
		}
		p.wx = append(p.wx, add(fmt.Sprintf("lstm%d.wx", l), in, 4*hidden))
		p.wh = append(p.wh, add(fmt.Sprintf("lstm%d.wh", l), hidden, 4*hidden))
		p.bias = append(p.bias, add(fmt.Sprintf("lstm%d.b", l), 1, 4*hidden))
	}
	for _, t := range p.types {
		p.headW = append(p.headW, add("head."+t.Name+".w", hidden, t.Choices))
		p.headB = append(p.headB, add("head."+t.Name+".b", 1, t.Choices))
	}
	for _, q := range p.params {
		for i := range q.data {
			q.data[i] = (2*rng.Float64() - 1) * initScale
		}
	}
	return p, nil
}

// numParams returns the number of weights.
func (p *policy) numParams() int {
	n := 0
	for _, q := range p.params {
		n += len(q.data)
	}
	return n
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// sampler runs the policy one decision at a time in plain Go, mirroring the
// gorgonia graph of trainGraph (TestSamplerMatchesGraph checks that the two
// agree to 1e-12); sampling needs each choice before the next step's input
// exists, which an unrolled graph cannot give.
type sampler struct {
	p     *policy
	h, c  [][]float64
	z     []float64
	x     []float64
	logit []float64
	valid []bool
}

func newSampler(p *policy) *sampler {
	s := &sampler{p: p, z: make([]float64, 4*p.hidden), x: make([]float64, max(p.embed, p.hidden))}
	for range p.layers {
		s.h = append(s.h, make([]float64, p.hidden))
		s.c = append(s.c, make([]float64, p.hidden))
	}
	maxK := 0
	for _, t := range p.types {
		maxK = max(maxK, t.Choices)
	}
	s.logit = make([]float64, maxK)
	s.valid = make([]bool, maxK)
	return s
}

// episode samples one action vector at temperature temp from space s and
// returns it with its log-probability under the tempered distribution.
func (s *sampler) episode(space Space, temp float64, rng *rand.Rand) ([]int, float64, error) {
	p := s.p
	for l := range s.h {
		clear(s.h[l])
		clear(s.c[l])
	}
	actions := make([]int, 0, len(p.steps))
	logp := 0.0
	for t, typ := range p.steps {
		var in []float64
		if t == 0 {
			in = p.start.data
		} else {
			prev := p.emb[p.steps[t-1]]
			a := actions[t-1]
			in = prev.data[a*prev.cols : (a+1)*prev.cols]
		}
		top := s.lstm(in)
		k := p.types[typ].Choices
		valid := s.valid[:k]
		space.Valid(t, actions, valid)
		logit := s.logit[:k]
		w, b := p.headW[typ], p.headB[typ]
		m := math.Inf(-1)
		for j := range k {
			v := b.data[j]
			for i, hi := range top {
				v += hi * w.data[i*k+j]
			}
			logit[j] = v / temp
			if valid[j] && logit[j] > m {
				m = logit[j]
			}
		}
		if math.IsInf(m, -1) {
			return nil, 0, fmt.Errorf("controller: decision %d has no valid choice after %v (or its logits are not finite)", t, actions)
		}
		sum := 0.0
		for j := range k {
			if valid[j] {
				sum += math.Exp(logit[j] - m)
			}
		}
		u := rng.Float64() * sum
		choice := -1
		acc := 0.0
		for j := range k {
			if !valid[j] {
				continue
			}
			choice = j
			acc += math.Exp(logit[j] - m)
			if u < acc {
				break
			}
		}
		logp += logit[choice] - m - math.Log(sum)
		actions = append(actions, choice)
	}
	return actions, logp, nil
}

// lstm advances every layer by one step with input in and returns the top
// layer's new hidden state.
func (s *sampler) lstm(in []float64) []float64 {
	p := s.p
	H := p.hidden
	x := in
	for l := range p.layers {
		wx, wh, b := p.wx[l], p.wh[l], p.bias[l]
		copy(s.z, b.data)
		for i, xi := range x {
			row := wx.data[i*4*H : (i+1)*4*H]
			for j, w := range row {
				s.z[j] += xi * w
			}
		}
		h, c := s.h[l], s.c[l]
		for i, hi := range h {
			row := wh.data[i*4*H : (i+1)*4*H]
			for j, w := range row {
				s.z[j] += hi * w
			}
		}
		for j := range H {
			ig := sigmoid(s.z[j])
			fg := sigmoid(s.z[H+j])
			gg := math.Tanh(s.z[2*H+j])
			og := sigmoid(s.z[3*H+j])
			c[j] = fg*c[j] + ig*gg
			h[j] = og * math.Tanh(c[j])
		}
		x = h
	}
	return x
}

// maskedLogit is added to the logit of an invalid choice: exp of it is 0 in
// float64, while 0 * maskedLogit stays 0 in the entropy term.
const maskedLogit = -1e9

// trainGraph is the unrolled policy for a batch of n episodes as a gorgonia
// graph, teacher-forced on the sampled actions, with the REINFORCE loss
//
//	loss = -sum_e w_e sum_t log pi(a_et) + sum_e v_e sum_t sum_k pi_k log pi_k
//
// where w_e is episode e's weighted advantage and v_e its entropy weight (the
// second term is minus the entropy bonus). It is built once; every update
// fills its input tensors in place and reruns the tape machine.
type trainGraph struct {
	p     *policy
	n     int
	g     *gorgonia.ExprGraph
	vm    gorgonia.VM
	nodes []*gorgonia.Node // one per policy param, same order
	grads []*gorgonia.Node
	cost  *gorgonia.Node

	// Per-step inputs (n x Choices, row-major), filled by set.
	prev  [][]float64 // one-hot of the previous decision (nil at t = 0)
	mask  [][]float64 // 0 or maskedLogit
	scale [][]float64 // 1/temperature of each episode
	sel   [][]float64 // w_e at the chosen action
	ent   [][]float64 // v_e everywhere (nil without an entropy term)
}

func matrix(g *gorgonia.ExprGraph, name string, rows, cols int, data []float64) *gorgonia.Node {
	t := tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(data))
	return gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(rows, cols), gorgonia.WithName(name), gorgonia.WithValue(t))
}

func newTrainGraph(p *policy, n int, entropy bool) (tg *trainGraph, err error) {
	// gorgonia's graph builders report misuse by panicking (Must); turn a
	// panic into an error rather than crash a search.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("controller: building the policy graph: %v", r)
		}
	}()
	must := gorgonia.Must
	g := gorgonia.NewGraph()
	tg = &trainGraph{p: p, n: n, g: g}
	for _, q := range p.params {
		tg.nodes = append(tg.nodes, matrix(g, q.name, q.rows, q.cols, q.data))
	}
	node := make(map[*param]*gorgonia.Node, len(p.params))
	for i, q := range p.params {
		node[q] = tg.nodes[i]
	}
	H := p.hidden
	ones := func(name string, rows, cols int) *gorgonia.Node {
		d := make([]float64, rows*cols)
		for i := range d {
			d[i] = 1
		}
		return matrix(g, name, rows, cols, d)
	}
	onesN := ones("ones.n", n, 1)
	onesK := make([]*gorgonia.Node, len(p.types))
	for i, t := range p.types {
		onesK[i] = ones("ones."+t.Name, 1, t.Choices)
	}
	hs := make([]*gorgonia.Node, p.layers)
	cs := make([]*gorgonia.Node, p.layers)
	for l := range p.layers {
		hs[l] = matrix(g, fmt.Sprintf("h0.%d", l), n, H, make([]float64, n*H))
		cs[l] = matrix(g, fmt.Sprintf("c0.%d", l), n, H, make([]float64, n*H))
	}
	var loss *gorgonia.Node
	accumulate := func(term *gorgonia.Node) {
		if loss == nil {
			loss = term
		} else {
			loss = must(gorgonia.Add(loss, term))
		}
	}
	for t, typ := range p.steps {
		k := p.types[typ].Choices
		var x *gorgonia.Node
		if t == 0 {
			x = must(gorgonia.Mul(onesN, node[p.start]))
			tg.prev = append(tg.prev, nil)
		} else {
			pk := p.types[p.steps[t-1]].Choices
			d := make([]float64, n*pk)
			tg.prev = append(tg.prev, d)
			onehot := matrix(g, fmt.Sprintf("prev.%d", t), n, pk, d)
			x = must(gorgonia.Mul(onehot, node[p.emb[p.steps[t-1]]]))
		}
		for l := range p.layers {
			z := must(gorgonia.Add(must(gorgonia.Mul(x, node[p.wx[l]])), must(gorgonia.Mul(hs[l], node[p.wh[l]]))))
			z = must(gorgonia.Add(z, must(gorgonia.Mul(onesN, node[p.bias[l]]))))
			gate := func(i int) *gorgonia.Node { return must(gorgonia.Slice(z, nil, gorgonia.S(i*H, (i+1)*H))) }
			ig := must(gorgonia.Sigmoid(gate(0)))
			fg := must(gorgonia.Sigmoid(gate(1)))
			gg := must(gorgonia.Tanh(gate(2)))
			og := must(gorgonia.Sigmoid(gate(3)))
			cs[l] = must(gorgonia.Add(must(gorgonia.HadamardProd(fg, cs[l])), must(gorgonia.HadamardProd(ig, gg))))
			hs[l] = must(gorgonia.HadamardProd(og, must(gorgonia.Tanh(cs[l]))))
			x = hs[l]
		}
		logits := must(gorgonia.Add(must(gorgonia.Mul(x, node[p.headW[typ]])), must(gorgonia.Mul(onesN, node[p.headB[typ]]))))
		in := func(name string) ([]float64, *gorgonia.Node) {
			d := make([]float64, n*k)
			return d, matrix(g, fmt.Sprintf("%s.%d", name, t), n, k, d)
		}
		maskD, maskN := in("mask")
		scaleD, scaleN := in("scale")
		selD, selN := in("sel")
		tg.mask, tg.scale, tg.sel = append(tg.mask, maskD), append(tg.scale, scaleD), append(tg.sel, selD)
		y := must(gorgonia.Add(must(gorgonia.HadamardProd(logits, scaleN)), maskN))
		sum := must(gorgonia.Reshape(must(gorgonia.Sum(must(gorgonia.Exp(y)), 1)), tensor.Shape{n, 1}))
		logp := must(gorgonia.Sub(y, must(gorgonia.Mul(must(gorgonia.Log(sum)), onesK[typ]))))
		accumulate(must(gorgonia.Neg(must(gorgonia.Sum(must(gorgonia.HadamardProd(selN, logp)))))))
		if entropy {
			entD, entN := in("ent")
			tg.ent = append(tg.ent, entD)
			plogp := must(gorgonia.HadamardProd(must(gorgonia.Exp(logp)), logp))
			accumulate(must(gorgonia.Sum(must(gorgonia.HadamardProd(entN, plogp)))))
		}
	}
	tg.cost = loss
	if tg.grads, err = gorgonia.Grad(loss, tg.nodes...); err != nil {
		return nil, fmt.Errorf("controller: differentiating the policy loss: %w", err)
	}
	tg.vm = gorgonia.NewTapeMachine(g)
	return tg, nil
}

// batchItem is one episode of an update: its actions, the temperature it was
// sampled at (1 for an untempered loss), its loss weight w and entropy weight v.
type batchItem struct {
	actions []int
	temp    float64
	w, v    float64
}

// set fills the graph's inputs for a batch of exactly n items.
func (tg *trainGraph) set(space Space, items []batchItem) {
	p := tg.p
	valid := make([]bool, 0, 16)
	for t, typ := range p.steps {
		k := p.types[typ].Choices
		if t > 0 {
			clear(tg.prev[t])
		}
		clear(tg.sel[t])
		valid = valid[:0]
		for range k {
			valid = append(valid, false)
		}
		for e, it := range items {
			if t > 0 {
				pk := p.types[p.steps[t-1]].Choices
				tg.prev[t][e*pk+it.actions[t-1]] = 1
			}
			space.Valid(t, it.actions[:t], valid)
			row := e * k
			for j := range k {
				tg.scale[t][row+j] = 1 / it.temp
				if valid[j] {
					tg.mask[t][row+j] = 0
				} else {
					tg.mask[t][row+j] = maskedLogit
				}
				if tg.ent != nil {
					tg.ent[t][row+j] = it.v
				}
			}
			tg.sel[t][row+it.actions[t]] = it.w
		}
	}
}

// run evaluates the loss and its gradient for the batch set by set; grads has
// one slice per policy param and receives the gradient.
func (tg *trainGraph) run(grads [][]float64) (float64, error) {
	defer tg.vm.Reset()
	if err := tg.vm.RunAll(); err != nil {
		return 0, fmt.Errorf("controller: running the policy graph: %w", err)
	}
	for i, gn := range tg.grads {
		d, ok := gn.Value().Data().([]float64)
		if !ok || len(d) != len(grads[i]) {
			return 0, fmt.Errorf("controller: gradient of %s has an unexpected shape", tg.p.params[i].name)
		}
		copy(grads[i], d)
	}
	cost, ok := tg.cost.Value().Data().(float64)
	if !ok {
		return 0, fmt.Errorf("controller: loss is not a float64 scalar")
	}
	return cost, nil
}
