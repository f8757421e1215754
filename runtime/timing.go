package runtime

import (
	"context"
	"time"
)

// timeRuns calls run warmup times untimed, then runs times timed, and returns
// the milliseconds of each timed call in order. It stops at the first error
// of run, or of ctx before a call, and returns it.
func timeRuns(ctx context.Context, warmup, runs int, run func() error) ([]float64, error) {
	samples := make([]float64, 0, runs)
	for i := range warmup + runs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := run(); err != nil {
			return nil, err
		}
		if i >= warmup {
			samples = append(samples, msSince(start))
		}
	}
	return samples, nil
}

// msSince returns the milliseconds since start.
func msSince(start time.Time) float64 { return float64(time.Since(start).Nanoseconds()) / 1e6 }
