package quantize

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// graph is an ONNX graph being rewritten: its nodes in order, its
// initializers by name, and who produces and reads each value.
type graph struct {
	g         *onnx.GraphProto
	inits     map[string]*onnx.TensorProto
	inputs    map[string]bool // graph inputs that are not initializers
	outputs   map[string]bool
	producer  map[string]*onnx.NodeProto
	consumers map[string][]*onnx.NodeProto
	n         int // for fresh names
}

func newGraph(g *onnx.GraphProto) *graph {
	q := &graph{g: g}
	q.index()
	return q
}

// index recomputes the maps from the graph.
func (q *graph) index() {
	q.inits = map[string]*onnx.TensorProto{}
	for _, t := range q.g.GetInitializer() {
		q.inits[t.GetName()] = t
	}
	q.inputs = map[string]bool{}
	for _, in := range q.g.GetInput() {
		if q.inits[in.GetName()] == nil {
			q.inputs[in.GetName()] = true
		}
	}
	q.outputs = map[string]bool{}
	for _, out := range q.g.GetOutput() {
		q.outputs[out.GetName()] = true
	}
	q.producer = map[string]*onnx.NodeProto{}
	q.consumers = map[string][]*onnx.NodeProto{}
	for _, n := range q.g.GetNode() {
		for _, o := range n.GetOutput() {
			q.producer[o] = n
		}
		for _, in := range n.GetInput() {
			if in != "" && !slices.Contains(q.consumers[in], n) {
				q.consumers[in] = append(q.consumers[in], n)
			}
		}
	}
}

// fresh returns a value name not used in the graph.
func (q *graph) fresh(prefix string) string {
	for {
		q.n++
		name := fmt.Sprintf("%s%d", prefix, q.n)
		if q.producer[name] == nil && q.inits[name] == nil && !q.inputs[name] && len(q.consumers[name]) == 0 {
			return name
		}
	}
}

// addInit adds an initializer.
func (q *graph) addInit(t *onnx.TensorProto) string {
	q.g.Initializer = append(q.g.Initializer, t)
	q.inits[t.GetName()] = t
	return t.GetName()
}

// floats returns the values of a float32 initializer, or false.
func floats(t *onnx.TensorProto) ([]float32, bool) {
	if t == nil || t.GetDataType() != int32(onnx.TensorProto_FLOAT) {
		return nil, false
	}
	if len(t.GetRawData()) > 0 {
		v, err := onnx.ReadFloat32ArrayFromBytes(t.GetRawData())
		return v, err == nil
	}
	return t.GetFloatData(), true
}

// int64s returns the values of an int64 initializer, or false.
func int64s(t *onnx.TensorProto) ([]int64, bool) {
	if t == nil || t.GetDataType() != int32(onnx.TensorProto_INT64) {
		return nil, false
	}
	if len(t.GetRawData()) > 0 {
		v, err := onnx.ReadInt64ArrayFromBytes(t.GetRawData())
		return v, err == nil
	}
	return t.GetInt64Data(), true
}

// Tensor constructors. Integer tensors hold their values in raw_data: the
// int32_data field would spend a varint per value, ten bytes for a
// negative int8.

func floatTensor(name string, v []float32, dims ...int64) *onnx.TensorProto {
	return &onnx.TensorProto{Name: name, DataType: int32(onnx.TensorProto_FLOAT), Dims: dims, FloatData: v}
}

func int8Tensor(name string, v []int8, dims ...int64) *onnx.TensorProto {
	raw := make([]byte, len(v))
	for i, x := range v {
		raw[i] = byte(x)
	}
	return &onnx.TensorProto{Name: name, DataType: int32(onnx.TensorProto_INT8), Dims: dims, RawData: raw}
}

func uint8Tensor(name string, v []uint8, dims ...int64) *onnx.TensorProto {
	return &onnx.TensorProto{Name: name, DataType: int32(onnx.TensorProto_UINT8), Dims: dims, RawData: slices.Clone(v)}
}

func int32Tensor(name string, v []int32, dims ...int64) *onnx.TensorProto {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(x))
	}
	return &onnx.TensorProto{Name: name, DataType: int32(onnx.TensorProto_INT32), Dims: dims, RawData: raw}
}

// attr returns a node's attribute by name, or nil.
func attr(n *onnx.NodeProto, name string) *onnx.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// attrInt returns an integer attribute, or def when it is absent.
func attrInt(n *onnx.NodeProto, name string, def int64) int64 {
	if a := attr(n, name); a != nil {
		return a.GetI()
	}
	return def
}

// attrFloat returns a float attribute, or def when it is absent.
func attrFloat(n *onnx.NodeProto, name string, def float32) float32 {
	if a := attr(n, name); a != nil {
		return a.GetF()
	}
	return def
}

// replaceInput makes node n read to instead of from.
func replaceInput(n *onnx.NodeProto, from, to string) {
	for i, in := range n.Input {
		if in == from {
			n.Input[i] = to
		}
	}
}

// prune removes the nodes whose outputs nothing reads (graph outputs
// excepted), repeatedly, then the initializers nothing reads, and
// reindexes.
func (q *graph) prune() {
	for {
		q.index()
		var kept []*onnx.NodeProto
		for _, n := range q.g.GetNode() {
			used := false
			for _, o := range n.GetOutput() {
				if q.outputs[o] || len(q.consumers[o]) > 0 {
					used = true
				}
			}
			if used {
				kept = append(kept, n)
			}
		}
		if len(kept) == len(q.g.GetNode()) {
			break
		}
		q.g.Node = kept
	}
	var inits []*onnx.TensorProto
	for _, t := range q.g.GetInitializer() {
		if len(q.consumers[t.GetName()]) > 0 || q.outputs[t.GetName()] {
			inits = append(inits, t)
		}
	}
	q.g.Initializer = inits
	q.index()
}

// lowest is the threshold below which a constant padding of a MaxPool
// counts as minus infinity: no activation of a trained network comes near
// it.
const lowest = -1e30
