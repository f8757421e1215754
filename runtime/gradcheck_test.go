package runtime

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// gradProblem is a training-step graph with fixed inputs, evaluated through ONNX
// Runtime for the gradient checks.
type gradProblem struct {
	t      *testing.T
	tg     *onnxgen.TrainGraph
	net    *genotype.Net
	x, y   []float32
	n      int64
	params [][]float32
	masks  [][]float32 // dropout masks, fixed for the whole check
	sess   *Session
	// eps is the finite differences' step; zero: 2e-3 (see check).
	eps float64
}

func newGradProblem(t *testing.T, arch string, in genotype.Input, classes, batch int, seed uint64, formulas onnxgen.Formulas) *gradProblem {
	t.Helper()
	gt, err := genotype.ParseGenotype(arch)
	if err != nil {
		t.Fatal(err)
	}
	net, err := gt.Build(in, classes)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := onnxgen.Training(net, onnxgen.TrainOptions{Gradients: true, Formulas: formulas})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	p := &gradProblem{t: t, tg: tg, net: net, n: int64(batch), params: onnxgen.Init(tg.Params, r)}
	// Small random biases and shifts, so the check does not rely on zero
	// ones.
	for i, pr := range tg.Params {
		if pr.Bias && !pr.State {
			for j := range p.params[i] {
				p.params[i][j] = float32(0.1 * (2*r.Float64() - 1))
			}
		}
	}
	p.x = make([]float32, batch*in.Channels*in.Height*in.Width)
	for i := range p.x {
		p.x[i] = r.Float32()
	}
	u := net.Output().C
	p.y = make([]float32, batch*u)
	for i := range batch {
		if u == 1 {
			p.y[i] = float32(i % 2)
		} else {
			p.y[i*u+i%u] = 1
		}
	}
	for _, m := range tg.Masks {
		n := batch
		for _, d := range m.Shape {
			n *= int(d)
		}
		mask := make([]float32, n)
		drawMask(mask, m.Rate, r.Uint64())
		p.masks = append(p.masks, mask)
	}
	outNames := []string{onnxgen.OutputLoss}
	for _, pr := range tg.Params {
		if !pr.State {
			outNames = append(outNames, "grad/"+pr.Name)
		}
	}
	// Direct convolutions are what the NCHWc kernels are for: check the
	// rewritten graph, which must have rewritten something on this CPU.
	nchwc := formulas.DirectConv
	if p.sess, err = NewSession(tg.Model, tg.Inputs, outNames, SessionOptions{IntraOpThreads: 1, Optimization: TrainOptimization, NCHWc: nchwc}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.sess.Close() })
	if nchwc && goruntime.GOARCH == "amd64" && strings.Contains(arch, "C(") && p.sess.BlockedConvs() == 0 {
		t.Fatalf("%s: no convolution runs on NCHWc kernels (block size %d)", arch, nchwcBlockSize())
	}
	return p
}

// testTensors wraps Go slices as tensors for the runs of a test and closes
// them all at once.
type testTensors struct {
	t   testing.TB
	all []*Tensor[float32]
}

// make wraps data as a tensor of shape; a failure ends the test.
func (ts *testTensors) make(shape []int64, data []float32) *Tensor[float32] {
	ts.t.Helper()
	x, err := NewTensor(shape, data)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.all = append(ts.all, x)
	return x
}

// close closes every tensor made.
func (ts *testTensors) close() {
	for _, x := range ts.all {
		x.Close()
	}
}

// run evaluates the graph with the problem's fixed inputs and dropout masks
// and returns the loss and the gradients.
func (p *gradProblem) run(params [][]float32) (float64, [][]float32) {
	t := p.t
	t.Helper()
	tensors := &testTensors{t: t}
	defer tensors.close()
	mk := tensors.make
	in := p.net.Input
	inputs := []Value{
		mk([]int64{p.n, int64(in.Channels), int64(in.Height), int64(in.Width)}, p.x),
		mk([]int64{p.n, int64(p.net.Output().C)}, p.y),
		mk([]int64{1}, []float32{1}),
		mk([]int64{1}, []float32{1e-3}),
	}
	for i, pr := range p.tg.Params {
		inputs = append(inputs, mk(pr.Shape, params[i]))
	}
	for _, pr := range p.tg.Params {
		for range p.tg.Slots {
			inputs = append(inputs, mk(pr.Shape, make([]float32, pr.Size())))
		}
	}
	for i, m := range p.tg.Masks {
		inputs = append(inputs, mk(append([]int64{p.n}, m.Shape...), p.masks[i]))
	}
	loss := mk([]int64{1}, make([]float32, 1))
	outputs := []Value{loss}
	grads := make([][]float32, len(p.tg.Params))
	for i, pr := range p.tg.Params {
		grads[i] = make([]float32, pr.Size())
		if !pr.State {
			outputs = append(outputs, mk(pr.Shape, grads[i]))
		}
	}
	if err := p.sess.Run(inputs, outputs); err != nil {
		t.Fatal(err)
	}
	return float64(loss.Data()[0]), grads
}

