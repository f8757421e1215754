package runtime

import (
	"errors"
	"fmt"
	"sync"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// ONNX Runtime's CPU provider has two convolution kernels: its Conv expands
// each image into patches and multiplies them with the weights; its "NCHWc"
// kernels work on channels in blocks of the vector width and convolve
// directly, about twice as fast on the reference networks' layers. Its
// optimizer uses them only for weights that are constants of the graph, so a
// training graph, whose weights are inputs, never gets them (figures:
// docs/performance.md, "NCHWc convolutions").
//
// blockConvs rewrites such a graph so that it does: every Conv whose input
// and weight shapes the graph declares (onnxgen declares them for the
// convolutions of its forward pass and gradients) becomes ONNX Runtime's
// com.microsoft.nchwc.Conv, with the input reordered into blocks
// (ReorderInput), the weights reordered in the graph into the blocked filter
// layout, and the result reordered back (ReorderOutput). A ReLU that is the
// convolution's only consumer is fused into it. With these kernels, the
// compiler writes the gradients of stride-1 convolutions as convolutions too
// (onnxgen.Formulas.DirectConv).
//
// The rewritten graph holds ONNX Runtime's own operators, so it runs on the
// CPU provider only. onnxgen's graphs stay standard ONNX, and exported models
// (constant weights) are left to ONNX Runtime's optimizer.

// nchwcDomain is the operator domain of ONNX Runtime's blocked-layout kernels.
const nchwcDomain = "com.microsoft.nchwc"

var nchwc struct {
	sync.Mutex
	probed bool
	block  int64
}

// nchwcBlockSize returns the channel block of ONNX Runtime's NCHWc kernels on
// this CPU (16 with AVX-512, 8 with AVX2), or 0 when the library has none
// (another CPU architecture, or a build without them) or is not loaded yet.
// It asks the library once: ReorderInput pads a tensor of 4 channels to one
// block.
func nchwcBlockSize() int64 {
	nchwc.Lock()
	defer nchwc.Unlock()
	if !nchwc.probed {
		block, err := probeNCHWc()
		if errors.Is(err, ErrNotInitialized) {
			return 0
		}
		nchwc.block, nchwc.probed = block, true
	}
	return nchwc.block
}

// probeNCHWc runs ReorderInput on 4 channels and returns the channels it
// gives (0: none). Only ErrNotInitialized is returned as an error: any other
// failure means the library cannot run the blocked kernels.
func probeNCHWc() (int64, error) {
	g := &onnx.GraphProto{
		Name:   "nasctl_nchwc_probe",
		Node:   []*onnx.NodeProto{{Name: "reorder", OpType: "ReorderInput", Domain: nchwcDomain, Input: []string{"x"}, Output: []string{"y"}}},
		Input:  []*onnx.ValueInfoProto{floatInfo("x", 1, 4, 1, 1)},
		Output: []*onnx.ValueInfoProto{floatInfo("y", 1, -1, 1, 1)},
	}
	b, err := proto.Marshal(&onnx.ModelProto{IrVersion: 8, Graph: g,
		OpsetImport: []*onnx.OperatorSetIdProto{{Domain: "", Version: 17}, {Domain: nchwcDomain, Version: 1}}})
	if err != nil {
		return 0, nil
	}
	s, err := NewSession(b, []string{"x"}, []string{"y"}, SessionOptions{IntraOpThreads: 1, Optimization: OptDisabled})
	if err != nil {
		if errors.Is(err, ErrNotInitialized) {
			return 0, err
		}
		return 0, nil
	}
	defer s.Close()
	x, err := NewZeroTensor[float32](1, 4, 1, 1)
	if err != nil {
		return 0, nil
	}
	defer x.Close()
	for _, block := range []int64{16, 8} {
		y, err := NewZeroTensor[float32](1, block, 1, 1)
		if err != nil {
			return 0, nil
		}
		err = s.Run([]Value{x}, []Value{y})
		y.Close()
		if err == nil {
			return block, nil
		}
	}
	return 0, nil
}

// floatInfo is the value info of a float32 tensor; -1 is a symbolic dimension.
func floatInfo(name string, dims ...int64) *onnx.ValueInfoProto {
	shape := &onnx.TensorShapeProto{}
	for i, d := range dims {
		dim := &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}}
		if d < 0 {
			dim.Value = &onnx.TensorShapeProto_Dimension_DimParam{DimParam: fmt.Sprintf("d%d", i)}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
		TensorType: &onnx.TypeProto_Tensor{ElemType: int32(onnx.TensorProto_FLOAT), Shape: shape}}}}
}

