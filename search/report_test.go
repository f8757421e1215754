package search

import (
	"encoding/csv"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
)

// The final table in CSV carries the latency the search saw, empty where it
// used none; Markdown adds the column only when some model has one.
func TestReportLatencyColumn(t *testing.T) {
	finals := []rundir.FinalResult{
		{Rank: 1, Trial: 4, Arch: "C(8,3,1) - SM()", Params: 10, MACs: 20, ValAccuracy: 0.9, TestAccuracy: 0.8, Status: rundir.StatusOK, Model: "winners/rank-01.onnx", LatencyMs: 0.0425},
		{Rank: 2, Trial: 7, Arch: "SM()", Params: 5, MACs: 6, ValAccuracy: 0.7, TestAccuracy: 0.6, Status: rundir.StatusOK, Model: "winners/rank-02.onnx"},
	}
	rows := reportCSV(t, Report{Finals: finals})
	if len(rows) != 3 || rows[0][10] != "latency_ms" || rows[1][10] != "0.0425" || rows[2][10] != "" {
		t.Fatalf("csv %q", rows)
	}
	if md := (Report{Kind: KindMetaQNN, Finals: finals}).Markdown(); !strings.Contains(md, "| latency ms |") || !strings.Contains(md, "| 0.0425 |") {
		t.Errorf("markdown:\n%s", md)
	}
	// A run's report names where its latencies come from, and that bench
	// measures them.
	if md := (Report{Kind: KindMetaQNN, Finals: finals, LatencySource: "table"}).Markdown(); !strings.Contains(md, "| latency ms (table) |") ||
		!strings.Contains(md, "Latency: the search's batch-1 figure, predicted by the run's latency table for the machine it was measured on (bench the winners there); it can be off by a quarter or more on a network: nasctl bench RUN measures the winners.") {
		t.Errorf("markdown with the latency source:\n%s", md)
	}
	if md := (Report{Kind: KindMetaQNN, Finals: finals[1:]}).Markdown(); strings.Contains(md, "latency") {
		t.Errorf("latency column without latencies:\n%s", md)
	}
	// A run with nothing finished says so, and lists no plots or files it
	// does not have yet.
	want := "# MetaQNN search empty\n\n0 of 225 trials: none has finished yet.\n"
	if md := (Report{Kind: KindMetaQNN, Name: "empty", Planned: 225}).Markdown(); md != want {
		t.Errorf("an empty run's report:\n%s\nwant\n%s", md, want)
	}
}

// The best final model is chosen by the run's reward, and the report says
// by what: with T = 2 ms, MnasNet's reward prefers 0.88 at 1 ms (0.924) to
// 0.90 at 4 ms (0.857); the constraint reward, whose limits were applied
// before training, ranks by accuracy though the finals carry latencies.
func TestReportBestBy(t *testing.T) {
	four, one := 4.0, 1.0 // timed as the search figured them
	finals := []rundir.FinalResult{
		{Rank: 1, Trial: 4, Arch: "C(8,3,1) - SM()", ValAccuracy: 0.90, TestAccuracy: 0.8, Status: rundir.StatusOK, Model: "winners/rank-01.onnx", LatencyMs: 4, MeasuredLatencyMs: &four},
		{Rank: 2, Trial: 7, Arch: "SM()", ValAccuracy: 0.88, TestAccuracy: 0.7, Status: rundir.StatusOK, Model: "winners/rank-02.onnx", LatencyMs: 1, MeasuredLatencyMs: &one},
	}
	for _, tc := range []struct {
		reward RewardSettings
		rank   int
		label  string
	}{
		{RewardSettings{Mode: RewardMnasNet, TargetMs: 2}, 2, "(by MnasNet's reward of validation accuracy and the latency timed after the final phase): rank 2"},
		{RewardSettings{Mode: RewardConstraint, MaxLatencyMs: 5}, 1, "(by validation accuracy, ties by validation loss, among the finals timed within the latency limit): rank 1"},
		{RewardSettings{}, 1, "(by validation accuracy, ties by validation loss): rank 1"},
	} {
		cfg := Config{Kind: KindMetaQNN, Name: "run", Reward: tc.reward}
		r := BuildReport(cfg, "", nil, nil, slices.Clone(finals), 0.5)
		if r.Best == nil || r.Best.Rank != tc.rank {
			t.Errorf("%s: best %+v, want rank %d", tc.reward.Mode, r.Best, tc.rank)
		}
		if md := r.Markdown(); !strings.Contains(md, tc.label) {
			t.Errorf("%s: markdown lacks %q:\n%s", tc.reward.Mode, tc.label, md)
		}
	}
}

