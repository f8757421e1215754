package search

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/controller/problem"
	"github.com/nasctl/nasctl/internal/figure"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/plot"
)

// Report is what a run found. Its sections depend on the method: the
// final table for trained searches, the reward per epsilon for MetaQNN, the
// reward per hundred trials for the REINFORCE controller.
type Report struct {
	Name    string                `json:"name"`
	Kind    Kind                  `json:"kind"`
	Method  string                `json:"method"` // the agent and its reward
	Trials  int                   `json:"trials"`
	Planned int                   `json:"planned"`
	Counts  map[rundir.Status]int `json:"counts"`
	Seconds float64               `json:"seconds"` // sum of the trials' evaluation times
	// Waiting counts the trials that waited for memory other trainings
	// held, and Waited is their waits' sum (not in Seconds).
	Waiting int     `json:"waiting_trials,omitempty"`
	Waited  float64 `json:"waited_seconds,omitempty"`
	// Workers counts the trials each remote worker trained (by its name);
	// empty when the search trained them itself. Stored counts those of
	// them whose result the broker had stored before the run asked.
	Workers map[string]int `json:"workers,omitempty"`
	Stored  int            `json:"stored_trials,omitempty"`
	// Pruned counts the trials the median stopping rule or successive
	// halving stopped, MedianAfter is the first rule's first epoch
	// (train.median_stop.after), and HalvingRungs are the second's rungs.
	Pruned       int   `json:"pruned_trials,omitempty"`
	MedianAfter  int   `json:"median_stop_after,omitempty"`
	HalvingRungs []int `json:"halving_rungs,omitempty"`
	HalvingEta   int   `json:"halving_eta,omitempty"`
	// Augment and FinalAugment are how the trials' and the final phase's
	// training images were varied (train.augment, final.augment); empty:
	// not at all.
	Augment      string `json:"augment,omitempty"`
	FinalAugment string `json:"final_augment,omitempty"`
	// Majority is the validation score of the best constant predictor
	// (trained searches): the validation split's majority-class share, or
	// 1/K under balanced accuracy.
	Majority float64 `json:"val_majority_share,omitempty"`
	// Metric is train.metric when it is not plain accuracy: balanced_accuracy,
	// which every validation accuracy of the run then is.
	Metric string `json:"metric,omitempty"`
	// Sampling is train.sampling when it is not a shuffle: balanced.
	Sampling string `json:"sampling,omitempty"`
	// epochsByLoss: train.monitor is val_loss, which chose the best epochs.
	epochsByLoss bool
	// Phases summarizes the trials of each phase of the epsilon schedule
	// (MetaQNN's space); Agent is the search's agent (MetaQNNAgents or
	// NASNetAgents).
	Phases []PhaseStats `json:"phases,omitempty"`
	Agent  string       `json:"agent,omitempty"`
	// Windows summarizes every windowSize trials (REINFORCE), First and Last
	// the first and last hundred, All every trial.
	Windows []RewardWindow `json:"windows,omitempty"`
	// ControllerBatch is the controller's episodes per update (REINFORCE).
	ControllerBatch int          `json:"controller_batch,omitempty"`
	First, Last     RewardWindow `json:"-"`
	All             RewardWindow `json:"-"`
	// Trained and AtChance count the trials of a training cell search that
	// trained, and those among them that ended at chance (constant
	// predictors); MetaQNN's phases count theirs.
	Trained  int `json:"trained_trials,omitempty"`
	AtChance int `json:"at_chance_trials,omitempty"`
	// GaveUp counts the trials stopped at chance after GiveUpAfter epochs
	// (train.give_up_after), of Ran that trained (reused ones excluded).
	GaveUp      int `json:"gave_up_trials,omitempty"`
	GiveUpAfter int `json:"give_up_after,omitempty"`
	Ran         int `json:"ran_trials,omitempty"`
	// Top are the best distinct architectures of the search.
	Top    []TopCandidate       `json:"top"`
	Finals []rundir.FinalResult `json:"finals,omitempty"`
	// FinalsPlanned is how many final models the run retrains (see
	// Config.FinalsPlanned): while Finals holds fewer, the final phase is
	// incomplete and no best is picked.
	FinalsPlanned int `json:"finals_planned,omitempty"`
	// Running: a live process held the run open when it was read (ReadReport;
	// nasctl runs show of a search under way), so what is missing is still to
	// come rather than left for a resume.
	Running bool `json:"running,omitempty"`
	// Best is the final model with the best reward after retraining, nil
	// before the final phase; BestBy says what that reward was.
	Best   *rundir.FinalResult `json:"best,omitempty"`
	BestBy string              `json:"best_by,omitempty"`
	// TiedWithBest are the ranks of the other finals whose validation
	// accuracy equals the Best's, under a reward of validation accuracy
	// alone (not MnasNet's): the tie-break picked among them.
	TiedWithBest []int `json:"tied_with_best,omitempty"`
	// OverLimit are the ranks of the finals that, timed after the final
	// phase, exceed the run's latency limit, LatencyLimitMs: none of them
	// is picked as the best or counted in the best five.
	OverLimit      []int   `json:"over_latency_limit,omitempty"`
	LatencyLimitMs float64 `json:"latency_limit_ms,omitempty"`
	// TimingsPending: the run times its final models after the final phase
	// (a latency-aware reward) and some are not timed yet (the timing was
	// stopped, or failed): no best is picked until they are.
	TimingsPending bool `json:"final_timings_pending,omitempty"`
	// LatencySource says where the final table's latencies come from:
	// "predicted" (the latency model calibrated at the start), "table"
	// (a latency table's model) or "measured" (timed during the search);
	// empty for a run whose reward uses none.
	LatencySource string `json:"latency_source,omitempty"`
	// BestFiveTest is the mean test accuracy of the BestFive (at most 5)
	// best final models by the same order: the measure of a search in
	// docs/search-quality.md ("The goals"), less noisy than the best one's
	// alone.
	BestFive     int     `json:"best_five,omitempty"`
	BestFiveTest float64 `json:"best_five_mean_test_accuracy,omitempty"`
	// Earlier are the folders, relative to the run, that hold what earlier
	// plans of the run had (rundir.Earlier): a resume with another number
	// of trials sets the old checkpoint, final phase and report aside there.
	Earlier []string `json:"earlier,omitempty"`
}

// PhaseStats summarizes the trials of one phase of the epsilon schedule
// (trials From..To): the phase's epsilon for Q-learning, the same trial
// range for the agents that ignore epsilon (random, evolution).
type PhaseStats struct {
	From     int     `json:"from"`
	To       int     `json:"to"`
	Epsilon  float64 `json:"epsilon"`
	Trials   int     `json:"trials"`
	Mean     float64 `json:"mean_val_accuracy"`
	SD       float64 `json:"sd_val_accuracy"`
	Best     float64 `json:"best_val_accuracy"`
	Constant int     `json:"constant_predictors"`
	// Greedy counts Q-learning's greedy trials (no layer drawn at random)
	// and GreedyMean is their mean validation accuracy (0 without any).
	Greedy     int     `json:"greedy_trials"`
	GreedyMean float64 `json:"greedy_mean_val_accuracy"`
}

// RewardWindow summarizes consecutive trials From..To.
type RewardWindow struct {
	From int `json:"from"`
	To   int `json:"to"`
	// Trials counts the trials recorded in From..To (a run under way may
	// not have all of them yet).
	Trials int     `json:"trials"`
	Mean   float64 `json:"mean_reward"`
	Best   float64 `json:"best_reward"`
	// Baseline is the mean baseline of the trials the controller has
	// learned (a stopped run may have recorded some it has not).
	Baseline    float64 `json:"mean_baseline"`
	Temperature float64 `json:"last_temperature"`
	Updates     int     `json:"updates"`
	Skipped     int     `json:"skipped_updates"`
	// LeftOut counts the episodes of the window's updates that the update
	// left out (reinforce.skip_below: too close to the baseline); Learned
	// the trials the controller has learned.
	LeftOut int `json:"left_out_episodes"`
	Learned int `json:"learned_trials"`
}

