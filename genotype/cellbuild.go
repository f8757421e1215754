package genotype

import "fmt"

// Build stacks the cell pair into a network for images of in and classes
// outputs (docs/study.md, section 4, and where nasctl decides what the study
// leaves open):
//   - every operation outputs the cell's F channels: a pooling whose input
//     has other channels is followed by a 1x1 convolution to F channels (the
//     pooling itself strides); an identity whose input has other channels,
//     or that must stride, is a 1x1 convolution to F channels, strided as
//     the operation is;
//   - a cell first brings each of its inputs to F channels with a 1x1
//     convolution, strided when that input is twice the other's size (the
//     cell before a reduction);
//   - add sums two F-channel results; concat joins them (2F channels); the
//     cell's output joins its unused block outputs;
//   - in a reduction cell the operations on the cell's inputs use stride 2;
//   - what does not reach the classifier is left out: the projection of a
//     cell input that no block reads, and a whole cell whose output the
//     next cells do not read (a reduction cell reading only h0 skips the
//     cell before it).
func (c CellNet) Build(in Input, classes int) (*Net, error) {
	if err := c.Pair.Validate(); err != nil {
		return nil, err
	}
	if err := c.Macro.Validate(); err != nil {
		return nil, err
	}
	if classes < 2 {
		return nil, fmt.Errorf("classes = %d: need at least 2", classes)
	}
	if in.Height < 1 || in.Width < 1 || in.Channels < 1 {
		return nil, fmt.Errorf("input %s: every dimension must be at least 1", in)
	}
	b := &cellBuilder{n: &Net{Genotype: c, Input: in, Classes: classes}, style: c.Macro.Style}
	m := c.Macro
	b.part("stem")
	stem := b.unit(-1, convSpec{f: m.Stem, kh: 3, kw: 3, stride: 1})
	prev2, prev := stem, stem
	f := m.Filters
	for r := range max(m.Reductions, 1) {
		for range m.Normal {
			b.part(fmt.Sprintf("cell %d (normal, %d filters)", len(b.n.Parts), f))
			prev2, prev = prev, b.cell(c.Pair.Normal, prev2, prev, f, false)
		}
		if r < m.Reductions {
			f *= 2
			b.part(fmt.Sprintf("cell %d (reduction, %d filters)", len(b.n.Parts), f))
			prev2, prev = prev, b.cell(c.Pair.Reduction, prev2, prev, f, true)
		}
	}
	b.part("classifier")
	if b.style == StyleNASNet {
		prev = b.add(Node{Op: OpReLU, Inputs: []int{prev}})
	}
	gap := b.add(Node{Op: OpGlobalAvg, Inputs: []int{prev}})
	units := classes
	if classes == 2 {
		units = 1
	}
	b.add(Node{Op: OpDense, Inputs: []int{gap}, Units: units, Classifier: true})
	b.n.prune()
	return b.n, nil
}

// prune removes the nodes the last node does not depend on, keeping the
// order of the others.
func (n *Net) prune() {
	live := make([]bool, len(n.Nodes))
	live[len(n.Nodes)-1] = true
	for i := len(n.Nodes) - 1; i >= 0; i-- {
		if live[i] {
			for _, s := range n.Sources(i) {
				if s >= 0 {
					live[s] = true
				}
			}
		}
	}
	index := make([]int, len(n.Nodes)) // old index -> new
	var kept []Node
	for i, nd := range n.Nodes {
		if !live[i] {
			continue
		}
		ins := make([]int, 0, len(n.Sources(i)))
		for _, s := range n.Sources(i) {
			if s >= 0 {
				s = index[s]
			}
			ins = append(ins, s)
		}
		nd.Inputs = ins
		index[i] = len(kept)
		kept = append(kept, nd)
	}
	n.Nodes = kept
}

// cellBuilder appends the nodes of a cell network.
type cellBuilder struct {
	n     *Net
	style CellStyle
}

// part starts a new part: the nodes added next belong to it.
func (b *cellBuilder) part(name string) { b.n.Parts = append(b.n.Parts, name) }

// shape is the output shape of node i (-1: the image).
func (b *cellBuilder) shape(i int) Shape {
	if i < 0 {
		in := b.n.Input
		return Shape{C: in.Channels, H: in.Height, W: in.Width}
	}
	return b.n.Nodes[i].Out
}

// add appends nd, filling its part, input shape, output shape, parameters
// and MACs, and returns its index.
func (b *cellBuilder) add(nd Node) int {
	nd.Layer = len(b.n.Parts) - 1
	in := b.shape(nd.Inputs[0])
	nd.In, nd.Out = in, in
	switch nd.Op {
	case OpConv, OpMaxPool, OpAvgPool:
		kh, kw, d := nd.Window()
		var oh, ow int
		oh, nd.Pads.Top, nd.Pads.Bottom = same(in.H, (kh-1)*d+1, nd.Stride)
		ow, nd.Pads.Left, nd.Pads.Right = same(in.W, (kw-1)*d+1, nd.Stride)
		nd.Out = Shape{C: in.C, H: oh, W: ow}
		if nd.Op == OpConv {
			nd.Out.C = nd.Units
			perOut := int64(kh) * int64(kw) * int64(in.C/nd.Group())
			nd.MACs = nd.Out.Size() * perOut
			nd.Params = int64(nd.Units) * perOut
			if !nd.NoBias {
				nd.Params += int64(nd.Units)
			}
		}
	case OpConcat:
		nd.Out.C = 0
		for _, i := range nd.Inputs {
			nd.Out.C += b.shape(i).C
		}
	case OpBatchNorm:
		nd.Params = 2 * int64(in.C) // scale and shift; the running statistics are state
	case OpGlobalAvg:
		nd.Out = Shape{C: in.C, H: 1, W: 1, Flat: true}
	case OpDense:
		nd.Out = Shape{C: nd.Units, H: 1, W: 1, Flat: true}
		nd.Params = in.Size()*int64(nd.Units) + int64(nd.Units)
		nd.MACs = in.Size() * int64(nd.Units)
	}
	b.n.Nodes = append(b.n.Nodes, nd)
	return len(b.n.Nodes) - 1
}