// A report sums the trials' waits for memory apart from their training
// time, and says nothing of waits when no trial waited.
func TestReportWaitedForMemory(t *testing.T) {
	trials := []rundir.Trial{
		{Candidate: rundir.Candidate{ID: 1}, Status: rundir.StatusOK, Seconds: 10, WaitedSeconds: 30.4},
		{Candidate: rundir.Candidate{ID: 2}, Status: rundir.StatusOK, Seconds: 20},
		{Candidate: rundir.Candidate{ID: 3}, Status: rundir.StatusOK, Seconds: 5, WaitedSeconds: 1.2},
	}
	cfg := Config{Kind: KindMetaQNN, Name: "run", Trials: 3}
	r := BuildReport(cfg, "", trials, nil, nil, 0.5)
	if r.Seconds != 35 || r.Waiting != 2 || math.Abs(r.Waited-31.6) > 1e-9 {
		t.Errorf("seconds %g, %d waiting, %g s waited; want 35, 2, 31.6", r.Seconds, r.Waiting, r.Waited)
	}
	if md, want := r.Markdown(), "not counted in the evaluation time: 2 of the trials, 32s in all."; !strings.Contains(md, want) {
		t.Errorf("markdown lacks %q:\n%s", want, md)
	}
	r = BuildReport(cfg, "", trials[1:2], nil, nil, 0.5)
	if md := r.Markdown(); strings.Contains(md, "Waited for memory") {
		t.Errorf("no trial waited, yet:\n%s", md)
	}
}

// The report counts the trials each worker trained, and says how many of
// them were results the broker had stored before the run asked.
func TestReportStoredResults(t *testing.T) {
	trials := []rundir.Trial{
		{Candidate: rundir.Candidate{ID: 1}, Status: rundir.StatusOK, Worker: "w1", Stored: true},
		{Candidate: rundir.Candidate{ID: 2}, Status: rundir.StatusOK, Worker: "w2"},
		{Candidate: rundir.Candidate{ID: 3}, Status: rundir.StatusOK, Worker: "w1"},
	}
	cfg := Config{Kind: KindMetaQNN, Name: "run", Trials: 3}
	md := BuildReport(cfg, "", trials, nil, nil, 0.5).Markdown()
	if want := "Trials trained by remote workers: w1 2, w2 1 (1 of them taken from results the broker had stored, from an earlier session of this run or of a run with the same name and settings: not trained for this run)."; !strings.Contains(md, want) {
		t.Errorf("markdown lacks %q:\n%s", want, md)
	}
	if md := BuildReport(cfg, "", trials[1:], nil, nil, 0.5).Markdown(); strings.Contains(md, "stored") {
		t.Errorf("none stored, yet:\n%s", md)
	}
}

// A trained cell search's report counts the trials that ended at chance,
// and, when they are most of them, says what to change.
func TestReportNASNetAtChance(t *testing.T) {
	trial := func(id int, atChance bool) rundir.Trial {
		return rundir.Trial{Candidate: rundir.Candidate{ID: id}, Status: rundir.StatusOK, ValAccuracy: 0.7, Reward: 0.343, AtChance: atChance}
	}
	cfg := Config{Kind: KindNASNet, Name: "run", Trials: 4}
	for _, tc := range []struct {
		atChance []bool
		want     string
		advice   bool
	}{
		{[]bool{true, true, true, false}, "3 of the 4 trained trials ended at chance (no better than a constant predictor, which scores the majority share, 53.57%, or less on validation)", true},
		{[]bool{true, false, false, false}, "1 of the 4 trained trials ended at chance", false},
		{[]bool{false, false, false, false}, "", false},
	} {
		var trials []rundir.Trial
		for i, c := range tc.atChance {
			trials = append(trials, trial(i+1, c))
		}
		trials = append(trials, rundir.Trial{Candidate: rundir.Candidate{ID: 5}, Status: rundir.StatusRefused})
		md := BuildReport(cfg, "", trials, nil, nil, 0.5357).Markdown()
		if tc.want == "" && strings.Contains(md, "at chance") || tc.want != "" && !strings.Contains(md, tc.want) {
			t.Errorf("%v: want %q in:\n%s", tc.atChance, tc.want, md)
		}
		if strings.Contains(md, "train them longer (--epochs)") != tc.advice {
			t.Errorf("%v: advice shown %v, want %v:\n%s", tc.atChance, !tc.advice, tc.advice, md)
		}
	}
}

