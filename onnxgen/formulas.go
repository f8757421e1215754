package onnxgen

import (
	"fmt"
	"math"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/genotype"
)

// ConvWeightGrad is a formulation of a convolution's weight gradient. The
// compiler method named after a formulation emits it (convWeightPatches for
// ConvWeightPatches, convWeightGradGather for ConvWeightGradGather, ...), and
// likewise for ConvInputGrad.
type ConvWeightGrad uint8

const (
	ConvWeightAuto ConvWeightGrad = iota // the compiler chooses per shape
	// ConvWeightDilated convolves the input (batch and channels swapped) with
	// the output gradient as kernel, dilated by the stride.
	ConvWeightDilated
	// ConvWeightPatches extracts the input patches with a convolution of
	// one-hot kernels and multiplies them with the output gradient.
	ConvWeightPatches
	// ConvWeightGradPatches (stride 1) extracts the windows of the output
	// gradient instead, as they meet each input position, and multiplies
	// them with the input: the patch tensor has F*k*k values per input
	// position instead of C*k*k per output position, so it is the smaller
	// one when F < C. Strided layers fall back to ConvWeightPatches.
	ConvWeightGradPatches
	// ConvWeightGradGather (stride 1) extracts the same windows of the
	// output gradient as ConvWeightGradPatches, channels last, with one
	// Gather from the padded gradient instead of a one-hot convolution
	// (see MinGatherRow). Strided layers fall back to ConvWeightPatches.
	ConvWeightGradGather
	// convWeightDirect (1x1 kernels, stride 1, no padding) multiplies the
	// output gradient with the input itself, which is its own patch tensor:
	// the compiler's choice for such layers unless another is forced.
	convWeightDirect
)

// ConvInputGrad is a formulation of a convolution's input gradient.
type ConvInputGrad uint8

const (
	ConvInputAuto      ConvInputGrad = iota
	ConvInputTranspose               // ConvTranspose of the output gradient
	ConvInputFlipped                 // Conv with the weights transposed and flipped (stride 1 only)
	// ConvInputPatches multiplies the weights with the output gradient's
	// patches that ConvWeightGradPatches (or ConvWeightGradGather) extracts
	// for the weight gradient:
	// the flipped convolution without its own patch extraction. Layers whose
	// weight gradient uses another formulation fall back to the compiler's
	// choice.
	ConvInputPatches
)

// PoolGrad is a formulation of the max-pooling gradient. Every one gives an
// output gradient to the input positions that hold its window's maximum,
// adding where windows overlap. Where several positions tie for the maximum,
// the formulations that compare values share it equally among them (a valid
// subgradient); PoolScatter gives it to the one MaxPool reports.
type PoolGrad uint8

const (
	PoolAuto PoolGrad = iota
	// PoolScatter adds the gradient at MaxPool's Indices with
	// ScatterElements(reduction "add"); any window. ONNX Runtime's MaxPool
	// with Indices is many times slower than without.
	PoolScatter
	// PoolUpsample repeats the maximum and the gradient over each window
	// (ConvTranspose with a kernel of ones) and keeps the positions equal to
	// the maximum; for kernel <= stride (windows that do not overlap).
	PoolUpsample
	// PoolPatches extracts the windows with one-hot convolutions, compares them
	// with the maximum and adds them back with ConvTranspose of the same
	// kernels (col2im); any window.
	PoolPatches
)

// Formulas chooses the gradient formulations of a training graph. Zero fields
// let the compiler choose by layer shape, from measurements on this project's
// CPU machine. With Pool left at PoolAuto, a convolution directly followed
// by non-overlapping max-pooling may also be compiled as a blocked
// convolution (see blocked), which computes both and their gradients
// without any of the pooling formulations.
//
// Tried and left out: a stride-1 convolution as three channels-last MatMuls
// over its gathered windows, whose window matrix costs more memory traffic
// than the fast products save (docs/performance.md, "Channels-last MatMuls
// (left out)").
type Formulas struct {
	ConvWeight ConvWeightGrad
	ConvInput  ConvInputGrad
	// Pool: in cell networks, a stride-1 max pooling takes pairwise maxima
	// (maxPoolPairwise) unless PoolScatter forces MaxPool's Indices and a
	// scatter; a strided one always takes those, and the other values
	// apply to layer sequences only.
	Pool PoolGrad
	// DirectConv says that the runtime computes a Conv directly, without
	// expanding its input into patches, whether its weights are constants
	// or computed in the graph. The compiler then writes both gradients of a
	// stride-1 convolution as convolutions too (ConvWeightDilated and
	// ConvInputFlipped), where it otherwise extracts patches and multiplies
	// matrices; 1x1 layers keep their direct weight gradient.
	DirectConv bool
}

