package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
)

// The study and baker2017 presets keep their papers' training (Glorot
// weights, Baker et al.'s rule, no centring, no giving up); the cpu preset
// trains its trials with He weights, a centred first layer and gives up
// after 2 epochs at chance (docs/search-quality.md).
func TestPresetTrainingRecipes(t *testing.T) {
	for _, name := range []string{"study", "baker2017"} {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		c.Data = "data"
		tc := c.WithDefaults().TrainConfig()
		if tc.WeightInit != onnxgen.InitGlorot || tc.Centre || tc.Schedule != (runtime.LRSchedule{}) || tc.Optimizer != nil {
			t.Errorf("%s preset trains with %+v", name, tc)
		}
	}
	c, err := Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	c.Data = "data"
	c = c.WithDefaults()
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	tc := c.TrainConfig()
	if tc.WeightInit != onnxgen.InitHe || !tc.Centre || tc.Schedule != (runtime.LRSchedule{Constant: true, GiveUpAfter: 2}) {
		t.Errorf("cpu preset trains with %+v", tc)
	}
	// Restarts with a constant rate: Baker et al.'s rule without its decay;
	// with the rule on, they only bound its restarts.
	for _, tc := range []struct {
		constant bool
		restarts int
		want     runtime.LRSchedule
	}{
		{true, 2, runtime.LRSchedule{MaxRestarts: 2, DecayFactor: 1, GiveUpAfter: 2}},
		{false, 3, runtime.LRSchedule{MaxRestarts: 3, GiveUpAfter: 2}},
		{false, 0, runtime.LRSchedule{GiveUpAfter: 2}},
	} {
		r := c
		r.Train.ConstantLR, r.Train.Restarts = tc.constant, tc.restarts
		if got := r.TrainConfig().Schedule; got != tc.want {
			t.Errorf("constant_lr %v, restarts %d: schedule %+v, want %+v", tc.constant, tc.restarts, got, tc.want)
		}
	}
	c.Train.Init, c.Train.GiveUpAfter, c.Train.Restarts, c.MetaQNN.Agent = "kaiming", -1, -1, "greedy"
	c.MetaQNN.QLearning.Redraw = -1
	c.MetaQNN.Evolution.Population = 5
	c.Train.MedianStop = MedianStop{After: c.Train.Epochs, MinTrials: -1}
	c.Train.Halving = Halving{First: c.Train.Epochs, Eta: 1, MinTrials: -2}
	err = c.Check()
	for _, want := range []string{"train.halving.first (--halving): 10, want 0 (off) or an epoch from 1 to train.epochs - 1 (9)",
		"train.halving: eta 1 and min_trials -2", "train.init", "train.give_up_after", "train.restarts: -1", "metaqnn.agent", "metaqnn.q_learning: redraw -1",
		"train.median_stop.after (--median-stop): 10, want 0 (never) or an epoch from 1 to train.epochs - 1 (9)", "train.median_stop.min_trials: -1",
		"metaqnn.evolution: applies to metaqnn.agent evolution, not greedy"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check() = %v, want a problem with %s", err, want)
		}
	}
	// Epochs that are not positive are their own problem, not the median
	// stop's (the default, 0, is valid whatever the epochs).
	neg := c
	neg.Train.Epochs, neg.Train.MedianStop, neg.Train.Halving = -4, MedianStop{}, Halving{}
	if err = neg.Check(); err == nil || strings.Contains(err.Error(), "median_stop") || strings.Contains(err.Error(), "halving") {
		t.Errorf("epochs -4: Check() = %v, want a problem without median_stop", err)
	}
	c.MetaQNN.QLearning.Redraw, c.MetaQNN.QLearning.NextBest, c.MetaQNN.Agent = 20, 50, AgentRandom
	want := "metaqnn.q_learning.next_best: follows the Q-table's values; agent random has none (set it to 0, as --agent random on the command line does)"
	if err = c.Check(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Check() = %v, want a problem with %s", err, want)
	}
}