// The report says how the training images were flipped, in the trials and
// in the final phase (which takes the trials' setting unless it has its
// own), and says nothing where they were not.
func TestReportAugment(t *testing.T) {
	trials := []rundir.Trial{{Candidate: rundir.Candidate{ID: 1}, Status: rundir.StatusOK, Seconds: 10}}
	finals := []rundir.FinalResult{{Rank: 1, Trial: 1, Status: rundir.StatusOK, ValAccuracy: 0.9}}
	const trialWords, finalWords = "Every trial trained on its images flipped", "on the whole training split, its images flipped"
	for _, tc := range []struct {
		train, final         string
		wantTrial, wantFinal string // "" where the report must not mention flips
	}{
		{"", "", "", ""},
		{"none", "", "", ""},
		{"flips", "", "flipped left-right and top-bottom at random, afresh at every step (train.augment: flips)", "its images flipped left-right and top-bottom at random, then"},
		{"none", "mirror", "", "its images flipped left-right at random, then"},
		{"mirror", "none", "flipped left-right at random, afresh at every step (train.augment: mirror)", ""},
	} {
		cfg := Config{Kind: KindMetaQNN, Name: "run", Trials: 1, Train: TrainSettings{Augment: tc.train}, Final: FinalSettings{Augment: tc.final}}
		md := BuildReport(cfg, "", trials, nil, finals, 0.5).Markdown()
		for _, c := range []struct{ want, words string }{{tc.wantTrial, trialWords}, {tc.wantFinal, finalWords}} {
			if c.want == "" && strings.Contains(md, c.words) || c.want != "" && !strings.Contains(md, c.want) {
				t.Errorf("train %q, final %q: want %q (or no %q):\n%s", tc.train, tc.final, c.want, c.words, md)
			}
		}
	}
}

// Equal validation accuracies go to the lower validation loss, a loss of 0
// too; a final without a recorded loss (older runs) keeps the better search
// rank.
func TestReportBestTiesByValLoss(t *testing.T) {
	loss := func(v float64) *float64 { return &v }
	finals := []rundir.FinalResult{
		{Rank: 1, Trial: 4, ValAccuracy: 1, ValLoss: loss(0.027), Status: rundir.StatusOK},
		{Rank: 2, Trial: 7, ValAccuracy: 0.998, ValLoss: loss(0.001), Status: rundir.StatusOK},
		{Rank: 3, Trial: 9, ValAccuracy: 1, ValLoss: loss(0.006), Status: rundir.StatusOK},
		{Rank: 4, Trial: 11, ValAccuracy: 1, ValLoss: loss(0.013), Status: rundir.StatusOK},
	}
	cfg := Config{Kind: KindMetaQNN, Name: "run"}
	if r := BuildReport(cfg, "", nil, nil, slices.Clone(finals), 0.5); r.Best == nil || r.Best.Rank != 3 {
		t.Errorf("best %+v, want rank 3 (accuracy 1, loss 0.006)", r.Best)
	}
	zero := slices.Clone(finals)
	zero[3].ValLoss = loss(0)
	if r := BuildReport(cfg, "", nil, nil, zero, 0.5); r.Best == nil || r.Best.Rank != 4 {
		t.Errorf("with a loss of 0: best %+v, want rank 4", r.Best)
	}
	old := slices.Clone(finals)
	for i := range old {
		old[i].ValLoss = nil
	}
	if r := BuildReport(cfg, "", nil, nil, old, 0.5); r.Best == nil || r.Best.Rank != 1 {
		t.Errorf("without losses: best %+v, want rank 1", r.Best)
	}
}

// The five best finals follow the order the best is picked by: here ranks
// 3, 4 and 1 (accuracy 1, by loss), then 6 and 2 (0.998, by loss); rank 5
// failed and rank 7 validates lowest. The report gives their mean test
// accuracy; with one final there is no mean.
func TestReportBestFive(t *testing.T) {
	loss := func(v float64) *float64 { return &v }
	finals := []rundir.FinalResult{
		{Rank: 1, ValAccuracy: 1, ValLoss: loss(0.027), TestAccuracy: 0.990, Status: rundir.StatusOK},
		{Rank: 2, ValAccuracy: 0.998, ValLoss: loss(0.004), TestAccuracy: 0.980, Status: rundir.StatusOK},
		{Rank: 3, ValAccuracy: 1, ValLoss: loss(0.006), TestAccuracy: 0.995, Status: rundir.StatusOK},
		{Rank: 4, ValAccuracy: 1, ValLoss: loss(0.013), TestAccuracy: 0.985, Status: rundir.StatusOK},
		{Rank: 5, ValAccuracy: 1, Status: rundir.StatusFailed},
		{Rank: 6, ValAccuracy: 0.998, ValLoss: loss(0.001), TestAccuracy: 0.970, Status: rundir.StatusOK},
		{Rank: 7, ValAccuracy: 0.99, ValLoss: loss(0.001), TestAccuracy: 1, Status: rundir.StatusOK},
	}
	cfg := Config{Kind: KindMetaQNN, Name: "run"}
	r := BuildReport(cfg, "", nil, nil, slices.Clone(finals), 0.5)
	want := (0.995 + 0.985 + 0.990 + 0.970 + 0.980) / 5 // ranks 3, 4, 1, 6, 2
	if r.BestFive != 5 || math.Abs(r.BestFiveTest-want) > 1e-12 || r.Best == nil || r.Best.Rank != 3 {
		t.Errorf("best five: %d, mean %v, best %+v; want 5, %v, rank 3", r.BestFive, r.BestFiveTest, r.Best, want)
	}
	if md := r.Markdown(); !strings.Contains(md, "The 5 best by the same order average 98.40% test accuracy.") {
		t.Errorf("markdown:\n%s", md)
	}
	if r := BuildReport(cfg, "", nil, nil, slices.Clone(finals[:1]), 0.5); r.BestFive != 0 || strings.Contains(r.Markdown(), "best by the same order") {
		t.Errorf("one final: best five %d", r.BestFive)
	}
}

