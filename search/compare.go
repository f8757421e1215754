package search

import (
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/nasctl/nasctl/search/rundir"
	"gonum.org/v1/gonum/stat"
)

// ComparedRun is one run of a Comparison: what docs/search-quality.md's
// goals measure of it.
type ComparedRun struct {
	Name  string `json:"name"`
	Dir   string `json:"dir"`
	Agent string `json:"agent"`
	Seed  uint64 `json:"seed"`
	// Trained counts the trials that trained (not those reused, refused or
	// failed), Constant those among them at chance.
	Trained  int `json:"trained_trials"`
	Constant int `json:"constant_predictors"`
	// Gain is the mean validation accuracy of the last two phases of the
	// schedule less the first phase's (MetaQNN; HasGain false otherwise).
	Gain    float64 `json:"gain,omitempty"`
	HasGain bool    `json:"-"`
	BestVal float64 `json:"best_val_accuracy"`
	// BestFiveTest is the mean test accuracy of the best five finals by
	// validation (Report.BestFiveTest), 0 while the final phase is not
	// complete; Winner is the final picked.
	BestFive     int                 `json:"best_five,omitempty"`
	BestFiveTest float64             `json:"best_five_mean_test_accuracy,omitempty"`
	Winner       *rundir.FinalResult `json:"winner,omitempty"`
}

// AgentGroup is the runs of one agent in a Comparison, over their seeds:
// the mean and the standard deviation between runs (n - 1) of the best
// five's test accuracy, of runs whose final phase is complete.
type AgentGroup struct {
	Agent  string  `json:"agent"`
	Runs   int     `json:"runs"`
	Finals int     `json:"runs_with_finals"`
	Mean   float64 `json:"best_five_mean_test_accuracy"`
	SD     float64 `json:"best_five_sd"`
}

// Lead is one agent's lead over another: the difference of their groups'
// means, and per seed that both ran. Beyond says whether it exceeds both
// groups' standard deviations, the goal's test (two runs each at least).
type Lead struct {
	Agent   string             `json:"agent"`
	Over    string             `json:"over"`
	Mean    float64            `json:"lead"`
	PerSeed map[uint64]float64 `json:"per_seed,omitempty"`
	Beyond  bool               `json:"beyond_spread"`
}

// Comparison sets runs of a search side by side, grouped by agent: does
// the agent find better networks than random search with the same budget?
type Comparison struct {
	Runs   []ComparedRun `json:"runs"`
	Groups []AgentGroup  `json:"agents"`
	Leads  []Lead        `json:"leads,omitempty"`
	// Differ names the settings the runs differ in besides their name,
	// seed and agent (and what an agent's choice sets): a comparison of
	// unmatched runs.
	Differ []string `json:"settings_differ,omitempty"`
	// TestImages is the test split's size (one image is 1/TestImages of
	// accuracy), when the runs share it.
	TestImages int `json:"test_images,omitempty"`
}

// CompareRuns reads the run directories and compares them. They must be of
// one kind and trained (a problem's scores have no finals).
func CompareRuns(dirs []string) (Comparison, error) {
	var c Comparison
	var runs []*runFiles
	for _, dir := range dirs {
		r, err := readRun(dir)
		if err != nil && !damagedTimings(err) {
			return c, fmt.Errorf("%s: %w", dir, err)
		}
		if !r.cfg.Trains() {
			return c, fmt.Errorf("%s scores its trials with %s: only searches that train their trials have finals to compare", dir, r.cfg.Problem.Name)
		}
		if len(runs) > 0 && r.cfg.Kind != runs[0].cfg.Kind {
			return c, fmt.Errorf("%s is a %s search and %s a %s one: compare runs of one kind", dirs[0], runs[0].cfg.Kind, dir, r.cfg.Kind)
		}
		runs = append(runs, r)
		c.Runs = append(c.Runs, comparedRun(dir, r))
	}
	c.Differ = settingsDiffer(runs)
	c.TestImages = runs[0].data.Test
	for _, r := range runs[1:] {
		if r.data.Test != c.TestImages {
			c.TestImages = 0
		}
	}
	c.Groups = agentGroups(c.Runs)
	c.Leads = leads(c.Runs, c.Groups)
	return c, nil
}

// comparedRun is what a Comparison takes of the run r in dir.
func comparedRun(dir string, r *runFiles) ComparedRun {
	rep := r.report(filepath.Base(dir))
	cr := ComparedRun{Name: filepath.Base(dir), Dir: dir, Agent: r.cfg.Agent(), Seed: r.cfg.Seed,
		BestFive: rep.BestFive, Winner: rep.Best}
	if !rep.FinalIncomplete() {
		cr.BestFiveTest = rep.BestFiveTest
	}
	if len(rep.Phases) >= 3 {
		cr.Gain, cr.HasGain = lastTwo(rep.Phases).mean-rep.Phases[0].Mean, true
	}
	for _, t := range r.trials {
		if t.Status == rundir.StatusOK { // a reuse repeats a trial: counted once
			cr.Trained++
			if constantPredictor(t.ValAccuracy, r.data.ValMajority) {
				cr.Constant++
			}
			cr.BestVal = max(cr.BestVal, t.ValAccuracy)
		}
	}
	return cr
}

