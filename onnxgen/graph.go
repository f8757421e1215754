// Package onnxgen compiles layer-sequence networks (genotype.Net) into ONNX
// graphs: an inference graph with the weights baked in, an evaluation graph and
// a training-step graph that holds the forward pass, the loss, the backward pass
// and the optimizer update in standard ONNX operators (opset 17). It knows ONNX
// and nothing about ONNX Runtime.
package onnxgen

import (
	"fmt"
	"math"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/internal/buildinfo"
)

// Opset is the ONNX operator-set version of every generated graph: 17, so that
// common edge runtimes load the exports. IRVersion is the matching IR version.
const (
	Opset     = 17
	IRVersion = 8
)

// graph accumulates the nodes, initializers, inputs and outputs of one ONNX graph.
type graph struct {
	nodes   []*onnx.NodeProto
	inits   []*onnx.TensorProto
	inputs  []*onnx.ValueInfoProto
	outputs []*onnx.ValueInfoProto
	// shapes of intermediate values, as the graph's value_info (see declare)
	shapes   []*onnx.ValueInfoProto
	declared map[string]bool
	consts   map[string]string // cache of scalar constants by key
	n        int
	// scope prefixes node names ("conv2/dW/"), so that ONNX Runtime's
	// per-operator profiles say which layer and pass a node belongs to.
	scope string
}

// within sets the scope of the nodes added until the returned function is
// called, which restores the previous scope.
func (g *graph) within(scope string) (restore func()) {
	old := g.scope
	g.scope = scope + "/"
	return func() { g.scope = old }
}

func newGraph() *graph { return &graph{consts: map[string]string{}, declared: map[string]bool{}} }

// declare records the float32 shape of an intermediate value in the graph's
// value_info (a negative dimension is the batch), once per value. Graph
// inputs are skipped.
func (g *graph) declare(name string, dims ...int64) {
	if g.declared[name] {
		return
	}
	for _, v := range g.inputs {
		if v.Name == name {
			return // an input's shape is declared with it
		}
	}
	g.declared[name] = true
	g.shapes = append(g.shapes, valueInfo(name, onnx.TensorProto_FLOAT, dims))
}

// fresh returns a new unique value name with a readable prefix.
func (g *graph) fresh(prefix string) string {
	g.n++
	return fmt.Sprintf("%s_%d", prefix, g.n)
}

// op adds a node with one output and returns the output's name.
func (g *graph) op(opType string, inputs []string, attrs ...*onnx.AttributeProto) string {
	return g.opN(opType, inputs, 1, attrs...)[0]
}

// opN adds a node with n outputs and returns their names.
func (g *graph) opN(opType string, inputs []string, n int, attrs ...*onnx.AttributeProto) []string {
	outs := make([]string, n)
	for i := range outs {
		outs[i] = g.fresh(opType)
	}
	g.nodes = append(g.nodes, &onnx.NodeProto{
		Name: g.fresh(g.scope + opType), OpType: opType, Input: inputs, Output: outs, Attribute: attrs,
	})
	return outs
}

// opTo adds a node whose single output has the given name (for graph outputs).
func (g *graph) opTo(out, opType string, inputs []string, attrs ...*onnx.AttributeProto) string {
	g.nodes = append(g.nodes, &onnx.NodeProto{
		Name: g.fresh(g.scope + opType), OpType: opType, Input: inputs, Output: []string{out}, Attribute: attrs,
	})
	return out
}

// rename makes value v available under the name out (an Identity node).
func (g *graph) rename(v, out string) string { return g.opTo(out, "Identity", []string{v}) }

// retarget renames value v, the output of a node of g, to out everywhere:
// a graph output named out is then written by that node directly, without
// the copy of an Identity node (ONNX Runtime writes it straight into the
// caller's tensor).
func (g *graph) retarget(v, out string) {
	for _, n := range g.nodes {
		for i, name := range n.Output {
			if name == v {
				n.Output[i] = out
			}
		}
		for i, name := range n.Input {
			if name == v {
				n.Input[i] = out
			}
		}
	}
}

func (g *graph) input(name string, elem onnx.TensorProto_DataType, dims ...int64) {
	g.inputs = append(g.inputs, valueInfo(name, elem, dims))
}

func (g *graph) output(name string, elem onnx.TensorProto_DataType, dims ...int64) {
	g.outputs = append(g.outputs, valueInfo(name, elem, dims))
}

// floats adds a float32 initializer and returns its name.
func (g *graph) floats(name string, vals []float32, dims ...int64) string {
	if name == "" {
		name = g.fresh("const")
	}
	g.inits = append(g.inits, &onnx.TensorProto{Name: name, DataType: int32(onnx.TensorProto_FLOAT), Dims: dims, FloatData: vals})
	return name
}

// ints adds an int64 initializer and returns its name.
func (g *graph) ints(vals []int64, dims ...int64) string {
	name := g.fresh("const")
	g.inits = append(g.inits, &onnx.TensorProto{Name: name, DataType: int32(onnx.TensorProto_INT64), Dims: dims, Int64Data: vals})
	return name
}

// scalar returns a 0-d float32 constant, shared between uses.
func (g *graph) scalar(v float32) string {
	key := fmt.Sprintf("f%08x", math.Float32bits(v))
	if name, ok := g.consts[key]; ok {
		return name
	}
	name := g.floats("", []float32{v})
	g.consts[key] = name
	return name
}

// vec returns a 1-d int64 constant, shared between uses.
func (g *graph) vec(vals ...int64) string {
	key := fmt.Sprint("i", vals)
	if name, ok := g.consts[key]; ok {
		return name
	}
	name := g.ints(vals, int64(len(vals)))
	g.consts[key] = name
	return name
}

// model wraps the graph into a model at the project's opset.
func (g *graph) model(name string, meta map[MetaKey]string) *onnx.ModelProto {
	m := &onnx.ModelProto{
		IrVersion:    IRVersion,
		OpsetImport:  []*onnx.OperatorSetIdProto{{Domain: "", Version: Opset}},
		ProducerName: "nasctl", ProducerVersion: buildinfo.Version(),
		Graph: &onnx.GraphProto{
			Name: name, Node: g.nodes, Initializer: g.inits, Input: g.inputs, Output: g.outputs, ValueInfo: g.shapes,
		},
	}
	for _, k := range sortedKeys(meta) {
		m.MetadataProps = append(m.MetadataProps, &onnx.StringStringEntryProto{Key: string(k), Value: meta[k]})
	}
	return m
}

func valueInfo(name string, elem onnx.TensorProto_DataType, dims []int64) *onnx.ValueInfoProto {
	shape := &onnx.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnx.TensorShapeProto_Dimension{}
		if d < 0 {
			dim.Value = &onnx.TensorShapeProto_Dimension_DimParam{DimParam: "N"}
		} else {
			dim.Value = &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
		TensorType: &onnx.TypeProto_Tensor{ElemType: int32(elem), Shape: shape}}}}
}

// Attribute helpers.

func attrInt(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
}

func attrInts(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INTS, Ints: v}
}

func attrFloat(name string, v float32) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_FLOAT, F: v}
}

func attrString(name, v string) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_STRING, S: []byte(v)}
}
