package quantize

import (
	"slices"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// foldPadding moves padding written out before a MaxPool or Conv back into
// the operator's pads: an input that is x concatenated along the height or
// width with constant borders (of the lowest float for a MaxPool, of zeros
// for a Conv) becomes x, and the borders' rows and columns are added to the
// pads. The form onnx-go runs (nasctl export --pure-go), and the float
// exports of nasctl before 2026-12-07, write unequal pads out so that the
// pure-Go runtime onnx-go, which only handles four equal pads, computes
// them (onnxgen; docs/edge.md); onnx-go cannot run a quantized model anyway, and
// ONNX Runtime runs a padded MaxPool or Conv directly, in int8 and without
// the borders' operators. It returns the number of operators folded.
func (q *graph) foldPadding() int {
	folded := 0
	for _, n := range q.g.GetNode() {
		var border func(v float32) bool
		switch {
		case n.GetOpType() == "MaxPool" && len(n.GetOutput()) == 1:
			border = func(v float32) bool { return v <= lowest }
		case n.GetOpType() == "Conv":
			border = func(v float32) bool { return v == 0 }
		default:
			continue
		}
		if a := attr(n, "auto_pad"); a != nil && string(a.GetS()) != "NOTSET" && string(a.GetS()) != "" {
			continue
		}
		var pads [4]int64 // top, left, bottom, right
		if a := attr(n, "pads"); a != nil {
			if len(a.GetInts()) != 4 {
				continue
			}
			copy(pads[:], a.GetInts())
		}
		x, extra := n.GetInput()[0], [4]int64{}
		for {
			inner, before, after, axis, ok := q.bordered(x, border)
			if !ok {
				break
			}
			extra[axis-2] += before
			extra[axis] += after
			x = inner
		}
		if x == n.GetInput()[0] {
			continue
		}
		for i := range pads {
			pads[i] += extra[i]
		}
		n.Input[0] = x
		if a := attr(n, "pads"); a != nil {
			a.Ints = pads[:]
		} else {
			n.Attribute = append(n.Attribute, &onnx.AttributeProto{Name: "pads", Type: onnx.AttributeProto_INTS, Ints: pads[:]})
		}
		folded++
	}
	if folded > 0 {
		q.prune()
	}
	return folded
}

// bordered reports whether value v is a Concat along the height (axis 2)
// or width (axis 3) of one value, inner, between constant borders whose
// value satisfies border, and how many rows or columns those add before
// and after inner.
func (q *graph) bordered(v string, border func(float32) bool) (inner string, before, after int64, axis int, ok bool) {
	n := q.producer[v]
	if n == nil || n.GetOpType() != "Concat" {
		return "", 0, 0, 0, false
	}
	axis = int(attrInt(n, "axis", 0))
	if axis != 2 && axis != 3 {
		return "", 0, 0, 0, false
	}
	for _, in := range n.GetInput() {
		if f, isFill := q.fill(in, 0); isFill && border(f) {
			s := q.shape(in, 0)
			if len(s) != 4 || s[axis] < 1 {
				return "", 0, 0, 0, false
			}
			if inner == "" {
				before += s[axis]
			} else {
				after += s[axis]
			}
			continue
		}
		if inner != "" {
			return "", 0, 0, 0, false // two values that are not borders
		}
		inner = in
	}
	return inner, before, after, axis, inner != "" && before+after > 0
}

// maxDepth bounds the walks of fill and shape through the graph.
const maxDepth = 64

// fill returns the value every element of v holds when that follows from
// constants: an initializer or Constant whose elements are all equal, and
// what shape operators, Concat, pooling and arithmetic make of them; a
// product with a constant 0 is 0 (the activations are taken to be finite).
func (q *graph) fill(v string, depth int) (float32, bool) {
	if depth > maxDepth {
		return 0, false
	}
	if t := q.inits[v]; t != nil {
		return uniform(t)
	}
	n := q.producer[v]
	if n == nil {
		return 0, false
	}
	ins := n.GetInput()
	switch n.GetOpType() {
	case "Constant":
		if a := attr(n, "value"); a != nil {
			return uniform(a.GetT())
		}
	case "Identity", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "GlobalAveragePool", "GlobalMaxPool":
		return q.fill(ins[0], depth+1)
	case "Concat":
		var first float32
		for i, in := range ins {
			f, ok := q.fill(in, depth+1)
			if !ok || (i > 0 && f != first) {
				return 0, false
			}
			first = f
		}
		return first, len(ins) > 0
	case "Mul", "Add", "Sub", "Min", "Max":
		if len(ins) != 2 {
			return 0, false
		}
		a, aok := q.fill(ins[0], depth+1)
		b, bok := q.fill(ins[1], depth+1)
		if n.GetOpType() == "Mul" && (aok && a == 0 || bok && b == 0) {
			return 0, true
		}
		if !aok || !bok {
			return 0, false
		}
		switch n.GetOpType() {
		case "Mul":
			return a * b, true
		case "Add":
			return a + b, true
		case "Sub":
			return a - b, true
		case "Min":
			return min(a, b), true
		default:
			return max(a, b), true
		}
	}
	return 0, false
}

// uniform returns the value of a float tensor whose elements are all
// equal.
func uniform(t *onnx.TensorProto) (float32, bool) {
	v, ok := floats(t)
	if !ok || len(v) == 0 {
		return 0, false
	}
	for _, x := range v[1:] {
		if x != v[0] {
			return 0, false
		}
	}
	return v[0], true
}

// shape returns the dimensions of v where they follow from the graph's
// declared inputs and initializers through the operators that build
// borders (-1: the batch, or unknown), or nil.
func (q *graph) shape(v string, depth int) []int64 {
	if depth > maxDepth {
		return nil
	}
	if t := q.inits[v]; t != nil {
		return append([]int64{}, t.GetDims()...) // a scalar's is empty, not nil
	}
	if q.inputs[v] {
		for _, in := range q.g.GetInput() {
			if in.GetName() == v {
				var dims []int64
				for _, d := range in.GetType().GetTensorType().GetShape().GetDim() {
					if d.GetDimParam() != "" || d.GetDimValue() == 0 {
						dims = append(dims, -1)
					} else {
						dims = append(dims, d.GetDimValue())
					}
				}
				return dims
			}
		}
		return nil
	}
	n := q.producer[v]
	if n == nil {
		return nil
	}
	ins := n.GetInput()
	switch n.GetOpType() {
	case "Constant":
		if a := attr(n, "value"); a != nil {
			return append([]int64{}, a.GetT().GetDims()...)
		}
	case "Identity":
		return q.shape(ins[0], depth+1)
	case "Reshape":
		return reshaped(q.shape(ins[0], depth+1), q.inits[ins[1]])
	case "GlobalAveragePool", "GlobalMaxPool":
		in := q.shape(ins[0], depth+1)
		if len(in) < 3 {
			return nil
		}
		out := slices.Clone(in)
		for i := 2; i < len(out); i++ {
			out[i] = 1
		}
		return out
	case "Transpose":
		in := q.shape(ins[0], depth+1)
		perm := attr(n, "perm").GetInts()
		if in == nil || len(perm) != len(in) {
			return nil
		}
		out := make([]int64, len(in))
		for i, p := range perm {
			out[i] = in[p]
		}
		return out
	case "Concat":
		return q.concatShape(n, depth)
	case "Mul", "Add", "Sub", "Min", "Max":
		if len(ins) != 2 {
			return nil
		}
		return broadcast(q.shape(ins[0], depth+1), q.shape(ins[1], depth+1))
	}
	return nil
}

// reshaped is the shape a Reshape to target gives a value of shape in
// (a 0 in target keeps in's dimension), or nil when target is not a
// constant without -1.
func reshaped(in []int64, target *onnx.TensorProto) []int64 {
	t, ok := int64s(target)
	if !ok || slices.Contains(t, -1) {
		return nil
	}
	out := slices.Clone(t)
	for i, d := range out {
		if d == 0 {
			if i >= len(in) {
				return nil
			}
			out[i] = in[i]
		}
	}
	return out
}

// concatShape is the shape of Concat node n's output, or nil.
func (q *graph) concatShape(n *onnx.NodeProto, depth int) []int64 {
	axis := attrInt(n, "axis", 0)
	var out []int64
	for _, in := range n.GetInput() {
		s := q.shape(in, depth+1)
		if axis < 0 {
			axis += int64(len(s))
		}
		if s == nil || axis < 0 || axis >= int64(len(s)) || out != nil && len(s) != len(out) {
			return nil
		}
		if out == nil {
			out = s
			continue
		}
		if s[axis] < 0 || out[axis] < 0 {
			return nil
		}
		out[axis] += s[axis]
	}
	return out
}

// broadcast is the shape of a binary operator's output (numpy rules; -1 an
// unknown dimension, which broadcasts only with 1), or nil.
func broadcast(a, b []int64) []int64 {
	if a == nil || b == nil {
		return nil
	}
	n := max(len(a), len(b))
	out := make([]int64, n)
	for i := range n {
		x, y := int64(1), int64(1)
		if j := i - (n - len(a)); j >= 0 {
			x = a[j]
		}
		if j := i - (n - len(b)); j >= 0 {
			y = b[j]
		}
		switch {
		case x == y:
			out[i] = x
		case x == 1:
			out[i] = y
		case y == 1:
			out[i] = x
		default:
			return nil // different sizes, or unknown against a size
		}
	}
	return out
}