// A NASNet search's agent settings are checked: an unknown agent,
// tournaments that cannot select, a population as long as the run,
// evolution settings for another agent; and an agent without a controller
// keeps no controller settings.
func TestNASNetAgentSettings(t *testing.T) {
	for _, tc := range []struct {
		agent string
		evo   controller.EvolutionConfig
		want  string
	}{
		{"greedy", controller.EvolutionConfig{}, `nasnet.agent: "greedy" (valid: reinforce, random, evolution)`},
		{AgentEvolution, controller.EvolutionConfig{Population: 4, Sample: 5}, "nasnet.evolution: sample 5 is larger than the population 4; set a sample of at most 4"},
		{AgentEvolution, controller.EvolutionConfig{Population: 1}, "nasnet.evolution: population 1: a tournament needs at least 2 members"},
		{AgentEvolution, controller.EvolutionConfig{Population: 30, Sample: 1}, "nasnet.evolution: sample 1: a tournament of fewer than 2 picks its parent at random"},
		{AgentEvolution, controller.EvolutionConfig{Population: 800}, "nasnet.evolution: population 800 leaves none of the run's 800 trials to evolution (the first population trials are drawn at random); set a population below 800 (in a --config file: \"nasnet: {evolution: {population: P, sample: S}}\")"},
		{AgentRandom, controller.EvolutionConfig{Population: 4}, "nasnet.evolution: applies to nasnet.agent evolution, not random (drop it)"},
	} {
		c, err := NASNetPreset("mock", "")
		if err != nil {
			t.Fatal(err)
		}
		c.NASNet = NASNetSettings{Agent: tc.agent, Evolution: tc.evo}
		if err := c.WithDefaults().Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s, %+v: Check() = %v, want %q", tc.agent, tc.evo, err, tc.want)
		}
	}
	c, err := NASNetPreset("mock", "")
	if err != nil {
		t.Fatal(err)
	}
	c.NASNet.Agent = AgentEvolution
	c = c.WithDefaults()
	if err := c.Check(); err != nil || c.Reinforce != (ReinforceSettings{}) || c.NASNet.Evolution != (controller.EvolutionConfig{Population: 20, Sample: 3}) || c.Controlled() {
		t.Errorf("evolution defaults: %+v, %+v (%v)", c.Reinforce, c.NASNet, err)
	}
}

// The random agent is a baseline of the same run: every trial at epsilon 1,
// a table left empty, and the report says what searched. With the same
// seed, its first trials are those of the Q-learning agent's epsilon-1 phase
// (both draw every layer uniformly from the trial's own stream).
func TestRandomAgentRun(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	qrun := newSearch(t, cfg, &fakeExecutor{})
	if err := qrun.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	cfg.Name, cfg.MetaQNN.Agent = "random", AgentRandom
	rrun := newSearch(t, cfg, &fakeExecutor{})
	if err := rrun.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	qt, rt := qrun.Trials(), rrun.Trials()
	if len(rt) != len(qt) {
		t.Fatalf("random: %d trials, q-learning %d", len(rt), len(qt))
	}
	differ := 0
	for i, tr := range rt {
		if tr.Epsilon != 1 {
			t.Errorf("random trial %d at epsilon %v", tr.ID, tr.Epsilon)
		}
		if i < 12 && tr.Arch != qt[i].Arch { // the schedule's epsilon-1 phase
			t.Errorf("trial %d: random %s, q-learning at epsilon 1 %s", tr.ID, tr.Arch, qt[i].Arch)
		}
		if i >= 12 && tr.Arch != qt[i].Arch {
			differ++
		}
	}
	if differ == 0 {
		t.Error("the random agent proposed the Q-learning agent's greedy trials")
	}
	// Nothing learnt: an empty table; the memory of every trial is there
	// for the redraws.
	state, err := os.ReadFile(filepath.Join(cfg.Dir, cfg.Name, rundir.FileAgent))
	if err != nil || !strings.Contains(string(state), `{"q":{},"memory":[`) || strings.Count(string(state), `"reward"`) != len(rt) {
		t.Errorf("random agent state %.60s (%v), want an empty table and a memory of %d trials", state, err, len(rt))
	}
	report, err := os.ReadFile(filepath.Join(cfg.Dir, cfg.Name, "report.md"))
	if err != nil || !strings.Contains(string(report), "random search") {
		t.Errorf("report does not name the random agent (%v)", err)
	}
}

