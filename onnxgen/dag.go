package onnxgen

import (
	"fmt"
	"math"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/genotype"
)

// The networks of cell pairs are graphs, not chains: a node may read any
// earlier node, and a value may feed several. forwardDAG and backwardDAG
// compile them with one plain formulation per operation (the chain
// compiler's per-shape choices and fused blocks are for layer sequences);
// the gradients that reach a value along several paths are summed.

// Batch normalisation's constants: PyTorch's running-statistics momentum
// (new = 0.9 old + 0.1 batch) and the epsilon of Zoph et al.'s TensorFlow
// code (docs/study.md, section 4).
const (
	bnMomentum = 0.1
	bnEpsilon  = 1e-3
)

// dagStep records one node's forward values for the backward pass.
type dagStep struct {
	ins     []string   // the inputs' values
	out     string     // the output (after a fused ReLU)
	params  []string   // the node's weights, in Params order
	indices []string   // MaxPool's argmax positions, one per pass (maxPoolSeparable)
	pooled  string     // MaxPool: the input of its second pass
	levels  []maxLevel // MaxPool at stride 1: its maxima (maxPoolPairwise)
	xhat    string     // BatchNorm: the normalised input
	invstd  string     // BatchNorm: 1/sqrt(var + eps), [1, C, 1, 1]
}

// nodeParams returns the weight names of node i (Params order).
func (c *compiler) nodeParamNames(i int) []string {
	var out []string
	for j, p := range c.paramList {
		if p.Node == i {
			out = append(out, c.params[j])
		}
	}
	return out
}

// forwardDAG emits the network and returns the logits [N, U].
func (c *compiler) forwardDAG() string {
	nodes := c.net.Nodes
	c.dag = make([]dagStep, len(nodes))
	for i, nd := range nodes {
		restore := c.scope(i, "fwd")
		s := dagStep{params: c.nodeParamNames(i)}
		for _, src := range c.net.Sources(i) {
			s.ins = append(s.ins, c.value(src))
		}
		s.out = c.forwardNode(i, nd, &s)
		c.dag[i] = s
		restore()
	}
	return c.dag[len(nodes)-1].out
}

// value is the output of node i (-1: the images).
func (c *compiler) value(i int) string {
	if i < 0 {
		return InputImages
	}
	return c.dag[i].out
}

func (c *compiler) forwardNode(i int, nd genotype.Node, s *dagStep) string {
	g := c.g
	x := s.ins[0]
	switch nd.Op {
	case genotype.OpConv:
		y := c.convDAG(i, nd, x, s.params)
		if nd.ReLU {
			y = g.op("Relu", []string{y})
		}
		return y
	case genotype.OpMaxPool:
		if c.train && nd.Stride == 1 && nd.Kernel > 1 && c.formulas.Pool != PoolScatter {
			return c.maxPoolPairwise(nd, x, s)
		}
		if c.train {
			return c.maxPoolSeparable(nd, x, s)
		}
		return g.op("MaxPool", []string{x}, poolAttrs(nd)...)
	case genotype.OpAvgPool:
		return g.op("AveragePool", []string{x}, append(poolAttrs(nd), attrInt("count_include_pad", 0))...)
	case genotype.OpAdd:
		return g.op("Add", s.ins)
	case genotype.OpConcat:
		return g.op("Concat", s.ins, attrInt("axis", 1))
	case genotype.OpReLU:
		return g.op("Relu", []string{x})
	case genotype.OpBatchNorm:
		return c.batchNorm(i, nd, x, s)
	case genotype.OpGlobalAvg:
		return g.op("Flatten", []string{g.op("GlobalAveragePool", []string{x})}, attrInt("axis", 1))
	case genotype.OpDense:
		y := g.op("Gemm", append([]string{x}, s.params...))
		if nd.ReLU {
			y = g.op("Relu", []string{y})
		}
		return y
	}
	panic(fmt.Sprintf("onnxgen: operation %v in a graph network", nd.Op))
}

