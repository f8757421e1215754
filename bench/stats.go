// Package bench measures exported models: size, multiply-accumulates, memory,
// latency and throughput on ONNX Runtime, agreement with a second, pure-Go
// ONNX runtime (onnx-go), the Pareto front of size and latency against
// accuracy, and a per-layer latency model for latency-aware search.
package bench

import (
	"slices"

	"github.com/nasctl/nasctl/runtime"
)

// Latency summarizes timed runs, in milliseconds.
type Latency struct {
	Runs int     `json:"runs"`
	Mean float64 `json:"mean"`
	Min  float64 `json:"min"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// Summarize computes the statistics of samples (milliseconds); the
// percentiles are runtime.Percentile's (linear interpolation).
func Summarize(samples []float64) Latency {
	s := slices.Sorted(slices.Values(samples))
	l := Latency{Runs: len(s)}
	if len(s) == 0 {
		return l
	}
	var sum float64
	for _, v := range s {
		sum += v
	}
	l.Mean, l.Min, l.Max = sum/float64(len(s)), s[0], s[len(s)-1]
	l.P50, l.P95, l.P99 = runtime.Percentile(s, 50), runtime.Percentile(s, 95), runtime.Percentile(s, 99)
	return l
}