// The phases are the schedule's trial ranges, whatever epsilon the agent
// drew at: the random agent's trials are all at epsilon 1, and a run longer
// than its schedule counts its extra trials in the last phase.
func TestReportPhasesByTrialRange(t *testing.T) {
	var trials []rundir.Trial
	for id := 1; id <= 6; id++ {
		trials = append(trials, rundir.Trial{Candidate: rundir.Candidate{ID: id, Epsilon: 1}, Status: rundir.StatusOK, ValAccuracy: 0.1 * float64(id)})
	}
	cfg := Config{Kind: KindMetaQNN, Name: "run", MetaQNN: MetaQNNSettings{Agent: AgentRandom,
		Schedule: ScheduleSpec{controller.EpsilonSchedule{{Epsilon: 1, Models: 2}, {Epsilon: 0.5, Models: 3}}}}}
	r := BuildReport(cfg, "", trials, nil, nil, 0.5)
	want := []PhaseStats{{From: 1, To: 2, Epsilon: 1, Trials: 2}, {From: 3, To: 6, Epsilon: 0.5, Trials: 4}}
	if len(r.Phases) != 2 {
		t.Fatalf("phases %+v", r.Phases)
	}
	for i, p := range r.Phases {
		if p.From != want[i].From || p.To != want[i].To || p.Epsilon != want[i].Epsilon || p.Trials != want[i].Trials {
			t.Errorf("phase %d: %+v, want %+v", i, p, want[i])
		}
	}
	if m := r.Phases[1].Mean; math.Abs(m-0.45) > 1e-12 {
		t.Errorf("mean of trials 3-6: %v, want 0.45", m)
	}
	md := r.Markdown()
	for _, w := range []string{"The random agent does not use epsilon", "| 3-6 | 0.5 | 4 | 0.4500 |"} {
		if !strings.Contains(md, w) {
			t.Errorf("markdown lacks %q:\n%s", w, md)
		}
	}
	// A run that stops inside a phase (3 trials, or not finished) labels
	// it by the trials recorded: 3-3, not the schedule's 3-5.
	r = BuildReport(cfg, "", trials[:3], nil, nil, 0.5)
	if len(r.Phases) != 2 || r.Phases[1].From != 3 || r.Phases[1].To != 3 {
		t.Errorf("phases of 3 trials: %+v, want 1-2 and 3-3", r.Phases)
	}
}

// A Q-learning run's phase table counts its greedy trials and their mean
// apart, leaves out refused and failed trials (they have no accuracy), and
// ends with the last two phases against the first. By hand: phase 1 (trials
// 1-2) 0.6 and 0.8, mean 0.7; phase 2 (3-4) 0.5 and a refused trial; phase
// 3 (5-8) 0.9 greedy, 0.8 greedy, a failed trial and 0.7 reused (trials 7
// and 8, beyond the schedule, count in the last phase). Last two phases: 0.5,
// 0.9, 0.8, 0.7, mean 0.725, +0.025 against 0.7; greedy 0.9 and 0.8, mean
// 0.85 (+0.15); exploring 0.5 and 0.7, mean 0.6 (-0.1).
func TestReportGreedyAndGain(t *testing.T) {
	trial := func(id int, status rundir.Status, acc float64, greedy bool) rundir.Trial {
		return rundir.Trial{Candidate: rundir.Candidate{ID: id, Greedy: greedy}, Status: status, ValAccuracy: acc}
	}
	trials := []rundir.Trial{
		trial(1, rundir.StatusOK, 0.6, false), trial(2, rundir.StatusOK, 0.8, false),
		trial(3, rundir.StatusOK, 0.5, false), trial(4, rundir.StatusRefused, 0, false),
		trial(5, rundir.StatusOK, 0.9, true), trial(6, rundir.StatusOK, 0.8, true),
		trial(7, rundir.StatusFailed, 0, true), trial(8, rundir.StatusReused, 0.7, false),
	}
	cfg := Config{Kind: KindMetaQNN, Name: "run", MetaQNN: MetaQNNSettings{
		Schedule: ScheduleSpec{controller.EpsilonSchedule{{Epsilon: 1, Models: 2}, {Epsilon: 0.5, Models: 2}, {Epsilon: 0.1, Models: 2}}}}}
	r := BuildReport(cfg, "", trials, nil, nil, 0.5)
	if len(r.Phases) != 3 {
		t.Fatalf("phases %+v", r.Phases)
	}
	if p := r.Phases[1]; p.Trials != 1 || p.Mean != 0.5 || p.Greedy != 0 {
		t.Errorf("phase 2: %+v, want one trial at 0.5, none greedy", p)
	}
	if p := r.Phases[2]; p.Trials != 3 || p.Greedy != 2 || math.Abs(p.GreedyMean-0.85) > 1e-12 || math.Abs(p.Mean-0.8) > 1e-12 {
		t.Errorf("phase 3: %+v, want 3 trials, mean 0.8, 2 greedy at 0.85", p)
	}
	md := r.Markdown()
	for _, w := range []string{"| greedy | greedy mean |", "| 5-8 | 0.1 | 3 | 0.8000 |", " 2 | 0.8500 |", " 0 | - |",
		"The last two phases average 0.7250, +0.0250 against the first phase's 0.7000; their 2 greedy trials 0.8500 (+0.1500), the 2 that explore 0.6000 (-0.1000)."} {
		if !strings.Contains(md, w) {
			t.Errorf("markdown lacks %q:\n%s", w, md)
		}
	}
	cfg.MetaQNN.Agent = AgentRandom
	if md := BuildReport(cfg, "", trials, nil, nil, 0.5).Markdown(); strings.Contains(md, "greedy") {
		t.Errorf("a random run's table has greedy columns:\n%s", md)
	}
}

