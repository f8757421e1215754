package onnxgen

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/genotype"
	"google.golang.org/protobuf/proto"
)

// ModelInfo is what an exported model says about itself.
type ModelInfo struct {
	Arch    genotype.Genotype // from metadata; nil when the model was not made by nasctl
	Input   genotype.Input
	Classes []string
	Meta    map[MetaKey]string // every metadata_props entry
	Inputs  []string           // graph input names (initializers excluded)
	Outputs []string           // graph output names
	// Declared is each graph input's (initializers excluded) and output's
	// declared type, by name: "float32[N,1,64,64]", what a program that
	// feeds the model must give and read.
	Declared map[string]string
	Opset    int64
	Ops      []string // distinct operator types, in first-use order
	Weights  int64    // float values in initializers of rank 1 or more (scalar constants excluded)
	Producer string

	// ProducerVersion is the build of the program that wrote the model (for
	// nasctl, buildinfo.Version; empty in models written before nasctl
	// recorded it).
	ProducerVersion string
}

// ReadModelInfo parses a serialized ONNX model and reads nasctl's metadata. A
// model from elsewhere parses too; its Arch is nil and Input comes from the
// declared shape of its first input when that is [N, C, H, W].
func ReadModelInfo(b []byte) (*ModelInfo, error) {
	if len(b) == 0 {
		return nil, errors.New("not an ONNX model: the file is empty")
	}
	var m onnx.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("not an ONNX model: %w", err)
	}
	g := m.GetGraph()
	if g == nil { // many byte strings parse as a protobuf message of unknown fields
		return nil, errors.New("not an ONNX model: it holds no graph")
	}
	info := &ModelInfo{Meta: map[MetaKey]string{}, Producer: m.GetProducerName(), ProducerVersion: m.GetProducerVersion()}
	for _, p := range m.GetMetadataProps() {
		info.Meta[MetaKey(p.GetKey())] = p.GetValue()
	}
	for _, o := range m.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			info.Opset = o.GetVersion()
		}
	}
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
		n := int64(1)
		for _, d := range t.GetDims() {
			n *= d
		}
		if t.GetDataType() == int32(onnx.TensorProto_FLOAT) && len(t.GetDims()) > 0 {
			info.Weights += n
		}
		if bad := nonFinite(t); bad > 0 {
			what := fmt.Sprintf("%d values of the weights %s are", bad, t.GetName())
			if bad == 1 {
				what = fmt.Sprintf("a value of the weights %s is", t.GetName())
			}
			return nil, fmt.Errorf("%s NaN or infinite: the file is damaged (or its training diverged); copy it again from where it was made, or train it again", what)
		}
	}
	info.Declared = map[string]string{}
	for _, in := range g.GetInput() {
		if !inits[in.GetName()] {
			info.Inputs = append(info.Inputs, in.GetName())
			info.Declared[in.GetName()] = declaredType(in)
		}
	}
	for _, out := range g.GetOutput() {
		info.Outputs = append(info.Outputs, out.GetName())
		info.Declared[out.GetName()] = declaredType(out)
	}
	seen := map[string]bool{}
	for _, n := range g.GetNode() {
		if !seen[n.GetOpType()] {
			seen[n.GetOpType()] = true
			info.Ops = append(info.Ops, n.GetOpType())
		}
	}
	if s, ok := info.Meta[MetaArch]; ok {
		a, err := genotype.ParseGenotype(s)
		if err != nil {
			return nil, fmt.Errorf("metadata %s: %w", MetaArch, err)
		}
		info.Arch = a
	}
	if s, ok := info.Meta[MetaInput]; ok {
		in, err := genotype.ParseInput(s)
		if err != nil {
			return nil, fmt.Errorf("metadata %s: %w", MetaInput, err)
		}
		info.Input = in
	} else if len(g.GetInput()) > 0 {
		info.Input = declaredInput(g.GetInput()[0])
	}
	if s := info.Meta[MetaClasses]; s != "" {
		if err := json.Unmarshal([]byte(s), &info.Classes); err != nil {
			return nil, fmt.Errorf("metadata %s %q: want a JSON array of class names: %w", MetaClasses, s, err)
		}
	}
	return info, nil
}

