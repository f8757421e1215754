package runtime

import (
	"cmp"
	"context"
	"math/rand/v2"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// StepBenchConfig configures MeasureTrainStep. Zero fields take the defaults
// in their comments.
type StepBenchConfig struct {
	Batch  int // images per step; zero: 128
	Warmup int // untimed steps first; zero: 3
	Steps  int // timed steps; zero: 20
	// Threads, Device and Optimization as for sessions. The zero
	// Optimization is OptAll; Train uses TrainOptimization, which a caller
	// timing Train's graph should pass.
	Threads       int
	Device        Device
	Optimization  GraphOptimization
	ProfilePrefix string
	// Formulas forces gradient formulations (zero: the compiler's choice).
	Formulas onnxgen.Formulas
	// NoNCHWc times the standard graph on ONNX Runtime's standard Conv
	// kernels, without the NCHWc rewrite Train uses (SessionOptions.NCHWc).
	NoNCHWc bool
}

// StepTiming is the time of one training step (drawing the dropout masks,
// forward, backward and Adam update) of a full batch, measured by
// MeasureTrainStep.
type StepTiming struct {
	Batch   int       `json:"batch"`
	Steps   int       `json:"steps"`
	Median  float64   `json:"ms_per_step"` // milliseconds
	Samples []float64 `json:"samples_ms"`
	// ImagesPerSecond is Batch / Median.
	ImagesPerSecond float64 `json:"images_per_second"`
	// GFLOPs is the arithmetic of one step per second at the median: three
	// times the forward FLOPs (forward, input gradient, weight gradient),
	// which is the usual estimate; the first layer's input gradient is not
	// computed, so it slightly overstates the work.
	GFLOPs float64 `json:"gflops"`
}

// MeasureTrainStep times training steps of net on random data with the graph
// and ping-pong tensors that Train uses.
func MeasureTrainStep(ctx context.Context, net *genotype.Net, cfg StepBenchConfig) (*StepTiming, error) {
	cfg.Batch = cmp.Or(cfg.Batch, 128)
	cfg.Warmup = cmp.Or(cfg.Warmup, 3)
	cfg.Steps = cmp.Or(cfg.Steps, 20)
	if err := checkCounts("step benchmark", "batch", cfg.Batch, "steps", cfg.Steps, cfg.Warmup); err != nil {
		return nil, err
	}
	tc := TrainConfig{Threads: cfg.Threads, Device: cfg.Device}.WithDefaults()
	sopts := SessionOptions{Device: cfg.Device, IntraOpThreads: cfg.Threads, Optimization: cfg.Optimization, ProfilePrefix: cfg.ProfilePrefix, NCHWc: !cfg.NoNCHWc}
	t, err := newTrainerWith(net, tc, sopts, cfg.Formulas)
	if err != nil {
		return nil, err
	}
	defer t.close()
	r := rand.New(rand.NewPCG(1, 2))
	t.setWeights(onnxgen.Init(t.tg.Params, r))
	b, err := t.batchTensors(int64(cfg.Batch))
	if err != nil {
		return nil, err
	}
	for i := range b[0].Data() {
		b[0].Data()[i] = r.Float32()
	}
	for i := range cfg.Batch {
		b[1].Data()[i*t.units+i%t.units] = float32(i % 2)
	}
	t.lr.Data()[0] = 1e-4
	ms, err := t.maskTensors(int64(cfg.Batch))
	if err != nil {
		return nil, err
	}
	// A step as Train pays it: drawing the dropout masks (which a framework
	// with in-graph dropout pays inside its step) and the run.
	samples, err := timeRuns(ctx, cfg.Warmup, cfg.Steps, func() error {
		t.step.Data()[0]++
		t.drawMasks(ms)
		return t.trainStep(b, ms)
	})
	if err != nil {
		return nil, err
	}
	med := median(samples)
	return &StepTiming{
		Batch: cfg.Batch, Steps: cfg.Steps, Median: med, Samples: samples,
		ImagesPerSecond: float64(cfg.Batch) / (med / 1000),
		GFLOPs:          3 * float64(net.FLOPs()) * float64(cfg.Batch) / (med / 1000) / 1e9,
	}, nil
}