// maxPoolSeparable emits a strided k x k max pooling of a training graph
// (maxPoolPairwise takes stride 1) as two 1 x k poolings, each with its
// Indices for the gradient: along the rows, then (height and width
// transposed) along the columns. The maximum of a window is the maximum of
// its rows' maxima, and ONNX Runtime's MaxPool with Indices costs about the
// window's size per output, more for a k x 1 window than for a 1 x k one,
// so two passes of 1 x k cost less than one of k x k (docs/performance.md,
// "Cell networks' training step").
func (c *compiler) maxPoolSeparable(nd genotype.Node, x string, s *dagStep) string {
	g := c.g
	k, st := int64(nd.Kernel), int64(nd.Stride)
	p := nd.Pads
	rows := g.opN("MaxPool", []string{x}, 2, attrInts("kernel_shape", 1, k), attrInts("strides", 1, st),
		attrInts("pads", 0, int64(p.Left), 0, int64(p.Right)))
	t := g.op("Transpose", []string{rows[0]}, attrInts("perm", 0, 1, 3, 2))
	cols := g.opN("MaxPool", []string{t}, 2, attrInts("kernel_shape", 1, k), attrInts("strides", 1, st),
		attrInts("pads", 0, int64(p.Top), 0, int64(p.Bottom)))
	s.pooled, s.indices = t, []string{rows[1], cols[1]}
	return g.op("Transpose", []string{cols[0]}, attrInts("perm", 0, 1, 3, 2))
}

// maxPoolSeparableGrad is the gradient of maxPoolSeparable's input.
func (c *compiler) maxPoolSeparableGrad(x string, s dagStep, gr string) string {
	g := c.g
	gt := g.op("Transpose", []string{gr}, attrInts("perm", 0, 1, 3, 2))
	drows := g.op("Transpose", []string{maxPoolGrad(g, s.pooled, s.indices[1], gt)}, attrInts("perm", 0, 1, 3, 2))
	return maxPoolGrad(g, x, s.indices[0], drows)
}

// poolAttrs are a pooling node's window, strides and pads.
func poolAttrs(nd genotype.Node) []*onnx.AttributeProto {
	k, s := int64(nd.Kernel), int64(nd.Stride)
	return []*onnx.AttributeProto{attrInts("kernel_shape", k, k), attrInts("strides", s, s), attrInts("pads", pads(nd)...)}
}

// convAttrs are a convolution's window, strides, pads, dilations and groups.
func convAttrs(nd genotype.Node) []*onnx.AttributeProto {
	kh, kw, d := nd.Window()
	s := int64(nd.Stride)
	attrs := []*onnx.AttributeProto{attrInts("kernel_shape", int64(kh), int64(kw)), attrInts("strides", s, s), attrInts("pads", pads(nd)...)}
	if d > 1 {
		attrs = append(attrs, attrInts("dilations", int64(d), int64(d)))
	}
	if nd.Group() > 1 {
		attrs = append(attrs, attrInt("group", int64(nd.Group())))
	}
	return attrs
}

// convDAG emits convolution node i. A plain or depthwise convolution of the
// training graphs declares its shapes, so that the runtime may run it on
// blocked kernels (see conv).
func (c *compiler) convDAG(i int, nd genotype.Node, x string, params []string) string {
	if f, ok := c.folds[i]; ok {
		params = f
	}
	kh, kw, _ := nd.Window()
	xDims := []int64{-1, int64(nd.In.C), int64(nd.In.H), int64(nd.In.W)}
	switch {
	case nd.Group() == 1:
		return c.conv(append([]string{x}, params...), xDims, []int64{int64(nd.Units), int64(nd.In.C), int64(kh), int64(kw)}, convAttrs(nd)...)
	case depthwise(nd):
		return c.conv(append([]string{x}, params...), xDims, []int64{int64(nd.Units), 1, int64(kh), int64(kw)}, convAttrs(nd)...)
	}
	return c.g.op("Conv", append([]string{x}, params...), convAttrs(nd)...)
}

// depthwise reports whether a convolution has one input channel and one
// filter per group (genotype's separable convolutions).
func depthwise(nd genotype.Node) bool {
	return nd.Group() > 1 && nd.Group() == nd.In.C && nd.Units == nd.In.C
}