// TopCandidate is one distinct architecture of a search, as top.json lists it.
type TopCandidate struct {
	Rank    int    `json:"rank"`
	Arch    string `json:"arch"`
	Actions []int  `json:"actions,omitempty"`
	// Reward is the mean reward of the architecture's trials (a repeated
	// one is reused, or scored again the same).
	Reward  float64 `json:"reward"`
	Samples int     `json:"samples"`
	First   int     `json:"first_trial"`
}

// What the best final model was chosen by.
const (
	// tiesByLoss follows the name of the run's validation accuracy
	// (Config.ValidationOf): the best by it.
	tiesByLoss    = ", ties by validation loss"
	tiesByRank    = ", ties by the search's rank"
	bestByMnasNet = "MnasNet's reward of validation accuracy and latency"
	// bestWithinLimit is added to the best by accuracy for a constraint run that
	// timed its finals.
	bestWithinLimit = ", among the finals timed within the latency limit"
	bestByTimed     = "MnasNet's reward of validation accuracy and the latency timed after the final phase"
)

// windowSize is the number of trials per row of the REINFORCE section: 100,
// or for shorter runs the largest of 50, 20 and 10 that gives four rows.
func windowSize(trials int) int {
	for _, w := range []int{100, 50, 20} {
		if trials >= 4*w {
			return w
		}
	}
	return 10
}

// balanced reports whether the run's validation accuracy is balanced
// accuracy.
func (r Report) balanced() bool { return r.Metric == runtime.MetricBalanced.String() }

// chanceWords names what a constant predictor scores on validation: the
// majority share, or one over the number of classes.
func (r Report) chanceWords() string {
	if r.balanced() {
		return "one over the number of classes"
	}
	return "the majority share"
}

// constantPredictor: a validation accuracy no better than chance, at most
// one point over the majority share, is what a network that always answers
// the same class gets, whichever class it answers; training marks the same
// (runtime.Result.AtChance).
func constantPredictor(acc, majority float64) bool { return runtime.AtChance(acc, majority) }

// BuildReport summarizes the trials (in trial order) of a run of cfg with
// what its agent noted of them and the final results; method describes the
// agent and majority is the validation split's majority share.
func BuildReport(cfg Config, method string, trials []rundir.Trial, notes map[int]rundir.Note, finals []rundir.FinalResult, majority float64) Report {
	r := Report{Name: cfg.Name, Kind: cfg.Kind, Method: method, Trials: len(trials), Planned: cfg.Trials,
		Counts: map[rundir.Status]int{}, Majority: majority, Top: TopCandidates(trials, cfg.Final.TopK)}
	r.Metric, r.Sampling = cfg.Train.metricName(), cfg.Train.samplingName()
	r.epochsByLoss = cfg.Train.Monitor == runtime.MonitorValLoss.String()
	for _, t := range trials {
		r.Counts[t.Status]++
		r.Seconds += t.Seconds
		if t.WaitedSeconds > 0 {
			r.Waiting++
			r.Waited += t.WaitedSeconds
		}
		if t.Pruned {
			r.Pruned++
		}
		if t.Status == rundir.StatusOK && len(t.Epochs) > 0 {
			r.Ran++
			if g := cfg.Train.GiveUpAfter; g > 0 && g < cfg.Train.Epochs && t.AtChance && !t.Pruned && t.Epochs[len(t.Epochs)-1].Epoch == g {
				r.GaveUp, r.GiveUpAfter = r.GaveUp+1, g
			}
		}
		if t.Worker != "" {
			if r.Workers == nil {
				r.Workers = map[string]int{}
			}
			r.Workers[t.Worker]++
		}
		if t.Stored {
			r.Stored++
		}
	}
	r.MedianAfter = cfg.Train.MedianStop.After
	r.Augment, r.FinalAugment = augmented(cfg.Train.Augment), augmented(cfg.finalAugment())
	if h := cfg.Train.Halving; h.First > 0 {
		r.HalvingRungs, r.HalvingEta = h.rungs(cfg.Train.Epochs), h.eta()
	}
	switch cfg.Kind {
	case KindMetaQNN:
		r.Phases = phaseStats(trials, majority, cfg.MetaQNN.Schedule.EpsilonSchedule)
	case KindNASNet:
		r.windows(trials, notes, cfg.Reinforce.Controller.BatchSize)
		for _, t := range trials {
			if t.Status == rundir.StatusOK && t.Score == 0 {
				r.Trained++
				if t.AtChance {
					r.AtChance++
				}
			}
		}
	}
	r.Agent = cfg.Agent()
	r.finals(cfg, trials, finals)
	return r
}

// FinalsPlanned is how many final models a run of c whose trials are
// trials retrains: its TopK best distinct architectures that trained well
// (status ok), or fewer when there are fewer; 0 when it trains none (a
// search scored by a table, or one that skips the final phase). While
// trials remain, each may add an architecture: a search stopped early
// plans its TopK, not the few it has so far.
func (c Config) FinalsPlanned(trials []rundir.Trial) int {
	if !c.Trains() || c.Final.Skip {
		return 0
	}
	ok := map[string]bool{}
	for _, t := range trials {
		if t.Status == rundir.StatusOK {
			ok[t.Arch] = true
		}
	}
	return min(c.Final.TopK, len(ok)+max(0, c.Trials-len(trials)))
}

// FinalIncomplete reports whether the final phase has begun but not
// ended: some of its models are retrained, not all.
func (r Report) FinalIncomplete() bool { return len(r.Finals) > 0 && len(r.Finals) < r.FinalsPlanned }

// measured reports whether a trial has a validation accuracy: it was trained
// or reused, not refused or failed.
func measured(t rundir.Trial) bool {
	return t.Status != rundir.StatusRefused && t.Status != rundir.StatusFailed
}

// phaseGroup is a phase of the schedule (trials From..To at Epsilon) and
// the validation accuracies of its trials.
type phaseGroup struct {
	From, To int
	Epsilon  float64
	rs       []float64
	greedy   []float64 // of the greedy trials
}

// phaseGroups divides the trials with a validation accuracy (trained or
// reused; not refused or failed) by the schedule's trial ranges, leaving
// out phases without trials; a run longer than its schedule counts the rest
// in the last phase, and a phase ends at the last trial recorded (a run
// planned shorter than its schedule, or not finished).
func phaseGroups(trials []rundir.Trial, schedule controller.EpsilonSchedule) []phaseGroup {
	var out []phaseGroup
	last := 0
	for _, t := range trials {
		last = max(last, t.ID)
	}
	from := 1
	for i, ph := range schedule {
		g := phaseGroup{From: from, To: min(from+ph.Models-1, last), Epsilon: ph.Epsilon}
		from += ph.Models
		for _, t := range trials {
			if !measured(t) {
				continue
			}
			if t.ID >= g.From && (t.ID <= g.To || i == len(schedule)-1) {
				g.rs = append(g.rs, t.ValAccuracy)
				if t.Greedy {
					g.greedy = append(g.greedy, t.ValAccuracy)
				}
				g.To = max(g.To, t.ID)
			}
		}
		if len(g.rs) > 0 {
			out = append(out, g)
		}
	}
	return out
}

func phaseStats(trials []rundir.Trial, majority float64, schedule controller.EpsilonSchedule) []PhaseStats {
	var out []PhaseStats
	for _, g := range phaseGroups(trials, schedule) {
		p, rs := PhaseStats{From: g.From, To: g.To, Epsilon: g.Epsilon}, g.rs
		p.Trials, p.Best = len(rs), slices.Max(rs)
		p.Mean, p.SD = stat.MeanStdDev(rs, nil)
		if p.Greedy = len(g.greedy); p.Greedy > 0 {
			p.GreedyMean = stat.Mean(g.greedy, nil)
		}
		if len(rs) == 1 {
			p.SD = 0 // gonum gives NaN for a single value
		}
		for _, x := range rs {
			if constantPredictor(x, majority) {
				p.Constant++
			}
		}
		out = append(out, p)
	}
	return out
}