// convSpec is one convolution of an operation.
type convSpec struct {
	f, kh, kw, stride, dilation int
	depthwise                   bool // groups = channels, as many filters as channels
}

// unit emits an operation's convolutions on in in the builder's style:
// study, each convolution with a bias and a ReLU (a depthwise one with
// neither: its pointwise convolution follows); nasnet, a ReLU, the
// convolutions without bias, then batch normalisation.
func (b *cellBuilder) unit(in int, convs ...convSpec) int {
	nasnet := b.style == StyleNASNet
	cur := in
	if nasnet && in >= 0 {
		cur = b.add(Node{Op: OpReLU, Inputs: []int{cur}})
	}
	for _, c := range convs {
		nd := Node{Op: OpConv, Inputs: []int{cur}, Kernel: c.kh, Stride: c.stride, Units: c.f, NoBias: nasnet || c.depthwise, ReLU: !nasnet && !c.depthwise}
		if c.kw != c.kh {
			nd.KernelW = c.kw
		}
		if c.dilation > 1 {
			nd.Dilation = c.dilation
		}
		if c.depthwise {
			nd.Units, nd.Groups = b.shape(cur).C, b.shape(cur).C
		}
		cur = b.add(nd)
	}
	if nasnet {
		cur = b.add(Node{Op: OpBatchNorm, Inputs: []int{cur}})
	}
	return cur
}

// project is a 1x1 convolution of in to f channels at stride.
func (b *cellBuilder) project(in, f, stride int) int {
	return b.unit(in, convSpec{f: f, kh: 1, kw: 1, stride: stride})
}

// calibrate brings in to f channels, strided to half its size when it is
// twice the size of the cell's other input (of shape like).
func (b *cellBuilder) calibrate(in int, f int, like Shape) int {
	s := b.shape(in)
	stride := 1
	if s.H > like.H {
		stride = 2
	}
	if s.C == f && stride == 1 {
		return in
	}
	return b.project(in, f, stride)
}

// op emits operation o on in with f output channels at stride.
func (b *cellBuilder) op(o CellOp, in, f, stride int) int {
	square := func(k, dilation int) int {
		return b.unit(in, convSpec{f: f, kh: k, kw: k, stride: stride, dilation: dilation})
	}
	sep := func(k int) int {
		return b.unit(in, convSpec{kh: k, kw: k, stride: stride, depthwise: true}, convSpec{f: f, kh: 1, kw: 1, stride: 1})
	}
	pool := func(op Op, k int) int {
		p := b.add(Node{Op: op, Inputs: []int{in}, Kernel: k, Stride: stride})
		if b.shape(p).C == f {
			return p
		}
		return b.project(p, f, 1)
	}
	switch o {
	case CellIdentity:
		if stride == 1 && b.shape(in).C == f {
			return in
		}
		return b.project(in, f, stride)
	case CellConv1x3Then3x1, CellConv1x7Then7x1:
		k := 3
		if o == CellConv1x7Then7x1 {
			k = 7
		}
		return b.unit(in, convSpec{f: f, kh: 1, kw: k, stride: stride}, convSpec{f: f, kh: k, kw: 1, stride: 1})
	case CellDilConv3x3:
		return square(3, 2)
	case CellAvgPool3x3:
		return pool(OpAvgPool, 3)
	case CellMaxPool3x3:
		return pool(OpMaxPool, 3)
	case CellMaxPool5x5:
		return pool(OpMaxPool, 5)
	case CellMaxPool7x7:
		return pool(OpMaxPool, 7)
	case CellConv1x1:
		return square(1, 1)
	case CellConv3x3:
		return square(3, 1)
	case CellSepConv3x3:
		return sep(3)
	case CellSepConv5x5:
		return sep(5)
	case CellSepConv7x7:
		return sep(7)
	}
	panic(fmt.Sprintf("genotype: unknown cell operation %d", o))
}

// cell emits one cell reading prev2 (h0) and prev (h1) with f filters and
// returns its output node.
func (b *cellBuilder) cell(c Cell, prev2, prev int, f int, reduce bool) int {
	like := b.shape(prev)
	h0 := b.calibrate(prev2, f, like)
	states := []int{h0, b.calibrate(prev, f, like)}
	for _, blk := range c.Blocks {
		stride := func(input int) int {
			if reduce && input < 2 {
				return 2
			}
			return 1
		}
		x1 := b.op(blk.Op1, states[blk.In1], f, stride(blk.In1))
		x2 := b.op(blk.Op2, states[blk.In2], f, stride(blk.In2))
		op := OpAdd
		if blk.Combine == CellConcat {
			op = OpConcat
		}
		states = append(states, b.add(Node{Op: op, Inputs: []int{x1, x2}}))
	}
	outs := c.Outputs()
	if len(outs) == 1 {
		return states[2+outs[0]]
	}
	ins := make([]int, len(outs))
	for i, k := range outs {
		ins[i] = states[2+k]
	}
	return b.add(Node{Op: OpConcat, Inputs: ins})
}