// batchNorm emits a batch normalisation of x [N, C, H, W]: in a training
// graph with the batch's statistics, recording the running statistics'
// new values; otherwise (or folded into its convolution) with the running
// ones.
func (c *compiler) batchNorm(i int, nd genotype.Node, x string, s *dagStep) string {
	g := c.g
	scale, shift, mean, variance := s.params[0], s.params[1], s.params[2], s.params[3]
	if c.folded[i] {
		return x
	}
	if !c.train {
		return g.op("BatchNormalization", []string{x, scale, shift, mean, variance}, attrFloat("epsilon", bnEpsilon))
	}
	axes := attrInts("axes", 0, 2, 3)
	mu := g.op("ReduceMean", []string{x}, axes)
	xc := g.op("Sub", []string{x, mu})
	v := g.op("ReduceMean", []string{g.op("Mul", []string{xc, xc})}, axes)
	s.invstd = g.op("Reciprocal", []string{g.op("Sqrt", []string{g.op("Add", []string{v, g.scalar(bnEpsilon)})})})
	s.xhat = g.op("Mul", []string{xc, s.invstd})
	ch := g.vec(1, int64(nd.In.C), 1, 1)
	y := g.op("Add", []string{g.op("Mul", []string{s.xhat, g.op("Reshape", []string{scale, ch})}), g.op("Reshape", []string{shift, ch})})
	// Running statistics: the variance unbiased, as PyTorch keeps it.
	count := g.op("Mul", []string{c.batchSize(), g.scalar(float32(nd.In.H * nd.In.W))})
	unbiased := g.op("Div", []string{g.op("Mul", []string{v, count}), g.op("Sub", []string{count, g.scalar(1)})})
	c.state[mean] = c.ema(mean, mu)
	c.state[variance] = c.ema(variance, unbiased)
	return y
}

// ema is the running statistic r updated with the batch's value b
// [1, C, 1, 1]: (1-m) r + m b, as r's shape [C].
func (c *compiler) ema(r, b string) string {
	g := c.g
	flat := g.op("Reshape", []string{b, g.vec(-1)})
	return g.op("Add", []string{g.op("Mul", []string{r, g.scalar(1 - bnMomentum)}), g.op("Mul", []string{flat, g.scalar(bnMomentum)})})
}

// batchSize is the batch's size N as a [1] float.
func (c *compiler) batchSize() string {
	if c.batchN == "" {
		g := c.g
		c.batchN = g.op("Cast", []string{g.op("Shape", []string{InputImages}, attrInt("start", 0), attrInt("end", 1))}, attrInt("to", int64(onnx.TensorProto_FLOAT)))
	}
	return c.batchN
}

// backwardDAG emits the gradients of the trainable parameters (in Params
// order, state left empty) from the gradient of the loss with respect to the
// logits.
func (c *compiler) backwardDAG(dz string) []string {
	nodes := c.net.Nodes
	index := map[string]int{}
	for i, p := range c.params {
		index[p] = i
	}
	grads := make([]string, len(c.params))
	// needs[i]: node i or a node before it has weights, so its input
	// gradient is wanted.
	needs := make([]bool, len(nodes))
	for i := range nodes {
		needs[i] = len(c.dag[i].params) > 0
		for _, src := range c.net.Sources(i) {
			needs[i] = needs[i] || src >= 0 && needs[src]
		}
	}
	contrib := make([][]string, len(nodes))
	contrib[len(nodes)-1] = []string{dz}
	for i := len(nodes) - 1; i >= 0; i-- {
		if len(contrib[i]) == 0 {
			continue
		}
		restore := c.scope(i, "bwd")
		gr := contrib[i][0]
		if len(contrib[i]) > 1 {
			gr = c.g.op("Sum", contrib[i])
		}
		srcs := c.net.Sources(i)
		want := make([]bool, len(srcs))
		for j, src := range srcs {
			want[j] = src >= 0 && needs[src]
		}
		pg, dx := c.backwardNode(i, nodes[i], gr, want)
		for j, name := range c.dag[i].params {
			if pg[j] != "" {
				grads[index[name]] = pg[j]
			}
		}
		for j, src := range srcs {
			if want[j] {
				contrib[src] = append(contrib[src], dx[j])
			}
		}
		restore()
	}
	return grads
}