// windows summarizes the trials of a NASNet search in windows, and its
// first, last and whole run; batch is the controller's episodes per update.
func (r *Report) windows(trials []rundir.Trial, notes map[int]rundir.Note, batch int) {
	if len(trials) == 0 {
		return
	}
	r.ControllerBatch = max(batch, 1)
	size := windowSize(len(trials))
	for i := 0; i < len(trials); i += size {
		r.Windows = append(r.Windows, r.rewardWindow(trials[i:min(i+size, len(trials))], notes))
	}
	r.First = r.rewardWindow(trials[:min(size, len(trials))], notes)
	r.Last = r.rewardWindow(trials[max(0, len(trials)-size):], notes)
	r.All = r.rewardWindow(trials, notes)
}

func (r *Report) rewardWindow(ts []rundir.Trial, notes map[int]rundir.Note) RewardWindow {
	w := RewardWindow{From: ts[0].ID, To: ts[len(ts)-1].ID, Trials: len(ts), Temperature: ts[len(ts)-1].Temperature}
	for i, t := range ts {
		w.Mean += t.Reward
		if i == 0 || t.Reward > w.Best {
			w.Best = t.Reward
		}
		n, ok := notes[t.ID]
		if !ok {
			continue // recorded, not yet learned
		}
		w.Learned++
		w.Baseline += n.Baseline
		if n.Update != nil {
			w.Updates++
			w.LeftOut += max(0, r.ControllerBatch-n.Update.Kept)
			if n.Update.Kept == 0 {
				w.Skipped++
			}
		}
	}
	w.Mean /= float64(len(ts))
	if w.Learned > 0 {
		w.Baseline /= float64(w.Learned)
	}
	return w
}

// finals sorts the final results of a run of cfg whose trials are trials
// and, once every planned one is in (and timed, where the run times its
// finals), picks the best by the run's reward: the MnasNet reward weighs
// the latency timed after the final phase; the constraint reward, which
// refused what was over its limits before training, ranks by accuracy the
// finals that the timings put within its latency limit.
func (r *Report) finals(cfg Config, trials []rundir.Trial, finals []rundir.FinalResult) {
	r.Finals, r.FinalsPlanned = finals, cfg.FinalsPlanned(trials)
	sort.Slice(r.Finals, func(i, j int) bool { return r.Finals[i].Rank < r.Finals[j].Rank })
	markAtChance(r.Finals, r.Majority)
	reward := cfg.Reward.withDefaults()
	if reward.needsLatency() {
		r.LatencySource = reward.Latency
		if reward.Table != "" {
			r.LatencySource = "table"
		}
	}
	r.BestBy = cfg.ValidationOf(0).Name + tiesByLoss
	if reward.Mode == RewardMnasNet {
		r.BestBy = bestByMnasNet
	}
	var ranked []*rundir.FinalResult
	for i, f := range r.Finals {
		switch {
		case f.Status != rundir.StatusOK:
		case reward.Mode == RewardConstraint && reward.MaxLatencyMs > 0 && f.MeasuredLatencyMs != nil && *f.MeasuredLatencyMs > reward.MaxLatencyMs:
			r.OverLimit = append(r.OverLimit, f.Rank)
		default:
			ranked = append(ranked, &r.Finals[i])
		}
	}
	if len(r.OverLimit) > 0 {
		r.LatencyLimitMs = reward.MaxLatencyMs
	}
	// Best reward first; ties go to the lower validation loss (a final
	// recorded without one after those with), then to the better search
	// rank (the finals are in rank order and the sort is stable).
	slices.SortStableFunc(ranked, func(a, b *rundir.FinalResult) int {
		if c := cmp.Compare(reward.reward(b.ValAccuracy, finalLatency(*b)), reward.reward(a.ValAccuracy, finalLatency(*a))); c != 0 {
			return c
		}
		switch {
		case a.ValLoss == nil && b.ValLoss == nil:
			return 0
		case a.ValLoss == nil:
			return 1
		case b.ValLoss == nil:
			return -1
		}
		return cmp.Compare(*a.ValLoss, *b.ValLoss)
	})
	if r.FinalIncomplete() {
		return // a best of some of the finals could be beaten by the rest
	}
	if cfg.timesFinals() && timesItsFinals(trials) {
		for _, f := range r.Finals {
			r.TimingsPending = r.TimingsPending || f.Status == rundir.StatusOK && f.Model != "" && f.MeasuredLatencyMs == nil
		}
	}
	if r.TimingsPending {
		return // picked by the timings, which are still to come
	}
	if slices.ContainsFunc(r.Finals, func(f rundir.FinalResult) bool { return f.MeasuredLatencyMs != nil }) {
		switch {
		case reward.Mode == RewardMnasNet:
			r.BestBy = bestByTimed
		case reward.Mode == RewardConstraint && reward.MaxLatencyMs > 0:
			r.BestBy += bestWithinLimit
		}
	}
	if len(ranked) > 0 {
		r.Best = ranked[0]
		for _, f := range ranked[1:] {
			if reward.Mode == RewardMnasNet || f.ValAccuracy != r.Best.ValAccuracy {
				break // ranked: the ties come first
			}
			r.TiedWithBest = append(r.TiedWithBest, f.Rank)
		}
		if len(r.TiedWithBest) > 0 && r.Best.ValLoss == nil { // recorded before final.jsonl had it
			r.BestBy = strings.Replace(r.BestBy, tiesByLoss, tiesByRank, 1)
		}
	}
	var test []float64
	for _, f := range ranked[:min(5, len(ranked))] {
		test = append(test, f.TestAccuracy)
	}
	if len(test) > 1 {
		r.BestFive, r.BestFiveTest = len(test), stat.Mean(test, nil)
	}
	if len(r.Finals) == 0 {
		r.BestBy = ""
	}
}

// timesItsFinals reports whether the nasctl that recorded trials times a
// latency-aware run's finals: the same release began to record each
// trial's look-ahead (Candidate.Lag). A run of an older nasctl, which has
// no timings and never will unless resumed, keeps its best as picked then
// (by the search's figures).
func timesItsFinals(trials []rundir.Trial) bool {
	return slices.ContainsFunc(trials, func(t rundir.Trial) bool { return t.Lag > 0 })
}

// finalLatency is the latency a final model is ranked by: as timed after
// the final phase when it was (timeFinals), else the search's figure.
func finalLatency(f rundir.FinalResult) float64 {
	if f.MeasuredLatencyMs != nil {
		return *f.MeasuredLatencyMs
	}
	return f.LatencyMs
}

// atChanceAdvice is what to try when the best model of a search of kind
// stayed at chance.
func atChanceAdvice(kind Kind) string {
	more := "--trials"
	if kind == KindNASNet {
		more = "--episodes"
	}
	return "Search longer (" + more + "), train the trials longer (--epochs) or on more images (--data-fraction), or check that the classes can be told apart in the images at the search's input size."
}

// finalAtChance reports whether a retrained model stayed a constant
// predictor (marked by finals, markAtChance).
func (r Report) finalAtChance(f rundir.FinalResult) bool {
	return f.Status == rundir.StatusOK && f.AtChance
}

// TopCandidates returns the k best distinct architectures of the trials by
// mean reward (ties: the one proposed first); trials that were not
// evaluated (refused, failed, diverged) are left out.
func TopCandidates(trials []rundir.Trial, k int) []TopCandidate {
	byArch := map[string]int{}
	var out []TopCandidate
	for _, t := range trials {
		if t.Status != rundir.StatusOK && t.Status != rundir.StatusReused {
			continue
		}
		i, ok := byArch[t.Arch]
		if !ok {
			i = len(out)
			byArch[t.Arch] = i
			out = append(out, TopCandidate{Arch: t.Arch, Actions: t.Actions, First: t.ID})
		}
		out[i].Samples++
		out[i].Reward += t.Reward
	}
	for i := range out {
		out[i].Reward /= float64(out[i].Samples)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Reward > out[j].Reward })
	out = out[:min(k, len(out))]
	for i := range out {
		out[i].Rank = i + 1
	}
	return out
}