// reportCSV returns the rows of r's report.csv.
func reportCSV(t *testing.T, r Report) [][]string {
	t.Helper()
	b, err := r.CSV()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// markdownHas reports each of lines that md lacks.
func markdownHas(t *testing.T, md string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(md, l) {
			t.Errorf("markdown lacks %q:\n%s", l, md)
		}
	}
}

// A retrained model that stayed at chance is marked in the final table, by
// its mark or, in runs recorded before it, by its validation accuracy
// against the majority share (0.5238 here: rank 2's 0.4762 answers the
// other class); a best model at chance is called undeployable, and a best
// that is not is not.
func TestReportFinalsAtChance(t *testing.T) {
	finals := []rundir.FinalResult{
		{Rank: 1, Arch: "C(8,3,1) - SM()", ValAccuracy: 0.5238, TestAccuracy: 0.52, Status: rundir.StatusOK, Model: "winners/rank-01.onnx", AtChance: true},
		{Rank: 2, Arch: "C(32,3,1) - GAP()", ValAccuracy: 0.4762, TestAccuracy: 0.4833, Status: rundir.StatusOK, Model: "winners/rank-02.onnx"},
		{Rank: 3, Arch: "SM()", ValAccuracy: 0.5, Status: rundir.StatusDiverged},
	}
	cfg := Config{Kind: KindMetaQNN, Name: "run"}
	md := BuildReport(cfg, "", nil, nil, slices.Clone(finals), 0.5238).Markdown()
	markdownHas(t, md, "| 52.00% (at chance) |", "| 48.33% (at chance) |", "| diverged |",
		"Ranks 1 and 2 stayed at chance: no better on validation than a network that answers one class whatever the image.",
		"**It is no better than chance: do not deploy it.** Search longer (--trials), train the trials longer (--epochs)")
	cfg.Kind = KindNASNet
	markdownHas(t, BuildReport(cfg, "", nil, nil, slices.Clone(finals), 0.5238).Markdown(), "do not deploy it.** Search longer (--episodes)")
	cfg.Kind = KindMetaQNN
	finals = append(finals, rundir.FinalResult{Rank: 4, Arch: "C(16,3,1) - SM()", ValAccuracy: 0.9, TestAccuracy: 0.88, Status: rundir.StatusOK, Model: "winners/rank-04.onnx"})
	md = BuildReport(cfg, "", nil, nil, finals, 0.5238).Markdown()
	markdownHas(t, md, "| 88.00% |", "Ranks 1 and 2 stayed at chance")
	if strings.Contains(md, "do not deploy") {
		t.Errorf("a best model above chance called undeployable:\n%s", md)
	}
}