// backwardNode returns the gradients of node i's weights (in order) and of
// those of its inputs that are wanted, given the gradient gr of its output.
func (c *compiler) backwardNode(i int, nd genotype.Node, gr string, want []bool) (pg, dx []string) {
	g, s := c.g, c.dag[i]
	dx = make([]string, len(want))
	switch nd.Op {
	case genotype.OpConv:
		if nd.ReLU {
			gr = reluGrad(g, s.out, gr)
		}
		pg = []string{c.convWeightGradDAG(nd, s.ins[0], gr)}
		if !nd.NoBias {
			pg = append(pg, g.op("ReduceSum", []string{gr, g.vec(0, 2, 3)}, attrInt("keepdims", 0)))
		}
		if want[0] {
			dx[0] = c.convInputGradDAG(nd, s.params[0], gr)
		}
	case genotype.OpMaxPool:
		if len(s.levels) > 0 {
			dx[0] = c.maxPoolPairwiseGrad(nd, s, gr)
		} else {
			dx[0] = c.maxPoolSeparableGrad(s.ins[0], s, gr)
		}
	case genotype.OpAvgPool:
		dx[0] = c.avgPoolGrad(nd, gr)
	case genotype.OpAdd:
		dx[0], dx[1] = gr, gr
	case genotype.OpConcat:
		split := make([]int64, len(s.ins))
		for j, src := range c.net.Sources(i) {
			split[j] = int64(c.channels(src))
		}
		copy(dx, g.opN("Split", []string{gr, g.ints(split, int64(len(split)))}, len(split), attrInt("axis", 1)))
	case genotype.OpReLU:
		dx[0] = reluGrad(g, s.out, gr)
	case genotype.OpBatchNorm:
		pg, dx[0] = c.batchNormGrad(nd, s, gr)
	case genotype.OpGlobalAvg:
		hw := float32(nd.In.H * nd.In.W)
		gr4 := g.op("Reshape", []string{gr, g.vec(0, int64(nd.In.C), 1, 1)})
		dx[0] = g.op("Expand", []string{g.op("Mul", []string{gr4, g.scalar(1 / hw)}), g.op("Shape", []string{s.ins[0]})})
	case genotype.OpDense:
		if nd.ReLU {
			gr = reluGrad(g, s.out, gr)
		}
		pg = []string{g.op("Gemm", []string{s.ins[0], gr}, attrInt("transA", 1)), g.op("ReduceSum", []string{gr, g.vec(0)}, attrInt("keepdims", 0))}
		if want[0] {
			dx[0] = g.op("Gemm", []string{gr, s.params[0]}, attrInt("transB", 1))
		}
	}
	return pg, dx
}

// channels is the number of channels node i (-1: the images) outputs.
func (c *compiler) channels(i int) int {
	if i < 0 {
		return c.net.Input.Channels
	}
	return c.net.Nodes[i].Out.C
}

// outputPadding makes a transposed convolution of a node's output gradient
// as large as its input: the rows and columns a stride leaves over.
func outputPadding(nd genotype.Node) *onnx.AttributeProto {
	kh, kw, d := nd.Window()
	oh := nd.In.H - (nd.Stride*(nd.Out.H-1) + (kh-1)*d + 1 - nd.Pads.Top - nd.Pads.Bottom)
	ow := nd.In.W - (nd.Stride*(nd.Out.W-1) + (kw-1)*d + 1 - nd.Pads.Left - nd.Pads.Right)
	return attrInts("output_padding", int64(oh), int64(ow))
}

// convWeightGradDAG emits dL/dW of a convolution from its input x and output
// gradient gr: a depthwise one from the input's windows, any other (one
// group) as a convolution of the input with the gradient as kernel, the
// batch and channels swapped, the stride as dilation and the dilation as
// stride.
func (c *compiler) convWeightGradDAG(nd genotype.Node, x, gr string) string {
	g := c.g
	kh, kw, d := nd.Window()
	if nd.Group() > 1 {
		if !depthwise(nd) {
			panic(fmt.Sprintf("onnxgen: the gradient of a convolution with %d groups is depthwise only", nd.Group()))
		}
		return c.depthwiseWeightGrad(nd, x, gr)
	}
	if kh*kw == 1 && nd.Stride == 1 && nd.Pads == (genotype.Pads{}) {
		return c.convWeightDirect(nd, x, gr)
	}
	s := int64(nd.Stride)
	xt := g.op("Transpose", []string{x}, attrInts("perm", 1, 0, 2, 3))
	gt := g.op("Transpose", []string{gr}, attrInts("perm", 1, 0, 2, 3))
	w := c.conv([]string{xt, gt}, []int64{int64(nd.In.C), -1, int64(nd.In.H), int64(nd.In.W)}, []int64{int64(nd.Units), -1, int64(nd.Out.H), int64(nd.Out.W)},
		attrInts("pads", pads(nd)...), attrInts("dilations", s, s), attrInts("strides", int64(d), int64(d)))
	// A stride that does not divide the padded input leaves rows and
	// columns beyond the kernel: crop to kh x kw.
	rows := (nd.In.H+nd.Pads.Top+nd.Pads.Bottom-(nd.Stride*(nd.Out.H-1)+1))/d + 1
	cols := (nd.In.W+nd.Pads.Left+nd.Pads.Right-(nd.Stride*(nd.Out.W-1)+1))/d + 1
	if rows != kh || cols != kw {
		w = g.op("Slice", []string{w, g.vec(0, 0), g.vec(int64(kh), int64(kw)), g.vec(2, 3)})
	}
	return g.op("Transpose", []string{w}, attrInts("perm", 1, 0, 2, 3))
}

