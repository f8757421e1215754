package search

import (
	"math"
	"testing"
	"time"

	"github.com/nasctl/nasctl/runtime"
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

// The final phase is estimated from the trials it would retrain. A run of 6
// trials on one worker, 10 epochs each, has recorded 4: trial 1 (reward
// 0.9) trained 10 epochs in 20 s, trial 2 (0.8) was stopped after 2 epochs
// in 1 s, trial 3 (0.95) trained 10 epochs in 40 s, trial 4 (0.5) 10 in
// 3 s. The mean trial is 64/4 = 16 s, so the 2 trials left take 32 s. The
// final phase retrains the best 2, trials 3 and 1: 10 epochs take them 40
// s and 20 s, 30 s on average; 2 models x 30 s x epoch factor 3 x data
// 500/400 = 225 s. The mean trial would have given 2 x 16 x 3.75 = 120 s.
func TestRemainingFinalFromItsTrials(t *testing.T) {
	trial := func(id int, reward, s float64, epochs int) rundir.Trial {
		return rundir.Trial{Candidate: rundir.Candidate{ID: id}, Status: rundir.StatusOK, Reward: reward, Seconds: s,
			Epochs: make([]runtime.EpochRecord, epochs)}
	}
	trials := []rundir.Trial{trial(1, 0.9, 20, 10), trial(2, 0.8, 1, 2), trial(3, 0.95, 40, 10), trial(4, 0.5, 3, 10)}
	cfg := Config{Kind: KindMetaQNN, Trials: 6, Workers: 1, Train: TrainSettings{Epochs: 10}, Final: FinalSettings{TopK: 2, EpochFactor: 3}}
	data := Data{Train: 400, Full: 500}
	for _, tc := range []struct {
		done int
		want float64
	}{{0, 32 + 225}, {1, 32 + 112.5}, {2, 32}} {
		if got := Remaining(cfg, data, trials, tc.done); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%d final models done: %v s remaining, want %v", tc.done, got, tc.want)
		}
	}
}

// A search scored by a problem is paced by the clock: its trials' scores
// take no time, the agent's work does. 60 trials of a 100-trial run, the
// latest 50 (11 to 60) finishing 2 s apart (two of them out of order, as
// workers finish), after a stop of an hour before trial 11: 40 trials left
// at 2 s each is 80 s; the stop is outside the window paced.
func TestRemainingScored(t *testing.T) {
	start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var trials []rundir.Trial
	for id := 1; id <= 60; id++ {
		at := start.Add(time.Duration(2*id) * time.Second)
		if id > 10 {
			at = at.Add(time.Hour)
		}
		trials = append(trials, rundir.Trial{Candidate: rundir.Candidate{ID: id}, Status: rundir.StatusOK, Finished: at})
	}
	// Workers finish out of order, at the window's ends too: the pace is
	// from its earliest finish to its latest, not its first and last record.
	for _, i := range []int{10, 30, 58} {
		trials[i].Finished, trials[i+1].Finished = trials[i+1].Finished, trials[i].Finished
	}
	cfg := Config{Kind: KindNASNet, Trials: 100, Workers: 2, Problem: ProblemSettings{Name: "mock"}}
	if got := Remaining(cfg, Data{}, trials, 0); math.Abs(got-80) > 1e-9 {
		t.Errorf("%v s remaining, want 80", got)
	}
	if got := Remaining(cfg, Data{}, trials[:1], 0); got != 0 {
		t.Errorf("one trial: %v s remaining, want none (no pace yet)", got)
	}
}
