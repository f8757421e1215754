package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/internal/shell"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
	"gonum.org/v1/gonum/mat"
)

// Features are the per-layer quantities the latency model is linear in. 1x1
// and wider convolutions are apart because ONNX Runtime runs them
// differently (a wider one first copies its windows: "conv window values"
// counts what it copies). Cell networks add element-wise work: the values
// their additions, concatenations, batch normalisations and lone ReLUs
// write. Calibrate fits on four fifths of its networks and reports the mean
// absolute percentage error on the first fifth; the error is about as large
// as the noise of the timings themselves (figures: docs/performance.md,
// "Latency model").
var Features = []string{"constant", "1x1 conv MACs", "conv MACs (k > 1)", "conv window values (k > 1)", "conv outputs",
	"1x1 convs", "convs (k > 1)", "pool inputs", "dense MACs", "element-wise values"}

// features describes one network for the latency model.
func features(net *genotype.Net) []float64 {
	f := make([]float64, len(Features))
	f[0] = 1
	for _, nd := range net.Nodes {
		switch nd.Op {
		case genotype.OpConv:
			kh, kw, _ := nd.Window()
			if kh*kw == 1 {
				f[1] += float64(nd.MACs)
				f[5]++
			} else {
				f[2] += float64(nd.MACs)
				f[3] += float64(nd.In.C * kh * kw * nd.Out.H * nd.Out.W)
				f[6]++
			}
			f[4] += float64(nd.Out.Size())
		case genotype.OpMaxPool, genotype.OpAvgPool:
			f[7] += float64(nd.In.Size())
		case genotype.OpDense:
			f[8] += float64(nd.MACs)
		case genotype.OpAdd, genotype.OpConcat, genotype.OpBatchNorm, genotype.OpReLU:
			f[9] += float64(nd.Out.Size())
		}
	}
	return f
}

// LatencyModel predicts the batch-1 inference latency of a network from its
// layers: a linear function of Features, fitted to measured latencies by
// least squares on relative errors.
type LatencyModel struct {
	Coefficients []float64 `json:"coefficients"` // milliseconds per unit of each feature
	Threads      int       `json:"threads"`
	// MAPE is the mean absolute percentage error on held-out networks, and
	// HeldOut their number.
	MAPE    float64 `json:"mape"`
	HeldOut int     `json:"held_out"`
	Fitted  int     `json:"fitted"`
}

// Doubt says what makes the model's predictions doubtful, or "": features
// other than the constant with a negative cost (a larger layer predicted
// faster), which a fit on few networks or noisy timings gives. Its mean
// error on the held-out networks does not show it when they are few.
func (m *LatencyModel) Doubt() string {
	var neg []string
	for i, c := range m.Coefficients {
		if i > 0 && c < 0 {
			neg = append(neg, fmt.Sprintf("%s %.3g", Features[i], c))
		}
	}
	if len(neg) == 0 && !slices.ContainsFunc(m.Coefficients[min(1, len(m.Coefficients)):], func(c float64) bool { return c != 0 }) {
		// Every layer free: each network gets the same latency, and a
		// latency-aware reward ranks by accuracy alone.
		return fmt.Sprintf("the latency model, fitted on %d networks, gives every feature a cost of 0 ms per unit: every network is predicted alike, and the latency does not rank them; measure the table again", m.Fitted)
	}
	if len(neg) == 0 {
		return ""
	}
	return fmt.Sprintf("the latency model, fitted on %d networks, gives %s a negative cost in ms per unit (%s): a larger layer of that kind is predicted faster; time more networks, or more runs of each",
		m.Fitted, english.Plural(len(neg), "feature", "features"), strings.Join(neg, ", "))
}

// Predict returns the predicted batch-1 latency of net in milliseconds.
func (m *LatencyModel) Predict(net *genotype.Net) float64 {
	return predict(m.Coefficients, features(net))
}

// predict is the latency model's milliseconds for features f: their dot
// product with coef, at least 1e-4 ms (a negative fit must not predict a
// negative time).
func predict(coef, f []float64) float64 {
	var ms float64
	for i, v := range f {
		ms += coef[i] * v
	}
	return max(ms, 1e-4)
}