// Markdown renders the report.
func (r Report) Markdown() string {
	var b strings.Builder
	title := map[Kind]string{KindMetaQNN: "MetaQNN", KindNASNet: "NASNet"}[r.Kind]
	fmt.Fprintf(&b, "# %s search %s\n\n", title, r.Name)
	if r.Method != "" {
		fmt.Fprintf(&b, "%s.\n\n", r.Method)
	}
	var counts []string
	for _, k := range rundir.Statuses {
		if r.Counts[k] > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", r.Counts[k], k))
		}
	}
	if r.Trials == 0 && len(r.Finals) == 0 {
		fmt.Fprintf(&b, "0 of %d trials: none has finished yet.\n", r.Planned)
		return b.String()
	}
	fmt.Fprintf(&b, "%d of %d trials (%s), %s of evaluation.\n\n", r.Trials, r.Planned, strings.Join(counts, ", "),
		time.Duration(r.Seconds*float64(time.Second)).Round(time.Second))
	if r.Waiting > 0 {
		fmt.Fprintf(&b, "Waited for memory that other trainings held (--max-memory), not counted in the evaluation time: %d of the trials, %s in all.\n\n",
			r.Waiting, time.Duration(r.Waited*float64(time.Second)).Round(time.Second))
	}
	if len(r.Workers) > 0 {
		var ws []string
		for _, w := range slices.Sorted(maps.Keys(r.Workers)) {
			ws = append(ws, fmt.Sprintf("%s %d", w, r.Workers[w]))
		}
		stored := ""
		if r.Stored > 0 { // not trained for this run: said, a fresh run of the same name takes them too
			stored = fmt.Sprintf(" (%d of them taken from results the broker had stored, from an earlier session of this run or of a run with the same name and settings: not trained for this run)", r.Stored)
		}
		fmt.Fprintf(&b, "Trials trained by remote workers: %s%s.\n\n", strings.Join(ws, ", "), stored)
	}
	if r.Augment != "" {
		fmt.Fprintf(&b, "Every trial trained on its images %s, afresh at every step (train.augment: %s).\n\n", augmentWords(r.Augment), r.Augment)
	}
	if r.balanced() {
		epochs := ", their best epochs chosen"
		if r.epochsByLoss {
			epochs = "" // by the validation loss (train.monitor)
		}
		fmt.Fprintf(&b, "Validation accuracy in this run is balanced accuracy (train.metric: %s): the mean of the classes' recalls on the validation images, "+
			"by which the trials were rewarded%s and the best model picked; a constant predictor scores %.2f%% (one over the number of classes). "+
			"Test accuracy is the share of the test images right.\n\n", r.Metric, epochs, 100*r.Majority)
	}
	if r.Sampling != "" {
		fmt.Fprintf(&b, "Every trial and retraining drew its training images class by class, every class as often as the others, the small classes' images repeated (train.sampling: %s).\n\n", r.Sampling)
	}
	if r.GaveUp > 0 {
		fmt.Fprintf(&b, "%d of the %d trials that trained stopped at chance after %d epochs (train.give_up_after, --give-up-after): a network still a constant predictor then rarely learns on images like the leaves; on others it may later.\n\n",
			r.GaveUp, r.Ran, r.GiveUpAfter)
	}
	switch {
	case r.MedianAfter > 0 && len(r.HalvingRungs) > 0:
		fmt.Fprintf(&b, "Median stopping from epoch %d and successive halving at epochs %s (the best 1/%d go on): %d trials stopped early; their accuracy is that of a shorter training.\n\n",
			r.MedianAfter, intList(r.HalvingRungs), r.HalvingEta, r.Pruned)
	case r.MedianAfter > 0:
		fmt.Fprintf(&b, "Median stopping from epoch %d: %d trials stopped early, below the median of the earlier trials; their accuracy is that of a shorter training.\n\n",
			r.MedianAfter, r.Pruned)
	case len(r.HalvingRungs) > 0:
		fmt.Fprintf(&b, "Successive halving at epochs %s: %d trials stopped early, outside the best 1/%d of the earlier trials at a rung; their accuracy is that of a shorter training.\n\n",
			intList(r.HalvingRungs), r.Pruned, r.HalvingEta)
	}
	r.finalSection(&b)
	r.epsilonSection(&b)
	r.windowSection(&b)
	r.topSection(&b)
	plots := map[Kind]string{KindMetaQNN: "plots/accuracy.png, plots/epsilon.png, plots/params.png",
		KindNASNet: "plots/reward.png (reward per trial, its moving average and the baseline), plots/temperature.png"}[r.Kind]
	if r.Kind == KindNASNet && !r.controlled() {
		plots = "plots/reward.png (reward per trial and its moving average)"
	}
	fmt.Fprintf(&b, "Plots: %s (and .svg). Every trial: trials.jsonl, trials.csv; best architectures: top.json.\n", plots)
	if len(r.Earlier) > 0 {
		fmt.Fprintf(&b, "\nEarlier plans of this run, set aside when its number of trials changed (each with its checkpoint, and its final phase and report if it had them): %s.\n",
			strings.Join(r.Earlier, ", "))
	}
	return b.String()
}

// BudgetWarnings say where many of the run's trials taught the search
// little for want of a setting: stopped at chance after a few epochs
// (a quarter of the trained trials or more), or refused before training by
// the reward's limits (three tenths of the trials or more), which count
// against --trials.
func (r Report) BudgetWarnings() []string {
	var ws []string
	if r.GaveUp > 0 && 4*r.GaveUp >= r.Ran {
		ws = append(ws, fmt.Sprintf("%d of the %d trials that trained stopped at chance after %d epochs (train.give_up_after): networks that leave chance later on these images were stopped before they learned; "+
			"a new run with --give-up-after higher (say %d, or 0: never) trains them on, at more time per trial", r.GaveUp, r.Ran, r.GiveUpAfter, 3*r.GiveUpAfter))
	}
	if n := r.Counts[rundir.StatusRefused]; r.Trials > 0 && 10*n >= 3*r.Trials {
		ws = append(ws, fmt.Sprintf("%d of the %d trials were refused before training by the search's limits (parameters, latency, multiply-accumulates or memory: each trial's reason says which), "+
			"and count against the trials planned: a new run with looser limits, a smaller input or space, or more trials trains more networks", n, r.Trials))
	}
	return ws
}

// augmentWords say what a train.augment or final.augment setting does to
// the images (runtime.Augment.Describe).
func augmentWords(setting string) string {
	a, _ := runtime.ParseAugment(setting)
	return a.Describe()
}

// augmented is a train.augment or final.augment setting as the report
// keeps it: empty when the images are used as they are.
func augmented(setting string) string {
	if a, err := runtime.ParseAugment(setting); err == nil && a != runtime.AugmentNone {
		return a.String()
	}
	return ""
}

