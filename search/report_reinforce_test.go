package search

import (
	"math"
	"testing"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/search/rundir"
)

// The REINFORCE section's windows worked by hand. 12 trials give windows
// of 10 (windowSize: fewer than 4 x 20). Trials 1-10 are rewarded 0.5, 0.2,
// 0.9, 0.1, 0.3, 0.4, 0.6, 0.2, 0.3 and 0.5 (sum 4.0, mean 0.4, best 0.9:
// neither the first nor the last of the window), trials 11-12 0.7 and 0.95
// (mean 0.825, best 0.95). The last 10 trials, 3-12, sum 4.0 - 0.5 - 0.2 +
// 0.7 + 0.95 = 4.95: mean 0.495. The controller updates every 5 episodes
// and has learned trials 1-11 (12 is recorded, as a stop leaves it): the
// baselines are 0.3 but 0.5 for trial 2 (window mean (9 x 0.3 + 0.5)/10 =
// 0.32) and 0.6 for trial 11, the only one learned of 11-12; trial 5's
// update is skipped (all 5 episodes left out), trial 10's keeps 3 (2 left
// out), and trial 11 waits for the next; the temperature at a window's end
// is its last trial's.
func TestReportRewardWindows(t *testing.T) {
	rewards := []float64{0.5, 0.2, 0.9, 0.1, 0.3, 0.4, 0.6, 0.2, 0.3, 0.5, 0.7, 0.95}
	var trials []rundir.Trial
	notes := map[int]rundir.Note{}
	for i, r := range rewards {
		id := i + 1
		trials = append(trials, rundir.Trial{Candidate: rundir.Candidate{ID: id, Temperature: 1 + 0.05*float64(id)}, Status: rundir.StatusOK, Reward: r})
		if id <= 10 {
			notes[id] = rundir.Note{Trial: id, Learned: controller.Learned{Baseline: 0.3}}
		}
	}
	notes[2] = rundir.Note{Trial: 2, Learned: controller.Learned{Baseline: 0.5}}
	notes[5] = rundir.Note{Trial: 5, Learned: controller.Learned{Baseline: 0.3, Update: &controller.Update{}}}
	notes[10] = rundir.Note{Trial: 10, Learned: controller.Learned{Baseline: 0.3, Update: &controller.Update{Kept: 3}}}
	notes[11] = rundir.Note{Trial: 11, Learned: controller.Learned{Baseline: 0.6}}
	cfg := Config{Kind: KindNASNet, Name: "run", Trials: 12}
	cfg.Reinforce.Controller.BatchSize = 5
	r := BuildReport(cfg, "", trials, notes, nil, 0.5)
	want := []RewardWindow{
		{From: 1, To: 10, Trials: 10, Mean: 0.4, Best: 0.9, Baseline: 0.32, Temperature: 1.5, Updates: 2, Skipped: 1, LeftOut: 7, Learned: 10},
		{From: 11, To: 12, Trials: 2, Mean: 0.825, Best: 0.95, Baseline: 0.6, Temperature: 1.6, Learned: 1},
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	same := func(g, w RewardWindow) bool {
		return g.From == w.From && g.To == w.To && g.Trials == w.Trials && near(g.Mean, w.Mean) && g.Best == w.Best && near(g.Baseline, w.Baseline) &&
			near(g.Temperature, w.Temperature) && g.Updates == w.Updates && g.Skipped == w.Skipped && g.LeftOut == w.LeftOut && g.Learned == w.Learned
	}
	if len(r.Windows) != len(want) {
		t.Fatalf("windows %+v, want %+v", r.Windows, want)
	}
	for i := range want {
		if !same(r.Windows[i], want[i]) {
			t.Errorf("window %d: %+v, want %+v", i, r.Windows[i], want[i])
		}
	}
	if !same(r.First, want[0]) {
		t.Errorf("first: %+v, want %+v", r.First, want[0])
	}
	if l := r.Last; l.From != 3 || l.To != 12 || l.Trials != 10 || !near(l.Mean, 0.495) || l.Best != 0.95 {
		t.Errorf("last: %+v, want trials 3-12, mean 0.495, best 0.95", l)
	}
	if a := r.All; !near(a.Mean, 5.65/12) || a.Best != 0.95 || a.Updates != 2 || a.Skipped != 1 || a.LeftOut != 7 || a.Learned != 11 {
		t.Errorf("all: %+v, want mean %v, best 0.95, 2 updates, 1 skipped, 7 episodes left out, 11 learned", a, 5.65/12)
	}
	markdownHas(t, r.Markdown(),
		"Mean reward: first 10 trials 0.4000, last 10 trials 0.4950; best 0.9500; 2 updates (1 skipped); the updates left out 7 of their 10 episodes, "+
			"too close to the baseline (reinforce.skip_below); the last episode is in no update yet (the controller updates every 5).",
		"| 1-10 | 0.4000 | 0.9000 | 0.3200 | 1.500 | 2 | 1 |",
		"| 11-12 | 0.8250 | 0.9500 | 0.6000 | 1.600 | 0 | 0 |")

	// A run under way: trial 4 in flight when 5 was recorded. The first
	// window counts the trials it has, not the IDs it spans.
	gap := append(append([]rundir.Trial{}, trials[:3]...), trials[4])
	if g := BuildReport(cfg, "", gap, notes, nil, 0.5); g.First.Trials != 4 || !near(g.First.Mean, (0.5+0.2+0.9+0.3)/4) {
		t.Errorf("first window of trials 1-3 and 5: %+v", g.First)
	}
	markdownHas(t, BuildReport(cfg, "", gap, notes, nil, 0.5).Markdown(), "Mean reward: first 4 trials 0.4750, last 4 trials 0.4750")
}