// declaredType writes a value's declared tensor type as "float32[N,1,64,64]":
// the element type in lower case, each dimension's size or name ("?" when it
// has neither).
func declaredType(v *onnx.ValueInfoProto) string {
	t := v.GetType().GetTensorType()
	elem := strings.ToLower(onnx.TensorProto_DataType_name[t.GetElemType()])
	switch onnx.TensorProto_DataType(t.GetElemType()) {
	case onnx.TensorProto_FLOAT:
		elem = "float32"
	case onnx.TensorProto_DOUBLE:
		elem = "float64"
	}
	dims := make([]string, len(t.GetShape().GetDim()))
	for i, d := range t.GetShape().GetDim() {
		switch {
		case d.GetDimParam() != "":
			dims[i] = d.GetDimParam()
		case d.GetDimValue() > 0:
			dims[i] = strconv.FormatInt(d.GetDimValue(), 10)
		default:
			dims[i] = "?"
		}
	}
	if len(dims) == 0 && t.GetShape() == nil {
		return elem + " (shape not declared)"
	}
	return elem + "[" + strings.Join(dims, ",") + "]"
}

// declaredInput reads [N, C, H, W] from a value's declared type, or returns the
// zero Input.
func declaredInput(v *onnx.ValueInfoProto) genotype.Input {
	dims := v.GetType().GetTensorType().GetShape().GetDim()
	if len(dims) != 4 {
		return genotype.Input{}
	}
	return genotype.Input{Channels: int(dims[1].GetDimValue()), Height: int(dims[2].GetDimValue()), Width: int(dims[3].GetDimValue())}
}

// Weights reads the parameters of net back from an inference model that
// Inference wrote for it (by name and shape), in Params order.
func Weights(model []byte, net *genotype.Net) ([][]float32, error) {
	var m onnx.ModelProto
	if err := proto.Unmarshal(model, &m); err != nil {
		return nil, fmt.Errorf("not an ONNX model: %w", err)
	}
	byName := map[string]*onnx.TensorProto{}
	for _, t := range m.GetGraph().GetInitializer() {
		byName[t.GetName()] = t
	}
	params := Params(net)
	out := make([][]float32, len(params))
	for i, p := range params {
		t, ok := byName[p.Name]
		if !ok {
			return nil, fmt.Errorf("model has no initializer %s for %s", p.Name, net.Genotype)
		}
		v := t.GetFloatData()
		if len(v) == 0 && len(t.GetRawData()) > 0 {
			var err error
			if v, err = onnx.ReadFloat32ArrayFromBytes(t.GetRawData()); err != nil {
				return nil, fmt.Errorf("initializer %s: %w", p.Name, err)
			}
		}
		if len(v) != p.Size() {
			return nil, fmt.Errorf("initializer %s has %d values, %s needs %d", p.Name, len(v), net.Genotype, p.Size())
		}
		out[i] = v
	}
	return out, nil
}

// nonFinite counts the NaN and infinite values of a float tensor, stored
// as floats or as raw little-endian bytes: a model holding one answers NaN
// for every image.
func nonFinite(t *onnx.TensorProto) int {
	if t.GetDataType() != int32(onnx.TensorProto_FLOAT) {
		return 0
	}
	n := 0
	for _, v := range t.GetFloatData() {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			n++
		}
	}
	raw := t.GetRawData()
	for i := 0; i+4 <= len(raw); i += 4 {
		if binary.LittleEndian.Uint32(raw[i:])>>23&0xff == 0xff { // the exponent of NaN and infinity
			n++
		}
	}
	return n
}
