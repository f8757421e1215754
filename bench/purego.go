package bench

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/genotype"
	_ "github.com/nasctl/nasctl/internal/protoconflict" // before onnx-go: see the package
	"github.com/nasctl/nasctl/onnxgen"
	onnxgo "github.com/owulveryck/onnx-go"
	"github.com/owulveryck/onnx-go/backend/x/gorgonnx"
	"google.golang.org/protobuf/proto"
	"gorgonia.org/tensor"
)

// PureGo is the comparison of ONNX Runtime's outputs with those of a second,
// pure-Go runtime (github.com/owulveryck/onnx-go with its gorgonia backend)
// on the same images, and that runtime's batch-1 latency. Exactly one of
// MaxAbsDiff, UnsupportedOp and Error is set.
type PureGo struct {
	Images int `json:"images"`
	// MaxAbsDiff is the largest absolute difference between the two
	// runtimes' class probabilities.
	MaxAbsDiff *float64 `json:"max_abs_diff,omitempty"`
	// Agree: MaxAbsDiff is at most Tolerance.
	Agree bool `json:"agree"`
	// UnsupportedOp names the operators (and attributes) of the model that
	// onnx-go lacks or computes wrongly, separated by "; " (which no gap's
	// text holds).
	UnsupportedOp string `json:"unsupported_op,omitempty"`
	// Error is any other failure of onnx-go.
	Error string `json:"error,omitempty"`
	// Rewritten: the model has operators onnx-go lacks or computes wrongly,
	// and the comparison is of its form that nasctl export --pure-go writes
	// (onnxgen.PureGo), which rewrote this many operators; 0 when onnx-go
	// ran the model itself, or could not run either.
	Rewritten int `json:"rewritten,omitempty"`
	// LatencyMs is onnx-go's batch-1 latency when it runs the model
	// (gorgonia's tape machine runs the operators one after another on
	// the calling goroutine).
	LatencyMs *Latency `json:"latency_ms,omitempty"`
}

// Tolerance is the agreement required between the two runtimes' outputs
// (class probabilities): both compute in float32, and the exports of a
// search's winners differ by 3e-7 at most (docs/edge.md).
const Tolerance = 1e-5

// pureGoModel is a model loaded into onnx-go for one batch size.
type pureGoModel struct {
	m       *onnxgo.Model
	backend *gorgonnx.Graph
	in      genotype.Input
	n       int
}

// loadPureGo reads an ONNX model into onnx-go for batches of n images of
// shape in.
func loadPureGo(model []byte, in genotype.Input, n int) (p *pureGoModel, err error) {
	// onnx-go panics on some graphs it cannot handle; report, do not crash.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("onnx-go panicked: %v", r)
		}
	}()
	backend := gorgonnx.NewGraph()
	m := onnxgo.NewModel(backend)
	if err := m.UnmarshalBinary(model); err != nil {
		return nil, err
	}
	return &pureGoModel{m: m, backend: backend, in: in, n: n}, nil
}

// run computes the model's first output, flattened, for p.n images (NCHW
// pixels).
func (p *pureGoModel) run(pixels []float32) (out []float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("onnx-go panicked: %v", r)
		}
	}()
	in := p.in
	x := tensor.New(tensor.WithShape(p.n, in.Channels, in.Height, in.Width), tensor.WithBacking(append([]float32(nil), pixels...)))
	if err := p.m.SetInput(0, x); err != nil {
		return nil, err
	}
	if err := p.backend.Run(); err != nil {
		return nil, err
	}
	outs, err := p.m.GetOutputTensors()
	if err != nil {
		return nil, err
	}
	if len(outs) == 0 {
		return nil, errors.New("onnx-go returned no output")
	}
	data, ok := outs[0].Data().([]float32)
	if !ok {
		return nil, fmt.Errorf("onnx-go returned %T, want []float32", outs[0].Data())
	}
	return data, nil
}

// runPureGo runs an ONNX model with onnx-go on n images (NCHW pixels) and
// returns its first output, flattened.
func runPureGo(model []byte, in genotype.Input, pixels []float32, n int) ([]float32, error) {
	p, err := loadPureGo(model, in, n)
	if err != nil {
		return nil, err
	}
	return p.run(pixels)
}

// Known gaps of onnx-go v0.5.0 in what nasctl exports. onnx-go fails with
// ErrNotImplemented on some of them, but only on the first it meets, and
// computes others wrongly without saying so; pureGoGaps finds them all
// before onnx-go runs.
const (
	// onnx-go hands a Conv's or MaxPool's pads [top, left, bottom, right]
	// to gorgonia, which reads them in another order (a MaxPool's as
	// [top, bottom, left, right], offsetting its windows by the bottom and
	// right pads; a Conv's as [top, bottom, left, right], refusing any
	// other than top = left and bottom = right, then keeping top and
	// bottom). Only four equal pads survive. The exports keep ONNX's
	// pads in the operators, which ONNX Runtime runs fastest: a 'same'
	// pooling or strided convolution over an odd size pads one cell more
	// at the end, as do cell networks' 1 x k convolutions.
	// onnxgen.PureGo (nasctl export --pure-go) writes such pads out as
	// borders (docs/edge.md, "Exports that onnx-go runs").
	unequalConvPads    = "Conv with unequal pads (onnx-go reads ONNX's [top, left, bottom, right] pads in another order)"
	unequalMaxPoolPads = "MaxPool with unequal pads (onnx-go passes ONNX's [top, left, bottom, right] pads to gorgonia, which reads [top, bottom, left, right])"
	// groupedConv: onnx-go ignores a Conv's group attribute, so a
	// depthwise convolution fails on its weights' shape (or, worse, could
	// compute something else). onnxgen.PureGo writes grouped convolutions
	// and AveragePool (which onnx-go lacks) as plain convolutions.
	groupedConv = "Conv with groups (onnx-go ignores the group attribute of depthwise convolutions)"
)

