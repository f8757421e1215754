package onnxgen

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// MetaPureGo marks a model that PureGo rewrote: its value is the number of
// operators rewritten.
const MetaPureGo MetaKey = "nasctl.pure_go"

// PureGo rewrites an exported model into operators that the pure-Go
// runtime onnx-go v0.5.0 computes correctly, the same function in standard
// ONNX: a grouped (depthwise) Conv becomes a plain Conv whose weight is
// block-diagonal (zeros between groups); an AveragePool that leaves pads
// out of its count becomes a Conv with a block-diagonal kernel of ones (the
// window's sum) times a constant map of 1/count; pads that are not equal on
// all four sides are written out as borders concatenated before the Conv or
// MaxPool (zeros, or the lowest float32 for a MaxPool). It returns the
// model and the number of operators rewritten. The rewritten model costs
// ONNX Runtime more time (docs/edge.md, "Exports that onnx-go runs" and
// "Cell networks in onnx-go"), which is why exports keep the standard
// operators and this form is asked for (nasctl export --pure-go).
func PureGo(model []byte) ([]byte, int, error) {
	var m onnx.ModelProto
	if err := proto.Unmarshal(model, &m); err != nil {
		return nil, 0, fmt.Errorf("not an ONNX model: %w", err)
	}
	g := m.GetGraph()
	if g == nil || len(g.GetInput()) == 0 {
		return nil, 0, errors.New("ONNX model without a graph input")
	}
	p := &portable{g: g, shapes: map[string][]int64{}, inits: map[string]*onnx.TensorProto{}}
	for _, t := range g.GetInitializer() {
		p.inits[t.GetName()] = t
		p.shapes[t.GetName()] = append([]int64{}, t.GetDims()...) // a scalar's: [], known
	}
	in := g.GetInput()[0]
	p.x = in.GetName()
	for _, d := range in.GetType().GetTensorType().GetShape().GetDim() {
		p.shapes[p.x] = append(p.shapes[p.x], d.GetDimValue())
	}
	if len(p.shapes[p.x]) != 4 {
		return nil, 0, fmt.Errorf("graph input %s has shape %v, want [N, C, H, W]", p.x, p.shapes[p.x])
	}
	rewritten := 0
	for _, n := range g.GetNode() {
		done, err := p.node(n)
		if err != nil {
			return nil, 0, fmt.Errorf("%s %s: %w", n.GetOpType(), n.GetName(), err)
		}
		if done {
			rewritten++
		}
	}
	g.Node = p.nodes
	g.Initializer = append(g.Initializer, p.added...)
	g.ValueInfo = nil
	if rewritten > 0 {
		m.MetadataProps = append(m.MetadataProps, &onnx.StringStringEntryProto{Key: string(MetaPureGo), Value: strconv.Itoa(rewritten)})
	}
	b, err := proto.Marshal(&m)
	return b, rewritten, err
}

// portable is PureGo's state: the nodes written so far and the [N, C, H,
// W] shapes of the values, inferred from the graph input (N as declared).
type portable struct {
	g      *onnx.GraphProto
	x      string // the graph input
	shapes map[string][]int64
	inits  map[string]*onnx.TensorProto
	nodes  []*onnx.NodeProto
	added  []*onnx.TensorProto
	zeros  string // [N, 1, 1, 1] zeros, made once (see zeroBatch)
	n      int
}

func (p *portable) fresh(prefix string) string {
	p.n++
	return fmt.Sprintf("purego/%s_%d", prefix, p.n)
}