// convInputGradDAG emits dL/dx of a convolution with weights w: at stride 1
// the convolution of the gradient with the kernels flipped (ONNX Runtime's
// grouped ConvTranspose is slower); at a larger stride a transposed
// convolution, or for a depthwise one on direct kernels
// (Formulas.DirectConv) the flipped convolution of the gradient spread out
// by the stride with zeros between (figures: docs/performance.md, "Cell
// networks' training step").
func (c *compiler) convInputGradDAG(nd genotype.Node, w, gr string) string {
	g := c.g
	kh, kw, d := nd.Window()
	p := nd.Pads
	fh, fw := int64((kh-1)*d), int64((kw-1)*d)
	// The flipped convolution's pads: the kernel's span less the forward
	// pad before, and after, what makes the output as large as the input.
	pads := []int64{fh - int64(p.Top), fw - int64(p.Left), fh - int64(p.Bottom), fw - int64(p.Right)}
	grH, grW := int64(nd.Out.H), int64(nd.Out.W)
	if nd.Stride != 1 {
		if !depthwise(nd) || !c.formulas.DirectConv {
			return g.op("ConvTranspose", []string{gr, w}, append(convAttrs(nd), outputPadding(nd))...)
		}
		gr, grH, grW, pads[2], pads[3] = spreadByStride(g, nd, gr, pads[0], pads[1])
	}
	if nd.Group() == 1 {
		w = g.op("Transpose", []string{w}, attrInts("perm", 1, 0, 2, 3))
	}
	wf := g.op("Slice", []string{w, g.vec(-1, -1), g.vec(int64(-kh-1), int64(-kw-1)), g.vec(2, 3), g.vec(-1, -1)})
	attrs := []*onnx.AttributeProto{attrInts("kernel_shape", int64(kh), int64(kw)), attrInts("pads", pads...)}
	if d > 1 {
		attrs = append(attrs, attrInts("dilations", int64(d), int64(d)))
	}
	grDims := []int64{-1, int64(nd.Units), grH, grW}
	switch {
	case nd.Group() == 1:
		return c.conv([]string{gr, wf}, grDims, []int64{int64(nd.In.C), int64(nd.Units), int64(kh), int64(kw)}, attrs...)
	case depthwise(nd):
		return c.conv([]string{gr, wf}, grDims, []int64{int64(nd.In.C), 1, int64(kh), int64(kw)}, append(attrs, attrInt("group", int64(nd.Group())))...)
	}
	return g.op("Conv", []string{gr, wf}, append(attrs, attrInt("group", int64(nd.Group())))...)
}

// spreadByStride returns a strided convolution's output gradient gr spread
// out by the stride s (gr[i, j] at s*i, s*j, zeros between), so that the
// input gradient is a stride-1 convolution of it, its size, and the pads
// after (bottom, right) that make that convolution's output as large as the
// input given the pads before (top, left). The zeros come from a Pad of gr
// with a unit axis after each spatial one; the last s-1 rows and columns
// of zeros this leaves are cropped when the convolution needs fewer.
func spreadByStride(g *graph, nd genotype.Node, gr string, top, left int64) (spread string, h, w, bottom, right int64) {
	s := int64(nd.Stride)
	ho, wo := int64(nd.Out.H), int64(nd.Out.W)
	kh, kw, d := nd.Window()
	C := int64(nd.Units)
	x6 := g.op("Reshape", []string{gr, g.vec(0, C, ho, 1, wo, 1)})
	spread = g.op("Reshape", []string{g.op("Pad", []string{x6, g.vec(0, 0, 0, 0, 0, 0, 0, 0, 0, s-1, 0, s-1)}), g.vec(0, C, ho*s, wo*s)})
	h, w = ho*s, wo*s
	// Output size = h + top + bottom - span + 1 = input size.
	bottom = int64(nd.In.H) - h - top + int64((kh-1)*d)
	right = int64(nd.In.W) - w - left + int64((kw-1)*d)
	if bottom < 0 || right < 0 {
		h, w = h+min(bottom, 0), w+min(right, 0)
		spread = g.op("Slice", []string{spread, g.vec(0, 0), g.vec(h, w), g.vec(2, 3)})
		bottom, right = max(bottom, 0), max(right, 0)
	}
	return spread, h, w, bottom, right
}

