// Package quantize turns a float32 ONNX model into a statically quantized
// one in the QDQ form: QuantizeLinear/DequantizeLinear pairs around the
// inputs and outputs of its convolutions and dense layers (Conv, Gemm),
// int8 weights with a scale per output channel and int32 biases, activations
// in 8 bits with a scale and zero point per tensor chosen from their values
// on calibration images. ONNX Runtime's CPU provider recognises the pairs
// and runs the operators between them on its int8 kernels (QLinearConv,
// QGemm, int8 MaxPool); any other runtime that reads standard ONNX
// (opset 13 and later) computes the same values in float.
//
// The package only rewrites the graph and needs no cgo: the activations'
// values come from a Runner, which runs a probe model (the float model with
// the values to calibrate as extra outputs) on the calibration images, in
// nasctl through package runtime (runtime.Activations). What was measured
// and chosen (uint8 activations, the percentile method): docs/edge.md,
// "INT8".
package quantize

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/internal/buildinfo"
	"github.com/nasctl/nasctl/onnxgen"
	"google.golang.org/protobuf/proto"
)

// Activations is the integer type of quantized activations.
type Activations int

const (
	// Uint8 activations (with int8 weights, "U8S8"): the pairing ONNX
	// Runtime's x86 int8 kernels compute natively and its documentation
	// recommends there. On the AVX-512 VNNI machine of docs/edge.md both
	// types gave the same accuracies and latencies within the noise.
	Uint8 Activations = iota
	// Int8 activations ("S8S8").
	Int8
)

func (a Activations) String() string {
	if a == Int8 {
		return "int8"
	}
	return "uint8"
}

// ParseActivations reads uint8 or int8.
func ParseActivations(s string) (Activations, error) {
	switch s {
	case "uint8":
		return Uint8, nil
	case "int8":
		return Int8, nil
	}
	return 0, fmt.Errorf("unknown activation type %q (valid: uint8, int8)", s)
}

// Options configure Model. The zero value calibrates by the 99.999th
// percentile into uint8 activations, what measured best (docs/edge.md,
// "INT8").
type Options struct {
	// Method chooses each activation's range from its calibration values.
	Method Method
	// Percentile is the percentile Percentile keeps; zero: 99.999.
	Percentile float64
	// Activations is the activations' integer type.
	Activations Activations
	// Images and Data describe the calibration images (their number and
	// where they come from) in the model's metadata; they do not change
	// the quantization.
	Images int
	Data   string
}

// Runner runs probe, a float model whose graph outputs are the values named
// in outputs, on the calibration images, and passes observe the values of
// each output (by index in outputs) for each batch it runs. Model calls it
// twice for Percentile (ranges, then histograms), on the same images each
// time, and once for MinMax.
type Runner func(probe []byte, outputs []string, observe func(output int, values []float32)) error

// MetaQuantization is the metadata key of a quantized model's Settings (a
// JSON object); the float model's accuracies move to the keys
// MetaFloatTestAccuracy and MetaFloatValAccuracy, since the quantized
// model's own are measured afresh.
const (
	MetaQuantization      onnxgen.MetaKey = "nasctl.quantization"
	MetaFloatTestAccuracy onnxgen.MetaKey = "nasctl.float_test_accuracy"
	MetaFloatValAccuracy  onnxgen.MetaKey = "nasctl.float_val_accuracy"
)

// Settings say how a model was quantized; Model writes them into its
// metadata.
type Settings struct {
	Format      string `json:"format"`      // "QDQ"
	Weights     string `json:"weights"`     // type and granularity of the weights
	Activations string `json:"activations"` // type and granularity of the activations
	Calibration string `json:"calibration"` // the method, with its percentile
	Images      int    `json:"calibration_images,omitempty"`
	Data        string `json:"calibration_data,omitempty"`
	// Source is the SHA-256 of the float model quantized (hex), which
	// pairs the two for comparisons.
	Source string `json:"source_sha256"`
	// Operators quantized (Conv and Gemm with int8 weights), activations
	// quantized, other weights stored in int8, and paddings folded back
	// into their operators (see foldPadding).
	Operators     int `json:"operators"`
	Tensors       int `json:"tensors"`
	WeightOnly    int `json:"weight_only,omitempty"`
	FoldedPadding int `json:"folded_padding,omitempty"`
}

