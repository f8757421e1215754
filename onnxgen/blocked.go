package onnxgen

import (
	"fmt"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/genotype"
)

// A blocked convolution computes a convolution, its ReLU and the max-pooling
// after it (windows that do not overlap: pool kernel q <= stride s) with the
// pooling windows laid out along the channels: one strided convolution whose
// output channel (i, j, f) at pooled position (ho, wo) is the original
// output of filter f at (s*ho - top + i, s*wo - left + j), the window's
// position (i, j). Its weights W' [q*q*F, C, k+q-1, k+q-1] are the original
// weights shifted by (i, j), and the pooling is a ReduceMax over the q*q
// window positions. The backward pass then stays in that layout: the
// gradient reaches every window position by broadcasting, with no upsampling
// and no interleaving of positions, which are slow on ONNX Runtime's CPU
// provider (figures: docs/performance.md, "Max-pooling gradient and blocked
// convolutions").
//
// The input gradient, when needed, is the strided convolution's:
// ConvTranspose of the gradient with W'. Which convolution and pooling
// pairs are blocked is blockable's choice.
type blocked struct {
	conv, pool genotype.Node
	q, s       int64   // window size and stride of the pooling
	kb         int64   // kernel of the strided convolution: k + q - 1
	xp         string  // x padded for the strided convolution
	hp, wp     int64   // its height and width
	pads       []int64 // the padding of xp: top, left, bottom, right
	wb         string  // the blocked weights W'
	r3         string  // ReLU outputs [N, q*q, F*Ho*Wo]
	y3         string  // pooled [N, 1, F*Ho*Wo]
	ho, wo     int64
}

// blockable reports whether the convolution conv and the max-pooling pool
// after it are compiled as a blocked convolution; first says that conv is
// the network's first layer with parameters.
//
// The blocked convolution does (k+q-1)^2/k^2 times the arithmetic of the
// convolution, in its forward pass, its weight gradient and its input
// gradient (ConvTranspose with W'), and saves the pooling's upsampled
// gradient. It paid for the first layer, which reads the image (few
// channels) and needs no input gradient, and further in up to twice the
// arithmetic (figures: docs/performance.md, "Max-pooling gradient and
// blocked convolutions").
func (f Formulas) blockable(conv, pool genotype.Node, first bool) bool {
	if f.Pool != PoolAuto || conv.Op != genotype.OpConv || conv.Stride != 1 ||
		pool.Op != genotype.OpMaxPool || pool.Kernel > pool.Stride {
		return false
	}
	k, kb := conv.Kernel, conv.Kernel+pool.Kernel-1
	return first || kb*kb <= 2*k*k
}

// blockedForward emits the blocked convolution, ReLU and pooling of conv
// (weights w, bias b) on x and returns the pooled output [N, F, Ho, Wo].
func (c *compiler) blockedForward(conv, pool genotype.Node, x, w, b string) (*blocked, string) {
	g := c.g
	bl := &blocked{conv: conv, pool: pool, q: int64(pool.Kernel), s: int64(pool.Stride), ho: int64(pool.Out.H), wo: int64(pool.Out.W)}
	k, q, s := int64(conv.Kernel), bl.q, bl.s
	bl.kb = k + q - 1
	F := int64(conv.Units)
	// The strided convolution reads x with the convolution's padding and the
	// pooling's top and left padding before it, and enough zero rows and
	// columns after it for the last window.
	top := int64(conv.Pads.Top + pool.Pads.Top)
	left := int64(conv.Pads.Left + pool.Pads.Left)
	bottom := max(0, s*(bl.ho-1)-top+bl.kb-int64(conv.In.H))
	right := max(0, s*(bl.wo-1)-left+bl.kb-int64(conv.In.W))
	bl.hp, bl.wp = int64(conv.In.H)+top+bottom, int64(conv.In.W)+left+right
	if (bl.hp-bl.kb)/s+1 != bl.ho || (bl.wp-bl.kb)/s+1 != bl.wo {
		panic(fmt.Sprintf("onnxgen: %v: padded input %dx%d does not give %dx%d windows", bl, bl.hp, bl.wp, bl.ho, bl.wo))
	}
	bl.pads = []int64{top, left, bottom, right}
	bl.xp = x
	if top+left+bottom+right > 0 {
		bl.xp = g.op("Pad", []string{x, g.vec(0, 0, top, left, 0, 0, bottom, right)})
	}
	// W'[(i,j,f), c] = W[f, c] shifted down by i and right by j.
	shifted := make([]string, 0, q*q)
	biases := make([]string, 0, q*q)
	for i := range q {
		for j := range q {
			shifted = append(shifted, g.op("Pad", []string{w, g.vec(0, 0, i, j, 0, 0, q-1-i, q-1-j)}))
			biases = append(biases, b)
		}
	}
	bl.wb = g.op("Concat", shifted, attrInt("axis", 0))
	bb := g.op("Concat", biases, attrInt("axis", 0))
	z := c.conv([]string{bl.xp, bl.wb, bb}, []int64{-1, int64(conv.In.C), bl.hp, bl.wp}, []int64{q * q * F, int64(conv.In.C), bl.kb, bl.kb},
		attrInts("kernel_shape", bl.kb, bl.kb), attrInts("strides", s, s))
	r := g.op("Relu", []string{z})
	if valid := c.blockValidity(bl); valid != "" {
		r5 := g.op("Reshape", []string{r, g.vec(-1, q*q, F, bl.ho, bl.wo)})
		r = g.op("Mul", []string{r5, valid})
	}
	bl.r3 = g.op("Reshape", []string{r, g.vec(-1, q*q, F*bl.ho*bl.wo)})
	bl.y3 = g.op("ReduceMax", []string{bl.r3}, attrInts("axes", 1), attrInt("keepdims", 1))
	return bl, g.op("Reshape", []string{bl.y3, g.vec(-1, F, bl.ho, bl.wo)})
}