// depthwiseWeightGrad: dW[c, 0, a, b] = sum over n and output positions p
// of gr[n, c, p] times the input at window position (a, b) of p. As a
// convolution: the input with batch and channels swapped, as one image of
// C*N channels in C groups, convolved with the gradient (batch and channels
// swapped: C kernels of N channels), the stride as dilation and the
// dilation as stride; cropped to kh x kw like convWeightGradDAG's. ONNX
// Runtime's standard Conv computes it by extracting the input's windows;
// with direct convolutions (Formulas.DirectConv) the compiler writes it as
// a depthwise convolution instead (depthwiseWeightGradPacked).
func (c *compiler) depthwiseWeightGrad(nd genotype.Node, x, gr string) string {
	if c.formulas.DirectConv {
		return c.depthwiseWeightGradPacked(nd, x, gr)
	}
	g := c.g
	kh, kw, d := nd.Window()
	C, N := int64(nd.In.C), int64(-1)
	xt := g.op("Reshape", []string{g.op("Transpose", []string{x}, attrInts("perm", 1, 0, 2, 3)), g.vec(1, N, int64(nd.In.H), int64(nd.In.W))})
	gt := g.op("Transpose", []string{gr}, attrInts("perm", 1, 0, 2, 3))
	s := int64(nd.Stride)
	w := g.op("Conv", []string{xt, gt}, attrInts("pads", pads(nd)...), attrInts("dilations", s, s), attrInts("strides", int64(d), int64(d)), attrInt("group", C))
	rows := (nd.In.H+nd.Pads.Top+nd.Pads.Bottom-(nd.Stride*(nd.Out.H-1)+1))/d + 1
	cols := (nd.In.W+nd.Pads.Left+nd.Pads.Right-(nd.Stride*(nd.Out.W-1)+1))/d + 1
	if rows != kh || cols != kw {
		w = g.op("Slice", []string{w, g.vec(0, 0), g.vec(int64(kh), int64(kw)), g.vec(2, 3)})
	}
	return g.op("Reshape", []string{w, g.vec(C, 1, int64(kh), int64(kw))})
}