// ReadSettings returns the quantization settings in a model's metadata,
// or nil for a model that Model did not write.
func ReadSettings(info *onnxgen.ModelInfo) (*Settings, error) {
	s, ok := info.Meta[MetaQuantization]
	if !ok {
		return nil, nil
	}
	var out Settings
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("metadata %s: %w", MetaQuantization, err)
	}
	return &out, nil
}

// ErrNothingToQuantize is Model's error for a model without a Conv or Gemm
// with constant float weights (such as a lone classifier of one output,
// which nasctl exports as a multiplication).
var ErrNothingToQuantize = errors.New("quantize: the model has no Conv or Gemm with constant float weights, nothing to run in int8")

// Model quantizes a float32 model (opset 13 or later) with activation
// ranges calibrated through run, and returns the quantized model with its
// metadata kept and the Settings added.
func Model(model []byte, run Runner, opts Options) ([]byte, error) {
	opts.Percentile = cmpOr(opts.Percentile, 99.999)
	if opts.Method == Percentile && !(opts.Percentile > 50 && opts.Percentile <= 100) {
		return nil, fmt.Errorf("quantize: percentile %g must be over 50 and at most 100", opts.Percentile)
	}
	var m onnx.ModelProto
	if err := proto.Unmarshal(model, &m); err != nil {
		return nil, fmt.Errorf("quantize: not an ONNX model: %w", err)
	}
	if m.GetGraph() == nil {
		return nil, fmt.Errorf("quantize: not an ONNX model: it holds no graph")
	}
	for _, o := range m.GetOpsetImport() {
		if (o.GetDomain() == "" || o.GetDomain() == "ai.onnx") && o.GetVersion() < 13 {
			return nil, fmt.Errorf("quantize: opset %d; per-channel QuantizeLinear needs opset 13 or later", o.GetVersion())
		}
	}
	g := newGraph(m.Graph)
	folded := g.foldPadding()
	p := g.plan()
	if len(p.ops) == 0 {
		return nil, ErrNothingToQuantize
	}
	ranges, err := p.calibrate(&m, run, opts)
	if err != nil {
		return nil, err
	}
	weightOnly := g.rewrite(p, ranges, opts.Activations)
	s := Settings{Format: "QDQ", Weights: "int8, symmetric, per output channel", Activations: opts.Activations.String() + ", asymmetric, per tensor",
		Calibration: opts.Method.String(), Images: opts.Images, Data: opts.Data,
		Operators: len(p.ops), Tensors: len(p.tensors), WeightOnly: weightOnly, FoldedPadding: folded, Source: SHA256(model)}
	if opts.Method == Percentile {
		s.Calibration += " " + strconv.FormatFloat(opts.Percentile, 'g', -1, 64)
	}
	if err := setMetadata(&m, s); err != nil {
		return nil, err
	}
	// The int8 file is this build's work, whoever wrote the float model
	// (whose SHA-256 Settings.Source names).
	m.ProducerName, m.ProducerVersion = "nasctl", buildinfo.Version()
	b, err := proto.Marshal(&m)
	if err != nil {
		return nil, fmt.Errorf("quantize: serializing: %w", err)
	}
	return b, nil
}

// SHA256 is the hex SHA-256 of a model's bytes, as Settings.Source holds
// it.
func SHA256(model []byte) string {
	sum := sha256.Sum256(model)
	return hex.EncodeToString(sum[:])
}