// blockValidity returns a [q*q, 1, Ho, Wo] constant that is 1 where window
// position (i, j) of pooled position (ho, wo) lies on the convolution's
// output and 0 on the pooling's padding, or "" when there is no padding.
func (c *compiler) blockValidity(bl *blocked) string {
	q, s := bl.q, bl.s
	top, left := int64(bl.pool.Pads.Top), int64(bl.pool.Pads.Left)
	h1, w1 := int64(bl.conv.Out.H), int64(bl.conv.Out.W)
	v := make([]float32, q*q*bl.ho*bl.wo)
	all := true
	for i := range q {
		for j := range q {
			for ho := range bl.ho {
				for wo := range bl.wo {
					h, w := s*ho-top+i, s*wo-left+j
					if h >= 0 && h < h1 && w >= 0 && w < w1 {
						v[((i*q+j)*bl.ho+ho)*bl.wo+wo] = 1
					} else {
						all = false
					}
				}
			}
		}
	}
	if all {
		return ""
	}
	return c.g.floats("", v, q*q, 1, bl.ho, bl.wo)
}

// blockedBackward emits the weight and bias gradients of the blocked
// convolution from the gradient gr of the pooled output [N, F, Ho, Wo], and
// with needIn the gradient of its input.
//
// A window's gradient goes to the positions that hold its maximum, shared
// equally among ties, and only where the maximum is positive (elsewhere the
// ReLU's gradient is zero): gs = mask * gr * [y > 0] / count, which is the
// gradient of the strided convolution's output (where the mask is set the
// ReLU output equals a positive maximum, so the ReLU passes the gradient).
// Then, with P' the k' x k' patches of the padded input at stride s,
// dW'[(i,j,f), (c,r,t)] = sum_n sum_{ho,wo} gs * P', and
// dW[f, c, a, b] = sum_{i,j} dW'[(i,j,f), c, a+i, b+j].
func (c *compiler) blockedBackward(bl *blocked, gr string, needIn bool) (dw, db, dx string) {
	g := c.g
	q, s, kb := bl.q, bl.s, bl.kb
	F, C, k := int64(bl.conv.Units), int64(bl.conv.In.C), int64(bl.conv.Kernel)
	hw := bl.ho * bl.wo
	mask := g.op("Cast", []string{g.op("Equal", []string{bl.r3, bl.y3})}, attrInt("to", int64(onnx.TensorProto_FLOAT)))
	count := g.op("ReduceSum", []string{mask, g.vec(1)}, attrInt("keepdims", 1))
	positive := g.op("Cast", []string{g.op("Greater", []string{bl.y3, g.scalar(0)})}, attrInt("to", int64(onnx.TensorProto_FLOAT)))
	gp := g.op("Mul", []string{g.op("Reshape", []string{gr, g.vec(-1, 1, F*hw)}), positive})
	gs := g.op("Mul", []string{mask, g.op("Div", []string{gp, count})}) // [N, q*q, F*Ho*Wo]
	// A window's shares add up to gp (count shares of gp/count), so the
	// bias gradient sums the small pooled tensor.
	db = g.op("ReduceSum", []string{g.op("Reshape", []string{gp, g.vec(-1, F, hw)}), g.vec(0, 2)}, attrInt("keepdims", 0))

	x1 := g.op("Reshape", []string{bl.xp, g.vec(-1, 1, bl.hp, bl.wp)})
	p := g.op("Conv", []string{x1, c.oneHot(int(kb), false)}, attrInts("kernel_shape", kb, kb), attrInts("strides", s, s))
	pm := g.op("Reshape", []string{p, g.vec(-1, C*kb*kb, hw)})
	gm := g.op("Reshape", []string{gs, g.vec(-1, q*q*F, hw)})
	dwb := g.op("Reshape", []string{c.sumOverBatch(gm, g.op("Transpose", []string{pm}, attrInts("perm", 0, 2, 1))), g.vec(q*q, F, C, kb, kb)})
	parts := make([]string, 0, q*q)
	for i := range q {
		for j := range q {
			// dW'[(i,j), :, :, i:i+k, j:j+k]
			parts = append(parts, g.op("Reshape", []string{
				g.op("Slice", []string{dwb, g.vec(i*q+j, 0, 0, i, j), g.vec(i*q+j+1, F, C, i+k, j+k)}),
				g.vec(F, C, k, k)}))
		}
	}
	dw = parts[0]
	if len(parts) > 1 {
		dw = g.op("Sum", parts)
	}
	if needIn {
		// The input gradient of the strided convolution, cropped from the
		// padded input back to x; output_padding makes up the rows and
		// columns after the last window.
		oph := bl.hp - (s*(bl.ho-1) + kb)
		opw := bl.wp - (s*(bl.wo-1) + kb)
		attrs := []*onnx.AttributeProto{attrInts("kernel_shape", kb, kb), attrInts("strides", s, s), attrInts("pads", bl.pads...)}
		if oph != 0 || opw != 0 {
			attrs = append(attrs, attrInts("output_padding", oph, opw))
		}
		gs4 := g.op("Reshape", []string{gs, g.vec(-1, q*q*F, bl.ho, bl.wo)})
		dx = g.op("ConvTranspose", []string{gs4, bl.wb}, attrs...)
	}
	return dw, db, dx
}

// String names the blocked convolution in errors.
func (bl *blocked) String() string {
	return fmt.Sprintf("blocked conv %dx%d + pool %d/%d", bl.conv.Kernel, bl.conv.Kernel, bl.q, bl.s)
}