func (r Report) finalSection(b *strings.Builder) {
	if len(r.Finals) == 0 {
		return
	}
	b.WriteString("## Best architectures\n\nRetrained from their search weights")
	var fresh []string
	reused := map[string][]string{} // ranks by the earlier plan they were taken from
	for _, f := range r.Finals {
		if strings.Contains(f.Reason, freshWeights) {
			fresh = append(fresh, strconv.Itoa(f.Rank))
		}
		if f.Reused != "" {
			reused[f.Reused] = append(reused[f.Reused], strconv.Itoa(f.Rank))
		}
	}
	if len(fresh) > 0 {
		fmt.Fprintf(b, " (%s %s from fresh weights: their search weights were missing)", english.PluralWord(len(fresh), "rank", ""), english.WordSeries(fresh, "and"))
	}
	for _, from := range slices.Sorted(maps.Keys(reused)) {
		ranks := reused[from]
		fmt.Fprintf(b, " (%s %s taken from %s, whose final phase trained the same %s from the same weights with the same settings)",
			english.PluralWord(len(ranks), "rank", ""), english.WordSeries(ranks, "and"), from, english.PluralWord(len(ranks), "network", ""))
	}
	b.WriteString(" on the whole training split")
	if r.FinalAugment != "" {
		fmt.Fprintf(b, ", its images %s", augmentWords(r.FinalAugment))
	}
	b.WriteString(", then evaluated on the test split.\n\n")
	cols := finalColumnsOf(r.Finals)
	b.WriteString(cols.header(r.LatencySource))
	var atChance []string
	for _, f := range r.Finals {
		test := fmt.Sprintf("%.2f%%", 100*f.TestAccuracy)
		if f.Status != rundir.StatusOK {
			test = string(f.Status)
		} else if r.finalAtChance(f) {
			test += " (at chance)"
			atChance = append(atChance, strconv.Itoa(f.Rank))
		}
		fmt.Fprintf(b, "| %d | %s | %s | %s | %.2f%% | %.2f%% | %s | %s |", f.Rank, mdCell(f.Arch), humanize.Comma(f.Params), humanize.Comma(f.MACs),
			100*f.SearchValAccuracy, 100*f.ValAccuracy, test, f.Model)
		cols.cells(b, f)
		b.WriteString("\n")
	}
	r.latencyNotes(b, cols.latency, cols.timed)
	if len(atChance) > 0 {
		fmt.Fprintf(b, "\n%s %s stayed at chance: no better on validation than a network that answers one class whatever the image.\n",
			english.PluralWord(len(atChance), "Rank", "Ranks"), english.WordSeries(atChance, "and"))
	}
	if r.Best != nil {
		fmt.Fprintf(b, "\nBest after retraining (by %s): rank %d, %s, copied to %s: test accuracy %.2f%%.\n",
			r.BestBy, r.Best.Rank, r.Best.Model, rundir.BestName, 100*r.Best.TestAccuracy)
		if r.finalAtChance(*r.Best) {
			b.WriteString("**It is no better than chance: do not deploy it.** " + atChanceAdvice(r.Kind) + "\n")
		} else {
			r.tiesNote(b)
			r.recallNote(b, r.Best.TestByClass)
		}
	}
	if r.BestFive > 0 {
		fmt.Fprintf(b, "The %d best by the same order average %.2f%% test accuracy.\n", r.BestFive, 100*r.BestFiveTest)
	}
	if search, final, short := r.shortTrials(); short && !r.FinalIncomplete() {
		fmt.Fprintf(b, "\nRetrained, these networks reach %.2f%% validation accuracy on average, where the search's trials reached %.2f%%: "+
			"the trials train too briefly for these images to tell the networks apart well. A new run whose trials train longer ranks them better: "+
			"more epochs (--epochs), or more of the training split (--data-fraction, if the run used part of it).\n",
			100*final, 100*search)
	}
	r.unfinishedNote(b)
	b.WriteString("\n")
}

// finalColumns are the final table's columns that only some runs have,
// each shown when a final has its figure.
type finalColumns struct{ latency, timed, int8, recall bool }

func finalColumnsOf(finals []rundir.FinalResult) finalColumns {
	var c finalColumns
	for _, f := range finals {
		c.latency = c.latency || f.LatencyMs > 0
		c.timed = c.timed || f.MeasuredLatencyMs != nil
		c.int8 = c.int8 || f.Int8Model != ""
		c.recall = c.recall || f.TestByClass != nil
	}
	return c
}

// header is the table's head and rule; source is where the search's
// latencies came from ("" in reports of older runs).
func (c finalColumns) header(source string) string {
	head, sep := "| rank | architecture | parameters | MACs | search val acc | val acc | test acc | model |", "|---|---|---|---|---|---|---|---|"
	if c.latency && source != "" {
		head, sep = head+fmt.Sprintf(" latency ms (%s) |", source), sep+"---|"
	} else if c.latency {
		head, sep = head+" latency ms |", sep+"---|" // a report of an older run: its source unrecorded
	}
	if c.timed {
		head, sep = head+" timed ms |", sep+"---|"
	}
	if c.int8 {
		head, sep = head+" int8 test acc | int8 model |", sep+"---|---|"
	}
	if c.recall {
		head, sep = head+" lowest class recall |", sep+"---|"
	}
	return head + "\n" + sep + "\n"
}

// cells writes f's cells of these columns, "-" where it has no figure.
func (c finalColumns) cells(b *strings.Builder, f rundir.FinalResult) {
	if c.latency {
		fmt.Fprintf(b, " %.4f |", f.LatencyMs)
	}
	if c.timed && f.MeasuredLatencyMs != nil {
		fmt.Fprintf(b, " %.4f |", *f.MeasuredLatencyMs)
	} else if c.timed {
		b.WriteString(" - |")
	}
	if c.int8 && f.Int8TestAccuracy != nil {
		fmt.Fprintf(b, " %.2f%% | %s |", 100**f.Int8TestAccuracy, f.Int8Model)
	} else if c.int8 {
		b.WriteString(" - | - |") // float32 only (see its reason in final.jsonl)
	}
	if low, ok := rundir.LowestRecall(f.TestByClass); c.recall && ok {
		fmt.Fprintf(b, " %s |", recallText(low))
	} else if c.recall {
		b.WriteString(" - |")
	}
}

// recallText is a class's recall on the test images: "cube 1.82% (1 of 55)".
func recallText(c rundir.ClassRecall) string {
	return fmt.Sprintf("%s %.2f%% (%d of %d)", mdCell(c.Class), 100*c.Recall(), c.Right, c.Images)
}

// tiesNote names the finals that score as the best does on validation,
// which those images cannot rank further (docs/search-quality.md, "What
// the final test accuracy can resolve"), and the smallest of them when
// that is not the best: on a small device it may serve as well.
func (r Report) tiesNote(b *strings.Builder) {
	if len(r.TiedWithBest) == 0 {
		return
	}
	var ranks []string
	smallest := *r.Best
	for _, f := range r.Finals { // in rank order
		if f.Rank == r.Best.Rank || slices.Contains(r.TiedWithBest, f.Rank) {
			ranks = append(ranks, strconv.Itoa(f.Rank))
			if f.Params < smallest.Params {
				smallest = f
			}
		}
	}
	who := "Ranks " + english.WordSeries(ranks, "and")
	switch {
	case len(ranks) == 2 && len(r.Finals) == 2:
		who = "Both finals"
	case len(ranks) == len(r.Finals):
		who = fmt.Sprintf("All %d finals", len(ranks))
	}
	metric := Config{Train: TrainSettings{Metric: r.Metric}}.ValidationOf(0).Name
	by := "validation loss"
	if r.Best.ValLoss == nil {
		by = "the search's rank"
	}
	fmt.Fprintf(b, "%s tie at %.2f%% %s: %s picked rank %d, a weak signal where the accuracy on these images tells them no further apart.",
		who, 100*r.Best.ValAccuracy, metric, by, r.Best.Rank)
	if smallest.Rank != r.Best.Rank {
		fmt.Fprintf(b, " The smallest of them is rank %d, %s (%s parameters against %s; %.2f%% on the test images against %.2f%%): a choice for a device short of memory.",
			smallest.Rank, smallest.Model, humanize.Comma(smallest.Params), humanize.Comma(r.Best.Params), 100*smallest.TestAccuracy, 100*r.Best.TestAccuracy)
	}
	b.WriteString("\n")
}