// settingsDiffer names the settings in which runs differ, leaving out what
// makes one run of a comparison another: its name, folder, seed and agent,
// what the agent's choice sets (Q-learning's next best, which other agents
// drop), a schedule that only Q-learning follows, the threads of a
// training, and whether the search skipped its final phase (a resume can
// run it). The images are compared by their content, not their folder.
func settingsDiffer(runs []*runFiles) []string {
	norm := func(r *runFiles) Config {
		c := r.cfg
		c.Name, c.Dir, c.Seed, c.Data, c.Threads = "", "", 0, "", 0
		c.Final.Skip = false // a final phase skipped in the search and run by a resume is the same
		c.MetaQNN.Agent, c.NASNet.Agent = "", ""
		c.MetaQNN.QLearning.NextBest = 0
		if r.cfg.Agent() != AgentQLearning {
			c.MetaQNN.Schedule = ScheduleSpec{}
		}
		return c
	}
	var differ []string
	add := func(name string) {
		if !slices.Contains(differ, name) {
			differ = append(differ, name)
		}
	}
	var schedule *ScheduleSpec // the first Q-learning run's
	for _, r := range runs {
		c := norm(r)
		if r.data.Hash != runs[0].data.Hash {
			add("images")
		}
		if r.cfg.Agent() == AgentQLearning {
			if schedule == nil {
				schedule = &r.cfg.MetaQNN.Schedule
			} else if !reflect.DeepEqual(c.MetaQNN.Schedule, *schedule) {
				add("metaqnn.schedule")
			}
		}
		first := norm(runs[0])
		c.MetaQNN.Schedule, first.MetaQNN.Schedule = ScheduleSpec{}, ScheduleSpec{} // Q-learning's, above
		a, b := reflect.ValueOf(first), reflect.ValueOf(c)
		for i := range a.NumField() {
			if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
				name, _, _ := strings.Cut(a.Type().Field(i).Tag.Get("yaml"), ",")
				add(name)
			}
		}
	}
	return differ
}

// agentGroups groups runs by agent, in the order the agents first come.
func agentGroups(runs []ComparedRun) []AgentGroup {
	var groups []AgentGroup
	for _, r := range runs {
		i := slices.IndexFunc(groups, func(g AgentGroup) bool { return g.Agent == r.Agent })
		if i < 0 {
			groups = append(groups, AgentGroup{Agent: r.Agent})
			i = len(groups) - 1
		}
		groups[i].Runs++
	}
	for i := range groups {
		var five []float64
		for _, r := range runs {
			if r.Agent == groups[i].Agent && r.BestFiveTest > 0 {
				five = append(five, r.BestFiveTest)
			}
		}
		groups[i].Finals = len(five)
		switch len(five) {
		case 0:
		case 1:
			groups[i].Mean = five[0]
		default:
			groups[i].Mean, groups[i].SD = stat.MeanStdDev(five, nil)
		}
	}
	return groups
}

// leads are each agent's lead over random search, when the runs have it
// (else the first agent's over the second's), between groups with finals.
func leads(runs []ComparedRun, groups []AgentGroup) []Lead {
	base := slices.IndexFunc(groups, func(g AgentGroup) bool { return g.Agent == AgentRandom })
	var out []Lead
	for i, g := range groups {
		over := base
		if base < 0 {
			over = 1
			if i != 0 {
				continue
			}
		}
		if i == over || over >= len(groups) || g.Finals == 0 || groups[over].Finals == 0 {
			continue
		}
		o := groups[over]
		l := Lead{Agent: g.Agent, Over: o.Agent, Mean: g.Mean - o.Mean,
			Beyond: g.Finals >= 2 && o.Finals >= 2 && g.Mean-o.Mean > math.Max(g.SD, o.SD)}
		l.PerSeed = perSeed(runs, g.Agent, o.Agent)
		out = append(out, l)
	}
	return out
}

// perSeed is the lead of agent a over agent b on each seed both ran once
// with complete finals; nil when a seed repeats within an agent (runs on
// other images, say), which would make the pairs ambiguous.
func perSeed(runs []ComparedRun, a, b string) map[uint64]float64 {
	five := map[string]map[uint64]float64{a: {}, b: {}}
	for _, r := range runs {
		if r.Agent != a && r.Agent != b {
			continue
		}
		if _, twice := five[r.Agent][r.Seed]; twice {
			return nil
		}
		five[r.Agent][r.Seed] = r.BestFiveTest
	}
	var out map[uint64]float64
	for seed, x := range five[a] {
		if y, ok := five[b][seed]; ok && x > 0 && y > 0 {
			if out == nil {
				out = map[uint64]float64{}
			}
			out[seed] = x - y
		}
	}
	return out
}