// check compares every gradient element with a central finite difference of
// the float32 graph's loss, step eps:
//
//	|analytic - fd| <= atol + rtol * max(|analytic|, |fd|).
//
// With float32 losses of order 1 the rounding error of fd is about
// 1e-7/eps = 5e-5 for eps = 2e-3, and the truncation error is O(eps^2); a wrong
// formula (a missing transpose, a lost overlap in pooling) is off by tens of
// percent, far outside rtol = 2e-2, atol = 2e-4.
//
// ReLU and max-pooling are not differentiable everywhere: when a step of eps
// moves an activation across zero or changes a pooling winner, the one-sided
// differences right = (L+ - L0)/eps and left = (L0 - L-)/eps disagree, and
// the central difference is off by up to |right - left|/2. Elements where that
// bound exceeds the tolerance are counted, not compared; at most a tenth may
// be so. An element that fails is checked again with half the step: it
// passes if that difference agrees, and counts as a kink if the two
// differences disagree with each other. A formula error is smooth: it shows
// in every element, not in a few, and at both steps.
func (p *gradProblem) check() {
	t := p.t
	t.Helper()
	const atol, rtol = 2e-4, 2e-2
	eps := cmp.Or(p.eps, 2e-3)
	tol := func(a, b float64) float64 { return atol + rtol*math.Max(math.Abs(a), math.Abs(b)) }
	const maxPerTensor = 48
	l0, grads := p.run(p.params)
	worst := 0.0
	total, kinks := 0, 0
	kinked := map[string]int{} // by tensor
	pick := rand.New(rand.NewPCG(11, 13))
	for i, pr := range p.tg.Params {
		if pr.State {
			continue // running statistics: no gradient
		}
		// Every element of small tensors; maxPerTensor of larger ones, at
		// random positions.
		elems := pick.Perm(pr.Size())
		if len(elems) > maxPerTensor {
			elems = elems[:maxPerTensor]
		}
		for _, j := range elems {
			orig := p.params[i][j]
			p.params[i][j] = orig + float32(eps)
			lp, _ := p.run(p.params)
			p.params[i][j] = orig - float32(eps)
			lm, _ := p.run(p.params)
			p.params[i][j] = orig
			total++
			right, left := (lp-l0)/eps, (l0-lm)/eps
			if math.Abs(right-left)/2 > tol(right, left) {
				kinks++
				kinked[pr.Name]++
				continue
			}
			fd := (lp - lm) / (2 * eps)
			an := float64(grads[i][j])
			diff := math.Abs(an - fd)
			if diff > tol(an, fd) {
				// Two kinks within eps on either side can leave the one-sided
				// differences alike and both off. Half the step: a smooth
				// loss gives nearly the same difference (a formula error
				// stays), a kink that the smaller step avoids or meets
				// differently does not.
				p.params[i][j] = orig + float32(eps/2)
				lp2, _ := p.run(p.params)
				p.params[i][j] = orig - float32(eps/2)
				lm2, _ := p.run(p.params)
				p.params[i][j] = orig
				fd2 := (lp2 - lm2) / eps
				switch {
				case math.Abs(an-fd2) <= tol(an, fd2):
					diff = math.Abs(an - fd2)
				case math.Abs(fd-fd2) > tol(fd, fd2):
					kinks++
					kinked[pr.Name]++
					continue
				default:
					t.Errorf("%s[%d]: analytic %.6g, finite difference %.6g (%.6g with half the step)", pr.Name, j, an, fd, fd2)
				}
			}
			worst = math.Max(worst, diff)
		}
	}
	if kinks*10 > total {
		t.Errorf("%d of %d elements straddle a kink (by tensor: %v); the check needs a smaller step or another seed", kinks, total, kinked)
	}
	t.Logf("%d of %d parameters checked (%d at a kink, not compared), worst |analytic - fd| = %.3g",
		total, onnxgenParamCount(p.tg.Params), kinks, worst)
}

func onnxgenParamCount(ps []onnxgen.Param) int {
	n := 0
	for _, p := range ps {
		n += p.Size()
	}
	return n
}