// recallNote gives the best model's recall of each class, says so when it
// answers fewer than half the images of one class right (accuracy, which
// ranks the models, can hide that on imbalanced classes), and gives its
// test accuracy's 95% interval: how far the test images can tell finals
// apart. Under balanced accuracy it gives the recalls' mean, the test
// images' balanced accuracy, too.
func (r Report) recallNote(b *strings.Builder, byClass []rundir.ClassRecall) {
	low, ok := rundir.LowestRecall(byClass)
	if !ok {
		return
	}
	parts := make([]string, len(byClass))
	for i, c := range byClass {
		parts[i] = recallText(c)
	}
	mean := ""
	if r.balanced() {
		mean = fmt.Sprintf("; their mean, its balanced accuracy on the test images: %.2f%%", 100*rundir.BalancedAccuracy(byClass))
	}
	fmt.Fprintf(b, "Its recall per class on the test images: %s%s.\n", strings.Join(parts, ", "), mean)
	switch {
	case low.Recall() < 0.5 && r.balanced() && r.Sampling == "":
		fmt.Fprintf(b, "**It answers fewer than half of the test images of %s right**, though balanced accuracy ranked the models. "+
			"The ranking picks among what the networks learnt; --sampling balanced draws %s as often as the other classes in training, so that they learn it, "+
			"and more images of %s may help too.\n", mdCell(low.Class), mdCell(low.Class), mdCell(low.Class))
	case low.Recall() < 0.5 && r.balanced():
		fmt.Fprintf(b, "**It answers fewer than half of the test images of %s right**, though balanced accuracy ranked the models and every class was drawn as often in training: "+
			"more images of %s, longer trainings (--epochs) or larger networks may help.\n", mdCell(low.Class), mdCell(low.Class))
	case low.Recall() < 0.5:
		fmt.Fprintf(b, "**It answers fewer than half of the test images of %s right.** Accuracy, by which the search and this pick rank the models, "+
			"can stay high on imbalanced classes while one is missed: another final of higher recall there (the table's last column) may serve better, "+
			"a search with --metric balanced_accuracy --sampling balanced, or more images of %s.\n", mdCell(low.Class), mdCell(low.Class))
	}
	right, n := 0, 0
	for _, c := range byClass {
		right, n = right+c.Right, n+c.Images
	}
	lo, hi := wilson(right, n)
	fmt.Fprintf(b, "On %s test images its accuracy has a 95%% interval of %.2f%% to %.2f%% (Wilson score).\n",
		humanize.Comma(int64(n)), 100*lo, 100*hi)
}

// wilson is the 95% Wilson score interval of a proportion: k of n.
func wilson(k, n int) (lo, hi float64) {
	const z = 1.959963984540054 // the normal distribution's 97.5th percentile
	p, nf := float64(k)/float64(n), float64(n)
	centre := (p + z*z/(2*nf)) / (1 + z*z/nf)
	half := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / (1 + z*z/nf)
	return centre - half, centre + half
}

// latencyNotes says where the final table's latencies come from (latency:
// the search's figures; timed: the finals timed after the final phase) and
// which finals the timings put over the run's latency limit.
func (r Report) latencyNotes(b *strings.Builder, latency, timed bool) {
	if latency && r.LatencySource != "" {
		fmt.Fprintf(b, "\nLatency: the search's batch-1 figure, %s; it can be off by a quarter or more on a network",
			map[string]string{LatencyPredicted: "predicted by the latency model calibrated at the start",
				"table":         "predicted by the run's latency table for the machine it was measured on (bench the winners there)",
				LatencyMeasured: "timed during the search"}[r.LatencySource])
		if timed {
			b.WriteString(". Timed: the median of the final models' batch-1 runs on this machine, timed together after the final phase, by which the best is picked.\n")
		} else {
			b.WriteString(": nasctl bench RUN measures the winners.\n")
		}
	}
	if len(r.OverLimit) > 0 {
		ranks := make([]string, len(r.OverLimit))
		for i, rank := range r.OverLimit {
			ranks[i] = strconv.Itoa(rank)
		}
		advice := "give the limit a margin, or search with --latency measured --workers 1"
		if r.LatencySource == LatencyMeasured {
			advice = "give the limit a margin (with --workers 1 if the run had more: trainings beside a timing slow it)"
		}
		fmt.Fprintf(b, "\n%s %s over the latency limit of %g ms as timed, and not picked: the search refused architectures by its own figures. "+
			"For winners within the limit, %s.\n",
			english.PluralWord(len(ranks), "Rank", "Ranks"), english.WordSeries(ranks, "and")+" "+english.PluralWord(len(ranks), "is", "are"), r.LatencyLimitMs, advice)
		if r.Best == nil && !r.FinalIncomplete() {
			fmt.Fprintf(b, "No final model is within the limit: no best is picked, and %s is not written.\n", rundir.BestName)
		}
	}
}

// unfinishedNote says why no best is picked yet: finals not yet timed, or
// not all retrained.
func (r Report) unfinishedNote(b *strings.Builder) {
	switch {
	case r.TimingsPending && r.Running:
		b.WriteString("\nThe final models are all retrained, and are being timed: the best is picked by their timings.\n")
	case r.TimingsPending:
		fmt.Fprintf(b, "\nThe final models are all retrained but not yet timed (the timing was stopped or failed, or its file is missing or damaged): no best is picked and %s is not written until they are; resume the run (nasctl search %s --resume RUN) to time them, which takes seconds.\n",
			rundir.BestName, r.Kind)
	case r.FinalIncomplete() && r.Running:
		fmt.Fprintf(b, "\nThe final phase is under way: %d of %d models retrained. The best is picked and %s written when the rest are.\n",
			len(r.Finals), r.FinalsPlanned, rundir.BestName)
	case r.FinalIncomplete():
		fmt.Fprintf(b, "\nThe final phase is incomplete: %d of %d models retrained. No best is picked and %s is not written until the rest are; resume the run (nasctl search %s --resume RUN) to finish it.\n",
			len(r.Finals), r.FinalsPlanned, rundir.BestName, r.Kind)
	}
}

// shortTrialsGap is how far, on average, the retrained models' validation
// accuracy may exceed the search's before the report says that the trials
// train too briefly: a user's own images once gave 62% in the search and
// 99% retrained.
const shortTrialsGap = 0.15

// shortTrials returns the mean validation accuracy of the final models in
// the search and retrained (those that trained), and whether the retrained
// one exceeds the search's by more than shortTrialsGap.
func (r Report) shortTrials() (search, final float64, short bool) {
	n := 0
	for _, f := range r.Finals {
		if f.Status == rundir.StatusOK && f.SearchValAccuracy > 0 {
			search += f.SearchValAccuracy
			final += f.ValAccuracy
			n++
		}
	}
	if n == 0 {
		return 0, 0, false
	}
	search, final = search/float64(n), final/float64(n)
	return search, final, final-search > shortTrialsGap
}

func (r Report) epsilonSection(b *strings.Builder) {
	if len(r.Phases) == 0 {
		return
	}
	b.WriteString("## Validation accuracy per epsilon\n\n")
	fmt.Fprintf(b, "Constant predictors: validation accuracy no better than chance, at most one point over %s (%.2f%%).", r.chanceWords(), 100*r.Majority)
	q := r.Agent == "" || r.Agent == AgentQLearning // runs recorded before other agents name none
	if q {
		b.WriteString(" Greedy trials: none of their layers was drawn at random; the others explore.")
	} else {
		fmt.Fprintf(b, " The %s agent does not use epsilon: its rows are the schedule's trial ranges, to compare with Q-learning's.", r.Agent)
	}
	b.WriteString(" Trained and reused trials count; refused and failed ones do not.")
	head, rule := "| trials | epsilon | n | mean | sd | best | constant predictors |", "|---|---|---|---|---|---|---|"
	if q {
		head, rule = head+" greedy | greedy mean |", rule+"---|---|"
	}
	b.WriteString("\n\n" + head + "\n" + rule + "\n")
	for _, p := range r.Phases {
		fmt.Fprintf(b, "| %d-%d | %s | %d | %.4f | %.4f | %.4f | %d (%.0f%%) |", p.From, p.To, controller.EpsilonText(p.Epsilon), p.Trials, p.Mean, p.SD, p.Best, p.Constant, 100*float64(p.Constant)/float64(p.Trials))
		if q {
			mean := "-"
			if p.Greedy > 0 {
				mean = fmt.Sprintf("%.4f", p.GreedyMean)
			}
			fmt.Fprintf(b, " %d | %s |", p.Greedy, mean)
		}
		b.WriteString("\n")
	}
	if len(r.Phases) >= 3 {
		first, l := r.Phases[0].Mean, lastTwo(r.Phases)
		fmt.Fprintf(b, "\nThe last two phases average %.4f, %+.4f against the first phase's %.4f", l.mean, l.mean-first, first)
		if q && l.greedy > 0 && l.greedy < l.n {
			fmt.Fprintf(b, "; their %d greedy trials %.4f (%+.4f), the %d that explore %.4f (%+.4f)",
				l.greedy, l.greedyMean, l.greedyMean-first, l.n-l.greedy, l.exploreMean, l.exploreMean-first)
		}
		b.WriteString(".\n")
	}
	b.WriteString("\n")
}