// blockedGraph is the result of blockConvs.
type blockedGraph struct {
	model []byte
	convs int // convolutions rewritten
	// batchChannels: the graph runs only on batches of a multiple of 4
	// images, because a rewritten convolution has the batch as its channels
	// (a weight gradient: ReorderInput's limit) or takes several images as
	// one (a depthwise convolution of fewer channels than a block, see
	// convPlan.images).
	batchChannels bool
}

// blockConvs rewrites the declared convolutions of model into ONNX Runtime's
// NCHWc kernels for channel blocks of block (see nchwcBlockSize). A
// convolution qualifies when it has 2-D weights of a known filter count, no
// auto_pad, and either one group and input channels fewer than a block (read
// as they are) or a multiple of 4 or unknown (reordered, and padded with
// zeros to whole blocks), or is depthwise (as many groups as input channels
// and filters, a multiple of 4; its kernel may be of a size known only when
// run). Filters are padded to whole blocks with zero weights and cropped
// again by ReorderOutput.
func blockConvs(model []byte, block int64) (*blockedGraph, error) {
	return blockConvsPairing(model, block, false)
}

// blockConvsPairing is blockConvs; alwaysPair lets narrow depthwise
// convolutions take several images as one even in a graph without the
// batch as channels (for tests of that rewrite).
func blockConvsPairing(model []byte, block int64, alwaysPair bool) (*blockedGraph, error) {
	m := &onnx.ModelProto{}
	if err := proto.Unmarshal(model, m); err != nil {
		return nil, fmt.Errorf("nchwc: reading the model: %w", err)
	}
	g := m.GetGraph()
	shapes := map[string][]int64{}
	for _, vs := range [][]*onnx.ValueInfoProto{g.GetInput(), g.GetValueInfo()} {
		for _, v := range vs {
			var dims []int64
			for _, d := range v.GetType().GetTensorType().GetShape().GetDim() {
				if _, ok := d.GetValue().(*onnx.TensorShapeProto_Dimension_DimValue); ok {
					dims = append(dims, d.GetDimValue())
				} else {
					dims = append(dims, -1)
				}
			}
			shapes[v.GetName()] = dims
		}
	}
	consumers := map[string]int{}
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			consumers[in]++
		}
	}
	for _, o := range g.GetOutput() {
		consumers[o.GetName()]++
	}
	reluOf := map[string]*onnx.NodeProto{} // the Relu reading a value
	for _, n := range g.GetNode() {
		if n.GetOpType() == "Relu" && isONNXDomain(n.GetDomain()) {
			reluOf[n.GetInput()[0]] = n
		}
	}

	r := &rewriter{block: block, blockedOf: map[string]string{}}
	r.pairImages = alwaysPair || hasBatchChannels(r, g, shapes)
	fused := map[*onnx.NodeProto]bool{}
	out := &blockedGraph{}
	var nodes []*onnx.NodeProto
	for _, n := range g.GetNode() {
		if fused[n] {
			continue
		}
		if n.GetOpType() != "Conv" || !isONNXDomain(n.GetDomain()) || len(n.GetInput()) < 2 {
			nodes = append(nodes, n)
			continue
		}
		xs, ws := shapes[n.GetInput()[0]], shapes[n.GetInput()[1]]
		c, ok := r.plan(n, xs, ws)
		if !ok {
			nodes = append(nodes, n)
			continue
		}
		y := n.GetOutput()[0]
		if relu := reluOf[y]; relu != nil && consumers[y] == 1 {
			c.relu, y = true, relu.GetOutput()[0]
			fused[relu] = true
		}
		nodes = append(nodes, r.emit(n, c, y)...)
		out.convs++
		out.batchChannels = out.batchChannels || c.channels < 0 || c.images > 1
	}
	if out.convs == 0 {
		out.model = model
		return out, nil
	}
	g.Node = nodes
	g.Initializer = append(g.Initializer, r.inits...)
	m.OpsetImport = append(m.OpsetImport, &onnx.OperatorSetIdProto{Domain: nchwcDomain, Version: 1})
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("nchwc: writing the model: %w", err)
	}
	out.model = b
	return out, nil
}

