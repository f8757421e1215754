package onnxgen

import (
	"math"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/genotype"
)

// maxLevel is one element-wise maximum of maxPoolPairwise: out = Max(a, b),
// where a and b are the previous level's values along axis without its last
// shift, and without its first shift, values.
type maxLevel struct {
	a, b  string
	axis  int64
	shift int64
	prev  int64 // the previous level's length along axis (a's and b's: prev - shift)
}

// maxPoolPairwise emits a stride-1 k x k max pooling of a training graph as
// element-wise maxima of shifted copies, along the width then the height:
// the input padded with -inf, then windows of 2, 4, ... by doubling, and
// the last one of k from two overlapping windows (7 = 4 and 4 three
// apart). Its gradient follows each maximum back (see maxPoolPairwiseGrad),
// with neither MaxPool's Indices nor a scatter, which together took a
// quarter of the reference cell network's step (figures:
// docs/performance.md, "Cell networks' training step").
func (c *compiler) maxPoolPairwise(nd genotype.Node, x string, s *dagStep) string {
	g := c.g
	p := nd.Pads
	cur := g.op("Pad", []string{x, g.vec(0, 0, int64(p.Top), int64(p.Left), 0, 0, int64(p.Bottom), int64(p.Right)), g.scalar(float32(math.Inf(-1)))})
	k := int64(nd.Kernel)
	for _, ax := range []struct{ axis, n int64 }{{3, int64(nd.In.W + p.Left + p.Right)}, {2, int64(nd.In.H + p.Top + p.Bottom)}} {
		n := ax.n
		for span := int64(1); span < k; {
			shift := span
			if 2*span > k {
				shift = k - span
			}
			a := g.op("Slice", []string{cur, g.vec(0), g.vec(n - shift), g.vec(ax.axis)})
			b := g.op("Slice", []string{cur, g.vec(shift), g.vec(n), g.vec(ax.axis)})
			cur = g.op("Max", []string{a, b})
			s.levels = append(s.levels, maxLevel{a: a, b: b, axis: ax.axis, shift: shift, prev: n})
			n -= shift
			span += shift
		}
	}
	return cur
}

// maxPoolPairwiseGrad is the gradient of maxPoolPairwise's input: through
// each maximum, last first, the gradient goes to b where a < b and to a
// otherwise (so a tie goes to the earlier position, as MaxPool's does), each
// part placed back where its operand lay; the padding is cropped at the end.
func (c *compiler) maxPoolPairwiseGrad(nd genotype.Node, s dagStep, gr string) string {
	g := c.g
	for i := len(s.levels) - 1; i >= 0; i-- {
		l := s.levels[i]
		toB := g.op("Mul", []string{gr, g.op("Cast", []string{g.op("Less", []string{l.a, l.b})}, attrInt("to", int64(onnx.TensorProto_FLOAT)))})
		toA := g.op("Sub", []string{gr, toB})
		after, before := make([]int64, 8), make([]int64, 8)
		after[4+l.axis], before[l.axis] = l.shift, l.shift
		gr = g.op("Add", []string{g.op("Pad", []string{toA, g.vec(after...)}), g.op("Pad", []string{toB, g.vec(before...)})})
	}
	p := nd.Pads
	return g.op("Slice", []string{gr, g.vec(int64(p.Top), int64(p.Left)), g.vec(int64(p.Top+nd.In.H), int64(p.Left+nd.In.W)), g.vec(2, 3)})
}