// fit solves min sum(((X c) - y)/y)^2 for c. A feature that is zero in
// every network (element-wise values in layer sequences) gets coefficient 0.
func fit(x [][]float64, y []float64) ([]float64, error) {
	var cols []int // the features some network has
	for j := range x[0] {
		for i := range x {
			if x[i][j] != 0 {
				cols = append(cols, j)
				break
			}
		}
	}
	n := len(y)
	a := mat.NewDense(n, len(cols), nil)
	b := mat.NewDense(n, 1, nil)
	for i := range n {
		for k, j := range cols {
			a.Set(i, k, x[i][j]/y[i])
		}
		b.Set(i, 0, 1)
	}
	var c mat.Dense
	if err := c.Solve(a, b); err != nil {
		return nil, fmt.Errorf("fitting the latency model: %w", err)
	}
	out := make([]float64, len(x[0]))
	for k, j := range cols {
		out[j] = c.At(k, 0)
	}
	return out, nil
}

// MeasureLatency compiles net with random weights and returns the median
// batch-1 latency in milliseconds over runs timed runs after a warm-up of a
// fifth as many (at least 3). runtime must be initialised.
func MeasureLatency(ctx context.Context, net *genotype.Net, session runtime.SessionOptions, runs int) (float64, error) {
	lat, err := MeasureNetLatency(ctx, net, runtime.LatencyConfig{Batch: 1, Runs: runs, Warmup: max(runs/5, 3), Session: session})
	if err != nil {
		return 0, err
	}
	return lat.Median, nil
}

// MeasureNetLatency exports net with random weights (placeholder class
// names) and times its predictions with runtime.MeasureLatency and cfg.
// runtime must be initialised.
func MeasureNetLatency(ctx context.Context, net *genotype.Net, cfg runtime.LatencyConfig) (*runtime.InferenceTiming, error) {
	b, err := exportRandom(net)
	if err != nil {
		return nil, err
	}
	return runtime.MeasureLatency(ctx, b, cfg)
}

// MeasureLatencies exports each of nets with random weights and returns
// their median batch-1 latencies in milliseconds, runs timed runs each
// after a warm-up of a fifth as many (at least 3), timed together in
// rounds (interleavedLatency) that give a network at least roundRuns runs
// each. runtime must be initialised.
//
// Every open session keeps its own thread pool, whose idle threads spin:
// with two threads, 120 sessions timed in turn made a calibration about 30
// times slower, so these sessions' threads do not spin
// (runtime.SessionOptions.NoSpin). Groups of 10 sessions at a time instead
// lost the rounds' better fit (docs/performance.md, "Latency in rounds").
func MeasureLatencies(ctx context.Context, nets []*genotype.Net, session runtime.SessionOptions, runs int) ([]float64, error) {
	opts := Options{Runs: runs, Warmup: max(runs/5, 3), Rounds: max(1, min(LatencyRounds, runs/roundRuns))}.withDefaults()
	session.NoSpin = true
	models := make([]*runtime.Model, 0, len(nets))
	defer func() {
		for _, m := range models {
			m.Close()
		}
	}()
	names := make([]string, len(nets))
	for i, net := range nets {
		names[i] = "measuring " + net.Genotype.String()
		b, err := exportRandom(net)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", names[i], err)
		}
		m, err := runtime.NewModel(b, session)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", names[i], err)
		}
		models = append(models, m)
	}
	lat, err := timeModels(ctx, models, names, opts)
	if err != nil {
		return nil, err
	}
	ms := make([]float64, len(lat))
	for i, l := range lat {
		ms[i] = l.P50
	}
	return ms, nil
}

// roundRuns is the fewest timed runs MeasureLatencies gives a network in a
// round, so that a short calibration (--runs 20) is not mostly switches
// from one session to the next.
const roundRuns = 10

// exportRandom exports net with random weights and placeholder class
// names, to be timed.
func exportRandom(net *genotype.Net) ([]byte, error) {
	w := onnxgen.Init(onnxgen.Params(net), rand.New(rand.NewPCG(1, 1)))
	return onnxgen.Inference(net, w, onnxgen.Metadata{Arch: net.Genotype.String(), Input: net.Input, Classes: classNames(net.Classes)})
}

// classNames are placeholder class names for a model exported only to be
// timed.
func classNames(k int) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = fmt.Sprintf("class%d", i)
	}
	return out
}

