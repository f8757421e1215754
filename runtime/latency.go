package runtime

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// LatencyConfig configures MeasureLatency. Zero fields take the defaults in
// their comments.
type LatencyConfig struct {
	Batch  int // images per run; zero: 1
	Warmup int // untimed runs first; zero: 20
	Runs   int // timed runs; zero: 200
	// Session sets the device, threads and optimisation level. Its zero
	// Optimization (OptAll) is the one exported models are loaded with.
	Session SessionOptions
}

// Latency is the time of one prediction of an exported model.
type Latency struct {
	Batch  int     `json:"batch"`
	Runs   int     `json:"runs"`
	Median float64 `json:"ms"` // milliseconds per run, median
	P90    float64 `json:"p90_ms"`
	// Samples are the timed runs in milliseconds, in order, for other
	// statistics.
	Samples []float64 `json:"-"`
}

// MeasureLatency times predictions of an exported model (an inference graph
// as onnxgen.Inference writes it) on random images, through the same session
// and pre-allocated tensors as Model.Predict uses.
func MeasureLatency(ctx context.Context, model []byte, cfg LatencyConfig) (*Latency, error) {
	if cfg.Batch == 0 {
		cfg.Batch = 1
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = 20
	}
	if cfg.Runs == 0 {
		cfg.Runs = 200
	}
	if cfg.Batch < 1 || cfg.Runs < 1 || cfg.Warmup < 0 {
		return nil, fmt.Errorf("latency: batch %d, runs %d and warm-up %d must be positive", cfg.Batch, cfg.Runs, cfg.Warmup)
	}
	m, err := NewModel(model, cfg.Session)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	in := m.Info.Input
	b := int64(cfg.Batch)
	x, err := NewZeroTensor[float32](b, int64(in.Channels), int64(in.Height), int64(in.Width))
	if err != nil {
		return nil, err
	}
	defer x.Close()
	p, err := NewZeroTensor[float32](b, int64(len(m.Info.Classes)))
	if err != nil {
		return nil, err
	}
	defer p.Close()
	r := rand.New(rand.NewPCG(1, 4))
	for i := range x.Data() {
		x.Data()[i] = r.Float32()
	}
	in1, out1 := []Value{x}, []Value{p}
	samples := make([]float64, 0, cfg.Runs)
	for i := range cfg.Warmup + cfg.Runs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := m.sess.Run(in1, out1); err != nil {
			return nil, fmt.Errorf("latency: %w", err)
		}
		if i >= cfg.Warmup {
			samples = append(samples, msSince(start))
		}
	}
	return &Latency{Batch: cfg.Batch, Runs: cfg.Runs, Median: median(samples), P90: quantile(samples, 0.9), Samples: samples}, nil
}

// quantile returns the q-quantile of xs (nearest rank); xs must not be empty.
func quantile(xs []float64, q float64) float64 {
	s := sortedCopy(xs)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