func cmpOr(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// setMetadata adds the settings and moves the float model's accuracies.
func setMetadata(m *onnx.ModelProto, s Settings) error {
	js, err := json.Marshal(s)
	if err != nil {
		return err
	}
	props := []*onnx.StringStringEntryProto{}
	for _, e := range m.GetMetadataProps() {
		switch onnxgen.MetaKey(e.GetKey()) {
		case onnxgen.MetaTestAccuracy:
			e.Key = string(MetaFloatTestAccuracy)
		case onnxgen.MetaValAccuracy:
			e.Key = string(MetaFloatValAccuracy)
		case MetaQuantization:
			continue
		}
		props = append(props, e)
	}
	props = append(props, &onnx.StringStringEntryProto{Key: string(MetaQuantization), Value: string(js)})
	slices.SortFunc(props, func(a, b *onnx.StringStringEntryProto) int {
		switch {
		case a.GetKey() < b.GetKey():
			return -1
		case a.GetKey() > b.GetKey():
			return 1
		}
		return 0
	})
	m.MetadataProps = props
	return nil
}

// SetMetadata returns model with metadata key set to value (for the
// quantized model's own accuracy, measured after Model).
func SetMetadata(model []byte, key onnxgen.MetaKey, value string) ([]byte, error) {
	var m onnx.ModelProto
	if err := proto.Unmarshal(model, &m); err != nil {
		return nil, fmt.Errorf("not an ONNX model: %w", err)
	}
	found := false
	for _, e := range m.GetMetadataProps() {
		if e.GetKey() == string(key) {
			e.Value, found = value, true
		}
	}
	if !found {
		m.MetadataProps = append(m.MetadataProps, &onnx.StringStringEntryProto{Key: string(key), Value: value})
	}
	return proto.Marshal(&m)
}

// plan is what Model quantizes.
type plan struct {
	ops []*onnx.NodeProto // Conv and Gemm with constant float weights
	// tensors are the activations that get a QuantizeLinear/
	// DequantizeLinear pair, in graph order; source[t] is the calibrated
	// tensor whose range t takes (itself, or the value a chain of
	// operators that do not change values' range, such as MaxPool or
	// Flatten, started from, so that ONNX Runtime can drop the pair around
	// them and run them in int8).
	tensors []string
	source  map[string]string
	// relu[v]: the Relu that reads only output v of a quantized operator;
	// the pair after v takes its range (from 0) and replaces it.
	relu map[string]*onnx.NodeProto
	// calibrated are the tensors whose ranges are measured.
	calibrated []string
}

// passThrough are the operators whose output keeps the range (and, for
// quantized values, the scale and zero point) of their first input.
var passThrough = []string{"MaxPool", "Flatten", "Reshape", "Transpose", "Identity", "Squeeze", "Unsqueeze"}

// quantizable reports whether n is a Conv, or a Gemm that is a plain
// matrix product (alpha and beta 1, A not transposed), with a constant
// float weight.
func (q *graph) quantizable(n *onnx.NodeProto) bool {
	ins := n.GetInput()
	if len(ins) < 2 || q.inits[ins[0]] != nil {
		return false
	}
	w, ok := floats(q.inits[ins[1]])
	if !ok || len(w) == 0 {
		return false
	}
	if len(ins) > 2 && ins[2] != "" {
		if _, ok := floats(q.inits[ins[2]]); !ok {
			return false
		}
	}
	switch n.GetOpType() {
	case "Conv":
		return len(q.inits[ins[1]].GetDims()) >= 3
	case "Gemm":
		return len(q.inits[ins[1]].GetDims()) == 2 && attrInt(n, "transA", 0) == 0 && attrFloat(n, "alpha", 1) == 1 && attrFloat(n, "beta", 1) == 1
	}
	return false
}

// plan finds the operators and activations to quantize.
func (q *graph) plan() *plan {
	p := &plan{source: map[string]string{}, relu: map[string]*onnx.NodeProto{}}
	outputs, after := q.findOps(p)
	quantized := map[string]bool{}
	mark := func(t, src string) {
		if !quantized[t] {
			quantized[t] = true
			p.source[t] = src
		}
	}
	// root follows v back through pass-through operators to a quantized
	// output; it returns that output and the values on the way.
	root := func(v string) (string, []string) {
		var path []string
		for {
			if _, ok := outputs[v]; ok {
				return v, path
			}
			n := q.producer[v]
			if n == nil || !slices.Contains(passThrough, n.GetOpType()) || len(n.GetOutput()) != 1 {
				return "", nil
			}
			path = append(path, v)
			v = n.GetInput()[0]
		}
	}
	// A GlobalAveragePool of a quantized value runs in int8 too
	// (QLinearGlobalAveragePool), with a range of its own.
	pooled := map[string]string{} // its output -> its input
	for _, n := range q.g.GetNode() {
		if n.GetOpType() == "GlobalAveragePool" {
			if r, _ := root(n.GetInput()[0]); r != "" {
				outputs[n.GetOutput()[0]] = "GlobalAveragePool"
				pooled[n.GetOutput()[0]] = n.GetInput()[0]
			}
		}
	}
	// chain quantizes v and the values back to its root with the root's
	// range, and the chain into a pooling root; false when v has no root.
	var chain func(v string) bool
	chain = func(v string) bool {
		r, path := root(v)
		if r == "" {
			return false
		}
		mark(r, r)
		for _, t := range path {
			mark(t, r)
		}
		if in, ok := pooled[r]; ok {
			chain(in)
		}
		return true
	}
	// Every convolution's output is quantized (ONNX Runtime fuses a Conv
	// only between pairs); a Gemm's or pooling's only when a quantized
	// operator reads it, directly or through pass-through operators.
	for _, n := range p.ops {
		if n.GetOpType() == "Conv" {
			chain(after[n])
		}
	}
	for _, n := range p.ops {
		if t := n.GetInput()[0]; !chain(t) {
			mark(t, t)
		}
	}
	q.order(p, quantized)
	return p
}

// findOps adds the quantizable operators to p.ops and the ReLUs folded
// into their pairs to p.relu; it returns each operator's output after its
// ReLU, mapped to its op type, and by operator.
func (q *graph) findOps(p *plan) (outputs map[string]string, after map[*onnx.NodeProto]string) {
	outputs, after = map[string]string{}, map[*onnx.NodeProto]string{}
	for _, n := range q.g.GetNode() {
		if !q.quantizable(n) {
			continue
		}
		p.ops = append(p.ops, n)
		y := n.GetOutput()[0]
		if cs := q.consumers[y]; len(cs) == 1 && cs[0].GetOpType() == "Relu" && !q.outputs[y] && !q.outputs[cs[0].GetOutput()[0]] {
			p.relu[y] = cs[0]
			y = cs[0].GetOutput()[0]
		}
		outputs[y], after[n] = n.GetOpType(), y
	}
	return outputs, after
}

// order lists the quantized values in p.tensors in graph order (graph
// inputs first, then each node's outputs; a ReLU folded into a pair counts
// as its operator's output), and those calibrated in p.calibrated.
func (q *graph) order(p *plan, quantized map[string]bool) {
	for _, in := range q.g.GetInput() {
		if quantized[in.GetName()] {
			p.tensors = append(p.tensors, in.GetName())
		}
	}
	for _, n := range q.g.GetNode() {
		for _, o := range n.GetOutput() {
			if r := p.relu[o]; r != nil {
				o = r.GetOutput()[0]
			}
			if quantized[o] && !slices.Contains(p.tensors, o) {
				p.tensors = append(p.tensors, o)
			}
		}
	}
	for _, t := range p.tensors {
		if p.source[t] == t {
			p.calibrated = append(p.calibrated, t)
		}
	}
}

// calibrate runs the probe model through run and returns the range of
// each calibrated tensor.
func (p *plan) calibrate(m *onnx.ModelProto, run Runner, opts Options) (map[string][2]float64, error) {
	probe := proto.Clone(m).(*onnx.ModelProto)
	g := probe.GetGraph()
	inputs := map[string]bool{}
	for _, in := range g.GetInput() {
		inputs[in.GetName()] = true
	}
	names := make([]string, len(p.calibrated))
	g.Output = nil // the model's own outputs are not needed
	for i, t := range p.calibrated {
		names[i] = t
		if inputs[t] {
			// A graph input cannot be an output too: copy it.
			names[i] = t + "/calibration"
			g.Node = append(g.Node, &onnx.NodeProto{OpType: "Identity", Input: []string{t}, Output: []string{names[i]}})
		}
		g.Output = append(g.Output, &onnx.ValueInfoProto{Name: names[i], Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
			TensorType: &onnx.TypeProto_Tensor{ElemType: int32(onnx.TensorProto_FLOAT)}}}})
	}
	b, err := proto.Marshal(probe)
	if err != nil {
		return nil, fmt.Errorf("quantize: serializing the probe model: %w", err)
	}
	c := newCollector(len(names))
	if err := run(b, names, c.observe); err != nil {
		return nil, fmt.Errorf("quantize: calibration: %w", err)
	}
	for i, seen := range c.seen {
		if !seen {
			return nil, fmt.Errorf("quantize: calibration: no values of %s were observed", p.calibrated[i])
		}
	}
	if opts.Method == Percentile {
		c.histograms()
		if err := run(b, names, c.observe); err != nil {
			return nil, fmt.Errorf("quantize: calibration, second pass: %w", err)
		}
	}
	ranges := map[string][2]float64{}
	for i, t := range p.calibrated {
		lo, hi := c.lo[i], c.hi[i]
		if opts.Method == Percentile {
			lo, hi = c.percentile(i, opts.Percentile)
		}
		ranges[t] = [2]float64{lo, hi}
	}
	return ranges, nil
}

