package runtime

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/nasctl/nasctl/onnxgen"
)

// PeakConfig configures MeasurePeak. Zero fields take the defaults in their
// comments.
type PeakConfig struct {
	// Size is m = k = n of the square MatMul; zero: 2048 (17.2 GFLOP per
	// run, 48 MiB of operands: far beyond the caches, long enough to time).
	Size   int
	Warmup int // untimed runs first; zero: 2
	Runs   int // timed runs; zero: 10
	// Session sets the threads (and device) to measure with: use those of
	// the steps the peak is compared with.
	Session SessionOptions
}

// Peak is the float32 matrix-multiply rate of this machine through ONNX
// Runtime, the practical ceiling of a training step's arithmetic rate.
type Peak struct {
	Size int `json:"size"` // m = k = n
	// GFLOPs is the rate of the fastest run: what the machine can do, which
	// a neighbour's load on a shared machine lowers in the other runs.
	GFLOPs float64 `json:"gflops"`
	// MedianGFLOPs is the rate at the median run, and Median that run's
	// milliseconds.
	MedianGFLOPs float64 `json:"median_gflops"`
	Median       float64 `json:"median_ms"`
}

// MeasurePeak times a large square float32 MatMul (onnxgen.MatMulProbe) with
// cfg.Session's threads and returns its rate.
func MeasurePeak(ctx context.Context, cfg PeakConfig) (*Peak, error) {
	cfg.Size = cmp.Or(cfg.Size, 2048)
	cfg.Warmup = cmp.Or(cfg.Warmup, 2)
	cfg.Runs = cmp.Or(cfg.Runs, 10)
	if err := checkCounts("peak", "size", cfg.Size, "runs", cfg.Runs, cfg.Warmup); err != nil {
		return nil, err
	}
	n := int64(cfg.Size)
	probe, err := onnxgen.MatMulProbe(cfg.Size, cfg.Size, cfg.Size)
	if err != nil {
		return nil, err
	}
	s, err := NewSession(probe.Model, probe.Inputs, probe.Outputs, cfg.Session)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(1, 3))
	var vals [3]*Tensor[float32]
	defer func() {
		for _, v := range vals {
			if v != nil {
				v.Close()
			}
		}
	}()
	for i := range vals {
		if vals[i], err = NewZeroTensor[float32](n, n); err != nil {
			return nil, err
		}
	}
	for _, v := range vals[:2] {
		for j := range v.Data() {
			v.Data()[j] = r.Float32() - 0.5
		}
	}
	samples, err := timeRuns(ctx, cfg.Warmup, cfg.Runs, func() error {
		if err := s.Run([]Value{vals[0], vals[1]}, []Value{vals[2]}); err != nil {
			return fmt.Errorf("peak: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	flop := 2 * float64(n) * float64(n) * float64(n)
	med := median(samples)
	return &Peak{Size: cfg.Size, Median: med, MedianGFLOPs: flop / (med / 1000) / 1e9, GFLOPs: flop / (slices.Min(samples) / 1000) / 1e9}, nil
}
