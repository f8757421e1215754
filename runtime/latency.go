package runtime

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
)

// LatencyConfig configures MeasureLatency. Zero fields take the defaults in
// their comments.
type LatencyConfig struct {
	Batch  int // images per run; zero: 1
	Warmup int // untimed runs first; zero: 20
	Runs   int // timed runs; zero: 200
	// Session sets the device, threads and optimisation level. Its zero
	// Optimization (OptAll) is the one exported models are loaded with.
	// Model.MeasureLatency ignores it: the model's session is already made.
	Session SessionOptions
}

// InferenceTiming is the time of one prediction of an exported model.
type InferenceTiming struct {
	Batch  int     `json:"batch"`
	Runs   int     `json:"runs"`
	Median float64 `json:"ms"` // milliseconds per run, median
	// P90 is the 90th percentile in milliseconds (Percentile: linear
	// interpolation).
	P90 float64 `json:"p90_ms"`
	// Samples are the timed runs in milliseconds, in order, for other
	// statistics.
	Samples []float64 `json:"-"`
}

// MeasureLatency loads an exported model (an inference graph as
// onnxgen.Inference writes it) with cfg.Session and times its predictions
// with Model.MeasureLatency.
func MeasureLatency(ctx context.Context, model []byte, cfg LatencyConfig) (*InferenceTiming, error) {
	m, err := NewModel(model, cfg.Session)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return m.MeasureLatency(ctx, cfg)
}

// MeasureLatency times predictions of cfg.Batch random images through m's
// session and the batch tensors that Predict uses (it overwrites their
// contents; Predict copies its images in before every run). cfg.Session is
// not used.
func (m *Model) MeasureLatency(ctx context.Context, cfg LatencyConfig) (*InferenceTiming, error) {
	cfg.Batch = cmp.Or(cfg.Batch, 1)
	cfg.Warmup = cmp.Or(cfg.Warmup, 20)
	cfg.Runs = cmp.Or(cfg.Runs, 200)
	if err := checkCounts("latency", "batch", cfg.Batch, "runs", cfg.Runs, cfg.Warmup); err != nil {
		return nil, err
	}
	x, p, err := m.batchTensors(cfg.Batch)
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(1, 4))
	for i := range x.Data() {
		x.Data()[i] = r.Float32()
	}
	in1, out1 := []Value{x}, []Value{p}
	samples, err := timeRuns(ctx, cfg.Warmup, cfg.Runs, func() error {
		if err := m.sess.Run(in1, out1); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s := sortedCopy(samples)
	return &InferenceTiming{Batch: cfg.Batch, Runs: cfg.Runs, Median: Percentile(s, 50), P90: Percentile(s, 90), Samples: samples}, nil
}