// train.augment reaches every trial's training and, unless final.augment
// says otherwise, the final phase's.
func TestAugmentSettings(t *testing.T) {
	for _, tc := range []struct {
		train, final          string
		wantTrial, wantFinals runtime.Augment
	}{
		{"", "", runtime.AugmentNone, runtime.AugmentNone},
		{"mirror", "", runtime.AugmentMirror, runtime.AugmentMirror},
		{"none", "flips", runtime.AugmentNone, runtime.AugmentFlips},
	} {
		cfg := testConfig(t, t.TempDir())
		cfg.Train.Augment, cfg.Final.Augment = tc.train, tc.final
		exec := &fakeExecutor{}
		s := newSearch(t, cfg, exec)
		if err := s.Run(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		// The winners' metadata records the final phase's training.
		rec := winnerRecord(t, s.Dir())
		if rec.Augment != tc.wantFinals.String() || rec.Epochs != cfg.finalEpochs() || rec.Weights != "given" {
			t.Errorf("train %q, final %q: the winner's training record %+v; want augment %s, %d epochs, given weights",
				tc.train, tc.final, rec, tc.wantFinals, cfg.finalEpochs())
		}
		var finals int
		for _, j := range exec.jobs {
			want := tc.wantTrial
			if j.Full {
				want = tc.wantFinals
				finals++
			}
			if j.Config.Augment != want {
				t.Errorf("train %q, final %q: job %d (full %v) augments %s, want %s", tc.train, tc.final, j.Trial, j.Full, j.Config.Augment, want)
			}
		}
		if finals != cfg.Final.TopK {
			t.Errorf("%d final jobs, want %d", finals, cfg.Final.TopK)
		}
	}
}

// final.decay_every gives the final phase a decaying rate with no restarts;
// the trials keep theirs, and the winners' training record says so.
func TestFinalDecay(t *testing.T) {
	for _, tc := range []struct {
		every  int
		factor float64
		want   string // the winner's schedule
	}{
		{0, 0, "constant"},
		{10, 0, "x0.2 every 10 epochs; no restarts"},
		{4, 0.5, "x0.5 every 4 epochs; no restarts"},
	} {
		cfg := testConfig(t, t.TempDir())
		cfg.Final.DecayEvery, cfg.Final.DecayFactor = tc.every, tc.factor
		s, exec := checkedRun(t, cfg)
		trials := cfg.TrainConfig().Schedule
		for _, j := range exec.jobs {
			got := j.Config.Schedule
			if !j.Full && got != trials {
				t.Errorf("decay_every %d: trial %d's schedule %+v, want the trials' %+v", tc.every, j.Trial, got, trials)
			}
			if j.Full && tc.every == 0 && got != trials {
				t.Errorf("no decay: final %d's schedule %+v, want the trials' %+v", j.Trial, got, trials)
			}
			if j.Full && tc.every > 0 && (got.Constant || got.DecayEvery != tc.every || got.DecayFactor != tc.factor || got.MaxRestarts >= 0 || got.GiveUpAfter != trials.GiveUpAfter) {
				t.Errorf("decay_every %d, factor %g: final %d's schedule %+v", tc.every, tc.factor, j.Trial, got)
			}
		}
		if rec := winnerRecord(t, s.Dir()); rec.Schedule != tc.want {
			t.Errorf("decay_every %d, factor %g: the winner's schedule %q, want %q", tc.every, tc.factor, rec.Schedule, tc.want)
		}
	}
}

// final.average reaches the final phase's jobs and not the trials', and
// the winners' training record says so.
func TestFinalAverage(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Average = 2
	s, exec := checkedRun(t, cfg)
	finals := 0
	for _, j := range exec.jobs {
		want := 0.0
		if j.Full {
			want = 2
			finals++
		}
		if j.Config.Average != want {
			t.Errorf("job %d (final %v): average %g, want %g", j.Trial, j.Full, j.Config.Average, want)
		}
	}
	if finals == 0 {
		t.Fatal("no final jobs")
	}
	if rec := winnerRecord(t, s.Dir()); rec.AverageEpochs != 2 {
		t.Errorf("the winner's record: average_epochs %g, want 2", rec.AverageEpochs)
	}
}

// winnerRecord reads the training record in the metadata of the run's
// first winner.
func winnerRecord(t *testing.T, run string) runtime.TrainRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(run, rundir.WinnerName(1)))
	if err != nil {
		t.Fatal(err)
	}
	info, err := onnxgen.ReadModelInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	var rec runtime.TrainRecord
	if err := json.Unmarshal([]byte(info.Meta[onnxgen.MetaTraining]), &rec); err != nil {
		t.Fatalf("%s: %v", onnxgen.MetaTraining, err)
	}
	return rec
}

