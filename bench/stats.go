// Package bench measures exported models: size, multiply-accumulates, memory,
// latency and throughput on ONNX Runtime, agreement with a second, pure-Go
// ONNX runtime (onnx-go), the Pareto front of size and latency against
// accuracy, and a per-layer latency model for latency-aware search.
package bench

import (
	"math"
	"slices"
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

// Percentile returns the p-th percentile (0 <= p <= 100) of sorted values by
// linear interpolation between the closest ranks (the definition of NumPy's
// default and of Excel's PERCENTILE.INC): rank r = p/100*(n-1), and the
// result lies between sorted[floor(r)] and sorted[ceil(r)].
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	r := p / 100 * float64(n-1)
	lo := int(math.Floor(r))
	hi := min(lo+1, n-1)
	return sorted[lo] + (r-float64(lo))*(sorted[hi]-sorted[lo])
}

// Summarize computes the statistics of samples (milliseconds).
func Summarize(samples []float64) Latency {
	s := slices.Clone(samples)
	slices.Sort(s)
	l := Latency{Runs: len(s)}
	if len(s) == 0 {
		return l
	}
	var sum float64
	for _, v := range s {
		sum += v
	}
	l.Mean, l.Min, l.Max = sum/float64(len(s)), s[0], s[len(s)-1]
	l.P50, l.P95, l.P99 = Percentile(s, 50), Percentile(s, 95), Percentile(s, 99)
	return l
}