// qparams are an activation's scale and zero point.
type qparams struct {
	scale float32
	zero  int32
}

// activationParams maps the range [lo, hi] (widened to hold 0, which must
// be exact) onto the 256 levels of the type.
func activationParams(lo, hi float64, a Activations) qparams {
	lo, hi = min(lo, 0), max(hi, 0)
	qmin := 0.0
	if a == Int8 {
		qmin = -128
	}
	if hi-lo < 1e-30 {
		return qparams{scale: 1, zero: int32(qmin)}
	}
	scale := (hi - lo) / 255
	zero := math.RoundToEven(qmin - lo/scale)
	return qparams{scale: float32(scale), zero: int32(min(max(zero, qmin), qmin+255))}
}

// rewrite inserts the pairs and quantizes the weights; it returns the
// number of other weights stored in int8.
func (q *graph) rewrite(p *plan, ranges map[string][2]float64, a Activations) int {
	params := map[string]qparams{}
	scaleOf := map[string][2]string{} // source -> scale and zero-point initializers
	for _, t := range p.calibrated {
		r := ranges[t]
		params[t] = activationParams(r[0], r[1], a)
	}
	pair := func(t string) (scale, zero string) {
		src := p.source[t]
		if s, ok := scaleOf[src]; ok {
			return s[0], s[1]
		}
		qp := params[src]
		scale = q.addInit(floatTensor(q.fresh("s"), []float32{qp.scale}))
		if a == Int8 {
			zero = q.addInit(int8Tensor(q.fresh("z"), []int8{int8(qp.zero)}))
		} else {
			zero = q.addInit(uint8Tensor(q.fresh("z"), []uint8{uint8(qp.zero)}))
		}
		scaleOf[src] = [2]string{scale, zero}
		return scale, zero
	}
	// New node lists: the pairs after the value they quantize, the
	// weights' DequantizeLinear before their operator.
	dq := map[string]string{} // activation -> its dequantized value
	var head []*onnx.NodeProto
	emit := func(into *[]*onnx.NodeProto, t, from string) {
		scale, zero := pair(t)
		tq, td := q.fresh("q"), q.fresh("d")
		*into = append(*into,
			&onnx.NodeProto{OpType: "QuantizeLinear", Input: []string{from, scale, zero}, Output: []string{tq}},
			&onnx.NodeProto{OpType: "DequantizeLinear", Input: []string{tq, scale, zero}, Output: []string{td}})
		dq[t] = td
	}
	for _, in := range q.g.GetInput() {
		if slices.Contains(p.tensors, in.GetName()) {
			emit(&head, in.GetName(), in.GetName())
		}
	}
	dropped := map[*onnx.NodeProto]bool{}
	for _, r := range p.relu {
		dropped[r] = true
	}
	ops := map[*onnx.NodeProto]bool{}
	for _, n := range p.ops {
		ops[n] = true
	}
	nodes := head
	for _, n := range q.g.GetNode() {
		if dropped[n] {
			continue
		}
		if ops[n] {
			nodes = append(nodes, q.quantizeWeights(n, params[p.source[n.GetInput()[0]]])...)
		}
		nodes = append(nodes, n)
		for _, o := range n.GetOutput() {
			t := o
			if r := p.relu[o]; r != nil {
				t = r.GetOutput()[0]
			}
			if slices.Contains(p.tensors, t) {
				emit(&nodes, t, o)
			}
		}
	}
	// Every reader of a quantized activation reads its dequantized value,
	// but for the pair's own QuantizeLinear.
	for _, n := range nodes {
		if n.GetOpType() == "QuantizeLinear" {
			continue
		}
		for i, in := range n.Input {
			if d, ok := dq[in]; ok && d != n.GetOutput()[0] {
				n.Input[i] = d
			}
		}
	}
	q.g.Node = nodes
	q.prune()
	weightOnly := q.weightOnly()
	q.prune()
	q.compact()
	return weightOnly
}