// pureGoOps are the operators onnx-go v0.5.0's gorgonia backend registers
// (backend/x/gorgonnx, its register calls); any other is lacking.
var pureGoOps = []string{"Abs", "Add", "BatchNormalization", "Ceil", "Concat", "Constant", "Conv", "Cos", "Cube", "Div", "Dropout",
	"Exp", "Expm1", "Flatten", "Floor", "Gemm", "GlobalAveragePool", "Identity", "ImageScaler", "Inverse", "LeakyRelu", "Log",
	"Log1p", "Log2", "MatMul", "Max", "MaxPool", "Min", "Mul", "Neg", "Relu", "Reshape", "Sigmoid", "Sign", "Sin", "Softmax",
	"Softplus", "Sqrt", "Square", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze"}

// pureGoGaps returns what onnx-go lacks or computes wrongly in the model:
// operators it does not have, in the order of first use, then the known
// gaps above; nil when there is none.
func pureGoGaps(model []byte) ([]string, error) {
	var m onnx.ModelProto
	if err := proto.Unmarshal(model, &m); err != nil {
		return nil, err
	}
	var lacking, wrong []string
	add := func(list *[]string, gap string) {
		if !slices.Contains(*list, gap) {
			*list = append(*list, gap)
		}
	}
	for _, n := range m.GetGraph().GetNode() {
		op := n.GetOpType()
		if n.GetDomain() != "" && n.GetDomain() != "ai.onnx" {
			add(&lacking, n.GetDomain()+"."+op)
			continue
		}
		if !slices.Contains(pureGoOps, op) {
			add(&lacking, op)
			continue
		}
		for _, a := range n.GetAttribute() {
			p := a.GetInts()
			unequal := a.GetName() == "pads" && slices.ContainsFunc(p, func(v int64) bool { return v != p[0] })
			switch {
			case op == "MaxPool" && unequal:
				add(&wrong, unequalMaxPoolPads)
			case op == "Conv" && unequal:
				add(&wrong, unequalConvPads)
			case op == "Conv" && a.GetName() == "group" && a.GetI() > 1:
				add(&wrong, groupedConv)
			}
		}
	}
	return append(lacking, wrong...), nil
}

// comparePureGo runs model in onnx-go and compares with want (ONNX Runtime's
// output on the same images); with runs > 0 it then times runs batch-1
// predictions of the first image after a warm-up of a tenth as many.
//
// A float model that onnx-go cannot run as it is is compared in the form
// nasctl export --pure-go writes (PureGo.Rewritten): the model a user of
// onnx-go would deploy. The gaps reported are the model's own when that
// form has gaps too (a quantized model's operators).
func comparePureGo(model []byte, in genotype.Input, pixels []float32, n int, want []float32, runs int) PureGo {
	r := PureGo{Images: n}
	gaps, err := pureGoGaps(model)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	if len(gaps) > 0 {
		if rewritten, k, err := onnxgen.PureGo(model); err == nil {
			if left, err := pureGoGaps(rewritten); err == nil && len(left) == 0 {
				model, r.Rewritten, gaps = rewritten, k, nil
			}
		}
	}
	if len(gaps) > 0 {
		r.UnsupportedOp = strings.Join(gaps, "; ")
		return r
	}
	got, err := runPureGo(model, in, pixels, n)
	var ni *onnxgo.ErrNotImplemented
	switch {
	case errors.As(err, &ni):
		r.UnsupportedOp = ni.Operator
		if ni.AttributeName != "" {
			r.UnsupportedOp += fmt.Sprintf(" (attribute %s = %v)", ni.AttributeName, ni.AttributeValue)
		}
		return r
	case err != nil:
		r.Error = err.Error()
		return r
	case len(got) != len(want):
		r.Error = fmt.Sprintf("onnx-go gave %d values, ONNX Runtime %d", len(got), len(want))
		return r
	}
	d := 0.0
	for i := range got {
		d = max(d, math.Abs(float64(got[i])-float64(want[i])))
	}
	r.MaxAbsDiff, r.Agree = &d, d <= Tolerance
	if runs > 0 {
		lat, err := pureGoLatency(model, in, pixels[:in.Channels*in.Height*in.Width], runs)
		if err != nil {
			r.Error = "timing: " + err.Error()
			r.MaxAbsDiff, r.Agree = nil, false
			return r
		}
		r.LatencyMs = &lat
	}
	return r
}

// pureGoLatency times runs batch-1 predictions of image in onnx-go, after
// max(runs/10, 1) untimed ones.
func pureGoLatency(model []byte, in genotype.Input, image []float32, runs int) (Latency, error) {
	p, err := loadPureGo(model, in, 1)
	if err != nil {
		return Latency{}, err
	}
	samples := make([]float64, 0, runs)
	for i := range max(runs/10, 1) + runs {
		start := time.Now()
		if _, err := p.run(image); err != nil {
			return Latency{}, err
		}
		if i >= max(runs/10, 1) {
			samples = append(samples, float64(time.Since(start))/float64(time.Millisecond))
		}
	}
	return Summarize(samples), nil
}
