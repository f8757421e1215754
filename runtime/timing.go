package runtime

import (
	"context"
	"fmt"
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

// checkCounts is the error of a measurement (what) whose size (sizeName:
// images per run, or the side of a matrix) or number of timed runs (runsName)
// is below 1, or whose warm-up is negative; nil when they are valid.
func checkCounts(what, sizeName string, size int, runsName string, runs, warmup int) error {
	if size < 1 || runs < 1 || warmup < 0 {
		return fmt.Errorf("%s: %s %d, %s %d and warm-up %d must be positive", what, sizeName, size, runsName, runs, warmup)
	}
	return nil
}

// msSince returns the milliseconds since start.
func msSince(start time.Time) float64 { return float64(time.Since(start).Nanoseconds()) / 1e6 }