// The study's reward reads the best validation accuracy of the last epochs,
// not the kept epoch's (chosen by validation loss): the accuracy it is
// computed from is that best, raised to the exponent.
func TestRewardAccuracy(t *testing.T) {
	res := &runtime.Result{Status: runtime.StatusOK, ValAccuracy: 0.4643, Epochs: []runtime.EpochRecord{
		{Epoch: 1, ValAccuracy: 0.9}, {Epoch: 2, ValAccuracy: 0.6429}, {Epoch: 3, ValAccuracy: 0.4643}}}
	study := RewardSettings{LastEpochs: 2, Exponent: 3}
	if got := study.rewardAccuracy(res); got != 0.6429 {
		t.Errorf("best of the last 2 epochs: %v, want 0.6429", got)
	}
	if got, want := study.accuracy(res), 0.6429*0.6429*0.6429; math.Abs(got-want) > 1e-12 {
		t.Errorf("reward accuracy %v, want %v", got, want)
	}
	plain := RewardSettings{Exponent: 1}
	if got := plain.rewardAccuracy(res); got != 0.4643 {
		t.Errorf("no last epochs: %v, want the kept epoch's 0.4643", got)
	}
}

// The final phase records, as the search's validation accuracy of what it
// retrains, the accuracy that ranked it: the reward's epochs' where they
// differ from the kept epoch's (a NASNet report showed rank 2 at 88.69%
// above rank 3 at 91.67%, ranked by 94.05% of another epoch).
func TestFinalSearchAccuracyIsTheRewarded(t *testing.T) {
	s := newSearch(t, testConfig(t, t.TempDir()), &fakeExecutor{})
	for _, tc := range []struct{ kept, rewarded, want float64 }{{0.8869, 0.9405, 0.9405}, {0.9167, 0, 0.9167}} {
		tr := rundir.Trial{Candidate: rundir.Candidate{ID: 7, Arch: "C(8,3,1) - SM()"}, Status: rundir.StatusOK, ValAccuracy: tc.kept, RewardAccuracy: tc.rewarded}
		f, err := s.retrain(context.Background(), 1, tr, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if f.SearchValAccuracy != tc.want {
			t.Errorf("kept %v, rewarded %v: search accuracy %v, want %v", tc.kept, tc.rewarded, f.SearchValAccuracy, tc.want)
		}
	}
}

// A trial whose kept epoch (by validation loss) is at chance but whose
// reward reads a later epoch that learnt is not marked at chance: its
// progress line would say "at chance" beside a reward of 77%. One whose
// epochs all stay at chance keeps the mark.
func TestAtChanceFollowsRewardEpochs(t *testing.T) {
	s := newSearch(t, testConfig(t, t.TempDir()), &fakeExecutor{})
	s.cfg.Reward = RewardSettings{LastEpochs: 2, Exponent: 1}
	s.data.ValMajority = 0.5238
	for _, tc := range []struct {
		last float64
		want bool
	}{{0.7738, false}, {0.5238, true}, {0.4762, true}} {
		res := &runtime.Result{Status: runtime.StatusOK, ValAccuracy: 0.5238, AtChance: true,
			Epochs: []runtime.EpochRecord{{Epoch: 1, ValAccuracy: 0.5238}, {Epoch: 2, ValAccuracy: tc.last}}}
		tr := s.finish(outcome{out: &Outcome{Training: res}})
		if tr.AtChance != tc.want {
			t.Errorf("last epoch at %v: at chance %v, want %v (reward accuracy %v)", tc.last, tr.AtChance, tc.want, tr.RewardAccuracy)
		}
	}
}

// A trial that failed on a remote worker is recorded with that worker's
// name, as a trained one is: where a worker's results stand out, its
// failures count too.
func TestFailedTrialNamesWorker(t *testing.T) {
	s := newSearch(t, testConfig(t, t.TempDir()), &fakeExecutor{})
	tr := s.finish(outcome{err: fmt.Errorf("trial 3: %w", workerFailure{"gpu-2"})})
	if tr.Status != rundir.StatusFailed || tr.Worker != "gpu-2" || tr.Reason != "trial 3: out of memory" {
		t.Errorf("recorded %+v; want failed on gpu-2", tr)
	}
	if tr := s.finish(outcome{err: errors.New("broke")}); tr.Worker != "" {
		t.Errorf("a local failure names worker %q", tr.Worker)
	}
}

// workerFailure is a failure as a remote executor reports it.
type workerFailure struct{ worker string }

func (w workerFailure) Error() string  { return "out of memory" }
func (w workerFailure) Worker() string { return w.worker }

// A retraining says how far it is, at most every finalEpochEvery (here
// every epoch), through events the search emits; the trials do not. The
// events of a retraining whose search is behind are dropped (the fake
// trains 30 epochs at once), never the first, to an empty queue.
func TestFinalEpochProgress(t *testing.T) {
	defer func(every time.Duration) { finalEpochEvery = every }(finalEpochEvery)
	finalEpochEvery = 0
	cfg := testConfig(t, t.TempDir())
	cfg.Workers = 1 // one retraining at a time: its events are not dropped
	s := newSearch(t, cfg, &fakeExecutor{curves: true})
	var lines []string
	progressFile := filepath.Join(s.Dir(), rundir.FileFinalProgress)
	os.WriteFile(progressFile, []byte("[]"), 0o644) // as a killed process leaves it
	s.Progress = func(e Event) {
		switch e.Kind {
		case "final_start":
			if _, err := os.Stat(progressFile); err == nil {
				t.Error("the final phase began with the progress a killed process left")
			}
		case "final_epoch":
			lines = append(lines, e.Message)
			// The file says the same as the event, for the dashboard.
			var ps []rundir.FinalProgress
			if b, err := os.ReadFile(progressFile); err != nil || json.Unmarshal(b, &ps) != nil || len(ps) != 1 || !ps[0].Time.Equal(e.Epoch.Time) || ps[0].Started.IsZero() || ps[0].Started.After(ps[0].Time) ||
				ps[0].Epoch != e.Epoch.Epoch || ps[0].ValAccuracy != e.Epoch.ValAccuracy || ps[0].Rank != e.Epoch.Rank || ps[0].Trial == 0 || ps[0].MaxEpochs != 30 {
				t.Errorf("%s: %s holds %s (%v)", e.Message, rundir.FileFinalProgress, b, err)
			}
		}
	}
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(progressFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after the final phase: %v", rundir.FileFinalProgress, err)
	}
	epochs := cfg.finalEpochs()
	if most := cfg.Final.TopK * epochs; len(lines) == 0 || len(lines) > most {
		t.Fatalf("%d final_epoch events, want 1 to %d (%d finals of %d epochs):\n%s", len(lines), most, cfg.Final.TopK, epochs, strings.Join(lines, "\n"))
	}
	if want := fmt.Sprintf("final #1: epoch 1 of at most %d, val ", epochs); !strings.HasPrefix(lines[0], want) {
		t.Errorf("first event %q, want it to begin %q", lines[0], want)
	}
	// Within finalEpochEvery, nothing; behind a full queue, no wait.
	finalEpochEvery = time.Hour
	quiet := make(chan Event, 1)
	s.finalProgress(2, 7, quiet)(runtime.EpochRecord{Epoch: 3})
	finalEpochEvery = 0
	full := make(chan Event)
	s.finalProgress(2, 7, full)(runtime.EpochRecord{Epoch: 3}) // would block forever if it waited
	if len(quiet) != 0 {
		t.Errorf("an event within finalEpochEvery: %+v", <-quiet)
	}
}

// checkedRun checks cfg and runs its search to the end on a fake executor,
// whose jobs say how each trial and final was trained.
func checkedRun(t *testing.T, cfg Config) (*Search, *fakeExecutor) {
	t.Helper()
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	exec := &fakeExecutor{}
	s := newSearch(t, cfg, exec)
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return s, exec
}