// Calibrate fits a latency model on networks sampled by sample (each called
// with an index; its error ends the calibration), measuring their
// latencies together with MeasureLatencies; the first fifth are held out
// to measure the model's mean absolute percentage error.
func Calibrate(ctx context.Context, sample func(i int) (*genotype.Net, error), n int, session runtime.SessionOptions, runs int) (*LatencyModel, error) {
	if n < 2*len(Features) {
		return nil, fmt.Errorf("latency calibration needs at least %d networks, got %d", 2*len(Features), n)
	}
	nets := make([]*genotype.Net, n)
	x := make([][]float64, n)
	for i := range n {
		net, err := sample(i)
		if err != nil {
			return nil, err
		}
		nets[i], x[i] = net, features(net)
	}
	y, err := MeasureLatencies(ctx, nets, session, runs)
	if err != nil {
		return nil, err
	}
	coef, mape, held, err := fitHeldOut(x, y)
	if err != nil {
		return nil, err
	}
	return &LatencyModel{Coefficients: coef, Threads: session.IntraOpThreads, MAPE: mape, HeldOut: held, Fitted: n - held}, nil
}

// fitHeldOut fits the model on the networks after the first fifth (held)
// of features x and latencies y, and returns its mean absolute percentage
// error on that fifth.
func fitHeldOut(x [][]float64, y []float64) (coef []float64, mape float64, held int, err error) {
	held = len(y) / 5
	if coef, err = fit(x[held:], y[held:]); err != nil {
		return nil, 0, 0, err
	}
	for i := range held {
		mape += math.Abs(predict(coef, x[i])-y[i]) / y[i]
	}
	return coef, 100 * mape / float64(held), held, nil
}

// LatencyTableFormat is the format version of latency tables this nasctl
// reads and writes.
const LatencyTableFormat = 1

// LatencyTable is a latency model measured on one machine (the target a
// search optimises for) for one search space and input size, as JSON: the
// milliseconds per unit of each feature, and what they were measured on
// (docs/arm64.md, "Latency tables").
type LatencyTable struct {
	Format int `json:"format"`
	// Space names the search space the networks were drawn from, and
	// SpaceDigest identifies its settings (two spaces of one name may
	// differ); Input is the input size they were built for, Classes their
	// classes.
	Space       string `json:"space"`
	SpaceDigest string `json:"space_digest"`
	Input       string `json:"input"`
	Classes     int    `json:"classes"`
	// Machine, ONNXRuntime and Date say where and when it was measured.
	Machine     Machine   `json:"machine"`
	ONNXRuntime string    `json:"onnxruntime_version"`
	Date        time.Time `json:"date"`
	// Threads are ONNX Runtime's intra-op threads; Runs the timed runs per
	// network (the median is fitted).
	Threads int `json:"threads"`
	Runs    int `json:"runs"`
	// MAPE is the mean absolute percentage error on HeldOut networks; the
	// model was fitted on Fitted others.
	MAPE    float64 `json:"mape"`
	HeldOut int     `json:"held_out"`
	Fitted  int     `json:"fitted"`
	// MsPerUnit holds one entry per feature of Features.
	MsPerUnit []TableEntry `json:"ms_per_unit"`
}

// TableEntry is one feature's cost in a latency table.
type TableEntry struct {
	Feature string  `json:"feature"`
	Ms      float64 `json:"ms"`
}

// Machine describes the computer a latency table was measured on.
type Machine struct {
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"` // logical CPUs
	Hostname string `json:"hostname,omitempty"`
	Kernel   string `json:"kernel,omitempty"`
}

func (m Machine) String() string {
	return fmt.Sprintf("%s/%s, %s, %d CPUs", m.OS, m.Arch, cmp.Or(m.CPU, "unknown CPU"), m.Cores)
}

// NewLatencyTable returns m as a table of milliseconds per feature; the
// caller fills in what it was measured on.
func NewLatencyTable(m *LatencyModel) *LatencyTable {
	t := &LatencyTable{Format: LatencyTableFormat, Threads: m.Threads, MAPE: m.MAPE, HeldOut: m.HeldOut, Fitted: m.Fitted}
	for i, name := range Features {
		t.MsPerUnit = append(t.MsPerUnit, TableEntry{Feature: name, Ms: m.Coefficients[i]})
	}
	return t
}

// Model returns the latency model of a table that Validate accepts.
func (t *LatencyTable) Model() *LatencyModel {
	coef := make([]float64, len(Features))
	for _, e := range t.MsPerUnit {
		coef[slices.Index(Features, e.Feature)] = e.Ms
	}
	return &LatencyModel{Coefficients: coef, Threads: t.Threads, MAPE: t.MAPE, HeldOut: t.HeldOut, Fitted: t.Fitted}
}