// MaxPatchValues bounds the patch tensor of ConvWeightPatches per image
// (C*k*k*Ho*Wo values): above it the compiler chooses ConvWeightDilated,
// whose memory does not grow with k*k. At 2^20 (4 MiB per image, 512 MiB
// at batch 128) the CPU preset's layers all use patches, which measured
// faster; the study's widest layers (256 channels, 5x5, 60x60: 23M values
// per image) use the dilated form (docs/performance.md, "Weight-gradient
// formulations").
const MaxPatchValues = 1 << 20

// MinGatherRow is the smallest F*k*k (values per window of the output
// gradient) for which the compiler gathers the gradient's windows
// (ConvWeightGradGather) rather than extracting them with one-hot kernels
// (ConvWeightGradPatches). ONNX Runtime's Gather pays per copied row of F
// values, the one-hot convolution per value, so gathering wins where a window
// holds many values (figures: docs/performance.md, "Gathering the
// gradient's windows").
const MinGatherRow = 256

func (f Formulas) convWeight(nd genotype.Node) ConvWeightGrad {
	direct := nd.Kernel == 1 && nd.Stride == 1 && nd.Pads == (genotype.Pads{})
	switch {
	case (f.ConvWeight == ConvWeightGradPatches || f.ConvWeight == ConvWeightGradGather) && nd.Stride != 1:
		return ConvWeightPatches
	case f.ConvWeight != ConvWeightAuto:
		return f.ConvWeight
	}
	// The direct product for 1x1 layers; else the smaller patch tensor (the
	// gradient's when equal, gathered from MinGatherRow), as extracting
	// patches costs about what it writes; the dilated form, slower on every
	// reference layer, only with DirectConv or above MaxPatchValues (figures:
	// docs/performance.md, "Weight-gradient formulations").
	inPatch := int64(nd.In.C) * int64(nd.Kernel*nd.Kernel) * int64(nd.Out.H*nd.Out.W)
	gradPatch := int64(nd.Units) * int64(nd.Kernel*nd.Kernel) * int64(nd.In.H*nd.In.W)
	if nd.Stride != 1 {
		gradPatch = math.MaxInt64 // ConvWeightGradPatches is for stride 1
	}
	switch {
	case direct:
		return convWeightDirect
	case f.DirectConv && nd.Stride == 1:
		return ConvWeightDilated
	case min(inPatch, gradPatch) > MaxPatchValues:
		return ConvWeightDilated
	case gradPatch <= inPatch && nd.Units*nd.Kernel*nd.Kernel >= MinGatherRow:
		return ConvWeightGradGather
	case gradPatch <= inPatch:
		return ConvWeightGradPatches
	}
	return ConvWeightPatches
}

// convInput: for stride 1, the output gradient's patches when the weight
// gradient extracts them anyway, else the flipped convolution, unless the
// layer has few input channels and many more filters.
//
// ONNX Runtime's ConvTranspose runs per image a GEMM with C*k*k rows and a
// single-threaded col2im, the flipped Conv a GEMM with C rows: the flipped
// form wins from 16 input channels, ConvTranspose's taller GEMM with few
// (figures: docs/performance.md, "Input-gradient formulations").
// ConvTranspose also serves strides above 1, which neither other form covers.
func (f Formulas) convInput(nd genotype.Node) ConvInputGrad {
	w := f.convWeight(nd)
	patches := w == ConvWeightGradPatches || w == ConvWeightGradGather
	switch {
	case nd.Stride != 1 || f.ConvInput == ConvInputTranspose:
		return ConvInputTranspose
	case f.ConvInput == ConvInputFlipped || (f.ConvInput == ConvInputAuto && f.DirectConv):
		return ConvInputFlipped
	case patches:
		return ConvInputPatches
	case nd.In.C <= 8 && nd.Units >= 4*nd.In.C:
		return ConvInputTranspose
	}
	return ConvInputFlipped
}

