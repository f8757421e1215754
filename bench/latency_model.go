package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/nasctl/nasctl/genotype"
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
	w := onnxgen.Init(onnxgen.Params(net), rand.New(rand.NewPCG(1, 1)))
	b, err := onnxgen.Inference(net, w, onnxgen.Metadata{Arch: net.Genotype.String(), Input: net.Input, Classes: classNames(net.Classes)})
	if err != nil {
		return nil, err
	}
	return runtime.MeasureLatency(ctx, b, cfg)
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
// with an index), measuring each one's latency; the first fifth are held out
// to measure the model's mean absolute percentage error.
func Calibrate(ctx context.Context, sample func(i int) *genotype.Net, n int, session runtime.SessionOptions, runs int) (*LatencyModel, error) {
	if n < 2*len(Features) {
		return nil, fmt.Errorf("latency calibration needs at least %d networks, got %d", 2*len(Features), n)
	}
	var x [][]float64
	var y []float64
	for i := range n {
		net := sample(i)
		ms, err := MeasureLatency(ctx, net, session, runs)
		if err != nil {
			return nil, fmt.Errorf("measuring %s: %w", net.Genotype, err)
		}
		x, y = append(x, features(net)), append(y, ms)
	}
	held := n / 5
	coef, err := fit(x[held:], y[held:])
	if err != nil {
		return nil, err
	}
	m := &LatencyModel{Coefficients: coef, Threads: session.IntraOpThreads, HeldOut: held, Fitted: n - held}
	for i := range held {
		m.MAPE += math.Abs(predict(coef, x[i])-y[i]) / y[i]
	}
	m.MAPE = 100 * m.MAPE / float64(held)
	return m, nil
}