// node copies n to the new graph, rewritten when onnx-go needs it, and
// records the shape of its output; it reports whether it rewrote n.
func (p *portable) node(n *onnx.NodeProto) (bool, error) {
	ins, op := n.GetInput(), n.GetOpType()
	var x []int64
	if len(ins) > 0 {
		x = p.shapes[ins[0]]
	}
	windowed := op == "Conv" || op == "MaxPool" || op == "AveragePool"
	if windowed && len(x) != 4 {
		return false, fmt.Errorf("input %s of unknown shape", ins[0])
	}
	var out []int64
	rewritten := false
	switch op {
	case "Conv", "MaxPool", "AveragePool":
		var err error
		if out, rewritten, err = p.windowed(n, x); err != nil {
			return false, err
		}
	case "Concat":
		out = concatShape(p.known(ins), attrOf(n, "axis").GetI())
	case "GlobalAveragePool":
		if len(x) == 4 {
			out = []int64{x[0], x[1], 1, 1}
		}
	case "Reshape":
		if t := p.inits[ins[1]]; t != nil && len(t.GetDims()) == 1 && int64(len(t.GetInt64Data())) == t.GetDims()[0] {
			out = reshapeShape(x, t.GetInt64Data())
		}
	case "Transpose":
		if perm := attrOf(n, "perm").GetInts(); x != nil && len(perm) == len(x) {
			out = make([]int64, len(x))
			for i, a := range perm {
				if a < 0 || a >= int64(len(x)) {
					out = nil
					break
				}
				out[i] = x[a]
			}
		}
	case "Add", "Sub", "Mul":
		out = broadcastShape(p.known(ins))
	case "Relu", "Identity", "Sigmoid", "BatchNormalization", "Dropout":
		out = x
	}
	if !rewritten {
		p.nodes = append(p.nodes, n)
	}
	if out != nil && len(n.GetOutput()) > 0 {
		p.shapes[n.GetOutput()[0]] = out
	}
	return rewritten, nil
}

// known returns the shapes of names, or nil when one is not known.
func (p *portable) known(names []string) [][]int64 {
	shapes := make([][]int64, len(names))
	for i, name := range names {
		s, ok := p.shapes[name]
		if !ok {
			return nil
		}
		shapes[i] = s
	}
	return shapes
}

// concatShape is the shape of shapes concatenated along axis; nil when
// shapes is nil or they do not fit together.
func concatShape(shapes [][]int64, axis int64) []int64 {
	if len(shapes) == 0 {
		return nil
	}
	out := slices.Clone(shapes[0])
	if axis < 0 {
		axis += int64(len(out))
	}
	if axis < 0 || axis >= int64(len(out)) {
		return nil
	}
	for _, s := range shapes[1:] {
		if len(s) != len(out) {
			return nil
		}
		out[axis] += s[axis]
	}
	return out
}

// broadcastShape is the shape of an elementwise operator's output with
// inputs of shapes, under ONNX's (numpy's) broadcasting; a dimension of 0
// is a size not known (the batch). Nil when shapes is nil or they do not
// broadcast.
func broadcastShape(shapes [][]int64) []int64 {
	if shapes == nil {
		return nil
	}
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := slices.Repeat([]int64{1}, rank)
	for _, s := range shapes {
		for i, d := range s {
			o := &out[rank-len(s)+i]
			switch {
			case d == *o || d == 1:
			case *o == 1:
				*o = d
			case d == 0 || *o == 0: // a size not known against a known one
				*o = max(d, *o)
			default:
				return nil
			}
		}
	}
	return out
}

// reshapeShape is the shape of x reshaped to spec (0: x's dimension, -1:
// what is left); nil when it cannot be known.
func reshapeShape(x, spec []int64) []int64 {
	out, infer := slices.Clone(spec), -1
	for i, d := range out {
		switch d {
		case 0:
			if i >= len(x) {
				return nil
			}
			out[i] = x[i]
		case -1:
			infer = i
		}
	}
	if infer < 0 {
		return out
	}
	total, rest := int64(1), int64(1)
	for _, d := range x {
		total *= d
	}
	for i, d := range out {
		if i != infer {
			rest *= d
		}
	}
	if x == nil || total == 0 || rest == 0 || total%rest != 0 {
		return nil
	}
	out[infer] = total / rest
	return out
}