// convWeightGradient emits the weight gradient of convolution nd (input x,
// output gradient gr) in the formulation convWeight chooses. patches are the
// output gradient's patches when that formulation extracts them, for
// convInputGradient, else "".
func (c *compiler) convWeightGradient(nd genotype.Node, x, gr string) (dw, patches string) {
	switch c.formulas.convWeight(nd) {
	case ConvWeightPatches:
		return c.convWeightPatches(nd, x, gr), ""
	case ConvWeightGradPatches:
		return c.convWeightGradPatches(nd, x, gr)
	case ConvWeightGradGather:
		return c.convWeightGradGather(nd, x, gr)
	case convWeightDirect:
		return c.convWeightDirect(nd, x, gr), ""
	}
	return c.convWeightDilated(nd, x, gr), ""
}

// convInputGradient emits the input gradient of convolution nd (weights w,
// output gradient gr) in the formulation convInput chooses; patches are
// convWeightGradient's.
func (c *compiler) convInputGradient(nd genotype.Node, w, gr, patches string) string {
	switch c.formulas.convInput(nd) {
	case ConvInputPatches:
		if c.formulas.convWeight(nd) == ConvWeightGradGather {
			return c.convInputPatchesGathered(nd, w, patches)
		}
		return c.convInputPatches(nd, w, patches)
	case ConvInputFlipped:
		return c.convInputFlipped(nd, w, gr)
	}
	return c.convInputTranspose(nd, w, gr)
}

func (f Formulas) pool(nd genotype.Node) PoolGrad {
	p := f.Pool
	if p == PoolAuto {
		// MaxPool's Indices and a scatter beat PoolPatches's one-hot
		// ConvTranspose; for kernel <= stride, upsampling beats the forms
		// that need Indices (figures: docs/performance.md, "Max-pooling
		// gradient and blocked convolutions").
		p = PoolScatter
		if nd.Kernel <= nd.Stride {
			p = PoolUpsample
		}
	}
	if p == PoolUpsample && nd.Kernel > nd.Stride {
		p = PoolPatches
	}
	return p
}

// gatesReLU reports whether the pooling gradient formulation also applies
// the ReLU gradient of the layer before (see poolShare).
func (f Formulas) gatesReLU(nd genotype.Node) bool { return f.pool(nd) != PoolScatter }

// oneHot returns the [k*k, 1, k, k] kernels that copy each position of a k x k
// window into its own channel: channel a*k+b holds position (a, b), or
// (k-1-a, k-1-b) with flip.
func (c *compiler) oneHot(k int, flip bool) string {
	key := fmt.Sprintf("onehot%d/%t", k, flip)
	if name, ok := c.g.consts[key]; ok {
		return name
	}
	kk := k * k
	v := make([]float32, kk*kk)
	for a := range k {
		for b := range k {
			pos := a*k + b
			if flip {
				pos = (k-1-a)*k + (k - 1 - b)
			}
			v[(a*k+b)*kk+pos] = 1
		}
	}
	name := c.g.floats("", v, int64(kk), 1, int64(k), int64(k))
	c.g.consts[key] = name
	return name
}

// flippedPads are the pads [top, left, bottom, right] of a stride-1
// layer's output gradient that give the windows meeting each input
// position: k-1-p on each side.
func flippedPads(nd genotype.Node) (top, left, bottom, right int64) {
	k, p := int64(nd.Kernel), nd.Pads
	return k - 1 - int64(p.Top), k - 1 - int64(p.Left), k - 1 - int64(p.Bottom), k - 1 - int64(p.Right)
}

// sumOverBatch returns sum_n a[n] b[n] of two batched matrices.
func (c *compiler) sumOverBatch(a, b string) string {
	return c.g.op("ReduceSum", []string{c.g.op("MatMul", []string{a, b}), c.g.vec(0)}, attrInt("keepdims", 0))
}

// patches returns the k x k windows of x [N, C, H, W] at the node's stride and
// pads as [N*C, k*k, Ho, Wo] (zero padding).
func (c *compiler) patches(nd genotype.Node, x string) string {
	g := c.g
	k := int64(nd.Kernel)
	xr := g.op("Reshape", []string{x, g.vec(-1, 1, int64(nd.In.H), int64(nd.In.W))})
	return g.op("Conv", []string{xr, c.oneHot(nd.Kernel, false)},
		attrInts("kernel_shape", k, k), attrInts("strides", int64(nd.Stride), int64(nd.Stride)), attrInts("pads", pads(nd)...))
}

