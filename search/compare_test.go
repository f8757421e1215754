package search

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/search/rundir"
)

// writeComparedRun writes a finished MetaQNN run of agent and seed under root:
// its trials' validation accuracies in order (three phases of two), and
// its finals' test accuracies, best by validation first. edit changes its
// settings; hash is its images'.
func writeComparedRun(t *testing.T, root, name, agent string, seed uint64, hash string, edit func(*Config), vals, tests []float64) string {
	t.Helper()
	cfg := Config{Kind: KindMetaQNN, Name: name, Dir: root, Seed: seed, Trials: len(vals), Data: "data/" + name,
		MetaQNN: MetaQNNSettings{Agent: agent, Schedule: ScheduleSpec{controller.EpsilonSchedule{{Epsilon: 1, Models: 2}, {Epsilon: 0.5, Models: 2}, {Epsilon: 0.1, Models: 2}}}},
		Final:   FinalSettings{TopK: len(tests)}}
	if edit != nil {
		edit(&cfg)
	}
	b, err := cfg.WithDefaults().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d, err := rundir.Create(filepath.Join(root, name), b)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.WriteJSON(rundir.FileData, Data{Classes: []string{"a", "b"}, Hash: hash, Val: 200, Test: 1200, ValMajority: 0.5}); err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		var eps float64
		if cfg.Kind == KindMetaQNN {
			eps = cfg.MetaQNN.Schedule.Epsilon(i)
		}
		tr := rundir.Trial{Candidate: rundir.Candidate{ID: i + 1, Arch: fmt.Sprintf("C(%d,3,1) - GAP()", 8*(i+1)), Epsilon: eps},
			Status: rundir.StatusOK, Reward: v, ValAccuracy: v}
		if v == 0 {
			tr.Status, tr.Reason, tr.ValAccuracy = rundir.StatusRefused, "parameters exceed the limit", 0
		}
		if err := d.AppendTrial(tr); err != nil {
			t.Fatal(err)
		}
	}
	for i, test := range tests {
		loss := 0.1 * float64(i+1)
		if err := d.AppendFinal(rundir.FinalResult{Rank: i + 1, Trial: i + 1, Arch: fmt.Sprintf("C(%d,3,1) - GAP()", 8*(i+1)), Params: int64(100 * (i + 1)),
			ValAccuracy: 0.99, ValLoss: &loss, TestAccuracy: test, Status: rundir.StatusOK, Model: fmt.Sprintf("winners/rank-%02d.onnx", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(root, name)
}

// Runs by agent: per run the goals' figures, worked by hand from the
// trials and finals written; per agent the mean and sd of the five best;
// the lead over random search per seed and against the spread.
func TestCompareRuns(t *testing.T) {
	root := t.TempDir()
	// Finals tied in validation rank by loss: the first five are the best.
	five := func(m float64) []float64 { return []float64{m, m, m, m, m, 0.9} }
	dirs := []string{
		// Trial 2 is at chance (0.505 is within a point of 0.5); trial 4
		// was refused and counts as neither.
		writeComparedRun(t, root, "q1", AgentQLearning, 1, "h", nil, []float64{0.7, 0.505, 0.8, 0, 0.9, 0.95}, five(0.996)),
		writeComparedRun(t, root, "q2", AgentQLearning, 2, "h", nil, []float64{0.6, 0.7, 0.8, 0.8, 0.9, 0.9}, five(0.998)),
		writeComparedRun(t, root, "r1", AgentRandom, 1, "h", nil, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.995)),
		writeComparedRun(t, root, "r2", AgentRandom, 2, "h", nil, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.995)),
	}
	c, err := CompareRuns(dirs)
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	q1 := c.Runs[0]
	// Gain: the last two phases' mean, (0.9+0.95)/2 with the refused
	// trial left out of 0.8's phase, so (0.8+0.9+0.95)/3, less (0.7+0.505)/2.
	if q1.Trained != 5 || q1.Constant != 1 || q1.Gain == nil || !near(*q1.Gain, (0.8+0.9+0.95)/3-(0.7+0.505)/2) || q1.BestVal != 0.95 ||
		q1.FinalPhase != FinalComplete || q1.BestFive != 5 || !near(q1.BestFiveTest, 0.996) || q1.Winner == nil || q1.Winner.Rank != 1 || q1.Winner.Params != 100 {
		t.Errorf("q1: %+v", q1)
	}
	if len(c.Groups) != 2 || c.Groups[0].Agent != AgentQLearning || c.Groups[1].Agent != AgentRandom {
		t.Fatalf("groups %+v", c.Groups)
	}
	q, r := c.Groups[0], c.Groups[1]
	if q.Runs != 2 || q.Finals != 2 || !near(q.Mean, 0.997) || q.SD == nil || !near(*q.SD, 0.002/math.Sqrt2) || !near(r.Mean, 0.995) || r.SD == nil || *r.SD != 0 {
		t.Errorf("groups %+v", c.Groups)
	}
	if len(c.Leads) != 1 {
		t.Fatalf("leads %+v", c.Leads)
	}
	l := c.Leads[0]
	if l.Agent != AgentQLearning || l.Over != AgentRandom || !near(l.Mean, 0.002) || !l.Beyond || len(l.PerSeed) != 2 || !near(l.PerSeed[1], 0.001) || !near(l.PerSeed[2], 0.003) {
		t.Errorf("lead %+v", l)
	}
	if len(c.Differ) != 0 || c.TestImages != 1200 {
		t.Errorf("matched runs: differ %v, %d test images", c.Differ, c.TestImages)
	}
	// Behind by more than the spread is beyond it too, with the sign.
	if c, err := CompareRuns([]string{dirs[2], dirs[3], dirs[0], dirs[1]}); err != nil || c.Leads[0].Agent != AgentQLearning {
		t.Errorf("the runs in another order: %+v, %v", c.Leads, err)
	}
	low := []string{
		writeComparedRun(t, root, "q7", AgentQLearning, 7, "h", nil, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.990)),
		writeComparedRun(t, root, "q8", AgentQLearning, 8, "h", nil, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.991)),
	}
	if c, err := CompareRuns(append(low, dirs[2:]...)); err != nil || !near(c.Leads[0].Mean, -0.0045) || !c.Leads[0].Beyond || c.Leads[0].PerSeed != nil {
		t.Errorf("behind: %+v, %v", c.Leads, err)
	}

	// A lead inside the spread; a run without all its finals is left out
	// of its agent's figures; other settings and images are named.
	wide := writeComparedRun(t, root, "q3", AgentQLearning, 3, "h", nil, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.990))
	half := writeComparedRun(t, root, "r3", AgentRandom, 3, "other", func(c *Config) { c.Train.LR, c.Final.TopK = 0.01, 6 }, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, []float64{0.999, 0.999, 0.999})
	c, err = CompareRuns(append(slices.Clone(dirs), wide, half))
	if err != nil {
		t.Fatal(err)
	}
	q, r = c.Groups[0], c.Groups[1]
	if q.Runs != 3 || q.Finals != 3 || !near(q.Mean, (0.996+0.998+0.990)/3) || r.Runs != 3 || r.Finals != 2 || c.Runs[5].FinalPhase != FinalIncomplete || c.Runs[5].BestFive != 0 {
		t.Errorf("groups %+v, r3 %+v", c.Groups, c.Runs[5])
	}
	if l := c.Leads[0]; l.Beyond || len(l.PerSeed) != 2 {
		t.Errorf("a lead of %.4f against sds %.4f and %.4f: %+v", l.Mean, *q.SD, *r.SD, l)
	}
	// The final phase's rate follows the training's when not set.
	if !slices.Equal(c.Differ, []string{"images", "train.lr", "final.lr"}) {
		t.Errorf("differ %v, want images, train.lr and final.lr", c.Differ)
	}

	// Settings as the runs take them: a default written out, and a final
	// augment that is the training's, are no difference.
	spelled := writeComparedRun(t, root, "r5", AgentRandom, 5, "h", func(c *Config) {
		c.Train.Metric, c.Train.Sampling, c.Train.Augment, c.Final.Augment = "accuracy", "shuffle", "flips", "flips"
	}, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.995))
	flips := writeComparedRun(t, root, "q6", AgentQLearning, 6, "h", func(c *Config) { c.Train.Augment = "flips" }, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.995))
	if c, err := CompareRuns([]string{flips, spelled}); err != nil || len(c.Differ) != 0 {
		t.Errorf("defaults written out: differ %v, %v", c.Differ, err)
	}
	// Every run's schedule sets the phases its gain reads: random search's
	// too. The settings only an agent uses are compared between its runs.
	other := writeComparedRun(t, root, "r4", AgentRandom, 4, "h", func(c *Config) {
		c.MetaQNN.Schedule.EpsilonSchedule = controller.EpsilonSchedule{{Epsilon: 1, Models: 6}}
	}, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.995))
	if c, err := CompareRuns([]string{dirs[0], other}); err != nil || !slices.Equal(c.Differ, []string{"metaqnn.schedule"}) || c.Runs[1].Gain != nil {
		t.Errorf("a random run's own schedule: differ %v, gain %v, %v", c.Differ, c.Runs[1].Gain, err)
	}
	evo := writeComparedRun(t, root, "e1", AgentEvolution, 1, "h", nil, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.995))
	alpha := writeComparedRun(t, root, "q9", AgentQLearning, 9, "h", func(c *Config) { c.MetaQNN.QLearning.Alpha = 0.5 }, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.995))
	if c, err := CompareRuns([]string{dirs[0], dirs[2], evo}); err != nil || len(c.Differ) != 0 || len(c.Leads) != 2 {
		t.Errorf("three agents: differ %v, leads %+v, %v", c.Differ, c.Leads, err)
	}
	if c, err := CompareRuns([]string{dirs[0], dirs[2], alpha}); err != nil || !slices.Equal(c.Differ, []string{"metaqnn.q_learning.alpha"}) {
		t.Errorf("two Q-learning step sizes: differ %v, %v", c.Differ, err)
	}
	// Redraws are every agent's: random search's count too.
	redraw := writeComparedRun(t, root, "r12", AgentRandom, 12, "h", func(c *Config) { c.MetaQNN.QLearning.Redraw = 3 }, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.995))
	if c, err := CompareRuns([]string{dirs[0], redraw}); err != nil || !slices.Equal(c.Differ, []string{"metaqnn.q_learning.redraw"}) {
		t.Errorf("redraws: differ %v, %v", c.Differ, err)
	}
	// The final phase's rate and patience written out as the training's.
	same := writeComparedRun(t, root, "r13", AgentRandom, 13, "h", func(c *Config) {
		c.Final.LR, c.Final.Patience = c.WithDefaults().Train.LR, c.WithDefaults().Train.Patience
	}, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.995))
	if c, err := CompareRuns([]string{dirs[0], same}); err != nil || len(c.Differ) != 0 {
		t.Errorf("the final phase's rate and patience written out: differ %v, %v", c.Differ, err)
	}

	// The same for cell searches: the controller's settings, which other
	// agents go without, are no difference.
	cells := func(agent string) func(*Config) {
		return func(c *Config) { c.Kind, c.MetaQNN, c.NASNet.Agent = KindNASNet, MetaQNNSettings{}, agent }
	}
	var nasnet []string
	for i, agent := range []string{AgentReinforce, AgentRandom, AgentEvolution} {
		nasnet = append(nasnet, writeComparedRun(t, root, "n-"+agent, "", uint64(i), "h", cells(agent), []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.995)))
	}
	if c, err := CompareRuns(nasnet); err != nil || len(c.Differ) != 0 || len(c.Groups) != 3 || c.Runs[0].Trained != 6 || c.Runs[0].Gain != nil {
		t.Errorf("cell searches: %+v, %v", c, err)
	}
	// Settings written inline in their section are named as its own: the
	// controller's under reinforce, the macro-architecture's under cells.
	lr := writeComparedRun(t, root, "n-lr", "", 9, "h", func(c *Config) {
		cells(AgentReinforce)(c)
		c.Reinforce.Controller.LearningRate, c.Cells.Blocks, c.Cells.Stem = 0.5, 3, 16
	}, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.995))
	if c, err := CompareRuns([]string{nasnet[0], lr}); err != nil || !slices.Contains(c.Differ, "cells.blocks") || !slices.Contains(c.Differ, "cells.stem") ||
		!slices.Contains(c.Differ, "reinforce.learning_rate") || slices.Contains(c.Differ, "cells") || slices.Contains(c.Differ, "reinforce") {
		t.Errorf("a cell search's own settings: differ %v, %v", c.Differ, err)
	}

	// One final is a run's figure; a final phase skipped or under way is none.
	one := writeComparedRun(t, root, "q10", AgentQLearning, 10, "h", nil, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, []float64{0.993})
	skipped := writeComparedRun(t, root, "r10", AgentRandom, 10, "h", func(c *Config) { c.Final.Skip, c.Final.TopK = true, 1 }, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, nil)
	// Five of six trials: the last phase has not all its trials.
	running := writeComparedRun(t, root, "r11", AgentRandom, 11, "h", func(c *Config) { c.Final.TopK, c.Trials = 1, 6 }, []float64{0.7, 0.7, 0.7, 0.7, 0.7}, nil)
	c, err = CompareRuns([]string{one, skipped, running})
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Runs[0]; o.FinalPhase != FinalComplete || o.BestFive != 1 || o.BestFiveTest != 0.993 || c.Groups[0].Finals != 1 || c.Groups[0].SD != nil {
		t.Errorf("one final: %+v, %+v", o, c.Groups[0])
	}
	if s, g := c.Runs[1], c.Runs[2]; s.FinalPhase != FinalSkipped || g.FinalPhase != FinalSearching || g.Gain != nil || c.Groups[1].Finals != 0 || len(c.Leads) != 0 {
		t.Errorf("skipped %+v; under way %+v; groups %+v, leads %+v", s, g, c.Groups, c.Leads)
	}

	// A seed run twice by one agent (on other images, say) pairs nothing.
	again := writeComparedRun(t, root, "q1b", AgentQLearning, 1, "h", nil, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, five(0.990))
	if c, err := CompareRuns(append(slices.Clone(dirs), again)); err != nil || c.Leads[0].PerSeed != nil {
		t.Errorf("seed 1 twice: %+v, %v", c.Leads, err)
	}
	// Runs of another kind are refused.
	cell := filepath.Join(root, "cells")
	b, _ := Config{Kind: KindNASNet, Name: "cells", Dir: root, Trials: 2, Data: "data/x"}.WithDefaults().Marshal()
	d, err := rundir.Create(cell, b)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := CompareRuns([]string{dirs[0], cell}); err == nil || !strings.Contains(err.Error(), "is a metaqnn search and "+cell+" a nasnet one") {
		t.Errorf("a cell search beside a MetaQNN one: %v", err)
	}
}

// Every setting an agent owns names a field of the config.
func TestAgentSectionsResolve(t *testing.T) {
	var c Config
	for agent, keys := range agentSections {
		for _, key := range keys {
			if !settable(&c, key).IsValid() {
				t.Errorf("%s: no setting %s", agent, key)
			}
		}
	}
}
