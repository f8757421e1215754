package bench

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/nasctl/nasctl/runtime"
)

// Quantized is a float32 model and its int8 quantization (quantize.Model)
// measured side by side.
type Quantized struct {
	Float *Result `json:"float"`
	Int8  *Result `json:"int8"`
	// SizeRatio is the int8 file's size over the float one's.
	SizeRatio float64 `json:"size_ratio"`
	// LatencyRatio is the int8 model's batch-1 latency over the float
	// model's: the median, over Rounds rounds that time each model in turn
	// (Runs runs each), of the ratio of their medians, so that both see the
	// same load on a shared machine.
	LatencyRatio float64 `json:"latency_ratio"`
	Rounds       int     `json:"rounds"`
	Runs         int     `json:"runs"`
	// AccuracyChange is the int8 accuracy minus the float one, in points,
	// when both were measured on the same images.
	AccuracyChange *float64 `json:"accuracy_change_points,omitempty"`
}

// Pairs finds the int8 models among rs whose float model (by the SHA-256
// their quantization settings record) is among rs too, in rs's order of
// the float models.
func Pairs(rs []*Result) [][2]*Result {
	var out [][2]*Result
	for _, f := range rs {
		if f.Quantization != nil {
			continue
		}
		for _, q := range rs {
			if q.Quantization != nil && q.Quantization.Source == f.SHA256 {
				out = append(out, [2]*Result{f, q})
			}
		}
	}
	return out
}

// CompareQuantized measures a pair of Pairs side by side: sizes,
// accuracies and the interleaved latency ratio (rounds of runs batch-1
// runs; zero: 9 and 200). progress, if set, is called after each round
// with that round's ratio: the rounds are the long part. runtime must be
// initialised.
func CompareQuantized(ctx context.Context, pair [2]*Result, rounds, runs int, session runtime.SessionOptions,
	progress func(round, rounds int, ratio float64)) (*Quantized, error) {
	rounds, runs = cmp.Or(rounds, 9), cmp.Or(runs, 200)
	f, q := pair[0], pair[1]
	c := &Quantized{Float: f, Int8: q, SizeRatio: float64(q.FileBytes) / float64(f.FileBytes), Rounds: rounds, Runs: runs}
	if f.Accuracy != nil && q.Accuracy != nil && f.AccuracySource == q.AccuracySource && !isMetadata(f.AccuracySource) {
		d := 100 * (*q.Accuracy - *f.Accuracy)
		c.AccuracyChange = &d
	}
	var models [2]*runtime.Model
	for i, r := range pair {
		m, err := runtime.LoadModel(r.Model, session)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.Model, err)
		}
		defer m.Close()
		models[i] = m
	}
	ratios := make([]float64, rounds)
	for i := range ratios {
		var med [2]float64
		for j, m := range models {
			t, err := m.MeasureLatency(ctx, runtime.LatencyConfig{Batch: 1, Runs: runs, Warmup: max(runs/10, 3)})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", pair[j].Model, err)
			}
			med[j] = t.Median
		}
		ratios[i] = med[1] / med[0]
		if progress != nil {
			progress(i+1, rounds, ratios[i])
		}
	}
	slices.Sort(ratios)
	c.LatencyRatio = runtime.Percentile(ratios, 50)
	return c, nil
}

// isMetadata reports an accuracy taken from a model's metadata rather than
// measured.
func isMetadata(source string) bool {
	return strings.HasPrefix(source, "metadata:")
}