// Each final's lowest class recall is in the table, the best's recall of
// every class under it, and a best that answers fewer than half of a
// class's test images right is called out: its accuracy (0.86 here, on
// 0.59/0.29/0.12 classes) hides a class missed; one that misses none is not.
func TestReportRecall(t *testing.T) {
	byClass := func(cube int) []rundir.ClassRecall {
		return []rundir.ClassRecall{{Class: "none", Right: 212, Images: 214}, {Class: "ball", Right: 90, Images: 106}, {Class: "cube", Right: cube, Images: 44}}
	}
	finals := []rundir.FinalResult{
		{Rank: 1, Arch: "C(8,3,1) - SM()", ValAccuracy: 0.9, TestAccuracy: 0.8324, Status: rundir.StatusOK, Model: "winners/rank-01.onnx", TestByClass: byClass(1)},
		{Rank: 2, Arch: "C(32,3,1) - GAP()", ValAccuracy: 0.85, TestAccuracy: 0.9203, Status: rundir.StatusOK, Model: "winners/rank-02.onnx", TestByClass: byClass(33)},
		{Rank: 3, Arch: "SM()", ValAccuracy: 0.8, TestAccuracy: 0.8, Status: rundir.StatusOK, Model: "winners/rank-03.onnx"}, // recorded before the field
	}
	cfg := Config{Kind: KindMetaQNN, Name: "run"}
	md := BuildReport(cfg, "", nil, nil, slices.Clone(finals), 0.59).Markdown()
	markdownHas(t, md, "| test acc | model | lowest class recall |",
		"| 83.24% | winners/rank-01.onnx | cube 2.27% (1 of 44) |", "| 92.03% | winners/rank-02.onnx | cube 75.00% (33 of 44) |", "| 80.00% | winners/rank-03.onnx | - |",
		"Its recall per class on the test images: none 99.07% (212 of 214), ball 84.91% (90 of 106), cube 2.27% (1 of 44).\n"+
			"**It answers fewer than half of the test images of cube right.**")
	// Under balanced accuracy: the recalls' mean, and advice that fits
	// what the run did; best epochs said to be chosen by it only where
	// the monitor is accuracy.
	cfg.Train.Metric = "balanced_accuracy"
	md = BuildReport(cfg, "", nil, nil, slices.Clone(finals), 1.0/3).Markdown()
	mean := (212.0/214 + 90.0/106 + 1.0/44) / 3
	markdownHas(t, md, fmt.Sprintf("cube 2.27%% (1 of 44); their mean, its balanced accuracy on the test images: %.2f%%.\n", 100*mean),
		"--sampling balanced draws cube as often as the other classes in training",
		"by which the trials were rewarded, their best epochs chosen and the best model picked; a constant predictor scores 33.33%",
		"Best after retraining (by validation balanced accuracy, ties by validation loss)")
	cfg.Train.Sampling, cfg.Train.Monitor = "balanced", "val_loss"
	md = BuildReport(cfg, "", nil, nil, slices.Clone(finals), 1.0/3).Markdown()
	markdownHas(t, md, "every class was drawn as often in training: more images of cube", "by which the trials were rewarded and the best model picked;")
	cfg.Train = TrainSettings{}

	finals[0].TestByClass = byClass(22) // half: not fewer
	md = BuildReport(cfg, "", nil, nil, finals, 0.59).Markdown()
	markdownHas(t, md, "cube 50.00% (22 of 44).\n")
	if strings.Contains(md, "fewer than half") {
		t.Errorf("a best that misses no class called out:\n%s", md)
	}
}