func isONNXDomain(d string) bool { return d == "" || d == "ai.onnx" }

// hasBatchChannels reports whether a convolution of g that r would rewrite
// has the batch as its channels (a weight gradient's), so that the rewritten
// graph needs batches of a multiple of 4 anyway.
func hasBatchChannels(r *rewriter, g *onnx.GraphProto, shapes map[string][]int64) bool {
	for _, n := range g.GetNode() {
		if n.GetOpType() != "Conv" || !isONNXDomain(n.GetDomain()) || len(n.GetInput()) < 2 {
			continue
		}
		if c, ok := r.plan(n, shapes[n.GetInput()[0]], shapes[n.GetInput()[1]]); ok && c.channels < 0 {
			return true
		}
	}
	return false
}

// rewriter emits the replacement nodes and the constants they need.
type rewriter struct {
	block int64
	inits []*onnx.TensorProto
	n     int
	// blockedOf maps the output of a rewritten convolution to its blocked
	// form, when ReorderOutput cropped nothing: a convolution reading it
	// takes the blocked form instead of reordering it again.
	blockedOf map[string]string
	// pairImages allows convPlan.images > 1: only in a graph that needs
	// batches of a multiple of 4 anyway (hasBatchChannels), so that a
	// graph without weight gradients (evaluation) takes any batch.
	pairImages bool
}

// convPlan is how one convolution is rewritten.
type convPlan struct {
	channels  int64 // input channels; -1: known only when run
	filters   int64
	depthwise bool // one channel per group, as many groups as channels
	// images: a depthwise convolution of C channels, fewer than a block B,
	// takes B/C images as one of B channels (a Reshape of the batch, which
	// costs nothing) with its weights repeated, rather than padding each
	// image's channels to a block: the kernel then computes no padded
	// channel (figures: docs/performance.md, "Cell networks' training
	// step"). At most 4, so that batches of a multiple of 4 images (see
	// blockedGraph.batchChannels) divide, and only where the graph needs
	// those anyway (rewriter.pairImages). 1: images one by one.
	images        int64
	kh, kw        int64 // -1: known only when run (depthwise only)
	blockedInput  bool  // reorder the input (else read NCHW: fewer channels than a block)
	paddedFilters int64
	relu          bool
	attrs         []*onnx.AttributeProto // kernel_shape, strides, dilations, and pads unless prepad
	// prepad pads the input with a Pad node instead of the convolution's
	// pads: when the kernel is larger than the output (a weight gradient,
	// whose kernel is the output gradient), every output would lie on the
	// padding, which ONNX Runtime's NCHWc kernel handles on a slow path
	// (figures: docs/performance.md, "NCHWc convolutions").
	prepad []int64 // Pad's pads of the input, [0, 0, top, left, 0, 0, bottom, right]
}

