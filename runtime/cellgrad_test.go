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

// cellGradCases are one-cell networks that apply op at stride 1 (a normal
// cell) and at stride 2 (a reduction cell, whose operations on the cell's
// inputs are strided), to both inputs of a block; every third op also in a
// two-block cell whose second block reads the first, so that gradients meet
// along two paths and pass through concatenations and poolings.
func cellGradCases(op genotype.CellOp) map[string]string {
	o := op.String()
	one := fmt.Sprintf("b0 = add(%s(h1), %s(h0))", o, o)
	cases := map[string]string{
		"stride 1": "normal=1, reductions=0) normal: " + one + " | reduction: " + one,
		"stride 2": "normal=0, reductions=1) normal: " + one + " | reduction: " + one,
	}
	if op%3 == 0 {
		two := fmt.Sprintf("b0 = concat(%s(h1), identity(h0)); b1 = add(%s(b0), max_pool_3x3(h1))", o, o)
		cases["two paths"] = "normal=1, reductions=0) normal: " + two + " | reduction: " + two
	}
	return cases
}

// Every cell operation in both styles, at stride 1 and 2, checked element by
// element against central finite differences (see check), in networks of
// one cell behind a 3-filter stem, on ONNX Runtime's standard kernels and
// on the NCHWc ones training uses. The seeds (101 + op) differ from the
// layer networks': at op + 1 one network had 15 of 142 elements at kinks
// on both sides, over the tenth the check allows.
//
// The NCHWc kernels take a depthwise convolution only with a multiple of 4
// channels, so on them the separable convolutions get cells of 4 filters
// (8 in the reduction cell): the forward pass, weight gradient and input
// gradient of both operations then run on the NCHWc depthwise kernel, which
// the test asserts.
func TestCellGradientsFiniteDifferences(t *testing.T) {
	initRuntime(t)
	in := genotype.Input{Height: 7, Width: 7, Channels: 1}
	for _, kernels := range []string{"standard", "nchwc"} {
		for _, style := range []string{"study", "nasnet"} {
			for op := range genotype.CellOp(genotype.NumCellOps) {
				separable := strings.HasPrefix(op.String(), "sep_conv")
				filters := 2
				if kernels == "nchwc" && separable {
					filters = 4
				}
				for name, cell := range cellGradCases(op) {
					arch := fmt.Sprintf("net(stem=3, filters=%d, style=%s, %s", filters, style, cell)
					t.Run(kernels+"/"+style+"/"+op.String()+"/"+name, func(t *testing.T) {
						p := newGradProblem(t, arch, in, 2+int(op)%2, 4, uint64(op)+101, onnxgen.Formulas{DirectConv: kernels == "nchwc"})
						if kernels == "nchwc" && goruntime.GOARCH == "amd64" {
							if p.sess.BlockedConvs() == 0 {
								t.Fatal("no convolution runs on NCHWc kernels") // the stem at least must
							}
							if separable {
								bg, err := blockConvs(p.tg.Model, nchwcBlockSize())
								if err != nil {
									t.Fatal(err)
								}
								if got := nchwcDepthwiseConvs(t, bg.model); got != 6 {
									t.Fatalf("%d depthwise convolutions run on NCHWc kernels, want 6", got)
								}
								// Fewer channels than a block: images taken as one.
								channels := int64(filters)
								if name == "stride 2" {
									channels *= 2
								}
								if paired := pairedConvs(t, bg.model); (channels < nchwcBlockSize()) != (paired > 0) {
									t.Fatalf("%d convolutions take several images as one, with %d channels and blocks of %d", paired, channels, nchwcBlockSize())
								}
							}
						}
						p.eps = 1e-3
						p.checkSided()
					})
				}
			}
		}
	}
}

// checkSided is check for networks with many kinks: batch normalisation
// centres the inputs of the ReLUs after it at zero, so a step of the check
// often flips one. A kink changes the slope on one side of the point only,
// so an element passes when the central difference agrees with the analytic
// gradient (at step eps or eps/2), or when a one-sided difference does at
// two steps (eps/2 and eps/4: the side without a kink agrees at both). It
// fails when no difference agrees although each side's difference is the
// same at both steps and the sides agree with each other (a smooth loss: a
// formula error), and counts as a kink otherwise; at most a tenth may be.
func (p *gradProblem) checkSided() {
	t := p.t
	t.Helper()
	const atol, rtol = 2e-4, 2e-2
	eps := cmp.Or(p.eps, 2e-3)
	ok := func(a, b float64) bool { return math.Abs(a-b) <= atol+rtol*math.Max(math.Abs(a), math.Abs(b)) }
	l0, grads := p.run(p.params)
	loss := func(i, j int, d float64) float64 {
		orig := p.params[i][j]
		p.params[i][j] = orig + float32(d)
		l, _ := p.run(p.params)
		p.params[i][j] = orig
		return l
	}
	total, kinks := 0, 0
	pick := rand.New(rand.NewPCG(11, 13))
	for i, pr := range p.tg.Params {
		if pr.State {
			continue
		}
		elems := pick.Perm(pr.Size())
		if len(elems) > 48 {
			elems = elems[:48]
		}
		for _, j := range elems {
			total++
			an := float64(grads[i][j])
			if ok(an, (loss(i, j, eps)-loss(i, j, -eps))/(2*eps)) || ok(an, (loss(i, j, eps/2)-loss(i, j, -eps/2))/eps) {
				continue
			}
			r2, r4 := (loss(i, j, eps/2)-l0)/(eps/2), (loss(i, j, eps/4)-l0)/(eps/4)
			l2, l4 := (l0-loss(i, j, -eps/2))/(eps/2), (l0-loss(i, j, -eps/4))/(eps/4)
			if ok(an, r2) && ok(an, r4) || ok(an, l2) && ok(an, l4) {
				continue
			}
			if ok(r2, r4) && ok(l2, l4) && ok(r4, l4) {
				t.Errorf("%s[%d]: analytic %.6g, one-sided differences %.6g and %.6g (right), %.6g and %.6g (left)", pr.Name, j, an, r2, r4, l2, l4)
				continue
			}
			kinks++
		}
	}
	if kinks*10 > total {
		t.Errorf("%d of %d elements straddle a kink on both sides; the check needs another seed", kinks, total)
	}
	t.Logf("%d elements checked, %d at kinks on both sides", total, kinks)
}