// Finals that score as the best does on validation are named, and the
// smallest of them when it is not the best; one that scores less, or
// failed, is not among them; no ties, no note. Finals recorded without a
// validation loss sort after those with one, and a best without it was
// picked by the search's rank, which the report says. Under MnasNet's
// reward, equal accuracies do not tie.
func TestReportTiesWithBest(t *testing.T) {
	loss := func(v float64) *float64 { return &v }
	finals := []rundir.FinalResult{
		{Rank: 1, Params: 34113, ValAccuracy: 1, ValLoss: loss(0.0009), TestAccuracy: 1, Status: rundir.StatusOK, Model: "winners/rank-01.onnx"},
		{Rank: 2, Params: 113009, ValAccuracy: 1, ValLoss: loss(0.0008), TestAccuracy: 0.9967, Status: rundir.StatusOK, Model: "winners/rank-02.onnx"},
		{Rank: 3, Params: 6537, ValAccuracy: 1, ValLoss: loss(0.0087), TestAccuracy: 0.9975, Status: rundir.StatusOK, Model: "winners/rank-03.onnx"},
		{Rank: 4, Params: 5000, ValAccuracy: 0.9982, ValLoss: loss(0.0001), TestAccuracy: 1, Status: rundir.StatusOK, Model: "winners/rank-04.onnx"},
		{Rank: 5, Params: 4000, ValAccuracy: 1, ValLoss: loss(0.0001), Status: rundir.StatusFailed},
	}
	cfg := Config{Kind: KindMetaQNN, Name: "run"}
	r := BuildReport(cfg, "", nil, nil, slices.Clone(finals), 0.5)
	if r.Best == nil || r.Best.Rank != 2 || !slices.Equal(r.TiedWithBest, []int{1, 3}) {
		t.Fatalf("best %+v, tied %v; want rank 2 tied with 1 and 3", r.Best, r.TiedWithBest)
	}
	markdownHas(t, r.Markdown(), "Best after retraining (by validation accuracy, ties by validation loss): rank 2, winners/rank-02.onnx, copied to winners/best.onnx: test accuracy 99.67%.\n"+
		"Ranks 1, 2 and 3 tie at 100.00% validation accuracy: validation loss picked rank 2, a weak signal where the accuracy on these images tells them no further apart. "+
		"The smallest of them is rank 3, winners/rank-03.onnx (6,537 parameters against 113,009; 99.75% on the test images against 99.67%): a choice for a device short of memory.\n")

	big := slices.Clone(finals)
	big[0].Params, big[2].Params = 200000, 200000 // the best is the smallest of its ties: no second sentence
	markdownHas(t, BuildReport(cfg, "", nil, nil, big, 0.5).Markdown(),
		"Ranks 1, 2 and 3 tie at 100.00% validation accuracy: validation loss picked rank 2, a weak signal where the accuracy on these images tells them no further apart.\n")
	ties := slices.Clone(finals[:3])
	markdownHas(t, BuildReport(cfg, "", nil, nil, ties, 0.5).Markdown(), "All 3 finals tie at 100.00% validation accuracy: validation loss picked rank 2")
	markdownHas(t, BuildReport(cfg, "", nil, nil, slices.Clone(finals[:2]), 0.5).Markdown(), "Both finals tie at 100.00% validation accuracy")

	// Without a loss: after those with one, and the search's rank picks.
	ties[0].ValLoss, ties[1].ValLoss, ties[2].ValLoss = loss(0.5), nil, loss(0.1)
	if r := BuildReport(cfg, "", nil, nil, slices.Clone(ties), 0.5); r.Best.Rank != 3 {
		t.Errorf("losses 0.5, none and 0.1: best rank %d, want 3", r.Best.Rank)
	}
	for i := range ties {
		ties[i].ValLoss = nil
	}
	markdownHas(t, BuildReport(cfg, "", nil, nil, ties, 0.5).Markdown(),
		"Best after retraining (by validation accuracy, ties by the search's rank): rank 1",
		"All 3 finals tie at 100.00% validation accuracy: the search's rank picked rank 1")

	mnas := cfg
	mnas.Reward = RewardSettings{Mode: RewardMnasNet, TargetMs: 1, Weight: -0.07}
	if r := BuildReport(mnas, "", nil, nil, slices.Clone(finals), 0.5); r.TiedWithBest != nil {
		t.Errorf("ties under MnasNet's reward: %v", r.TiedWithBest)
	}
	finals[0].ValAccuracy, finals[2].ValAccuracy = 0.99, 0.99
	if md := BuildReport(cfg, "", nil, nil, slices.Clone(finals), 0.5).Markdown(); strings.Contains(md, "tie at") {
		t.Errorf("a best without ties gets the note:\n%s", md)
	}
}

// The final phase records each final's test images and right answers per
// class from its test's confusion matrix, and the report gives the best's.
func TestFinalRecordsRecall(t *testing.T) {
	dir := finishedRun(t, testConfig(t, t.TempDir()), &fakeExecutor{})
	want := []rundir.ClassRecall{{Class: "a", Right: 22, Images: 25}, {Class: "b", Right: 18, Images: 25}}
	finals := read(t, rundir.ReadFinals, dir)
	for _, f := range finals {
		if !slices.Equal(f.TestByClass, want) {
			t.Errorf("final %d: by class %+v, want %+v", f.Rank, f.TestByClass, want)
		}
	}
	lo, hi := wilson(40, 50)
	markdownHas(t, readFile(t, filepath.Join(dir, rundir.FileReport)), "Its recall per class on the test images: a 88.00% (22 of 25), b 72.00% (18 of 25).\n",
		fmt.Sprintf("On 50 test images its accuracy has a 95%% interval of %.2f%% to %.2f%% (Wilson score)", 100*lo, 100*hi))
}