// Every layer kind and padding mode, overlapping pooling, odd sizes, both
// heads and both losses, checked element by element against central finite
// differences of the loss computed by the same graph.
// gradCases are the networks of the gradient checks.
var gradCases = []struct {
	name    string
	arch    string
	in      genotype.Input
	classes int
}{
	// 'valid' then 'same' convolutions, overlapping pooling (3,2) on odd
	// sizes, an FC layer, the SM head, dropout after layers 2 and 4.
	{"valid same overlap fc", "C(3,3,1) - C(4,3,1) - P(3,2) - FC(5) - SM()", genotype.Input{Height: 9, Width: 7, Channels: 2}, 2},
	// Strided 'valid' first convolution on an odd size (output_padding),
	// non-overlapping pooling, a 1x1 convolution, the GAP head, K = 3 softmax.
	{"strided valid gap softmax", "C(3,3,2) - P(2,2) - C(4,1,1) - GAP()", genotype.Input{Height: 11, Width: 11, Channels: 1}, 3},
	// Pooling first (no gradient flows through it), a 5x5 'same'
	// convolution, a strided 'same' convolution, pooling with kernel <
	// stride and uneven padding, Flatten before SM.
	{"pool first strided same", "P(3,2) - C(3,5,1) - C(2,3,2) - P(2,3) - SM()", genotype.Input{Height: 10, Width: 10, Channels: 1}, 2},
	// An FC chain and K = 4 classes.
	{"fc chain softmax", "C(2,3,1) - FC(6) - FC(3) - SM()", genotype.Input{Height: 5, Width: 5, Channels: 1}, 4},
	// A first convolution directly followed by non-overlapping pooling
	// (the blocked convolution of the auto formulation): ceil padding
	// after (9x7 -> 5x4), kernel < stride, padding before and after
	// with a 'same' first convolution behind an image pooling, two
	// input channels, K = 3.
	{"blocked ceil", "C(4,3,1) - P(2,2) - FC(3) - SM()", genotype.Input{Height: 11, Width: 9, Channels: 1}, 2},
	{"blocked kernel < stride", "C(2,3,1) - P(2,3) - FC(3) - SM()", genotype.Input{Height: 10, Width: 11, Channels: 2}, 3},
	{"blocked same padded", "P(2,2) - C(3,3,1) - P(3,3) - SM()", genotype.Input{Height: 14, Width: 14, Channels: 1}, 2},
	// Blocked convolutions after the first layer, whose input gradient
	// is needed: padding before and after the windows, kernel < stride.
	{"blocked inner", "C(2,3,1) - P(2,2) - C(3,3,1) - P(3,3) - FC(4) - SM()", genotype.Input{Height: 16, Width: 16, Channels: 1}, 2},
	{"blocked inner kernel < stride", "C(2,3,1) - P(2,2) - C(3,5,1) - P(2,3) - SM()", genotype.Input{Height: 15, Width: 15, Channels: 1}, 2},
	// An even 'same' kernel: padding after exceeds padding before.
	{"even kernel", "C(2,3,1) - C(3,4,1) - SM()", genotype.Input{Height: 7, Width: 6, Channels: 1}, 2},
	// Logistic regression on the pixels.
	{"softmax only", "SM()", genotype.Input{Height: 3, Width: 4, Channels: 2}, 2},
}

func TestGradientsFiniteDifferences(t *testing.T) {
	initRuntime(t)
	tests := gradCases
	// Each formulation of every gradient, forced, and the compiler's choice.
	variants := []struct {
		name string
		f    onnxgen.Formulas
	}{
		{"auto", onnxgen.Formulas{}},
		{"dilated transpose scatter", onnxgen.Formulas{ConvWeight: onnxgen.ConvWeightDilated, ConvInput: onnxgen.ConvInputTranspose, Pool: onnxgen.PoolScatter}},
		{"patches flipped patches", onnxgen.Formulas{ConvWeight: onnxgen.ConvWeightPatches, ConvInput: onnxgen.ConvInputFlipped, Pool: onnxgen.PoolPatches}},
		{"upsample", onnxgen.Formulas{Pool: onnxgen.PoolUpsample}},
		{"gradient patches transpose", onnxgen.Formulas{ConvWeight: onnxgen.ConvWeightGradPatches, ConvInput: onnxgen.ConvInputTranspose}},
		{"gradient patches both", onnxgen.Formulas{ConvWeight: onnxgen.ConvWeightGradPatches, ConvInput: onnxgen.ConvInputPatches}},
		{"gathered gradient patches transpose", onnxgen.Formulas{ConvWeight: onnxgen.ConvWeightGradGather, ConvInput: onnxgen.ConvInputTranspose}},
		{"gathered gradient patches both", onnxgen.Formulas{ConvWeight: onnxgen.ConvWeightGradGather, ConvInput: onnxgen.ConvInputPatches}},
	}
	for i, tc := range tests {
		for _, v := range variants {
			t.Run(tc.name+"/"+v.name, func(t *testing.T) {
				newGradProblem(t, tc.arch, tc.in, tc.classes, 5, uint64(i+1), v.f).check()
			})
		}
	}
}

