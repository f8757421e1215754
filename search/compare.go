package search

import (
	"cmp"
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
	// Metric is train.metric when the validation accuracies are not plain
	// accuracy (balanced_accuracy).
	Metric string `json:"metric,omitempty"`
	// Trained counts the trials that trained (not those reused, refused or
	// failed), Constant those among them at chance.
	Trained  int `json:"trained_trials"`
	Constant int `json:"constant_predictors"`
	// Gain is the mean validation accuracy of the last two phases of the
	// schedule less the first phase's: MetaQNN runs with all their trials
	// recorded, nil otherwise.
	Gain    *float64 `json:"gain,omitempty"`
	BestVal float64  `json:"best_val_accuracy,omitempty"`
	// FinalPhase is where the final phase stands (FinalComplete, ...).
	// Once complete, BestFiveTest is the mean test accuracy of the best
	// BestFive (up to five) finals by validation, as the run picks its
	// winner, Winner.
	FinalPhase   string      `json:"final_phase"`
	BestFive     int         `json:"best_five,omitempty"`
	BestFiveTest float64     `json:"best_five_mean_test_accuracy,omitempty"`
	Winner       *WinnerInfo `json:"winner,omitempty"`
}

// Where a compared run's final phase stands (FinalWords says it in words).
const (
	FinalComplete   = "complete"
	FinalSkipped    = "skipped"           // final.skip: a resume can run it
	FinalSearching  = "searching"         // trials are still to come
	FinalNotStarted = "not_started"       // every trial recorded, no final yet
	FinalIncomplete = "incomplete"        // some finals are missing
	FinalTimings    = "timings_pending"   // a latency-aware run picks by them
	FinalNoneWithin = "none_within_limit" // every final timed over the latency limit
	FinalAllFailed  = "all_failed"        // no final model trained
)

// FinalWords says a FinalPhase in a few words.
var FinalWords = map[string]string{
	FinalComplete: "complete", FinalSkipped: "skipped", FinalSearching: "searching", FinalNotStarted: "not started",
	FinalIncomplete: "not complete", FinalTimings: "timings pending", FinalNoneWithin: "none within limit", FinalAllFailed: "all failed",
}

// WinnerInfo is a run's winner as a Comparison gives it.
type WinnerInfo struct {
	Rank         int     `json:"rank"`
	Trial        int     `json:"trial"`
	Arch         string  `json:"arch"`
	Params       int64   `json:"params"`
	TestAccuracy float64 `json:"test_accuracy"`
}

// complete reports whether the run's final phase gave it figures.
func (r ComparedRun) complete() bool { return r.BestFive > 0 }

// AgentGroup is the runs of one agent in a Comparison, over their seeds:
// the mean of the best five's test accuracy over the runs whose final
// phase is complete, and its standard deviation between them (n - 1; nil
// with fewer than two).
type AgentGroup struct {
	Agent  string   `json:"agent"`
	Runs   int      `json:"runs"`
	Finals int      `json:"runs_with_finals"`
	Mean   float64  `json:"best_five_mean_test_accuracy,omitempty"`
	SD     *float64 `json:"best_five_sd,omitempty"`
}

// Lead is one agent's lead over another: the difference of their groups'
// means, and per seed that both ran. Beyond says whether it is larger, in
// size, than both groups' standard deviations (two runs each at least):
// with a positive lead, the goal's test of an agent.
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
	// seed and agent (settingsDiffer): a comparison of unmatched runs.
	Differ []string `json:"settings_differ,omitempty"`
	// TestImages is the test split's size (one image is 1/TestImages of
	// accuracy), when the runs share it.
	TestImages int `json:"test_images,omitempty"`
}

// Group returns the group of agent, and whether there is one.
func (c Comparison) Group(agent string) (AgentGroup, bool) {
	i := slices.IndexFunc(c.Groups, func(g AgentGroup) bool { return g.Agent == agent })
	if i < 0 {
		return AgentGroup{}, false
	}
	return c.Groups[i], true
}