// convWeightPatches (ConvWeightPatches): dW[f, (c,a,b)] =
// sum_n sum_p gr[n, f, p] * P[n, (c,a,b), p] with P the input patches, as a
// batched MatMul and a sum over the batch.
func (c *compiler) convWeightPatches(nd genotype.Node, x, gr string) string {
	g := c.g
	C, F, k := int64(nd.In.C), int64(nd.Units), int64(nd.Kernel)
	hw := int64(nd.Out.H * nd.Out.W)
	p := g.op("Reshape", []string{c.patches(nd, x), g.vec(-1, C*k*k, hw)})
	gm := g.op("Reshape", []string{gr, g.vec(-1, F, hw)})
	dw := c.sumOverBatch(gm, g.op("Transpose", []string{p}, attrInts("perm", 0, 2, 1)))
	return g.op("Reshape", []string{dw, g.vec(F, C, k, k)})
}

// convWeightDirect (1x1 kernel, stride 1, no padding): dW[f, c] =
// sum_n sum_p gr[n, f, p] * x[n, c, p].
func (c *compiler) convWeightDirect(nd genotype.Node, x, gr string) string {
	g := c.g
	C, F := int64(nd.In.C), int64(nd.Units)
	hw := int64(nd.Out.H * nd.Out.W)
	xm := g.op("Reshape", []string{x, g.vec(-1, C, hw)})
	gm := g.op("Reshape", []string{gr, g.vec(-1, F, hw)})
	dw := c.sumOverBatch(gm, g.op("Transpose", []string{xm}, attrInts("perm", 0, 2, 1)))
	return g.op("Reshape", []string{dw, g.vec(F, C, 1, 1)})
}

// convWeightGradPatches (ConvWeightGradPatches, stride 1): with u = i+a,
// v = j+b over the padded input, dW[f, c, a, b] = sum_n sum_{u,v}
// Q[n, f, (a,b), u, v] * xpad[n, c, u, v], where Q[n, f, (a,b), u, v] =
// gr[n, f, u-a, v-b] (zero outside gr) are the windows of the output
// gradient. The padding of xpad is zero, so only the positions of x itself
// count: Q over them is the convolution of gr with the one-hot kernels
// flipped, padded with k-1-p on each side (p the layer's padding there),
// which gives x's height and width. It returns dW and Q for
// convInputPatches.
func (c *compiler) convWeightGradPatches(nd genotype.Node, x, gr string) (dw, patches string) {
	g := c.g
	C, F, k := int64(nd.In.C), int64(nd.Units), int64(nd.Kernel)
	hw := int64(nd.In.H * nd.In.W)
	g1 := g.op("Reshape", []string{gr, g.vec(-1, 1, int64(nd.Out.H), int64(nd.Out.W))})
	top, left, bottom, right := flippedPads(nd)
	q := g.op("Conv", []string{g1, c.oneHot(nd.Kernel, true)}, attrInts("kernel_shape", k, k), attrInts("pads", top, left, bottom, right))
	qm := g.op("Reshape", []string{q, g.vec(-1, F*k*k, hw)})
	xm := g.op("Reshape", []string{x, g.vec(-1, C, hw)})
	dws := c.sumOverBatch(qm, g.op("Transpose", []string{xm}, attrInts("perm", 0, 2, 1)))
	return g.op("Transpose", []string{g.op("Reshape", []string{dws, g.vec(F, k, k, C)})}, attrInts("perm", 0, 3, 1, 2)), qm
}

// convInputPatches (ConvInputPatches): dx[n, c, u] =
// sum_{f,a,b} W[f, c, a, b] * Q[n, (f,a,b), u], Q the output gradient's
// patches over the input positions (convWeightGradPatches): for stride 1,
// dx[u] = sum_a W[a] * gr[u+p-a], which is Q's definition.
func (c *compiler) convInputPatches(nd genotype.Node, w, patches string) string {
	g := c.g
	C, F, k := int64(nd.In.C), int64(nd.Units), int64(nd.Kernel)
	wm := g.op("Reshape", []string{g.op("Transpose", []string{w}, attrInts("perm", 1, 0, 2, 3)), g.vec(C, F*k*k)})
	dx := g.op("MatMul", []string{wm, patches})
	return g.op("Reshape", []string{dx, g.vec(-1, C, int64(nd.In.H), int64(nd.In.W))})
}