// The finite differences above check each graph against its own loss; this
// checks that the formulations agree on the loss and the gradients, so a
// rewritten forward pass (the blocked convolution and pooling) computes the
// same function as the plain one, and so does the graph on ONNX Runtime's
// NCHWc kernels (DirectConv, rewritten by blockConvs), on the networks of
// the gradient checks too. Same weights, data and dropout masks; tolerance
// 1e-5 relative (float32 sums in another order). The batch of 8 is a
// multiple of 4, as the NCHWc weight gradients need.
func TestFormulationsAgree(t *testing.T) {
	initRuntime(t)
	type agreeCase struct {
		arch      string
		in        genotype.Input
		classes   int
		nchwcOnly bool
	}
	cases := []agreeCase{
		{"C(4,3,1) - P(2,2) - FC(3) - SM()", genotype.Input{Height: 11, Width: 9, Channels: 1}, 2, false},
		{"C(2,3,1) - P(2,3) - FC(3) - SM()", genotype.Input{Height: 10, Width: 11, Channels: 2}, 2, false},
		{"P(2,2) - C(3,3,1) - P(3,3) - SM()", genotype.Input{Height: 14, Width: 14, Channels: 1}, 2, false},
		{"C(8,5,1) - P(3,3) - C(4,1,1) - C(2,3,1) - GAP()", genotype.Input{Height: 16, Width: 16, Channels: 1}, 2, false},
		{"C(2,3,1) - P(2,2) - C(3,3,1) - P(3,3) - SM()", genotype.Input{Height: 16, Width: 16, Channels: 1}, 2, false},
		{"C(2,3,1) - P(2,2) - C(3,5,1) - P(2,3) - SM()", genotype.Input{Height: 15, Width: 15, Channels: 1}, 2, false},
		// Windows of F*k*k >= onnxgen.MinGatherRow values: the compiler
		// gathers the gradient's windows (an odd and an even kernel).
		{"C(12,3,1) - C(12,5,1) - GAP()", genotype.Input{Height: 9, Width: 8, Channels: 1}, 2, false},
		{"C(16,3,1) - C(16,4,1) - GAP()", genotype.Input{Height: 7, Width: 6, Channels: 1}, 2, false},
		// NCHWc: whole blocks of channels (16 and 32, both block sizes), 8
		// channels (fewer than a block on AVX-512: read as they are), 12
		// (padded to a block), and filters padded to a block.
		{"C(16,3,1) - C(32,3,1) - C(16,5,1) - C(8,3,1) - C(12,1,1) - C(4,3,1) - GAP()", genotype.Input{Height: 9, Width: 9, Channels: 3}, 3, true},
	}
	for _, tc := range gradCases {
		cases = append(cases, agreeCase{tc.arch, tc.in, tc.classes, true})
	}
	for i, tc := range cases {
		plain := newGradProblem(t, tc.arch, tc.in, tc.classes, 8, uint64(i+1), onnxgen.Formulas{Pool: onnxgen.PoolUpsample, ConvWeight: onnxgen.ConvWeightPatches, ConvInput: onnxgen.ConvInputTranspose})
		l0, g0 := plain.run(plain.params)
		near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-6+1e-5*math.Max(math.Abs(a), math.Abs(b)) }
		others := []struct {
			name string
			f    onnxgen.Formulas
		}{{"auto", onnxgen.Formulas{}}, {"nchwc", onnxgen.Formulas{DirectConv: true}}}
		if tc.nchwcOnly {
			others = others[1:]
		}
		for _, f := range others {
			other := newGradProblem(t, tc.arch, tc.in, tc.classes, 8, uint64(i+1), f.f)
			l1, g1 := other.run(plain.params)
			if !near(l0, l1) {
				t.Errorf("%s: loss %.8g (plain) and %.8g (%s)", tc.arch, l0, l1, f.name)
			}
			for j, p := range plain.tg.Params {
				for e := range g0[j] {
					if !near(float64(g0[j][e]), float64(g1[j][e])) {
						t.Errorf("%s: %s[%d]: gradient %.8g (plain) and %.8g (%s)", tc.arch, p.Name, e, g0[j][e], g1[j][e], f.name)
						break
					}
				}
			}
		}
	}
}