// Trials stopped at chance by give_up_after are counted in the report, and
// warned of when a quarter of those that trained or more; refusals when
// three tenths of the trials or more. A trial at chance that trained all
// its epochs was not given up, nor one stopped there by median stopping
// or halving.
func TestReportBudgetWarnings(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Train.Epochs, cfg.Train.GiveUpAfter = 10, 2
	curve := func(n int) []runtime.EpochRecord {
		var es []runtime.EpochRecord
		for e := 1; e <= n; e++ {
			es = append(es, runtime.EpochRecord{Epoch: e})
		}
		return es
	}
	trial := func(id int, status rundir.Status, atChance bool, epochs int) rundir.Trial {
		return rundir.Trial{Candidate: rundir.Candidate{ID: id, Arch: "SM()"}, Status: status, AtChance: atChance, Epochs: curve(epochs)}
	}
	trials := []rundir.Trial{
		trial(1, rundir.StatusOK, true, 2), trial(2, rundir.StatusOK, true, 10), trial(3, rundir.StatusOK, false, 2),
		trial(4, rundir.StatusOK, true, 2), trial(5, rundir.StatusRefused, false, 0), trial(6, rundir.StatusReused, true, 2),
	}
	trials[3].Pruned = true // at chance at epoch 2, but stopped by halving
	r := BuildReport(cfg, "", trials, nil, nil, 0.5)
	if r.GaveUp != 1 || r.Ran != 4 || r.GiveUpAfter != 2 {
		t.Errorf("gave up %d of %d after %d, want 1 of 4 after 2", r.GaveUp, r.Ran, r.GiveUpAfter)
	}
	markdownHas(t, r.Markdown(), "1 of the 4 trials that trained stopped at chance after 2 epochs (train.give_up_after, --give-up-after)")
	want := []string{"1 of the 4 trials that trained stopped at chance after 2 epochs (train.give_up_after): networks that leave chance later on these images were stopped before they learned; " +
		"a new run with --give-up-after higher (say 6, or 0: never) trains them on, at more time per trial"}
	if got := r.BudgetWarnings(); !slices.Equal(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
	// One refused of 6 is under three tenths; two of 6 are not.
	trials[1].Status = rundir.StatusRefused
	want = append(want[:0:0], "2 of the 6 trials were refused before training by the search's limits (parameters, latency, multiply-accumulates or memory: each trial's reason says which), "+
		"and count against the trials planned: a new run with looser limits, a smaller input or space, or more trials trains more networks")
	trials[0].AtChance = false
	if got := BuildReport(cfg, "", trials, nil, nil, 0.5).BudgetWarnings(); !slices.Equal(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
	cfg.Train.GiveUpAfter = 0 // never
	trials[0].AtChance = true
	if r := BuildReport(cfg, "", trials, nil, nil, 0.5); r.GaveUp != 0 || strings.Contains(r.Markdown(), "give_up_after") {
		t.Errorf("give_up_after 0: %d given up", r.GaveUp)
	}
}

// The Wilson interval's ends are the proportions that the score test at
// 5% (|k/n - p| = z sqrt(p(1-p)/n)) just accepts: found here by bisection
// of that equation, not by the closed form wilson uses.
func TestWilson(t *testing.T) {
	const z = 1.959963984540054
	score := func(k, n int, p float64) float64 {
		return math.Abs(float64(k)/float64(n)-p) - z*math.Sqrt(p*(1-p)/float64(n))
	}
	root := func(k, n int, a, b float64) float64 { // score changes sign between a and b
		for range 200 {
			m := (a + b) / 2
			if (score(k, n, a) > 0) == (score(k, n, m) > 0) {
				a = m
			} else {
				b = m
			}
		}
		return (a + b) / 2
	}
	for _, c := range [][2]int{{1197, 1200}, {1200, 1200}, {0, 10}, {81, 263}, {1, 44}} {
		k, n := c[0], c[1]
		p := float64(k) / float64(n)
		lo, hi := wilson(k, n)
		wantLo, wantHi := root(k, n, 0, p), root(k, n, p, 1)
		if math.Abs(lo-wantLo) > 1e-9 || math.Abs(hi-wantHi) > 1e-9 {
			t.Errorf("%d of %d: [%.6f, %.6f], the score test's [%.6f, %.6f]", k, n, lo, hi, wantLo, wantHi)
		}
	}
}

// When the retrained models validate far better than the search's trials
// did (a user's own images: 62% in the search, 99% retrained), the report
// says the trials train too briefly and what to give; a gap within
// shortTrialsGap, or finals that did not train, say nothing.
func TestReportShortTrials(t *testing.T) {
	final := func(search, val float64, status rundir.Status) rundir.FinalResult {
		return rundir.FinalResult{Rank: 1, Arch: "SM()", SearchValAccuracy: search, ValAccuracy: val, Status: status}
	}
	const say = "the trials train too briefly for these images"
	for _, tc := range []struct {
		finals []rundir.FinalResult
		want   bool
	}{
		{[]rundir.FinalResult{final(0.62, 0.99, rundir.StatusOK), final(0.60, 0.97, rundir.StatusOK)}, true},
		{[]rundir.FinalResult{final(0.90, 1.0, rundir.StatusOK), final(0.85, 0.99, rundir.StatusOK)}, false},
		{[]rundir.FinalResult{final(0.62, 0.99, rundir.StatusOK), final(0.99, 0.99, rundir.StatusOK)}, true}, // mean gap 0.185
		{[]rundir.FinalResult{final(0.50, 0, rundir.StatusFailed)}, false},
		{nil, false},
	} {
		md := Report{Kind: KindMetaQNN, Trials: 2, Planned: 2, Finals: tc.finals}.Markdown()
		if got := strings.Contains(md, say); got != tc.want {
			t.Errorf("%+v: says it %v, want %v:\n%s", tc.finals, got, tc.want, md)
		}
		if tc.want && !strings.Contains(md, "A new run whose trials train longer ranks them better: more epochs (--epochs), or more of the training split (--data-fraction") {
			t.Errorf("no advice:\n%s", md)
		}
	}
}