// convInputFlipped (ConvInputFlipped): for stride 1, dx is the convolution
// of the output gradient with the weights' channel axes swapped and their
// window flipped, padded with k-1-p.
func (c *compiler) convInputFlipped(nd genotype.Node, w, gr string) string {
	g := c.g
	k := int64(nd.Kernel)
	wt := g.op("Transpose", []string{w}, attrInts("perm", 1, 0, 2, 3))
	wf := g.op("Slice", []string{wt, g.vec(-1, -1), g.vec(-k-1, -k-1), g.vec(2, 3), g.vec(-1, -1)})
	top, left, bottom, right := flippedPads(nd)
	return c.conv([]string{gr, wf}, []int64{-1, int64(nd.Units), int64(nd.Out.H), int64(nd.Out.W)}, []int64{int64(nd.In.C), int64(nd.Units), k, k},
		attrInts("kernel_shape", k, k), attrInts("pads", top, left, bottom, right))
}

// transposeAttrs are the ConvTranspose attributes that undo a window
// operation of the node (its kernel, stride and pads) back to its input size;
// output_padding makes up the rows and columns a strided window skipped.
func transposeAttrs(nd genotype.Node) []*onnx.AttributeProto {
	k, s := int64(nd.Kernel), int64(nd.Stride)
	oph := nd.In.H - (nd.Stride*(nd.Out.H-1) + nd.Kernel - nd.Pads.Top - nd.Pads.Bottom)
	opw := nd.In.W - (nd.Stride*(nd.Out.W-1) + nd.Kernel - nd.Pads.Left - nd.Pads.Right)
	attrs := []*onnx.AttributeProto{attrInts("kernel_shape", k, k), attrInts("strides", s, s), attrInts("pads", pads(nd)...)}
	if oph != 0 || opw != 0 {
		attrs = append(attrs, attrInts("output_padding", int64(oph), int64(opw)))
	}
	return attrs
}

// poolShare returns the gradient each tied maximum of a window receives:
// gr / count, and 0 where the maximum is 0. The inputs of a pooling layer are
// ReLU outputs (or dropout or pooling of them, or the image, which needs no
// gradient), so a zero maximum means every value of the window is a ReLU
// zero, whose gradient is zero anyway: gating here applies the ReLU gradient
// on the small pooled tensor instead of on the large one before it.
func (c *compiler) poolShare(y, gr, count string) string {
	g := c.g
	positive := g.op("Cast", []string{g.op("Greater", []string{y, g.scalar(0)})}, attrInt("to", int64(onnx.TensorProto_FLOAT)))
	return g.op("Div", []string{g.op("Mul", []string{gr, positive}), count})
}

// poolGradUpsample (kernel <= stride, windows that do not overlap): repeat
// the maximum over its window, mark the input positions equal to it, count
// them per window (AveragePool of the marks times k*k) and repeat each
// window's share of the gradient over the window.
func (c *compiler) poolGradUpsample(nd genotype.Node, x, y, gr string) string {
	g := c.g
	k := int64(nd.Kernel)
	ho, wo := int64(nd.Out.H), int64(nd.Out.W)
	ones := make([]float32, k*k)
	for i := range ones {
		ones[i] = 1
	}
	kernel := g.floats("", ones, 1, 1, k, k)
	up := func(t string) string {
		u := g.op("ConvTranspose", []string{g.op("Reshape", []string{t, g.vec(-1, 1, ho, wo)}), kernel}, transposeAttrs(nd)...)
		return g.op("Reshape", []string{u, g.vec(-1, int64(nd.In.C), int64(nd.In.H), int64(nd.In.W))})
	}
	mask := g.op("Cast", []string{g.op("Equal", []string{x, up(y)})}, attrInt("to", int64(onnx.TensorProto_FLOAT)))
	avg := g.op("AveragePool", []string{mask}, attrInts("kernel_shape", k, k), attrInts("strides", int64(nd.Stride), int64(nd.Stride)),
		attrInts("pads", pads(nd)...), attrInt("count_include_pad", 1))
	count := g.op("Mul", []string{avg, g.scalar(float32(k * k))})
	return g.op("Mul", []string{mask, up(c.poolShare(y, gr, count))})
}