// lastTwoStats are the trials of a run's last two phases, to set against
// its first phase: all of them, and the greedy ones apart from those that
// explore.
type lastTwoStats struct {
	n, greedy                     int
	mean, greedyMean, exploreMean float64
}

// lastTwo pools the last two of phases (at least two).
func lastTwo(phases []PhaseStats) lastTwoStats {
	var l lastTwoStats
	var sum, greedySum float64
	for _, p := range phases[len(phases)-2:] {
		l.n, l.greedy = l.n+p.Trials, l.greedy+p.Greedy
		sum, greedySum = sum+p.Mean*float64(p.Trials), greedySum+p.GreedyMean*float64(p.Greedy)
	}
	l.mean = sum / float64(l.n)
	if l.greedy > 0 {
		l.greedyMean = greedySum / float64(l.greedy)
	}
	if l.greedy < l.n {
		l.exploreMean = (sum - greedySum) / float64(l.n-l.greedy)
	}
	return l
}

// controlled reports whether the agent is the REINFORCE controller, which
// has a baseline, updates and a temperature to show (runs recorded before
// NASNet searches had other agents name none).
func (r Report) controlled() bool { return r.Agent == "" || r.Agent == AgentReinforce }

func (r Report) windowSection(b *strings.Builder) {
	if len(r.Windows) == 0 {
		return
	}
	if r.AtChance > 0 {
		fmt.Fprintf(b, "%d of the %d trained trials ended at chance (no better than a constant predictor, which scores %s, %.2f%%, or less on validation): their rewards say little about their cells. ",
			r.AtChance, r.Trained, r.chanceWords(), 100*r.Majority)
		if 2*r.AtChance > r.Trained {
			b.WriteString("With most trials at chance, train them longer (--epochs) or on more images (--data-fraction) before reading this search's ranking.")
		}
		b.WriteString("\n\n")
	}
	fmt.Fprintf(b, "Mean reward: first %d trials %.4f, last %d trials %.4f; best %.4f",
		r.First.Trials, r.First.Mean, r.Last.Trials, r.Last.Mean, r.All.Best)
	if !r.controlled() {
		fmt.Fprintf(b, ".\n\n## Reward per %d trials\n\n", windowSize(r.All.Trials))
		b.WriteString("| trials | mean reward | best |\n|---|---|---|\n")
		for _, w := range r.Windows {
			fmt.Fprintf(b, "| %d-%d | %.4f | %.4f |\n", w.From, w.To, w.Mean, w.Best)
		}
		b.WriteString("\n")
		return
	}
	fmt.Fprintf(b, "; %d updates (%d skipped)", r.All.Updates, r.All.Skipped)
	if r.All.LeftOut > 0 {
		fmt.Fprintf(b, "; the updates left out %d of their %d episodes, too close to the baseline (reinforce.skip_below)",
			r.All.LeftOut, r.All.Updates*r.ControllerBatch)
	}
	if waiting := r.All.Learned - r.All.Updates*r.ControllerBatch; waiting > 0 {
		last := "the last episode is"
		if waiting > 1 {
			last = fmt.Sprintf("the last %d episodes are", waiting)
		}
		fmt.Fprintf(b, "; %s in no update yet (the controller updates every %d)", last, r.ControllerBatch)
	}
	b.WriteString(".\n\n")
	fmt.Fprintf(b, "## Reward per %d trials\n\n", windowSize(r.All.Trials))
	b.WriteString("| trials | mean reward | best | mean baseline | temperature at end | updates | skipped |\n|---|---|---|---|---|---|---|\n")
	for _, w := range r.Windows {
		fmt.Fprintf(b, "| %d-%d | %.4f | %.4f | %.4f | %.3f | %d | %d |\n", w.From, w.To, w.Mean, w.Best, w.Baseline, w.Temperature, w.Updates, w.Skipped)
	}
	b.WriteString("\n")
}

func (r Report) topSection(b *strings.Builder) {
	if len(r.Top) == 0 {
		return
	}
	b.WriteString("## Best architectures of the search\n\n| rank | reward | samples | first trial | architecture |\n|---|---|---|---|---|\n")
	for _, t := range r.Top {
		// NATS-Bench cells are written with '|', which ends a table cell.
		fmt.Fprintf(b, "| %d | %.4f | %d | %d | %s |\n", t.Rank, t.Reward, t.Samples, t.First, mdCell(t.Arch))
	}
	b.WriteString("\n")
}

// CSV renders the final table.
func (r Report) CSV() ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"rank", "trial", "arch", "params", "macs", "search_val_accuracy", "val_accuracy", "test_accuracy", "status", "model", "latency_ms",
		"int8_test_accuracy", "int8_model", "at_chance", "timed_latency_ms"})
	for _, f := range r.Finals {
		latency, timed, int8 := "", "", "" // the search used no latency; not timed; no int8 model
		if f.LatencyMs > 0 {
			latency = fmtF(f.LatencyMs)
		}
		if f.MeasuredLatencyMs != nil {
			timed = fmtF(*f.MeasuredLatencyMs)
		}
		if f.Int8TestAccuracy != nil {
			int8 = fmtF(*f.Int8TestAccuracy)
		}
		w.Write([]string{strconv.Itoa(f.Rank), strconv.Itoa(f.Trial), f.Arch, strconv.FormatInt(f.Params, 10), strconv.FormatInt(f.MACs, 10),
			fmtF(f.SearchValAccuracy), fmtF(f.ValAccuracy), fmtF(f.TestAccuracy), string(f.Status), f.Model, latency, int8, f.Int8Model,
			strconv.FormatBool(f.AtChance), timed})
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

func fmtF(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// runFiles is what a report is made of, read from a run directory.
type runFiles struct {
	cfg     Config
	trials  []rundir.Trial // in trial order
	notes   map[int]rundir.Note
	finals  []rundir.FinalResult
	data    Data
	earlier []string // rundir.Earlier
}

// readRun reads a run directory without locking it (a search may be
// writing it; a line being written is left out). When a line of the trials
// log is damaged, it returns the run with the trials before that line, and
// the error (a *rundir.LineError): what a viewer can show.
func readRun(dir string) (*runFiles, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	r := &runFiles{cfg: cfg.WithDefaults(), notes: map[int]rundir.Note{}}
	r.trials, err = rundir.ReadTrials(dir)
	damaged := err
	if le := (*rundir.LineError)(nil); err != nil && !errors.As(err, &le) {
		return nil, err
	}
	notes, err := rundir.ReadNotes(dir)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		r.notes[n.Trial] = n
	}
	if r.finals, err = rundir.ReadFinals(dir); damagedTimings(err) {
		damaged = cmp.Or(damaged, err) // the finals untimed, as a resume finds them
	} else if err != nil {
		return nil, err
	}
	if r.data, err = readData(dir); err != nil {
		return nil, err
	}
	if r.earlier, err = rundir.Earlier(dir); err != nil {
		return nil, err
	}
	return r, damaged
}

// damagedTimings reports whether err is that of a run's final timings that
// cannot be read: its finals are then untimed, as a resume finds them
// (and times them again), and the rest of the run reads as it is.
func damagedTimings(err error) bool { return errors.As(err, new(*rundir.DamagedTimings)) }

// ReadFinals reads the final models of the run in dir (final.jsonl), those
// at chance marked so: in runs recorded before the mark, by their
// validation accuracy against the majority share of data.json.
func ReadFinals(dir string) ([]rundir.FinalResult, error) {
	finals, err := rundir.ReadFinals(dir)
	if err != nil && !damagedTimings(err) {
		return nil, err
	}
	data, err := readData(dir)
	if err != nil {
		return nil, err
	}
	markAtChance(finals, data.ValMajority)
	return finals, nil
}

// markAtChance marks the finals that are no better than chance, where the
// validation split's majority share is majority (0: unknown, nothing
// marked beyond what the records say): finals recorded before the mark
// get it by their validation accuracy. Report.finals and ReadFinals apply
// it, so the report, the run summaries and the dashboard agree.
func markAtChance(finals []rundir.FinalResult, majority float64) {
	for i, f := range finals {
		if f.Status == rundir.StatusOK && majority > 0 && constantPredictor(f.ValAccuracy, majority) {
			finals[i].AtChance = true
		}
	}
}

// report builds the run's report.
func (r *runFiles) report(name string) Report {
	cfg := r.cfg
	cfg.Name = name
	rep := BuildReport(cfg, describeConfig(cfg, r.data), r.trials, r.notes, r.finals, r.data.ValMajority)
	rep.Earlier = r.earlier
	return rep
}

// readData reads the data.json of the run in dir: what its trials trained
// on. A run without one (a search on a problem) gives the zero Data.
func readData(dir string) (Data, error) {
	var d Data
	b, err := os.ReadFile(filepath.Join(dir, rundir.FileData))
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("%s: %w: the record of the run's images is damaged; delete it and resume with the run's images (--data): "+
			"the resume writes it again from them, though without it the resume cannot check that they are the run's", filepath.Join(dir, rundir.FileData), err)
	}
	return d, nil
}