// compact renames every value but the graph's inputs and outputs to short
// names, in order of appearance, and clears the nodes' names and the
// shapes of intermediate values: for a model of a few thousand weights the
// float export's descriptive names are a tenth of the quantized file.
func (q *graph) compact() {
	names := map[string]string{}
	for _, in := range q.g.GetInput() {
		names[in.GetName()] = in.GetName()
	}
	for _, out := range q.g.GetOutput() {
		names[out.GetName()] = out.GetName()
	}
	short := func(v string) string {
		if v == "" {
			return v
		}
		if s, ok := names[v]; ok {
			return s
		}
		s := strconv.FormatInt(int64(len(names)), 36)
		for q.outputs[s] || q.inputs[s] {
			s += "_"
		}
		names[v] = s
		return s
	}
	for _, t := range q.g.GetInitializer() {
		t.Name = short(t.GetName())
	}
	for _, n := range q.g.GetNode() {
		n.Name, n.DocString = "", ""
		for i, v := range n.Input {
			n.Input[i] = short(v)
		}
		for i, v := range n.Output {
			n.Output[i] = short(v)
		}
	}
	q.g.ValueInfo = nil
	q.index()
}

// quantizeWeights replaces the weight (and bias) of quantized operator n by
// int8 (int32) initializers and returns their DequantizeLinear nodes; x
// are the parameters of n's input activation, which set the bias's scale.
func (q *graph) quantizeWeights(n *onnx.NodeProto, x qparams) []*onnx.NodeProto {
	wt := q.inits[n.GetInput()[1]]
	w, _ := floats(wt)
	dims := wt.GetDims()
	axis := 0 // the output channels: Conv's first dimension, Gemm's B [K, N] second
	if n.GetOpType() == "Gemm" && attrInt(n, "transB", 0) == 0 {
		axis = 1
	}
	channels := int(dims[axis])
	inner := 1 // values per step of the channel axis
	for _, d := range dims[axis+1:] {
		inner *= int(d)
	}
	scales := make([]float32, channels)
	for i, v := range w {
		c := (i / inner) % channels
		scales[c] = max(scales[c], float32(math.Abs(float64(v))))
	}
	for c := range scales {
		scales[c] /= 127
		if scales[c] == 0 {
			scales[c] = 1 // an all-zero channel
		}
	}
	wq := make([]int8, len(w))
	for i, v := range w {
		wq[i] = int8(max(min(math.RoundToEven(float64(v/scales[(i/inner)%channels])), 127), -127))
	}
	var out []*onnx.NodeProto
	// Symmetric: the zero points are 0, DequantizeLinear's default, and a
	// convolution's are left out (ONNX Runtime fuses a Gemm into QGemm
	// only when they are given).
	gemm := n.GetOpType() == "Gemm"
	deq := func(t *onnx.TensorProto, scale []float32, axis int, zero *onnx.TensorProto) string {
		s := q.addInit(floatTensor(q.fresh("s"), scale, int64(len(scale))))
		q.addInit(t)
		ins := []string{t.GetName(), s}
		if gemm {
			ins = append(ins, q.addInit(zero))
		}
		d := q.fresh("d")
		out = append(out, &onnx.NodeProto{OpType: "DequantizeLinear", Input: ins, Output: []string{d},
			Attribute: []*onnx.AttributeProto{{Name: "axis", Type: onnx.AttributeProto_INT, I: int64(axis)}}})
		return d
	}
	n.Input[1] = deq(int8Tensor(q.fresh("w"), wq, dims...), scales, axis, int8Tensor(q.fresh("z"), make([]int8, channels), int64(channels)))
	if len(n.GetInput()) > 2 && n.GetInput()[2] != "" {
		b, _ := floats(q.inits[n.GetInput()[2]])
		bs := make([]float32, channels)
		bq := make([]int32, len(b))
		for c := range bs {
			bs[c] = x.scale * scales[c]
		}
		for i, v := range b {
			bq[i] = int32(max(min(math.RoundToEven(float64(v)/float64(bs[i%channels])), math.MaxInt32), math.MinInt32))
		}
		n.Input[2] = deq(int32Tensor(q.fresh("b"), bq, int64(len(b))), bs, 0, int32Tensor(q.fresh("z"), make([]int32, channels), int64(channels)))
	}
	return out
}