// depthwiseWeightGradPacked is depthwiseWeightGrad as one depthwise
// convolution of C channels, which the NCHWc kernels run (4 times faster
// than the grouped form on the standard kernel for the reference network's
// layers; figures: docs/performance.md, "Cell networks' training step").
// The batch goes side by side along the width: each image, padded, takes a
// band of wp columns of one wide image [1, C, hp, N*wp]; the kernel is the
// output gradient likewise, each image's band holding its wo columns and
// zeros up to wp/s (the kernel is dilated by the stride s, so wp is
// rounded up to a multiple of s). At each offset (a, b) within an image,
// the kernel's band of image n then reads only image n's band, so the
// convolution sums the products over the batch by itself; its output is
// dW, cropped to kh x kw.
func (c *compiler) depthwiseWeightGradPacked(nd genotype.Node, x, gr string) string {
	g := c.g
	kh, kw, d := nd.Window()
	C, s := int64(nd.In.C), int64(nd.Stride)
	p := nd.Pads
	ho, wo := int64(nd.Out.H), int64(nd.Out.W)
	hp, wp0 := int64(nd.In.H+p.Top+p.Bottom), int64(nd.In.W+p.Left+p.Right)
	wp := (wp0 + s - 1) / s * s
	gw := wp / s // an image's band of the kernel: its gradient's columns, then zeros
	xp := g.op("Pad", []string{x, g.vec(0, 0, int64(p.Top), int64(p.Left), 0, 0, int64(p.Bottom), int64(p.Right)+wp-wp0)})
	xt := g.op("Reshape", []string{g.op("Transpose", []string{xp}, attrInts("perm", 1, 2, 0, 3)), g.vec(1, C, hp, -1)})
	gt := gr
	if gw > wo {
		gt = g.op("Pad", []string{gr, g.vec(0, 0, 0, 0, 0, 0, 0, gw-wo)})
	}
	gt = g.op("Reshape", []string{g.op("Transpose", []string{gt}, attrInts("perm", 1, 2, 0, 3)), g.vec(C, 1, ho, -1)})
	if gw > wo {
		// The last image's zeros lie past the input's end: drop them.
		gt = g.op("Slice", []string{gt, g.vec(0), g.vec(wo - gw), g.vec(3)})
	}
	// Shapes declared as conv does, so that the runtime may run the
	// convolution on blocked kernels.
	c.declareWide(xt, fmt.Sprintf("N*%d", wp), 1, C, hp)
	if gw > wo {
		c.declareWide(gt, fmt.Sprintf("N*%d-%d", gw, gw-wo), C, 1, ho)
	} else {
		c.declareWide(gt, fmt.Sprintf("N*%d", gw), C, 1, ho)
	}
	w := g.op("Conv", []string{xt, gt}, attrInts("dilations", s, s), attrInts("strides", int64(d), int64(d)), attrInt("group", C))
	rows, cols := (hp-s*(ho-1)-1)/int64(d)+1, (wp-s*(wo-1)-1)/int64(d)+1
	if rows != int64(kh) || cols != int64(kw) {
		w = g.op("Slice", []string{w, g.vec(0, 0), g.vec(int64(kh), int64(kw)), g.vec(2, 3)})
	}
	return g.op("Reshape", []string{w, g.vec(C, 1, int64(kh), int64(kw))})
}

// declareWide declares the shape of a training graph's intermediate value
// like graph.declare, dims then a last dimension that the batch's size sets
// without being it: the symbol width (graph.declare's unknown dimensions
// all stand for the batch N, which ONNX Runtime takes as one size).
func (c *compiler) declareWide(name, width string, dims ...int64) {
	if c.export || c.g.declared[name] {
		return
	}
	v := valueInfo(name, onnx.TensorProto_FLOAT, append(dims, 0))
	shape := v.GetType().GetTensorType().GetShape()
	shape.Dim[len(dims)].Value = &onnx.TensorShapeProto_Dimension_DimParam{DimParam: width}
	c.g.declared[name] = true
	c.g.shapes = append(c.g.shapes, v)
}

// avgPoolGrad spreads each output's gradient evenly over the cells of its
// window that are inside the input (padded cells are not counted): the
// gradient divided by each window's count, transposed-convolved with a
// window of ones per channel.
func (c *compiler) avgPoolGrad(nd genotype.Node, gr string) string {
	g := c.g
	k, C := nd.Kernel, nd.In.C
	inv := make([]float32, nd.Out.H*nd.Out.W)
	for i := range nd.Out.H {
		for j := range nd.Out.W {
			rows := min(i*nd.Stride-nd.Pads.Top+k, nd.In.H) - max(i*nd.Stride-nd.Pads.Top, 0)
			cols := min(j*nd.Stride-nd.Pads.Left+k, nd.In.W) - max(j*nd.Stride-nd.Pads.Left, 0)
			inv[i*nd.Out.W+j] = 1 / float32(rows*cols)
		}
	}
	share := g.op("Mul", []string{gr, g.floats("", inv, 1, 1, int64(nd.Out.H), int64(nd.Out.W))})
	ones := make([]float32, C*k*k)
	for i := range ones {
		ones[i] = 1
	}
	w := g.floats("", ones, int64(C), 1, int64(k), int64(k))
	conv := nd
	conv.Groups, conv.Units = C, C
	return g.op("ConvTranspose", []string{share, w}, append(convAttrs(conv), outputPadding(conv))...)
}

