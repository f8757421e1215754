package runtime

import (
	"context"
	"errors"
	"testing"
)

// timeRuns calls run warmup + runs times and keeps the last runs timings;
// an error of run or of the context ends it with that error.
func TestTimeRuns(t *testing.T) {
	calls := 0
	samples, err := timeRuns(context.Background(), 3, 5, func() error { calls++; return nil })
	if err != nil || calls != 8 || len(samples) != 5 {
		t.Fatalf("3 warm-up and 5 timed runs: %d calls, %d samples, error %v; want 8, 5, nil", calls, len(samples), err)
	}
	for i, s := range samples {
		if s < 0 {
			t.Errorf("sample %d is %g ms", i, s)
		}
	}

	boom := errors.New("boom")
	calls = 0
	if _, err := timeRuns(context.Background(), 1, 5, func() error {
		if calls++; calls == 3 {
			return boom
		}
		return nil
	}); !errors.Is(err, boom) || calls != 3 {
		t.Errorf("run failing at call 3: error %v after %d calls; want boom after 3", err, calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	calls = 0
	if _, err := timeRuns(ctx, 0, 5, func() error {
		if calls++; calls == 2 {
			cancel()
		}
		return nil
	}); !errors.Is(err, context.Canceled) || calls != 2 {
		t.Errorf("context cancelled during call 2: error %v after %d calls; want context.Canceled after 2", err, calls)
	}
}

// Counts out of range are refused before anything is built, with an error
// that gives every count after the defaults.
func TestTimingCountsRefused(t *testing.T) {
	ctx := context.Background()
	if _, err := MeasurePeak(ctx, PeakConfig{Runs: -1}); err == nil || err.Error() != "peak: size 2048, runs -1 and warm-up 2 must be positive" {
		t.Errorf("MeasurePeak with -1 runs: %v", err)
	}
	if _, err := MeasureTrainStep(ctx, nil, StepBenchConfig{Warmup: -2}); err == nil || err.Error() != "step benchmark: batch 128, steps 20 and warm-up -2 must be positive" {
		t.Errorf("MeasureTrainStep with warm-up -2: %v", err)
	}
}
