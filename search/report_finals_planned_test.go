package search

import (
	"testing"

	"github.com/nasctl/nasctl/search/rundir"
)

// FinalsPlanned counts the distinct architectures that trained well, up to
// TopK. By hand: trials a (ok), b (ok), a again (ok, the same
// architecture), c (reused), d (failed) and e (refused) give two, a and b;
// with TopK 5 the final phase retrains those 2, with TopK 1 only 1. Once
// both are retrained the report picks a best: the phase is complete,
// though it retrained fewer than TopK.
func TestFinalsPlannedCountsDistinctTrainedArchitectures(t *testing.T) {
	trial := func(id int, arch string, st rundir.Status) rundir.Trial {
		return rundir.Trial{Candidate: rundir.Candidate{ID: id, Arch: arch}, Status: st, ValAccuracy: 0.5, Reward: 0.5}
	}
	trials := []rundir.Trial{trial(1, "a", rundir.StatusOK), trial(2, "b", rundir.StatusOK), trial(3, "a", rundir.StatusOK),
		trial(4, "c", rundir.StatusReused), trial(5, "d", rundir.StatusFailed), trial(6, "e", rundir.StatusRefused)}
	cfg := Config{Kind: KindMetaQNN, Name: "run", Final: FinalSettings{TopK: 5}}
	for _, tc := range []struct {
		name string
		cfg  func(Config) Config
		want int
	}{
		{"top 5", func(c Config) Config { return c }, 2},
		{"top 1", func(c Config) Config { c.Final.TopK = 1; return c }, 1},
		{"final phase skipped", func(c Config) Config { c.Final.Skip = true; return c }, 0},
		{"scored by a problem", func(c Config) Config { c.Problem.Name = "mock"; return c }, 0},
		// Trials to come: 2 so far and 2 more may add 2.
		{"stopped early", func(c Config) Config { c.Trials = 8; return c }, 4},
		{"stopped early, top 3", func(c Config) Config { c.Trials = 8; c.Final.TopK = 3; return c }, 3},
		{"all trials in", func(c Config) Config { c.Trials = 6; return c }, 2},
	} {
		if got := tc.cfg(cfg).FinalsPlanned(trials); got != tc.want {
			t.Errorf("%s: %d finals planned, want %d", tc.name, got, tc.want)
		}
	}
	finals := []rundir.FinalResult{
		{Rank: 1, Trial: 1, Arch: "a", ValAccuracy: 0.8, TestAccuracy: 0.7, Status: rundir.StatusOK, Model: "winners/rank-01.onnx"},
		{Rank: 2, Trial: 2, Arch: "b", ValAccuracy: 0.9, TestAccuracy: 0.6, Status: rundir.StatusOK, Model: "winners/rank-02.onnx"},
	}
	r := BuildReport(cfg, "", trials, nil, finals, 0.5)
	if r.FinalsPlanned != 2 || r.FinalIncomplete() || r.Best == nil || r.Best.Rank != 2 {
		t.Errorf("two of two finals in: planned %d, incomplete %v, best %+v; want 2, false, rank 2", r.FinalsPlanned, r.FinalIncomplete(), r.Best)
	}
}