// CompareRuns reads the run directories and compares them. They must be of
// one kind and trained (a problem's scores have no finals).
func CompareRuns(dirs []string) (Comparison, error) {
	var c Comparison
	var runs []*runFiles
	for _, dir := range dirs {
		r, err := readRun(dir)
		if err != nil && !damagedTimings(err) {
			return c, err // it names the run's file
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
	cr := ComparedRun{Name: filepath.Base(dir), Dir: dir, Agent: r.cfg.Agent(), Seed: r.cfg.Seed, Metric: r.cfg.Train.metricName(),
		FinalPhase: finalState(r.cfg, rep)}
	if cr.FinalPhase == FinalComplete {
		// The report's best five need two finals; one is a run's figure too.
		cr.BestFive, cr.BestFiveTest = rep.BestFive, rep.BestFiveTest
		if cr.BestFive == 0 {
			cr.BestFive, cr.BestFiveTest = 1, rep.Best.TestAccuracy
		}
		b := rep.Best
		cr.Winner = &WinnerInfo{Rank: b.Rank, Trial: b.Trial, Arch: b.Arch, Params: b.Params, TestAccuracy: b.TestAccuracy}
	}
	if len(rep.Phases) >= 3 && rep.Trials >= rep.Planned {
		g := lastTwo(rep.Phases).mean - rep.Phases[0].Mean
		cr.Gain = &g
	}
	if len(rep.Phases) == 0 { // a cell search counts its own
		cr.Trained, cr.Constant = rep.Trained, rep.AtChance
	}
	for _, t := range r.trials {
		if t.Status != rundir.StatusOK { // a reuse repeats a trial: counted once
			continue
		}
		if len(rep.Phases) > 0 {
			cr.Trained++
			if constantPredictor(t.ValAccuracy, r.data.ValMajority) { // as the report's phases count them
				cr.Constant++
			}
		}
		cr.BestVal = max(cr.BestVal, t.ValAccuracy)
	}
	return cr
}

// finalState says where the final phase of the run of cfg stands, by its
// report rep.
func finalState(cfg Config, rep Report) string {
	switch {
	case len(rep.Finals) == 0 && cfg.Final.Skip:
		return FinalSkipped
	case len(rep.Finals) == 0 && rep.Trials < rep.Planned:
		return FinalSearching
	case len(rep.Finals) == 0:
		return FinalNotStarted
	case rep.FinalIncomplete():
		return FinalIncomplete
	case rep.TimingsPending:
		return FinalTimings
	case rep.Best == nil && len(rep.OverLimit) > 0:
		return FinalNoneWithin
	case rep.Best == nil:
		return FinalAllFailed
	}
	return FinalComplete
}

// agentSections are the settings an agent's choice fills in or uses, by
// agent: compared only between runs of that agent.
var agentSections = map[string][]string{
	// Not q_learning.redraw: random search and evolution draw repeats
	// again too.
	AgentQLearning: {"metaqnn.q_learning.alpha", "metaqnn.q_learning.gamma", "metaqnn.q_learning.init_q", "metaqnn.q_learning.replay",
		"metaqnn.q_learning.study_update", "metaqnn.q_learning.next_best", "metaqnn.q_learning.target"},
	AgentEvolution: {"metaqnn.evolution", "nasnet.evolution"},
	AgentReinforce: {"reinforce"},
}

// settingsDiffer names the settings in which runs differ (a section's key,
// "train.lr", or the section), leaving out what makes one run of a
// comparison another: its name, folder, seed and agent, the settings only
// its agent uses (agentSections, compared between runs of one agent), the
// threads of a training, and whether the search skipped its final phase
// (a resume can run it). The images are compared by their content, not
// their folder; the metric, sampling, augmentations and the final phase's
// rate and patience by their effect (a default written out is the
// default), other settings as written.
func settingsDiffer(runs []*runFiles) []string {
	var differ []string
	add := func(name string) {
		if !slices.Contains(differ, name) {
			differ = append(differ, name)
		}
	}
	first := map[string]*runFiles{} // the first run of each agent
	for _, r := range runs {
		if r.data.Hash != runs[0].data.Hash {
			add("images")
		}
		diffValues("", reflect.ValueOf(comparable(runs[0])), reflect.ValueOf(comparable(r)), add)
		agent := r.cfg.Agent()
		if f, ok := first[agent]; !ok {
			first[agent] = r
		} else {
			for _, key := range agentSections[agent] {
				if a := section(f.cfg, key); a.IsValid() {
					diffValues(key, a, section(r.cfg, key), add)
				}
			}
		}
	}
	return differ
}

// comparable is r's settings without those settingsDiffer leaves out, and
// with their defaults as the runs take them.
func comparable(r *runFiles) Config {
	c := r.cfg
	c.Name, c.Dir, c.Seed, c.Data, c.Threads = "", "", 0, "", 0
	c.Final.Skip = false
	c.MetaQNN.Agent, c.NASNet.Agent = "", ""
	for _, keys := range agentSections {
		for _, key := range keys {
			v := section(c, key)
			if v.IsValid() {
				settable(&c, key).Set(reflect.Zero(v.Type()))
			}
		}
	}
	c.Train.Metric, c.Train.Sampling = c.Train.metricName(), c.Train.samplingName()
	c.Final.Augment, c.Train.Augment = augmented(c.finalAugment()), augmented(c.Train.Augment)
	c.Final.LR, c.Final.Patience = cmp.Or(c.Final.LR, c.Train.LR), cmp.Or(c.Final.Patience, c.Train.Patience)
	return c
}

// section is the setting of cfg at key ("reinforce", "metaqnn.evolution").
func section(cfg Config, key string) reflect.Value {
	return settable(&cfg, key)
}

// settable is the field of *cfg at key, by its YAML names; the zero Value
// when there is none.
func settable(cfg *Config, key string) reflect.Value {
	v := reflect.ValueOf(cfg).Elem()
	for name := range strings.SplitSeq(key, ".") {
		fields := reflect.VisibleFields(v.Type())
		i := slices.IndexFunc(fields, func(f reflect.StructField) bool { return yamlName(f) == name })
		if i < 0 {
			return reflect.Value{}
		}
		v = v.FieldByIndex(fields[i].Index)
	}
	return v
}

// yamlName is the name of f in a config file ("" when it has none).
func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// diffValues calls add with the key of each setting in which a and b
// differ: a section's fields one by one (train.lr), two levels down
// (metaqnn.q_learning.alpha), those written inline in it (the
// controller's under reinforce) as its own, and deeper settings, or fields
// not written at all, by their section.
func diffValues(key string, a, b reflect.Value, add func(string)) {
	if reflect.DeepEqual(a.Interface(), b.Interface()) {
		return
	}
	if a.Kind() != reflect.Struct || strings.Count(key, ".") >= 2 {
		add(key)
		return
	}
	for i := range a.NumField() {
		f := a.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case strings.Contains(opts, "inline") || f.Anonymous && name == "":
			diffValues(key, a.Field(i), b.Field(i), add) // its fields are the section's
		case name == "-" || name == "":
			if key != "" && !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
				add(key)
			}
		default:
			sub := name
			if key != "" {
				sub = key + "." + name
			}
			diffValues(sub, a.Field(i), b.Field(i), add)
		}
	}
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
			if r.Agent == groups[i].Agent && r.complete() {
				five = append(five, r.BestFiveTest)
			}
		}
		groups[i].Finals = len(five)
		switch len(five) {
		case 0:
		case 1:
			groups[i].Mean = five[0]
		default:
			m, sd := stat.MeanStdDev(five, nil)
			groups[i].Mean, groups[i].SD = m, &sd
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
		l := Lead{Agent: g.Agent, Over: o.Agent, Mean: g.Mean - o.Mean, PerSeed: perSeed(runs, g.Agent, o.Agent)}
		if g.SD != nil && o.SD != nil {
			l.Beyond = math.Abs(l.Mean) > max(*g.SD, *o.SD)
		}
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