// batchNormGrad returns the gradients of a batch normalisation's scale and
// shift (its running statistics have none) and of its input:
// dx = invstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = gr scale.
// With the sums over the batch and positions S0 = sum(gr) (dshift) and
// S1 = sum(gr xhat) (dscale), over M = N*H*W values, that is
// dx = a gr - (a S1 / M) xhat - a S0 / M, a = invstd scale: per channel an
// affine map of gr and xhat. Written so, it takes 4 element-wise passes
// over the whole tensor besides the two sums, where the formula as it
// stands takes 7 and two more sums (docs/performance.md, "Cell
// networks' training step").
func (c *compiler) batchNormGrad(nd genotype.Node, s dagStep, gr string) ([]string, string) {
	g := c.g
	axes := g.vec(0, 2, 3)
	s1 := g.op("ReduceSum", []string{g.op("Mul", []string{gr, s.xhat}), axes}) // [1, C, 1, 1]
	s0 := g.op("ReduceSum", []string{gr, axes})
	flat := g.vec(-1)
	dscale, dshift := g.op("Reshape", []string{s1, flat}), g.op("Reshape", []string{s0, flat})
	a := g.op("Mul", []string{s.invstd, g.op("Reshape", []string{s.params[0], g.vec(1, int64(nd.In.C), 1, 1)})})
	perValue := g.op("Div", []string{a, g.op("Mul", []string{c.batchSize(), g.scalar(float32(nd.In.H * nd.In.W))})}) // a / M
	slope, offset := g.op("Mul", []string{perValue, s1}), g.op("Mul", []string{perValue, s0})
	dx := g.op("Sub", []string{g.op("Mul", []string{gr, a}), g.op("Add", []string{g.op("Mul", []string{s.xhat, slope}), offset})})
	return []string{dscale, dshift, "", ""}, dx
}

// foldBatchNorms folds each batch normalisation that is the only reader of
// a convolution into that convolution's weight and bias (y = scale (conv(x)
// - mean) / sqrt(var + eps) + shift is a convolution with scaled weights
// and a shifted bias), registering the folded tensors, and returns weights
// with the tensors no longer used set to nil.
func (c *compiler) foldBatchNorms(weights [][]float32) [][]float32 {
	readers := map[int]int{}
	for i := range c.net.Nodes {
		for _, src := range c.net.Sources(i) {
			readers[src]++
		}
	}
	byNode := map[int][]int{} // node -> indices of its weights
	for j, p := range c.paramList {
		byNode[p.Node] = append(byNode[p.Node], j)
	}
	out := append([][]float32(nil), weights...)
	for j, nd := range c.net.Nodes {
		src := c.net.Sources(j)[0]
		if nd.Op != genotype.OpBatchNorm || src < 0 || c.net.Nodes[src].Op != genotype.OpConv || readers[src] != 1 {
			continue
		}
		conv := byNode[src]
		bn := byNode[j] // scale, shift, mean, var
		w, b := foldedConv(weights[conv[0]], biasOf(weights, conv), weights[bn[0]], weights[bn[1]], weights[bn[2]], weights[bn[3]])
		name := c.paramList[conv[0]].Name
		c.folds = mapSet(c.folds, src, []string{c.g.floats(name+".folded", w, c.paramList[conv[0]].Shape...),
			c.g.floats(name+".folded_bias", b, int64(len(b)))})
		c.folded = mapSet(c.folded, j, true)
		for _, k := range append(conv, bn...) {
			out[k] = nil
		}
	}
	return out
}

// biasOf returns the bias of a convolution whose weights are at conv, or nil.
func biasOf(weights [][]float32, conv []int) []float32 {
	if len(conv) < 2 {
		return nil
	}
	return weights[conv[1]]
}

// foldedConv returns the weight and bias of a convolution (weight w
// [F, ...], bias b or nil) followed by a batch normalisation in inference
// mode.
func foldedConv(w, b, scale, shift, mean, variance []float32) ([]float32, []float32) {
	f := len(scale)
	per := len(w) / f
	nw, nb := make([]float32, len(w)), make([]float32, f)
	for o := range f {
		factor := float64(scale[o]) / math.Sqrt(float64(variance[o])+bnEpsilon)
		for k := range per {
			nw[o*per+k] = float32(float64(w[o*per+k]) * factor)
		}
		bias := 0.0
		if b != nil {
			bias = float64(b[o])
		}
		nb[o] = float32((bias-float64(mean[o]))*factor + float64(shift[o]))
	}
	return nw, nb
}

// mapSet sets m[k] = v, making m when it is nil.
func mapSet[K comparable, V any](m map[K]V, k K, v V) map[K]V {
	if m == nil {
		m = map[K]V{}
	}
	m[k] = v
	return m
}