func (r *rewriter) plan(n *onnx.NodeProto, xs, ws []int64) (*convPlan, bool) {
	if len(xs) != 4 || len(ws) != 4 || ws[0] <= 0 || ws[2] == 0 || ws[3] == 0 {
		return nil, false
	}
	c := &convPlan{channels: ws[1], filters: ws[0], kh: ws[2], kw: ws[3], images: 1}
	knownKernel := c.kh > 0 && c.kw > 0
	if knownKernel {
		c.attrs = []*onnx.AttributeProto{{Name: "kernel_shape", Type: onnx.AttributeProto_INTS, Ints: []int64{c.kh, c.kw}}}
	}
	var padsAttr *onnx.AttributeProto
	var pads, strides, dilations []int64
	group := int64(1)
	for _, a := range n.GetAttribute() {
		switch a.GetName() {
		case "group":
			group = a.GetI()
		case "auto_pad":
			if s := string(a.GetS()); s != "" && s != "NOTSET" {
				return nil, false
			}
		case "pads":
			padsAttr, pads = a, a.GetInts()
		case "strides":
			strides = a.GetInts()
			c.attrs = append(c.attrs, a)
		case "dilations":
			dilations = a.GetInts()
			c.attrs = append(c.attrs, a)
		case "kernel_shape": // the weights' shape, which plan reads
		default:
			return nil, false
		}
	}
	switch {
	case group > 1:
		// Depthwise: ONNX Runtime's kernel takes a convolution with one
		// input and one output channel per group, on the input reordered
		// into blocks, which ReorderInput pads with zero channels. Its
		// groups count those too, so the rewrite pads the filters to whole
		// blocks and sets the group to the padded count (emit).
		if ws[1] != 1 || ws[0] != group || xs[1] != group || group%4 != 0 {
			return nil, false
		}
		c.channels, c.depthwise, c.blockedInput = group, true, true
		if k := r.block / group; r.pairImages && group < r.block && r.block%group == 0 && k <= 4 && (xs[0] < 0 || xs[0]%k == 0) {
			c.images = k
		}
	case xs[1] != ws[1] || !knownKernel:
		return nil, false
	case c.channels < 0 || (c.channels >= r.block && c.channels%4 == 0):
		c.blockedInput = true
	case c.channels > 0 && c.channels < r.block:
	default:
		return nil, false
	}
	c.paddedFilters = (c.filters + r.block - 1) / r.block * r.block
	if len(pads) == 4 && (pads[0] != 0 || pads[1] != 0 || pads[2] != 0 || pads[3] != 0) && xs[2] > 0 && xs[3] > 0 && knownKernel {
		at := func(v []int64, i int) int64 {
			if len(v) == 2 {
				return v[i]
			}
			return 1
		}
		ho := (xs[2]+pads[0]+pads[2]-at(dilations, 0)*(c.kh-1)-1)/at(strides, 0) + 1
		wo := (xs[3]+pads[1]+pads[3]-at(dilations, 1)*(c.kw-1)-1)/at(strides, 1) + 1
		if ho < c.kh || wo < c.kw {
			c.prepad = []int64{0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]}
		}
	}
	if padsAttr != nil && c.prepad == nil {
		c.attrs = append(c.attrs, padsAttr)
	}
	return c, true
}

// emitter collects the nodes of one rewritten convolution, named after it.
type emitter struct {
	r     *rewriter
	p     string // the names' prefix
	nodes []*onnx.NodeProto
}

// node appends a node with one output and returns that output's name.
func (e *emitter) node(op, domain string, inputs []string, attrs ...*onnx.AttributeProto) string {
	out := e.p + op + fmt.Sprint(len(e.nodes))
	e.nodes = append(e.nodes, &onnx.NodeProto{Name: out, OpType: op, Domain: domain, Input: inputs, Output: []string{out}, Attribute: attrs})
	return out
}

// ints adds an int64 vector constant and returns its name.
func (e *emitter) ints(name string, v ...int64) string {
	t := e.p + name
	e.r.inits = append(e.r.inits, &onnx.TensorProto{Name: t, DataType: int32(onnx.TensorProto_INT64), Dims: []int64{int64(len(v))}, Int64Data: v})
	return t
}

// images takes c.images images side by side as channels: x [N, C, H, W] is
// [N/k, k*C, H, W], and the weights w (and bias b, if any) repeat k times.
// The result [N/k, k*C, Ho, Wo] is reshaped to [N, C, Ho, Wo] by emit.
func (e *emitter) images(c *convPlan, x, w, b string) (string, string, string) {
	x = e.node("Reshape", "", []string{x, e.ints("images", -1, c.images*c.channels, 0, 0)})
	repeat := func(v string) string {
		vs := make([]string, c.images)
		for i := range vs {
			vs[i] = v
		}
		return e.node("Concat", "", vs, &onnx.AttributeProto{Name: "axis", Type: onnx.AttributeProto_INT, I: 0})
	}
	w = repeat(w)
	if b != "" {
		b = repeat(b)
	}
	return x, w, b
}