// Describe is one line on what the table was measured on.
func (t *LatencyTable) Describe() string {
	return fmt.Sprintf("space %s at %s, measured on %s with ONNX Runtime %s, %d thread(s), on %s; %.1f%% mean absolute error on %d held-out networks",
		t.Space, t.Input, t.Machine, t.ONNXRuntime, t.Threads, t.Date.Format(time.DateOnly), t.MAPE, t.HeldOut)
}

// ReadLatencyTable reads and checks a table written by nasctl bench
// latency-table; its error lists every problem.
func ReadLatencyTable(path string) (*LatencyTable, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("latency table: %w; measure one on the target with nasctl bench latency-table --space SPACE --out %s", err, shell.Quote(path))
	}
	var t LatencyTable
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("latency table %s is not a table written by nasctl bench latency-table: %w", path, err)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("latency table %s %w\nmeasure it again with this nasctl: nasctl bench latency-table --space SPACE --out %s", path, err, shell.Quote(path))
	}
	return &t, nil
}

// Validate returns an error that lists every problem of a table read from
// JSON, or nil when Model may be called.
func (t *LatencyTable) Validate() error {
	if ps := t.problems(); len(ps) > 0 {
		return fmt.Errorf("is invalid:\n  %s", strings.Join(ps, "\n  "))
	}
	return nil
}

// problems lists what is wrong with a table read from JSON.
func (t *LatencyTable) problems() []string {
	var ps []string
	if t.Format != LatencyTableFormat {
		ps = append(ps, fmt.Sprintf("format: %d, this nasctl reads format %d", t.Format, LatencyTableFormat))
	}
	if t.Space == "" || t.SpaceDigest == "" {
		ps = append(ps, "space, space_digest: missing (the space the table was measured for)")
	}
	if _, err := genotype.ParseInput(t.Input); err != nil {
		ps = append(ps, fmt.Sprintf("input: %v", err))
	}
	if t.Threads < 1 {
		ps = append(ps, fmt.Sprintf("threads: %d, want at least 1", t.Threads))
	}
	seen := map[string]bool{}
	for i, e := range t.MsPerUnit {
		switch {
		case !slices.Contains(Features, e.Feature):
			ps = append(ps, fmt.Sprintf("ms_per_unit[%d]: unknown feature %q (valid: %s)", i, e.Feature, strings.Join(Features, ", ")))
		case seen[e.Feature]:
			ps = append(ps, fmt.Sprintf("ms_per_unit[%d]: %q appears twice", i, e.Feature))
		case math.IsNaN(e.Ms) || math.IsInf(e.Ms, 0):
			ps = append(ps, fmt.Sprintf("ms_per_unit[%d]: %q is %v ms", i, e.Feature, e.Ms))
		}
		seen[e.Feature] = true
	}
	for _, f := range Features {
		if !seen[f] {
			ps = append(ps, fmt.Sprintf("ms_per_unit: no entry for %q", f))
		}
	}
	return ps
}

// Check returns an error that says what to do when the table was measured
// for another space (name or settings) or input size than a search's.
func (t *LatencyTable) Check(space, digest string, in genotype.Input) error {
	return t.check(space, digest, in, false)
}

// CheckGiven is Check for a space and input given on the command line
// (nasctl bench latency-table --check), where no search is involved.
func (t *LatencyTable) CheckGiven(space, digest string, in genotype.Input) error {
	return t.check(space, digest, in, true)
}

func (t *LatencyTable) check(space, digest string, in genotype.Input, given bool) error {
	whose, fit, it, config := "this search's %s", "this search", "it", "this search's config.yaml"
	if given {
		whose, fit, it, config = "the %s given", "the space and input given", "them", "the search's config.yaml"
	}
	var ps []string
	if t.Space != space || t.SpaceDigest != digest {
		ps = append(ps, fmt.Sprintf("it was measured for space %s (settings %s), %s is %s (settings %s)", t.Space, t.SpaceDigest,
			fmt.Sprintf(whose, "space"), space, digest))
	}
	if t.Input != in.String() {
		ps = append(ps, fmt.Sprintf("it was measured at input %s, %s is %s", t.Input, fmt.Sprintf(whose, "input"), in))
	}
	if len(ps) == 0 {
		return nil
	}
	return fmt.Errorf("the latency table does not fit %s: %s; measure one for %s on the target (nasctl bench latency-table --space %s --input %s, or --config with %s and that --input)",
		fit, strings.Join(ps, "; "), it, space, in, config)
}
