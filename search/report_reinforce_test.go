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
// 0.7 + 0.95 = 4.95: mean 0.495. The baselines are 0.3 but 0.5 for trial 2
// (window mean (9 x 0.3 + 0.5)/10 = 0.32), none for trial 11 and 0.6 for
// trial 12 (mean 0.3); trials 5 and 10 end a batch, 10's update skipped,
// and 12's is kept; the temperature at a window's end is its last trial's.
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
	notes[5] = rundir.Note{Trial: 5, Learned: controller.Learned{Baseline: 0.3, Update: &controller.Update{Kept: 5}}}
	notes[10] = rundir.Note{Trial: 10, Learned: controller.Learned{Baseline: 0.3, Update: &controller.Update{}}}
	notes[12] = rundir.Note{Trial: 12, Learned: controller.Learned{Baseline: 0.6, Update: &controller.Update{Kept: 3}}}
	r := BuildReport(Config{Kind: KindNASNet, Name: "run", Trials: 12}, "", trials, notes, nil, 0.5)
	want := []RewardWindow{
		{From: 1, To: 10, Mean: 0.4, Best: 0.9, Baseline: 0.32, Temperature: 1.5, Updates: 2, Skipped: 1},
		{From: 11, To: 12, Mean: 0.825, Best: 0.95, Baseline: 0.3, Temperature: 1.6, Updates: 1, Skipped: 0},
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	same := func(g, w RewardWindow) bool {
		return g.From == w.From && g.To == w.To && near(g.Mean, w.Mean) && g.Best == w.Best && near(g.Baseline, w.Baseline) &&
			near(g.Temperature, w.Temperature) && g.Updates == w.Updates && g.Skipped == w.Skipped
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
	if l := r.Last; l.From != 3 || l.To != 12 || !near(l.Mean, 0.495) || l.Best != 0.95 {
		t.Errorf("last: %+v, want trials 3-12, mean 0.495, best 0.95", l)
	}
	if a := r.All; !near(a.Mean, 5.65/12) || a.Best != 0.95 || a.Updates != 3 || a.Skipped != 1 {
		t.Errorf("all: %+v, want mean %v, best 0.95, 3 updates, 1 skipped", a, 5.65/12)
	}
	markdownHas(t, r.Markdown(),
		"Mean reward: first 10 trials 0.4000, last 10 trials 0.4950; best 0.9500; 3 updates (1 skipped).",
		"| 1-10 | 0.4000 | 0.9000 | 0.3200 | 1.500 | 2 | 1 |",
		"| 11-12 | 0.8250 | 0.9500 | 0.3000 | 1.600 | 1 | 0 |")
}
