package search

import (
	"math"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/search/rundir"
)

// One phase's statistics worked by hand, with the validation split's
// majority share 0.3. Phase 1 (trials 1-4) validates 0.295, 0.315, 0.5 and
// 0.89: n 4, mean 2.0/4 = 0.5, best 0.89 (not the lowest, 0.295). The
// deviations from the mean are -0.205, -0.185, 0 and 0.39, whose squares
// sum to 0.042025 + 0.034225 + 0 + 0.1521 = 0.22835: the sample standard
// deviation (n - 1) is sqrt(0.22835/3) = 0.27589, where the population's
// (n) would be sqrt(0.22835/4) = 0.23893. Constant predictors are no better
// than chance, at most one point above 0.3: 0.295 is one; 0.315 (1.5 points
// above) is not. Phase 2 (trial 5) is one trial at 0.28, two points below
// the majority share (what a network that always answers another class
// gets): a constant predictor, and a standard deviation of 0 (not NaN).
func TestReportPhaseStatistics(t *testing.T) {
	trial := func(id int, acc float64) rundir.Trial {
		return rundir.Trial{Candidate: rundir.Candidate{ID: id}, Status: rundir.StatusOK, ValAccuracy: acc}
	}
	trials := []rundir.Trial{trial(1, 0.295), trial(2, 0.315), trial(3, 0.5), trial(4, 0.89), trial(5, 0.28)}
	cfg := Config{Kind: KindMetaQNN, Name: "run", MetaQNN: MetaQNNSettings{
		Schedule: ScheduleSpec{controller.EpsilonSchedule{{Epsilon: 1, Models: 4}, {Epsilon: 0.5, Models: 1}}}}}
	r := BuildReport(cfg, "", trials, nil, nil, 0.3)
	if len(r.Phases) != 2 {
		t.Fatalf("phases %+v, want 2", r.Phases)
	}
	p := r.Phases[0]
	sd := math.Sqrt(0.22835 / 3)
	if p.Trials != 4 || math.Abs(p.Mean-0.5) > 1e-12 || p.Best != 0.89 || math.Abs(p.SD-sd) > 1e-12 || p.Constant != 1 {
		t.Errorf("phase 1: %+v; want 4 trials, mean 0.5, sd %.5f (sample), best 0.89, 1 constant predictor", p, sd)
	}
	if q := r.Phases[1]; q.Trials != 1 || q.Mean != 0.28 || q.SD != 0 || q.Best != 0.28 || q.Constant != 1 {
		t.Errorf("phase 2: %+v; want 1 trial at 0.28, sd 0, a constant predictor", q)
	}
	if md := r.Markdown(); !strings.Contains(md, "| 1-4 | 1.0 | 4 | 0.5000 | 0.2759 | 0.8900 | 1 (25%) |") {
		t.Errorf("markdown lacks phase 1's row:\n%s", md)
	}
}