// describeConfig describes the agent and its reward of a run of cfg.
func describeConfig(cfg Config, data Data) string {
	var prob *problem.Problem
	if !cfg.Trains() {
		prob, _ = problem.New(cfg.Problem.Name, cfg.Problem.Blocks, cfg.Problem.Dataset)
	}
	m, err := newMethod(cfg, data, prob)
	if err != nil {
		return ""
	}
	return m.describe()
}

// ReadReport builds the report of a run directory from its files, without
// locking it.
func ReadReport(dir string) (Report, error) {
	r, err := readRun(dir)
	if err != nil && !damagedTimings(err) {
		return Report{}, err
	}
	rep := r.report(filepath.Base(dir))
	rep.Running = rundir.Running(dir)
	return rep, nil
}

// writeBest copies the best final (nil: none) to winners/best.onnx, and its
// int8 model, if final.int8 wrote one, to winners/int8/best.onnx. Without
// a best, neither file is left: not a best of part of the finals, nor one
// over the latency limit, not even one left from before.
func (s *Search) writeBest(best *rundir.FinalResult) error {
	for _, c := range []struct{ name, model string }{{rundir.BestName, ""}, {rundir.BestInt8Name, ""}} {
		if best != nil {
			c.model = map[string]string{rundir.BestName: best.Model, rundir.BestInt8Name: best.Int8Model}[c.name]
		}
		if c.model == "" {
			if err := os.Remove(filepath.Join(s.dir.Path, c.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir.Path, c.model))
		if err != nil {
			return err
		}
		if err := s.dir.WriteFile(c.name, b); err != nil {
			return err
		}
	}
	return nil
}

// writeReport writes what the run found: report.md, report.csv, top.json,
// trials.csv, the plots and winners/best.onnx. It returns the report, as
// Markdown and as built.
func (s *Search) writeReport() (string, Report, error) {
	r, err := readRun(s.dir.Path)
	if err != nil && !damagedTimings(err) {
		return "", Report{}, err
	}
	r.cfg = s.cfg
	// The trials first: what a failure below leaves is then up to date.
	if err := s.dir.WriteTrialsCSV(r.trials, r.notes, s.cfg.Trains()); err != nil {
		return "", Report{}, err
	}
	rep := r.report(s.cfg.Name)
	if err := s.writeBest(rep.Best); err != nil {
		return "", Report{}, err
	}
	if rep.Best != nil {
		if rep.finalAtChance(*rep.Best) {
			s.emit(Event{Kind: "info", Message: fmt.Sprintf("warning: the best model, %s (rank %d), is no better than chance: validation %.4f against %s, %.4f, as a network that answers one class whatever the image; do not deploy it. %s",
				rundir.BestName, rep.Best.Rank, rep.Best.ValAccuracy, rep.chanceWords(), rep.Majority, atChanceAdvice(s.cfg.Kind))})
		}
	}
	md := rep.Markdown()
	c, err := rep.CSV()
	if err != nil {
		return "", Report{}, err
	}
	for name, b := range map[string][]byte{rundir.FileReport: []byte(md), rundir.FileReportCSV: c} {
		if err := s.dir.WriteFile(name, b); err != nil {
			return "", Report{}, err
		}
	}
	if err := s.dir.WriteJSON(rundir.FileTop, rep.Top); err != nil {
		return "", Report{}, err
	}
	return md, rep, writePlots(filepath.Join(s.dir.Path, rundir.DirPlots), s.cfg, r.trials, r.notes, r.data.ValMajority)
}

// AgentEpsilonPlot is the epsilon figure of a MetaQNN run of cfg: per
// epsilon for Q-learning, per trial range of the schedule for random search
// and evolution, which do not draw at its epsilon.
func AgentEpsilonPlot(cfg Config, trials []rundir.Trial, majority float64) (*plot.Plot, error) {
	if cfg.Agent() == AgentQLearning {
		return EpsilonPlot(trials, cfg.ValidationOf(majority))
	}
	return PhasePlot(trials, cfg.ValidationOf(majority), cfg.MetaQNN.Schedule.EpsilonSchedule)
}

// writePlots draws the figures of a run of cfg into dir.
func writePlots(dir string, cfg Config, trials []rundir.Trial, notes map[int]rundir.Note, majority float64) error {
	type fig struct {
		name string
		make func() (*plot.Plot, error)
	}
	var figs []fig
	switch {
	case cfg.Kind == KindMetaQNN:
		figs = []fig{
			{"accuracy", func() (*plot.Plot, error) { return AccuracyPlot(trials, cfg.ValidationOf(majority).Name) }},
			{"epsilon", func() (*plot.Plot, error) { return AgentEpsilonPlot(cfg, trials, majority) }},
			{"params", func() (*plot.Plot, error) { return ParamsPlot(trials, cfg.ValidationOf(majority).Name) }},
		}
	case cfg.Controlled():
		figs = []fig{
			{"reward", func() (*plot.Plot, error) { return RewardPlot(trials, notes) }},
			{"temperature", func() (*plot.Plot, error) { return TemperaturePlot(trials) }},
		}
	case cfg.Kind == KindNASNet:
		figs = []fig{{"reward", func() (*plot.Plot, error) { return RewardPlot(trials, nil) }}}
	}
	for _, f := range figs {
		p, err := f.make()
		if err != nil {
			return fmt.Errorf("plot %s: %w", f.name, err)
		}
		if _, err := figure.Save(p, dir, f.name); err != nil {
			return fmt.Errorf("plot %s: %w", f.name, err)
		}
	}
	return nil
}

// mdCell escapes the pipes of a Markdown table cell (a cell pair's text has
// one between its cells).
func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// intList is "2, 6" for [2 6].
func intList(x []int) string {
	s := make([]string, len(x))
	for i, v := range x {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}