// windowed handles a Conv, MaxPool or AveragePool of input shape x and
// returns its output shape.
func (p *portable) windowed(n *onnx.NodeProto, x []int64) ([]int64, bool, error) {
	op := n.GetOpType()
	k := attrOf(n, "kernel_shape").GetInts()
	if len(k) != 2 {
		return nil, false, errors.New("kernel_shape must have two values")
	}
	s := intsOr(attrOf(n, "strides"), 1, 1)
	d := intsOr(attrOf(n, "dilations"), 1, 1)
	pads := intsOr(attrOf(n, "pads"), 0, 0, 0, 0)
	if a := attrOf(n, "auto_pad"); a != nil && string(a.GetS()) != "NOTSET" && string(a.GetS()) != "" {
		return nil, false, errors.New("auto_pad is not supported; give pads")
	}
	if len(s) != 2 || len(d) != 2 || len(pads) != 4 || attrOf(n, "ceil_mode").GetI() != 0 {
		return nil, false, errors.New("2-D windows with explicit strides, dilations and pads only (no ceil_mode)")
	}
	out := []int64{x[0], x[1], 0, 0}
	for i := range 2 {
		span := (k[i]-1)*d[i] + 1
		out[2+i] = (x[2+i]+pads[i]+pads[i+2]-span)/s[i] + 1
	}
	group := max(attrOf(n, "group").GetI(), 1)
	if op == "Conv" {
		w := p.inits[n.GetInput()[1]]
		if w == nil || len(w.GetDims()) != 4 {
			return nil, false, errors.New("a Conv's weight must be a constant [M, C/group, kh, kw]")
		}
		out[1] = w.GetDims()[0]
	}
	equal := !slices.ContainsFunc(pads, func(v int64) bool { return v != pads[0] })
	avgExcl := op == "AveragePool" && attrOf(n, "count_include_pad").GetI() == 0
	if equal && group == 1 && op != "AveragePool" {
		return out, false, nil
	}
	fill := float32(0)
	if op == "MaxPool" {
		fill = -math.MaxFloat32 // no window's maximum; ONNX's MaxPool ignores pads
	}
	in, uniform := p.uniformPads(n.GetInput()[0], x, pads, fill)
	attrs := []*onnx.AttributeProto{intsAttr("kernel_shape", k...), intsAttr("strides", s...), intsAttr("pads", uniform...)}
	switch op {
	case "MaxPool":
		p.emit("MaxPool", []string{in}, n.GetOutput(), attrs...)
	case "Conv":
		ins := slices.Clone(n.GetInput())
		ins[0] = in
		if group > 1 {
			var err error
			if ins[1], err = p.blockDiagonal(p.inits[ins[1]], group); err != nil {
				return nil, false, err
			}
		}
		p.emit("Conv", ins, n.GetOutput(), append(attrs, intsAttr("dilations", d...))...)
	case "AveragePool":
		p.averagePool(n, in, x, out, k, s, pads, avgExcl, attrs)
	}
	return out, true, nil
}

// averagePool writes an average pooling as the sum of each window (a Conv
// whose kernel is 1 on the diagonal of channels) times a constant [C, Ho,
// Wo] of 1 / the values counted: k[0] * k[1] when pads count
// (count_include_pad), else the window's cells inside the input.
func (p *portable) averagePool(n *onnx.NodeProto, in string, x, out, k, s, pads []int64, exclude bool, attrs []*onnx.AttributeProto) {
	c := int(x[1])
	ones := make([]float32, c*c*int(k[0]*k[1]))
	for ch := range c {
		for i := range int(k[0] * k[1]) {
			ones[(ch*c+ch)*int(k[0]*k[1])+i] = 1
		}
	}
	ho, wo := int(out[2]), int(out[3])
	scale := make([]float32, c*ho*wo)
	for i := range ho {
		for j := range wo {
			count := k[0] * k[1]
			if exclude {
				r0, c0 := int64(i)*s[0]-pads[0], int64(j)*s[1]-pads[1]
				count = (min(r0+k[0], x[2]) - max(r0, 0)) * (min(c0+k[1], x[3]) - max(c0, 0))
			}
			for ch := range c {
				scale[(ch*ho+i)*wo+j] = 1 / float32(count)
			}
		}
	}
	sum := p.fresh("window_sum")
	p.emit("Conv", []string{in, p.constant(ones, int64(c), int64(c), k[0], k[1])}, []string{sum}, attrs...)
	p.emit("Mul", []string{sum, p.constant(scale, int64(c), int64(ho), int64(wo))}, n.GetOutput())
}

// blockDiagonal returns a constant [M, C, kh, kw], the grouped weight w
// [M, C/group, kh, kw] with zeros for the channels outside each output's
// group: a plain convolution by it computes the grouped one.
func (p *portable) blockDiagonal(w *onnx.TensorProto, group int64) (string, error) {
	v, ok := floatValues(w)
	dims := w.GetDims()
	if !ok || int64(len(v)) != dims[0]*dims[1]*dims[2]*dims[3] || dims[0]%group != 0 {
		return "", fmt.Errorf("grouped weight %s: want float32 values of [M, C/group, kh, kw]", w.GetName())
	}
	m, cg, kk := dims[0], dims[1], dims[2]*dims[3]
	c := cg * group
	dense := make([]float32, m*c*kk)
	for o := range m {
		first := o / (m / group) * cg // the output's group's first input channel
		copy(dense[(o*c+first)*kk:(o*c+first+cg)*kk], v[o*cg*kk:(o+1)*cg*kk])
	}
	return p.constant(dense, m, c, dims[2], dims[3]), nil
}