// emit returns the nodes that replace convolution n, writing its result (or
// that of its fused ReLU) to y.
func (r *rewriter) emit(n *onnx.NodeProto, c *convPlan, y string) []*onnx.NodeProto {
	r.n++
	e := &emitter{r: r, p: fmt.Sprintf("%s/nchwc%d/", n.GetName(), r.n)}
	node, ints := e.node, e.ints
	x, w := n.GetInput()[0], n.GetInput()[1]
	if c.prepad != nil {
		x = node("Pad", "", []string{x, ints("xpads", c.prepad...)})
	}
	var b string
	if len(n.GetInput()) > 2 {
		b = n.GetInput()[2]
	}
	yImages := y
	if c.images > 1 {
		x, w, b = e.images(c, x, w, b)
		y = e.p + "images_out"
	}
	fp := c.paddedFilters
	if extra := fp - c.images*c.filters; extra > 0 {
		w = node("Pad", "", []string{w, ints("wpads", 0, 0, 0, 0, extra, 0, 0, 0)})
		if b != "" {
			b = node("Pad", "", []string{b, ints("bpads", 0, extra)})
		}
	}
	// The blocked filter layout: for each block of filters, for each block
	// of input channels, for each kernel position, the block's input
	// channels by the block's filters. With the input read as it is (fewer
	// channels than a block), the channels are not blocked. ReorderInput
	// reads the weights as fp "images" of C channels and blocks (and pads)
	// the channels, giving, per filter, [C/B][kh][kw][B]; then the filters
	// of each block go innermost. A depthwise convolution's filters have
	// one channel each, so that only its filters go innermost: per block of
	// filters, [kh][kw][B].
	src, cdim := w, c.channels
	switch {
	case c.depthwise:
		cdim = 1
	case c.blockedInput:
		src, cdim = node("ReorderInput", nchwcDomain, []string{w}), -1
	}
	if c.blockedInput {
		if xb, ok := r.blockedOf[x]; ok {
			x = xb
		} else {
			x = node("ReorderInput", nchwcDomain, []string{x})
		}
	}
	wt := node("Transpose", "", []string{node("Reshape", "", []string{src, ints("wsplit", fp/r.block, r.block, -1)})},
		&onnx.AttributeProto{Name: "perm", Type: onnx.AttributeProto_INTS, Ints: []int64{0, 2, 1}})
	var wshape string
	if c.kh > 0 && c.kw > 0 {
		wshape = ints("wshape", fp, cdim, c.kh, c.kw)
	} else {
		// A depthwise kernel of a size known when run: the padded weights'
		// own shape, [fp, 1, kh, kw].
		wshape = node("Shape", "", []string{w})
	}
	wb := node("Reshape", "", []string{wt, wshape})
	ins := []string{x, wb}
	if b != "" {
		ins = append(ins, b)
	}
	attrs := c.attrs
	if c.depthwise {
		attrs = append(attrs, &onnx.AttributeProto{Name: "group", Type: onnx.AttributeProto_INT, I: fp})
	}
	if c.relu {
		attrs = append(attrs, &onnx.AttributeProto{Name: "activation", Type: onnx.AttributeProto_STRING, S: []byte("Relu")})
	}
	yb := node("Conv", nchwcDomain, ins, attrs...)
	if fp == c.filters && c.images == 1 {
		r.blockedOf[y] = yb
	}
	e.nodes = append(e.nodes, &onnx.NodeProto{Name: e.p + "ReorderOutput", OpType: "ReorderOutput", Domain: nchwcDomain, Input: []string{yb}, Output: []string{y},
		Attribute: []*onnx.AttributeProto{{Name: "channels", Type: onnx.AttributeProto_INT, I: c.images * c.filters}}})
	if c.images > 1 {
		e.nodes = append(e.nodes, &onnx.NodeProto{Name: e.p + "Reshape", OpType: "Reshape", Input: []string{y, ints("unpaired", -1, c.filters, 0, 0)}, Output: []string{yImages}})
	}
	return e.nodes
}