// poolGradPatches (any window): extract the windows, mark the positions equal
// to the maximum, share the gradient among them and add the windows back
// with ConvTranspose of the same one-hot kernels. Zero padding is harmless:
// inputs are non-negative and a zero maximum gets no gradient (poolShare).
func (c *compiler) poolGradPatches(nd genotype.Node, x, y, gr string) string {
	g := c.g
	ho, wo := int64(nd.Out.H), int64(nd.Out.W)
	win := c.patches(nd, x)
	y4 := g.op("Reshape", []string{y, g.vec(-1, 1, ho, wo)})
	mask := g.op("Cast", []string{g.op("Equal", []string{win, y4})}, attrInt("to", int64(onnx.TensorProto_FLOAT)))
	count := g.op("ReduceSum", []string{mask, g.vec(1)}, attrInt("keepdims", 1))
	share := c.poolShare(y4, g.op("Reshape", []string{gr, g.vec(-1, 1, ho, wo)}), count)
	cols := g.op("Mul", []string{mask, share})
	dx := g.op("ConvTranspose", []string{cols, c.oneHot(nd.Kernel, false)}, transposeAttrs(nd)...)
	return g.op("Reshape", []string{dx, g.vec(-1, int64(nd.In.C), int64(nd.In.H), int64(nd.In.W))})
}

// convWeightGradGather (stride 1) is convWeightGradPatches with the
// windows of the output gradient gathered channels last: with gp the
// gradient [N, H+k-1, W+k-1, F] padded with k-1-p on each side,
// Q[n, (h, w), (a, b, f)] = gp[n, h+k-1-a, w+k-1-b, f] =
// gr[n, f, h+p-a, w+p-b], one Gather of F-value rows along the flattened
// positions. Then dW[c, (a, b, f)] = sum_n sum_{h,w} x[n, c, h, w] * Q: a
// batched MatMul and a sum over the batch. It returns dW and Q
// [N, H*W, k*k*F] for convInputPatchesGathered.
func (c *compiler) convWeightGradGather(nd genotype.Node, x, gr string) (dw, patches string) {
	g := c.g
	C, F, k := int64(nd.In.C), int64(nd.Units), int64(nd.Kernel)
	h, w := int64(nd.In.H), int64(nd.In.W)
	hp, wp := h+k-1, w+k-1
	top, left, bottom, right := flippedPads(nd)
	grT := g.op("Transpose", []string{gr}, attrInts("perm", 0, 2, 3, 1))
	gp := g.op("Pad", []string{grT, g.vec(0, top, left, 0, 0, bottom, right, 0)})
	idx := make([]int64, 0, h*w*k*k)
	for i := range h {
		for j := range w {
			for a := range k {
				for b := range k {
					idx = append(idx, (i+k-1-a)*wp+(j+k-1-b))
				}
			}
		}
	}
	q := g.op("Gather", []string{g.op("Reshape", []string{gp, g.vec(-1, hp*wp, F)}), g.ints(idx, h*w, k*k)}, attrInt("axis", 1))
	qm := g.op("Reshape", []string{q, g.vec(-1, h*w, k*k*F)})
	xm := g.op("Reshape", []string{x, g.vec(-1, C, h*w)})
	dws := c.sumOverBatch(xm, qm)
	return g.op("Transpose", []string{g.op("Reshape", []string{dws, g.vec(C, k, k, F)})}, attrInts("perm", 3, 0, 1, 2)), qm
}

// convInputPatchesGathered is ConvInputPatches on the patches of
// convWeightGradGather: dx[n, c, (h, w)] = sum_{a,b,f} W[f, c, a, b] *
// Q[n, (h, w), (a, b, f)], a batched MatMul with Q transposed.
func (c *compiler) convInputPatchesGathered(nd genotype.Node, w, patches string) string {
	g := c.g
	C, F, k := int64(nd.In.C), int64(nd.Units), int64(nd.Kernel)
	wm := g.op("Reshape", []string{g.op("Transpose", []string{w}, attrInts("perm", 1, 2, 3, 0)), g.vec(C, k*k*F)})
	dx := g.op("MatMul", []string{wm, g.op("Transpose", []string{patches}, attrInts("perm", 0, 2, 1))})
	return g.op("Reshape", []string{dx, g.vec(-1, C, int64(nd.In.H), int64(nd.In.W))})
}