// uniformPads writes the part of pads beyond the smallest of the four out
// as borders of fill concatenated to x (shape [N, C, H, W]) and returns the
// padded value and the four equal pads left to the operator. A border is
// zeros [N, 1, 1, 1] plus a constant [C, rows, cols], which both runtimes
// broadcast to the batch, and each is a value of its own, since onnx-go
// merges the repeated inputs of a node.
func (p *portable) uniformPads(x string, shape, pads []int64, fill float32) (string, []int64) {
	m := slices.Min(pads)
	uniform := []int64{m, m, m, m}
	c, h, w := shape[1], shape[2], shape[3]
	border := func(rows, cols int64) string {
		v := make([]float32, c*rows*cols)
		for i := range v {
			v[i] = fill
		}
		o := p.fresh("border")
		p.emit("Add", []string{p.zeroBatch(), p.constant(v, c, rows, cols)}, []string{o})
		return o
	}
	concat := func(x string, before, after, axis int64, border func(int64) string) string {
		var parts []string
		if before > 0 {
			parts = append(parts, border(before))
		}
		parts = append(parts, x)
		if after > 0 {
			parts = append(parts, border(after))
		}
		if len(parts) == 1 {
			return x
		}
		o := p.fresh("padded")
		p.emit("Concat", parts, []string{o}, &onnx.AttributeProto{Name: "axis", Type: onnx.AttributeProto_INT, I: axis})
		return o
	}
	x = concat(x, pads[0]-m, pads[2]-m, 2, func(n int64) string { return border(n, w) })
	h += pads[0] + pads[2] - 2*m
	x = concat(x, pads[1]-m, pads[3]-m, 3, func(n int64) string { return border(h, n) })
	return x, uniform
}

// zeroBatch returns zeros [N, 1, 1, 1], N the batch of the graph input:
// its GlobalAveragePool (transposed and pooled again when it has several
// channels) times 0; onnx-go has no Shape, ConstantOfShape or Expand.
func (p *portable) zeroBatch() string {
	if p.zeros != "" {
		return p.zeros
	}
	pooled := p.fresh("zeros")
	p.emit("GlobalAveragePool", []string{p.x}, []string{pooled})
	if p.shapes[p.x][1] > 1 {
		t, again := p.fresh("zeros"), p.fresh("zeros")
		p.emit("Transpose", []string{pooled}, []string{t}, intsAttr("perm", 0, 3, 2, 1))
		p.emit("GlobalAveragePool", []string{t}, []string{again})
		pooled = again
	}
	p.zeros = p.fresh("zeros")
	p.emit("Mul", []string{pooled, p.constant([]float32{0})}, []string{p.zeros})
	return p.zeros
}

func (p *portable) emit(op string, ins, outs []string, attrs ...*onnx.AttributeProto) {
	p.nodes = append(p.nodes, &onnx.NodeProto{Name: p.fresh(op), OpType: op, Input: ins, Output: outs, Attribute: attrs})
}

// constant adds a float32 initializer.
func (p *portable) constant(v []float32, dims ...int64) string {
	name := p.fresh("const")
	p.added = append(p.added, &onnx.TensorProto{Name: name, DataType: int32(onnx.TensorProto_FLOAT), Dims: dims, FloatData: v})
	return name
}

func attrOf(n *onnx.NodeProto, name string) *onnx.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// intsOr returns an INTS attribute's values, or def when it is absent.
func intsOr(a *onnx.AttributeProto, def ...int64) []int64 {
	if a == nil {
		return def
	}
	return a.GetInts()
}

func intsAttr(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INTS, Ints: v}
}

// floatValues returns a float32 tensor's values.
func floatValues(t *onnx.TensorProto) ([]float32, bool) {
	if t.GetDataType() != int32(onnx.TensorProto_FLOAT) {
		return nil, false
	}
	if len(t.GetRawData()) > 0 {
		v, err := onnx.ReadFloat32ArrayFromBytes(t.GetRawData())
		return v, err == nil
	}
	return t.GetFloatData(), true
}
