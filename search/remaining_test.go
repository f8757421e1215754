package search

import (
	"math"
	"testing"

	"github.com/nasctl/nasctl/search/rundir"
)

// Remaining worked by hand. A run of 10 trials on 2 workers has recorded 4:
// trial 1 trained in 10 s, trial 2 diverged after 20 s, trial 3 was reused
// and trial 4 refused (their seconds do not count: nothing was trained).
// The mean time of a trained trial is 30/2 = 15 s, and half the trials so
// far needed training, so the 6 left need 6 x 0.5 x 15 / 2 workers = 22.5
// s. The final phase retrains 3 models, 1 of them done: 2 x 15 s, scaled by
// its epoch factor 2 and by its data (500 images against the search's 400),
// 2 x 15 x 2 x 1.25 / 2 workers = 37.5 s. In all 60 s.
func TestRemaining(t *testing.T) {
	trial := func(id int, st rundir.Status, s float64) rundir.Trial {
		return rundir.Trial{Candidate: rundir.Candidate{ID: id}, Status: st, Seconds: s}
	}
	trials := []rundir.Trial{trial(1, rundir.StatusOK, 10), trial(2, rundir.StatusDiverged, 20),
		trial(3, rundir.StatusReused, 7), trial(4, rundir.StatusRefused, 5)}
	cfg := Config{Kind: KindMetaQNN, Trials: 10, Workers: 2, Final: FinalSettings{TopK: 3, EpochFactor: 2}}
	data := Data{Train: 400, Full: 500}
	for _, tc := range []struct {
		name   string
		cfg    func(Config) Config
		trials []rundir.Trial
		done   int
		want   float64
	}{
		{"search and final phase", func(c Config) Config { return c }, trials, 1, 22.5 + 37.5},
		{"no final model done", func(c Config) Config { return c }, trials, 0, 22.5 + 3*15*2*1.25/2},
		{"all final models done", func(c Config) Config { return c }, trials, 3, 22.5},
		{"final phase skipped", func(c Config) Config { c.Final.Skip = true; return c }, trials, 1, 22.5},
		{"scored by a problem, no final phase", func(c Config) Config { c.Problem.Name = "mock"; return c }, trials, 1, 22.5},
		{"one worker", func(c Config) Config { c.Workers = 1; return c }, trials, 1, 2 * (22.5 + 37.5)},
		// All 10 recorded: only the final phase is left.
		{"trials done", func(c Config) Config { c.Trials = 4; return c }, trials, 1, 37.5},
		// Nothing trained yet: no estimate.
		{"nothing trained", func(c Config) Config { return c }, trials[2:], 0, 0},
	} {
		if got := Remaining(tc.cfg(cfg), data, tc.trials, tc.done); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: %v s remaining, want %v", tc.name, got, tc.want)
		}
	}
}