// One optimizer step against the update computed in Go (float64) from the
// graph's own gradients.
func TestOptimizerStep(t *testing.T) {
	initRuntime(t)
	net, err := genotype.MustParse("C(2,3,1) - SM()").Build(genotype.Input{Height: 6, Width: 6, Channels: 1}, 2) // no dropout
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range []onnxgen.Optimizer{onnxgen.Adam{}, onnxgen.SGD{Momentum: 0.9}, onnxgen.SGD{Momentum: 0.9, Nesterov: true}} {
		t.Run(fmt.Sprintf("%s %+v", opt.Name(), opt), func(t *testing.T) {
			checkOptimizerStep(t, net, opt)
		})
	}
}

func checkOptimizerStep(t *testing.T, net *genotype.Net, opt onnxgen.Optimizer) {
	tg, err := onnxgen.Training(net, onnxgen.TrainOptions{Optimizer: opt, Gradients: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(tg.Masks) != 0 {
		t.Fatalf("test network has dropout")
	}
	sess, err := NewSession(tg.Model, tg.Inputs, tg.Outputs, SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	r := rand.New(rand.NewPCG(3, 4))
	params := onnxgen.Init(tg.Params, r)
	tensors := &testTensors{t: t}
	defer tensors.close()
	mk := tensors.make
	const n, step, lr = 4, 3, 0.01
	x := make([]float32, n*36)
	for i := range x {
		x[i] = r.Float32()
	}
	inputs := []Value{mk([]int64{n, 1, 6, 6}, x), mk([]int64{n, 1}, []float32{0, 1, 1, 0}), mk([]int64{1}, []float32{step}), mk([]int64{1}, []float32{lr})}
	for i, p := range tg.Params {
		inputs = append(inputs, mk(p.Shape, params[i]))
	}
	slots := make([][][]float32, len(tg.Params)) // [param][slot]
	for i, p := range tg.Params {
		for range tg.Slots {
			s := make([]float32, p.Size())
			for j := range s {
				s[j] = 0.01 * r.Float32() // slots must be non-negative for Adam's v
			}
			slots[i] = append(slots[i], s)
			inputs = append(inputs, mk(p.Shape, s))
		}
	}
	outs := make([][]float32, len(tg.Outputs))
	var outputs []Value
	shapes := map[string][]int64{}
	for _, p := range tg.Params {
		shapes[p.Name+"/new"] = p.Shape
		shapes["grad/"+p.Name] = p.Shape
		for _, s := range tg.Slots {
			shapes[onnxgen.SlotName(p.Name, s)+"/new"] = p.Shape
		}
	}
	for i, name := range tg.Outputs {
		shape, ok := shapes[name]
		if !ok {
			shape = []int64{1}
		}
		outs[i] = make([]float32, elementsOf(shape))
		outputs = append(outputs, mk(shape, outs[i]))
	}
	if err := sess.Run(inputs, outputs); err != nil {
		t.Fatal(err)
	}
	np := len(tg.Params)
	ns := len(tg.Slots)
	for i := range tg.Params {
		grad := outs[2+np+np*ns+i]
		newP := outs[2+i]
		for j := range params[i] {
			g, p := float64(grad[j]), float64(params[i][j])
			var want float64
			switch o := opt.(type) {
			case onnxgen.Adam:
				b1, b2, eps := 0.5, 0.999, 1e-7
				m := b1*float64(slots[i][0][j]) + (1-b1)*g
				v := b2*float64(slots[i][1][j]) + (1-b2)*g*g
				want = p - lr/(1-math.Pow(b1, step))*m/(math.Sqrt(v)/math.Sqrt(1-math.Pow(b2, step))+eps)
			case onnxgen.SGD:
				mu := float64(o.Momentum)
				v := mu*float64(slots[i][0][j]) + g
				dir := v
				if o.Nesterov {
					dir = g + mu*v
				}
				want = p - lr*dir
			}
			if d := math.Abs(float64(newP[j]) - want); d > 1e-6+1e-5*math.Abs(want) {
				t.Fatalf("%s[%d]: new value %.8g, want %.8g", tg.Params[i].Name, j, newP[j], want)
			}
		}
	}
}

func elementsOf(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}