// weightOnlyMin is the smallest float weight stored in int8 when no
// quantized operator reads it (such as the weights of the multiplication
// that replaces a one-output dense layer in nasctl's exports): smaller
// ones cost more in scale and node than they save.
const weightOnlyMin = 256

// weightOnly stores the remaining float initializers of at least
// weightOnlyMin values in int8 (symmetric, one scale), each behind a
// DequantizeLinear, and returns their number.
func (q *graph) weightOnly() int {
	count := 0
	var nodes []*onnx.NodeProto
	for _, t := range slices.Clone(q.g.GetInitializer()) {
		w, ok := floats(t)
		if !ok || len(w) < weightOnlyMin {
			continue
		}
		var peak float64
		for _, v := range w {
			peak = max(peak, math.Abs(float64(v)))
		}
		scale := float32(peak / 127)
		if scale == 0 {
			scale = 1
		}
		wq := make([]int8, len(w))
		for i, v := range w {
			wq[i] = int8(max(min(math.RoundToEven(float64(v/scale)), 127), -127))
		}
		name := t.GetName()
		qt := q.addInit(int8Tensor(q.fresh("w"), wq, t.GetDims()...))
		s := q.addInit(floatTensor(q.fresh("s"), []float32{scale}))
		d := q.fresh("d")
		nodes = append(nodes, &onnx.NodeProto{OpType: "DequantizeLinear", Input: []string{qt, s}, Output: []string{d}})
		for _, c := range q.consumers[name] {
			replaceInput(c, name, d)
		}
		count++
	}
	q.g.Node = append(nodes, q.g.Node...)
	return count
}
