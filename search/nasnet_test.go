package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gonum.org/v1/plot"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/controller/problem"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/internal/plottest"
	"github.com/nasctl/nasctl/natsbench"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
)

// nasnetConfig is a small, fast search: a 1 x 12 LSTM over the mock
// problem's B = 2 cell pairs, from a controller preset.
func nasnetConfig(t *testing.T, dir, preset string, trials, batch int) Config {
	t.Helper()
	cfg, err := NASNetPreset("mock", preset)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir, cfg.Name, cfg.Trials, cfg.Seed = dir, "run", trials, 7
	r := &cfg.Reinforce.Controller
	r.Hidden, r.Layers, r.BatchSize = 12, 1, batch
	cfg = cfg.WithDefaults()
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runUntil runs s, closing its stop channel once trial stopAt is learned
// (never for 0), and closes s.
func runUntil(t *testing.T, s *Search, stopAt int) error {
	t.Helper()
	defer s.Close()
	stop := make(chan struct{})
	s.Progress = func(e Event) {
		if e.Kind == "trial" && e.Done == stopAt {
			close(stop)
		}
	}
	return s.Run(context.Background(), stop)
}

// A NASNet run stopped and resumed, again and again, with the damage a
// kill -9 can do in between (a torn last line, an agent state older than
// the log, or none at all), logs exactly the trials and notes of an
// uninterrupted run and ends with a byte-identical controller state. The
// batches (3) do not divide the stops, so resumes replay trials logged after
// the last saved update. Both baselines and the study's skip rule are
// covered, and so are the random and evolution agents (whose random start
// is 20 trials, so the stops fall before and after it).
func TestNASNetResumeEqualsUninterrupted(t *testing.T) {
	for _, c := range []struct{ preset, agent string }{
		{"paper", AgentReinforce}, {"study", AgentReinforce}, {"paper", AgentRandom}, {"paper", AgentEvolution},
	} {
		t.Run(c.preset+"/"+c.agent, func(t *testing.T) {
			nasnetConfig := func(t *testing.T, dir, preset string, trials, batch int) Config {
				cfg := nasnetConfig(t, dir, preset, trials, batch)
				cfg.NASNet.Agent = c.agent
				cfg = cfg.WithDefaults()
				if err := cfg.Check(); err != nil {
					t.Fatal(err)
				}
				return cfg
			}
			whole := nasnetConfig(t, t.TempDir(), c.preset, 60, 3)
			ws := newSearch(t, whole, nil)
			if err := runUntil(t, ws, 0); err != nil {
				t.Fatal(err)
			}
			want, wantNotes := read(t, rundir.ReadTrials, ws.Dir()), read(t, rundir.ReadNotes, ws.Dir())
			notes := 60 // the controller notes every trial's baseline; the others, nothing
			if c.agent != AgentReinforce {
				notes = 0
			}
			if n := len(want); n != 60 || len(wantNotes) != notes || notes > 0 && wantNotes[59].Update == nil {
				t.Fatalf("uninterrupted: %d trials, %d notes", n, len(wantNotes))
			}

			cfg := nasnetConfig(t, t.TempDir(), c.preset, 60, 3)
			dir := filepath.Join(cfg.Dir, cfg.Name)
			if err := runUntil(t, newSearch(t, cfg, nil), 13); !errors.Is(err, ErrStopped) {
				t.Fatalf("first part: %v", err)
			}
			// kill -9 during a write: a torn line after trial 13.
			f, err := os.OpenFile(filepath.Join(dir, rundir.FileTrials), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(f, `{"id":14,"actions":[0,1,`)
			f.Close()
			for _, part := range []struct {
				stopAt      int
				removeState bool
			}{{29, false}, {44, true}, {0, false}} {
				if part.removeState {
					if err := os.Remove(filepath.Join(dir, rundir.FileAgent)); err != nil {
						t.Fatal(err)
					}
				}
				err := runUntil(t, resume(t, cfg, nil), part.stopAt)
				if part.stopAt > 0 && !errors.Is(err, ErrStopped) || part.stopAt == 0 && err != nil {
					t.Fatalf("part to %d: %v", part.stopAt, err)
				}
			}
			sameTrials(t, read(t, rundir.ReadTrials, dir), want)
			if got := read(t, rundir.ReadNotes, dir); !reflect.DeepEqual(got, wantNotes) {
				t.Errorf("agent notes differ: %d against %d", len(got), len(wantNotes))
			}
			a, _ := os.ReadFile(filepath.Join(dir, rundir.FileAgent))
			b, _ := os.ReadFile(filepath.Join(ws.Dir(), rundir.FileAgent))
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Errorf("controller states differ (%d and %d bytes)", len(a), len(b))
			}
		})
	}
}

// gatedExecutor holds the evaluation of one trial until released or
// cancelled, as a long training would.
type gatedExecutor struct {
	ProblemExecutor
	at      int
	entered chan struct{}
	release chan struct{}
}

func (g gatedExecutor) Evaluate(ctx context.Context, job Job) (*Outcome, error) {
	if job.Trial == g.at {
		close(g.entered)
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.ProblemExecutor.Evaluate(ctx, job)
}

// gated returns a search of cfg whose trial at waits.
func gated(t *testing.T, cfg Config, at int) (*Search, gatedExecutor) {
	t.Helper()
	s := newSearch(t, cfg, nil)
	g := gatedExecutor{ProblemExecutor: s.exec.(ProblemExecutor), at: at, entered: make(chan struct{}), release: make(chan struct{})}
	s.exec = g
	return s, g
}

// A stop request during an evaluation is acknowledged at once, the trial in
// flight is finished and recorded, and the run stops; cancelling abandons
// the trial in flight: nothing of it is recorded, and the resumed run
// samples it again and ends as an uninterrupted one.
func TestNASNetStopAndCancelInFlight(t *testing.T) {
	cfg := nasnetConfig(t, t.TempDir(), "paper", 12, 2)
	s, g := gated(t, cfg, 5)
	stop := make(chan struct{})
	s.Progress = func(e Event) {
		if e.Kind == "stopping" {
			if !strings.Contains(e.Message, "finishing 1 trial(s) in flight") {
				t.Errorf("stopping message %q", e.Message)
			}
			close(g.release)
		}
	}
	go func() { <-g.entered; close(stop) }()
	if err := s.Run(context.Background(), stop); !errors.Is(err, ErrStopped) {
		t.Fatalf("Run: %v", err)
	}
	if n := len(s.Trials()); n != 5 {
		t.Errorf("%d trials learned, want 5 (the one in flight finished)", n)
	}
	s.Close()

	cfg2 := nasnetConfig(t, t.TempDir(), "paper", 12, 2)
	s2, g2 := gated(t, cfg2, 8)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-g2.entered; cancel() }()
	if err := s2.Run(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if n := len(read(t, rundir.ReadTrials, s2.Dir())); n != 7 {
		t.Errorf("%d trials on disk after cancelling trial 8, want 7", n)
	}
	s2.Close()
	if err := runUntil(t, resume(t, cfg2, nil), 0); err != nil {
		t.Fatal(err)
	}
	whole := nasnetConfig(t, t.TempDir(), "paper", 12, 2)
	ws := newSearch(t, whole, nil)
	if err := runUntil(t, ws, 0); err != nil {
		t.Fatal(err)
	}
	sameTrials(t, read(t, rundir.ReadTrials, s2.Dir()), read(t, rundir.ReadTrials, ws.Dir()))
}

// A NATS-Bench run: every trial's reward is the table's accuracy / 100, its
// architecture the benchmark's string; top.json and the report agree with
// the log.
func TestNASNetNATSBench(t *testing.T) {
	cfg, err := NASNetPreset("natsbench", "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir, cfg.Trials, cfg.Final.TopK = t.TempDir(), 30, 5
	cfg = cfg.WithDefaults()
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	if cfg.Reinforce.Preset != "natsbench" || cfg.Problem.Dataset != "cifar10" || cfg.Name != "nasnet-natsbench" {
		t.Errorf("defaults: preset %q, dataset %q, name %q", cfg.Reinforce.Preset, cfg.Problem.Dataset, cfg.Name)
	}
	s := newSearch(t, cfg, nil)
	dir := s.Dir()
	if err := runUntil(t, s, 0); err != nil {
		t.Fatal(err)
	}
	tab, err := natsbench.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	trials := read(t, rundir.ReadTrials, dir)
	for _, tr := range trials {
		c, err := natsbench.ParseCell(tr.Arch)
		if err != nil || !reflect.DeepEqual(c.Actions(), tr.Actions) {
			t.Fatalf("trial %d: cell %q for %v: %v", tr.ID, tr.Arch, tr.Actions, err)
		}
		if acc := tab.Accuracy(c, natsbench.CIFAR10); tr.Score != acc || tr.Reward != acc/100 {
			t.Errorf("trial %d: score %v reward %v, table %v", tr.ID, tr.Score, tr.Reward, acc)
		}
	}
	var top []TopCandidate
	if err := readJSONFile(filepath.Join(dir, rundir.FileTop), &top); err != nil {
		t.Fatal(err)
	}
	checkTop(t, top, trials, 5)
	rep, err := ReadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	md := rep.Markdown()
	for _, want := range []string{"NATS-Bench cifar10", "(optimum 94.37)", "30 of 30 trials", "## Reward per 10 trials", "| 1-10 |", "| 21-30 |", strings.ReplaceAll(top[0].Arch, "|", `\|`)} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, f := range []string{rundir.FileTrialsCSV, rundir.FileReport, "plots/reward.png", "plots/reward.svg", "plots/temperature.png", "plots/temperature.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	csv, _ := os.ReadFile(filepath.Join(dir, rundir.FileTrialsCSV))
	if n := strings.Count(string(csv), "\n"); n != 31 {
		t.Errorf("trials.csv has %d lines, want a header and 30", n)
	}
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Top candidates: distinct by text form, ranked by mean reward, ties to the
// one proposed first, counted and averaged over their trials; trials without
// an evaluation of their own are left out.
func TestTopCandidates(t *testing.T) {
	ok, reused := rundir.StatusOK, rundir.StatusReused
	trial := func(id int, arch string, r float64, st rundir.Status) rundir.Trial {
		return rundir.Trial{Candidate: rundir.Candidate{ID: id, Arch: arch}, Reward: r, Status: st}
	}
	trials := []rundir.Trial{trial(1, "a", 0.5, ok), trial(2, "b", 0.9, ok), trial(3, "a", 0.7, ok),
		trial(4, "c", 0.9, ok), trial(5, "d", 0.1, ok), trial(6, "e", 0.95, rundir.StatusFailed), trial(7, "b", 0.9, reused)}
	got := TopCandidates(trials, 3)
	want := []TopCandidate{{Rank: 1, Arch: "b", Reward: 0.9, Samples: 2, First: 2}, {Rank: 2, Arch: "c", Reward: 0.9, Samples: 1, First: 4},
		{Rank: 3, Arch: "a", Reward: 0.6, Samples: 2, First: 1}}
	if len(got) != 3 {
		t.Fatalf("%d candidates, want 3", len(got))
	}
	for i := range want {
		if got[i].Rank != want[i].Rank || got[i].Arch != want[i].Arch || math.Abs(got[i].Reward-want[i].Reward) > 1e-12 ||
			got[i].Samples != want[i].Samples || got[i].First != want[i].First {
			t.Errorf("rank %d: %+v, want %+v", i+1, got[i], want[i])
		}
	}
}

// config.yaml round-trips (the baseline by name), keys of a file replace
// the base's, unknown keys are errors even inside the controller section,
// and Check names every problem with its field.
func TestNASNetConfigYAML(t *testing.T) {
	cfg := nasnetConfig(t, "runs", "study", 100, 4)
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: nasnet", "name: mock", "baseline: study", "skip_below: 0.05", "batch_size: 4", "preset: study"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("config.yaml lacks %q:\n%s", want, b)
		}
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, b, 0o644)
	got, err := LoadConfig(path, Config{})
	if err != nil || !reflect.DeepEqual(got, cfg) {
		t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, got, cfg)
	}
	os.WriteFile(path, []byte("trials: 50\nreinforce:\n  baseline: ema\n  learning_rate: 0.002\n"), 0o644)
	got, err = LoadConfig(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := cfg
	want.Trials, want.Reinforce.Controller.Baseline, want.Reinforce.Controller.LearningRate = 50, controller.BaselineEMA, 0.002
	if !reflect.DeepEqual(got, want) {
		t.Errorf("overlay:\n got %+v\nwant %+v", got, want)
	}
	// A merge key inside reinforce: loads, as in every other section.
	os.WriteFile(path, []byte("reinforce:\n  <<: {hidden: 7}\n  layers: 2\n"), 0o644)
	if got, err := LoadConfig(path, cfg); err != nil || got.Reinforce.Controller.Hidden != 7 || got.Reinforce.Controller.Layers != 2 {
		t.Errorf("a merge key: %v, hidden %d, layers %d", err, got.Reinforce.Controller.Hidden, got.Reinforce.Controller.Layers)
	}
	os.WriteFile(path, []byte("reinforce:\n  <<: [{hidden: 7}, {hiden: 3}]\n"), 0o644)
	if _, err := LoadConfig(path, cfg); err == nil || !strings.Contains(err.Error(), `line 2: unknown key "hiden"`) {
		t.Errorf("a merged key unknown: %v", err)
	}
	os.WriteFile(path, []byte("reinforce: &b\n  hidden: 7\nnasnet:\n  agent: reinforce\n"), 0o644)
	if got, err := LoadConfig(path, cfg); err != nil || got.Reinforce.Controller.Hidden != 7 {
		t.Errorf("an anchored reinforce: %v, hidden %d", err, got.Reinforce.Controller.Hidden)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"reinforce:\n  hiden: 3\n", `line 2: unknown key "hiden"`},
		{"reinforce:\n  preset: paper\n  hidden: abc\n  lyers: 2\n", "line 3: cannot unmarshal !!str `abc` into int\n  line 4: unknown key \"lyers\""},
		// Comments and a list value do not move the lines.
		{"reinforce:\n  # wider\n  preset: paper # c\n  # c\n  hidden: abc\n  layers:\n    - 1\n  lyers: 2\n",
			"line 5: cannot unmarshal !!str `abc` into int\n  line 7: cannot unmarshal !!seq into int\n  line 8: unknown key \"lyers\""},
		{"my key: 3\n", `line 1: unknown key "my key"`},
		{"reinforce:\n  baseline: mean\n", `unknown baseline "mean" (valid: ema, study)`},
		{"episode: 3\n", `line 1: unknown key "episode"`},
	} {
		os.WriteFile(path, []byte(tc.yaml), 0o644)
		if _, err := LoadConfig(path, cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	bad := cfg
	bad.Name, bad.Trials, bad.Problem.Dataset, bad.Reinforce.Controller.Temperature = ".x", -1, "cifar10", 0.5
	err = bad.Check()
	for _, want := range []string{"name:", "trials: -1", `problem.dataset: "cifar10" is a NATS-Bench column`, "reinforce: temperature 0.5 is below its floor"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check: %v; want %q", err, want)
		}
	}
	bad = cfg
	bad.Problem.Name = "train"
	if err := bad.Check(); err == nil || !strings.Contains(err.Error(), `unknown problem "train" (valid: mock, natsbench)`) {
		t.Errorf("Check of an unknown problem: %v", err)
	}
}

// A MetaQNN run and a NASNet run leave directories of the same layout, and
// runs lists both kinds with their reports.
func TestRunKindsSameLayout(t *testing.T) {
	dir := t.TempDir()
	mq := testConfig(t, dir)
	mq.Name = "mq"
	ms := newSearch(t, mq, &fakeExecutor{})
	if err := ms.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	nn := nasnetConfig(t, dir, "paper", 4, 1)
	nn.Name = "nn"
	if err := runUntil(t, newSearch(t, nn, nil), 0); err != nil {
		t.Fatal(err)
	}
	shared := []string{rundir.FileConfig, rundir.FileTrials, rundir.FileTrialsCSV, rundir.FileAgent, rundir.FileTop, rundir.FileReport,
		rundir.FileReportCSV, rundir.DirPlots, rundir.DirModels, rundir.DirWinners}
	for _, run := range []string{"mq", "nn"} {
		for _, f := range shared {
			if _, err := os.Stat(filepath.Join(dir, run, f)); err != nil {
				t.Errorf("%s: %v", run, err)
			}
		}
	}
	runs, err := ListRuns(dir)
	if err != nil || len(runs) != 2 {
		t.Fatalf("ListRuns: %v %d", err, len(runs))
	}
	kinds := map[Kind]*RunSummary{}
	for _, r := range runs {
		kinds[r.Kind] = r
	}
	// A scored run's best is a score, not a validation accuracy (a
	// NATS-Bench score is in percent): each has its own field.
	if r := kinds[KindNASNet]; r == nil || r.Name != "nn" || r.Trials != 4 || r.Planned != 4 || r.Best < 0.5 || r.BestArch == "" || r.Problem != "mock" ||
		r.BestScore <= 0 || r.BestVal != 0 {
		t.Errorf("NASNet summary %+v", r)
	}
	if r := kinds[KindMetaQNN]; r == nil || r.Name != "mq" || r.Trials != 30 || r.Finals != 3 || r.BestVal <= 0 || r.BestScore != 0 {
		t.Errorf("MetaQNN summary %+v", r)
	}
}

// syntheticRun is 300 trials and their notes from closed forms (a rising
// reward with a fixed wiggle, a lagging baseline, the study's temperature),
// so the figures never change.
func syntheticRun() ([]rundir.Trial, map[int]rundir.Note) {
	trials := make([]rundir.Trial, 300)
	notes := map[int]rundir.Note{}
	for i := range trials {
		x := float64(i)
		trials[i] = rundir.Trial{Candidate: rundir.Candidate{ID: i + 1, Temperature: max(1, 5*math.Pow(0.995, x))},
			Reward: 0.75 + 0.2*(1-math.Exp(-x/120)) + 0.04*math.Sin(x*1.7)}
		notes[i+1] = rundir.Note{Trial: i + 1, Learned: controller.Learned{Baseline: 0.7 + 0.2*(1-math.Exp(-x/150))}}
	}
	return trials, notes
}

// The reward and temperature figures match the golden images (see
// plottest.Golden; regenerate with go test -regen-golden).
func TestNASNetPlotsGolden(t *testing.T) {
	trials, notes := syntheticRun()
	for name, mk := range map[string]func() (*plot.Plot, error){
		"reward":      func() (*plot.Plot, error) { return RewardPlot(trials, notes) },
		"temperature": func() (*plot.Plot, error) { return TemperaturePlot(trials) },
	} {
		p, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		plottest.Golden(t, p, "nasnet_"+name)
	}
}

// The reward figure's vertical axis spans the points drawn, with a band
// above them for the legend: without a baseline (an agent that has none),
// the zeros of the missing baselines do not stretch it down to 0.
func TestRewardPlotRange(t *testing.T) {
	trials, notes := syntheticRun()
	lo, hi := 1.0, 0.0
	for _, e := range trials {
		lo, hi = min(lo, e.Reward), max(hi, e.Reward)
	}
	p, err := RewardPlot(trials, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Y.Min != lo || math.Abs(p.Y.Max-(hi+0.3*(hi-lo))) > 1e-12 {
		t.Errorf("without baselines: y from %v to %v, want %v to %v plus the band", p.Y.Min, p.Y.Max, lo, hi)
	}
	if p, err = RewardPlot(trials, notes); err != nil {
		t.Fatal(err)
	}
	base := math.Inf(1)
	for _, n := range notes {
		base = min(base, n.Baseline)
	}
	if p.Y.Min != min(lo, base) {
		t.Errorf("with baselines: y from %v, want %v", p.Y.Min, min(lo, base))
	}
}

// Settings edited in config.yaml after the start are refused on resuming:
// the controller's state was made with the saved ones.
func TestNASNetResumeRefusesChangedSettings(t *testing.T) {
	cfg := nasnetConfig(t, t.TempDir(), "paper", 4, 1)
	s := newSearch(t, cfg, nil)
	dir := s.Dir()
	if err := runUntil(t, s, 0); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, rundir.FileConfig)
	b, _ := os.ReadFile(path)
	edited := strings.Replace(string(b), "learning_rate: 0.0006", "learning_rate: 0.001", 1)
	if edited == string(b) {
		t.Fatalf("no learning rate in\n%s", b)
	}
	os.WriteFile(path, []byte(edited), 0o644)
	if _, err := Resume(dir, ResumeOptions{}, nil); err == nil || !strings.Contains(err.Error(), "config.yaml was edited since nasctl wrote it (reinforce.learning_rate: 0.0006 -> 0.001)") {
		t.Errorf("Resume after an edit: %v", err)
	}
	// Without nasctl's copy (a run of an older nasctl), the controller's
	// state still refuses it.
	os.Remove(filepath.Join(dir, rundir.FileConfigWritten))
	if _, err := Resume(dir, ResumeOptions{}, nil); err == nil || !strings.Contains(err.Error(), "a run's settings cannot change") {
		t.Errorf("Resume after an edit, without the copy: %v", err)
	}
}

// trainedNASNetConfig is the cpu preset of a NASNet search that trains,
// with tiny cell networks, 12 episodes and 3 finalists.
func trainedNASNetConfig(t *testing.T, dir string, workers int) Config {
	c, err := NASNetPreset("", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	c.Dir, c.Name, c.Data, c.Trials, c.Workers, c.Seed = dir, "cells", "unused", 12, workers, 7
	c.Cells.CellMacro = genotype.CellMacro{Stem: 2, Filters: 2, Normal: 1, Reductions: 1, Style: genotype.StyleNASNet}
	c.Final.TopK = 3
	c = c.WithDefaults()
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	return c
}

// A NASNet search that trains its cells goes through the one engine: cell
// networks of the configured macro are evaluated, the reward is the cubed
// accuracy, the final phase retrains the best, and a run stopped and
// resumed twice ends with the trials, controller state and final results
// of an uninterrupted one.
func TestNASNetTrainedResumeEqualsUninterrupted(t *testing.T) {
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			whole := trainedNASNetConfig(t, t.TempDir(), workers)
			exec := &fakeExecutor{jitter: true}
			s := newSearch(t, whole, exec)
			if err := s.Run(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			want := read(t, rundir.ReadTrials, s.Dir())
			wantFinals := read(t, rundir.ReadFinals, s.Dir())
			wantState, _ := os.ReadFile(filepath.Join(s.Dir(), rundir.FileAgent))
			for _, tr := range want {
				g, err := genotype.ParseGenotype(tr.Arch)
				if err != nil || !strings.HasPrefix(tr.Arch, "net(stem=2, filters=2, normal=1, reductions=1, style=nasnet) normal: ") {
					t.Fatalf("trial %d: %q %v", tr.ID, tr.Arch, err)
				}
				if tr.Status == rundir.StatusOK && math.Abs(tr.Reward-math.Pow(fakeReward(g), 3)) > 1e-12 {
					t.Errorf("trial %d: reward %v, want the accuracy %v cubed", tr.ID, tr.Reward, fakeReward(g))
				}
			}
			if len(wantFinals) != 3 {
				t.Fatalf("%d final results, want 3", len(wantFinals))
			}
			for _, f := range wantFinals {
				if _, err := os.Stat(filepath.Join(s.Dir(), f.Model)); err != nil || f.Status != rundir.StatusOK {
					t.Errorf("final %+v: %v", f, err)
				}
			}
			for _, j := range exec.jobs {
				opt, ok := j.Config.Optimizer.(onnxgen.SGD)
				if !ok || opt.Momentum != 0.9 || j.Config.Monitor != runtime.MonitorValLoss {
					t.Fatalf("trial %d trained with %+v", j.Trial, j.Config)
				}
			}

			cfg := trainedNASNetConfig(t, t.TempDir(), workers)
			dir := filepath.Join(cfg.Dir, cfg.Name)
			if err := runUntil(t, newSearch(t, cfg, &fakeExecutor{jitter: true}), 4); !errors.Is(err, ErrStopped) {
				t.Fatalf("first part: %v", err)
			}
			if err := runUntil(t, resume(t, cfg, &fakeExecutor{jitter: true}), 9); !errors.Is(err, ErrStopped) {
				t.Fatalf("second part: %v", err)
			}
			if err := runUntil(t, resume(t, cfg, &fakeExecutor{jitter: true}), 0); err != nil {
				t.Fatal(err)
			}
			sameTrials(t, read(t, rundir.ReadTrials, dir), want)
			if got, _ := os.ReadFile(filepath.Join(dir, rundir.FileAgent)); !bytes.Equal(got, wantState) {
				t.Errorf("controller states differ (%d and %d bytes)", len(got), len(wantState))
			}
			got := read(t, rundir.ReadFinals, dir)
			if len(got) != len(wantFinals) {
				t.Fatalf("%d final results, want %d", len(got), len(wantFinals))
			}
			byRank := map[int]rundir.FinalResult{} // recorded as they finish
			for _, f := range wantFinals {
				byRank[f.Rank] = f
			}
			for _, f := range got {
				if w := byRank[f.Rank]; f.Trial != w.Trial || f.TestAccuracy != w.TestAccuracy || f.Arch != w.Arch {
					t.Errorf("final rank %d: %+v, want %+v", f.Rank, f, w)
				}
			}
		})
	}
}

// A search on a problem evaluates nothing with ONNX Runtime.
func TestProblemExecutorTestsNothing(t *testing.T) {
	p, _ := problem.Mock(2)
	if _, err := (ProblemExecutor{p}).Test(context.Background(), nil); err == nil {
		t.Error("a problem executor tested a model")
	}
}

// The presets of a NASNet search that trains: study keeps the study's
// numbers (docs/study.md, section 4); every setting that cannot work is
// refused with its key.
func TestNASNetTrainedSettings(t *testing.T) {
	study, err := NASNetPreset("", "study")
	if err != nil {
		t.Fatal(err)
	}
	study.Data = "data"
	study = study.WithDefaults()
	if err := study.Check(); err != nil {
		t.Fatal(err)
	}
	wantTrain := TrainSettings{Epochs: 50, BatchSize: 32, LR: 0.1, Patience: 3, ConstantLR: true, Optimizer: OptimizerSGD, Momentum: 0.9, Monitor: "val_loss", Init: "glorot"}
	if study.Train != wantTrain || study.Split != "nasnet" || study.DataFraction != 0.2 || study.Trials != 800 || study.Input != "" ||
		study.Reward.LastEpochs != 5 || study.Reward.Exponent != 3 || study.Cells != (CellSettings{Blocks: 2, CellMacro: genotype.StudyMacro}) ||
		study.Reinforce.Controller.Config() != controller.ReinforceStudy || study.Name != "nasnet-study" {
		t.Errorf("study preset: %+v", study)
	}
	if _, err := NASNetPreset("", "paper"); err == nil || !strings.Contains(err.Error(), "valid: cpu, study") {
		t.Errorf("a controller preset for a trained search: %v", err)
	}
	base, err := NASNetPreset("", "")
	if err != nil || base.Name != "nasnet-cpu" {
		t.Fatalf("default preset: %v %+v", err, base)
	}
	if err := base.WithDefaults().Check(); err == nil || !strings.Contains(err.Error(), "data: an image folder is required") {
		t.Errorf("no data: %v", err)
	}
	base.Data = "data"
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"no cells":      {func(c *Config) { c.Cells.Normal, c.Cells.Reductions = 0, 0 }, "cells: normal 0 and reductions 0"},
		"blocks":        {func(c *Config) { c.Cells.Blocks = -1 }, "cells.blocks: -1"},
		"many blocks":   {func(c *Config) { c.Cells.Blocks = 11 }, "cells.blocks: 11, want 1 to 10 (Zoph et al. use 5"},
		"reductions":    {func(c *Config) { c.Cells.Reductions = 6 }, "cells.reductions: 6, but 32x32 images are 1x1 after 5: at most 5 make sense"},
		"mock blocks":   {func(c *Config) { c.Problem.Name, c.Cells, c.Problem.Blocks = "mock", CellSettings{}, 50 }, "problem.blocks: 50, want 1 to 10"},
		"optimizer":     {func(c *Config) { c.Train.Optimizer = "rmsprop" }, `train.optimizer: "rmsprop"`},
		"momentum":      {func(c *Config) { c.Train.Optimizer, c.Train.Momentum = OptimizerAdam, 0.9 }, "train.momentum: 0.9; it applies to optimizer sgd"},
		"monitor":       {func(c *Config) { c.Train.Monitor = "loss" }, `train.monitor: unknown monitor "loss"`},
		"augment":       {func(c *Config) { c.Train.Augment = "rotate" }, `train.augment: unknown augmentation "rotate" (valid: none, mirror, flips, shift:N`},
		"shift":         {func(c *Config) { c.Final.Augment = "shift:16" }, "final.augment: augmentation shift:16: a shift of 16 pixels would move images of 32x32 by half their size or more; give at most shift:15"},
		"final augment": {func(c *Config) { c.Final.Augment = "flip" }, `final.augment: unknown augmentation "flip" (valid: none, mirror, flips, shift:N`},
		"final decay":   {func(c *Config) { c.Final.DecayEvery, c.Final.DecayFactor = 10, 1.5 }, "final.decay_every 10, decay_factor 1.5: decay_every is 0"},
		"factor alone":  {func(c *Config) { c.Final.DecayFactor = 0.5 }, "final.decay_every 0, decay_factor 0.5: decay_every is 0"},
		"average":       {func(c *Config) { c.Final.Average = -1 }, "final.average -1: a time constant in epochs"},
		"exponent":      {func(c *Config) { c.Reward.Exponent = -1 }, "exponent -1 must be positive"},
		"problem keys":  {func(c *Config) { c.Problem.Blocks = 3 }, "problem: blocks and dataset apply to problems"},
		"cells on mock": {func(c *Config) { c.Problem.Name = "mock" }, "cells: the mock problem scores cells"},
	} {
		c := base
		tc.edit(&c)
		if err := c.WithDefaults().Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	// An unknown optimizer is the one problem: the preset's momentum is
	// not blamed as well.
	c := base
	c.Train.Optimizer = "rmsprop"
	if err := c.WithDefaults().Check(); err == nil || strings.Contains(err.Error(), "momentum") {
		t.Errorf("unknown optimizer: %v, want no word of the momentum", err)
	}
}

// A run that cannot be read (here, of an older format) is listed with its
// error instead of hiding the others.
func TestListRunsUnreadable(t *testing.T) {
	dir := t.TempDir()
	if err := runUntil(t, newSearch(t, nasnetConfig(t, dir, "paper", 3, 1), nil), 0); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "old"), 0o755)
	os.WriteFile(filepath.Join(dir, "old", rundir.FileConfig), []byte("kind: nasnet\nepisodes: 800\n"), 0o644)
	// A run linked in from elsewhere is listed; a link to a file is not.
	elsewhere := t.TempDir()
	if err := runUntil(t, newSearch(t, nasnetConfig(t, elsewhere, "paper", 3, 1), nil), 0); err != nil {
		t.Fatal(err)
	}
	linked, _ := os.ReadDir(elsewhere)
	os.Symlink(filepath.Join(elsewhere, linked[0].Name()), filepath.Join(dir, "linked"))
	os.Symlink(filepath.Join(elsewhere, linked[0].Name(), rundir.FileConfig), filepath.Join(dir, "file-link"))
	runs, err := ListRuns(dir)
	if err != nil || len(runs) != 3 {
		t.Fatalf("ListRuns: %v, %d runs", err, len(runs))
	}
	for _, r := range runs {
		if r.Name == "linked" && (r.Error != "" || r.Trials != 3) {
			t.Errorf("linked run: %+v", r)
		}
		if (r.Name == "old") != (r.Error != "") {
			t.Errorf("%s: error %q", r.Name, r.Error)
		}
		if r.Name == "old" && !strings.Contains(r.Error, "older than its run-directory format") {
			t.Errorf("old run: %q", r.Error)
		}
	}
	// A damaged file reads as YAML with an odd key: the message names
	// that cause too, not only an older nasctl.
	os.WriteFile(filepath.Join(dir, "old", rundir.FileConfig), []byte("::: not yaml [\n"), 0o644)
	if _, err := ReadConfig(filepath.Join(dir, "old")); err == nil || !strings.Contains(err.Error(), `unknown key "::"`) ||
		!strings.Contains(err.Error(), "edited or damaged") {
		t.Errorf("damaged config: %v", err)
	}
	// A file given for the folder of runs is named as such.
	file := filepath.Join(dir, "old", rundir.FileConfig)
	if _, err := ListRuns(file); err == nil || err.Error() != file+" is a file, not a folder of runs: give the folder of the runs (searches write to runs/ by default)" {
		t.Errorf("ListRuns of a file: %v", err)
	}
}

// checkTop checks top against the log, counted here: k distinct
// architectures ranked 1..k, each with the mean reward, the number and the
// first of its trials, in non-increasing reward, and no architecture left
// out with a higher mean than the last one kept.
func checkTop(t *testing.T, top []TopCandidate, trials []rundir.Trial, k int) {
	t.Helper()
	type agg struct {
		sum      float64
		n, first int
	}
	byArch := map[string]*agg{}
	for _, tr := range trials {
		a := byArch[tr.Arch]
		if a == nil {
			a = &agg{first: tr.ID}
			byArch[tr.Arch] = a
		}
		a.sum += tr.Reward
		a.n++
	}
	if len(top) != k {
		t.Fatalf("top.json holds %d candidates, want %d", len(top), k)
	}
	kept := map[string]bool{}
	for i, c := range top {
		a := byArch[c.Arch]
		switch {
		case a == nil:
			t.Errorf("rank %d: %q is in no trial", c.Rank, c.Arch)
			continue
		case c.Rank != i+1 || kept[c.Arch]:
			t.Errorf("entry %d: rank %d, %q (repeated: %v)", i, c.Rank, c.Arch, kept[c.Arch])
		case math.Abs(c.Reward-a.sum/float64(a.n)) > 1e-12 || c.Samples != a.n || c.First != a.first:
			t.Errorf("rank %d: reward %v, %d samples, first %d; the log: mean %v of %d, first %d", c.Rank, c.Reward, c.Samples, c.First, a.sum/float64(a.n), a.n, a.first)
		}
		if i > 0 && c.Reward > top[i-1].Reward {
			t.Errorf("rank %d: reward %v above rank %d's %v", c.Rank, c.Reward, i, top[i-1].Reward)
		}
		kept[c.Arch] = true
	}
	for arch, a := range byArch {
		if !kept[arch] && a.sum/float64(a.n) > top[k-1].Reward {
			t.Errorf("%q (mean %v) left out for rank %d's %v", arch, a.sum/float64(a.n), k, top[k-1].Reward)
		}
	}
}

// The random and evolution agents of a NASNet search, on NATS-Bench: the
// random agent's trials are controller.RandomAgent's draws, the reports and
// plots show no controller, and evolution's later trials score higher than
// random search's (seeds 1-3; the margin is in docs/search-quality.md,
// "NASNet searches: random search and evolution").
func TestNASNetAgents(t *testing.T) {
	prob, err := problem.NATSBench(natsbench.CIFAR10)
	if err != nil {
		t.Fatal(err)
	}
	late := map[string]float64{}
	for seed := uint64(1); seed <= 3; seed++ {
		for _, agent := range []string{AgentRandom, AgentEvolution} {
			cfg, err := NASNetPreset("natsbench", "")
			if err != nil {
				t.Fatal(err)
			}
			cfg.Dir, cfg.Name, cfg.Trials, cfg.Seed, cfg.NASNet.Agent = t.TempDir(), "run", 200, seed, agent
			cfg = cfg.WithDefaults()
			if err := cfg.Check(); err != nil {
				t.Fatal(err)
			}
			s := newSearch(t, cfg, nil)
			dir := s.Dir()
			if err := runUntil(t, s, 0); err != nil {
				t.Fatal(err)
			}
			trials := read(t, rundir.ReadTrials, dir)
			if agent == AgentRandom {
				sameAsRandomAgent(t, trials, prob.Space, seed)
			}
			for _, tr := range trials[100:] {
				late[agent] += tr.Reward / 300
			}
			md, err := os.ReadFile(filepath.Join(dir, rundir.FileReport))
			if err != nil || !strings.Contains(string(md), "| trials | mean reward | best |\n") || strings.Contains(string(md), "temperature") {
				t.Errorf("%s report: want the reward table without the controller's columns (%v):\n%s", agent, err, md)
			}
			if plots, _ := filepath.Glob(filepath.Join(dir, rundir.DirPlots, "*.png")); len(plots) != 1 || filepath.Base(plots[0]) != "reward.png" {
				t.Errorf("%s plots: %v, want reward.png alone", agent, plots)
			}
		}
	}
	t.Logf("mean reward of trials 101-200, seeds 1-3: random %.4f, evolution %.4f", late[AgentRandom], late[AgentEvolution])
	if late[AgentEvolution] < late[AgentRandom]+0.02 {
		t.Errorf("evolution %.4f against random search %.4f: want at least 0.02 more", late[AgentEvolution], late[AgentRandom])
	}
}

// sameAsRandomAgent checks that trials are the draws of a RandomAgent of
// space with seed.
func sameAsRandomAgent(t *testing.T, trials []rundir.Trial, space controller.Space, seed uint64) {
	t.Helper()
	a, err := controller.NewRandomAgent(space, seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trials {
		p, err := a.Propose(tr.ID)
		if err != nil || !reflect.DeepEqual(p.Actions, tr.Actions) || tr.Epsilon != 1 {
			t.Fatalf("trial %d: %v at epsilon %v, the random agent drew %v (%v)", tr.ID, tr.Actions, tr.Epsilon, p.Actions, err)
		}
	}
}

// A run's summary gives the test accuracy of the final the report picks by
// validation (winners/best.onnx), not the highest test accuracy among the
// finals, which would choose by the test images.
func TestSummarizeBestFinalByValidation(t *testing.T) {
	dir := t.TempDir()
	if err := runUntil(t, newSearch(t, nasnetConfig(t, dir, "paper", 3, 1), nil), 0); err != nil {
		t.Fatal(err)
	}
	runs, err := ListRuns(dir)
	if err != nil || len(runs) != 1 {
		t.Fatalf("ListRuns: %v, %d runs", err, len(runs))
	}
	var lines []byte
	for _, f := range []rundir.FinalResult{
		{Rank: 1, ValAccuracy: 0.90, TestAccuracy: 0.95, Status: rundir.StatusOK},
		{Rank: 2, ValAccuracy: 0.93, TestAccuracy: 0.91, Status: rundir.StatusOK},
		{Rank: 3, ValAccuracy: 0.99, TestAccuracy: 0.99, Status: rundir.StatusFailed},
	} {
		b, _ := json.Marshal(f)
		lines = append(append(lines, b...), '\n')
	}
	if err := os.WriteFile(filepath.Join(runs[0].Dir, rundir.FileFinal), lines, 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := Summarize(runs[0].Dir)
	if err != nil || sum.Finals != 3 || sum.BestTest != 0.91 {
		t.Errorf("Summarize: %v, %d finals, best test %v; want 3 and 0.91 (rank 2, the best by validation)", err, sum.Finals, sum.BestTest)
	}
}

// A run whose every trial was refused has no best in its summary: a
// refused architecture's reward of 0 ranks nothing; it has failed, not
// finished.
func TestSummarizeAllRefused(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Trials, cfg.Final.Skip = 12, true
	cfg.MetaQNN.QLearning.Redraw = 0 // so that draws repeat: their reuse of a refused trial ranks nothing either
	cfg.Reward = RewardSettings{Mode: RewardConstraint, MaxParams: 1}
	s := newSearch(t, cfg, &fakeExecutor{})
	// Finished, but not a success: reusing a refused trial evaluates nothing.
	if err := s.Run(context.Background(), nil); !errors.Is(err, ErrNothingEvaluated) || !strings.Contains(err.Error(), " reused, ") {
		t.Fatalf("Run: %v, want %v counting the refused and reused trials", err, ErrNothingEvaluated)
	}
	s.Close()
	reuses := 0
	for _, tr := range read(t, rundir.ReadTrials, s.Dir()) {
		if tr.Status != rundir.StatusRefused && tr.Status != rundir.StatusReused {
			t.Fatalf("trial %d %s, want every trial refused", tr.ID, tr.Status)
		}
		reuses += map[bool]int{true: 1}[tr.Status == rundir.StatusReused]
	}
	if reuses == 0 {
		t.Error("no trial reuses a refused one: the test covers half its case")
	}
	sum, err := Summarize(s.Dir())
	if err != nil || sum.Trials != 12 || sum.BestArch != "" || sum.Best != 0 || sum.StatusOf(false) != RunFailed {
		t.Errorf("Summarize: %v, %d trials, best %v %q, status %s; want 12 trials, no best, failed", err, sum.Trials, sum.Best, sum.BestArch, sum.StatusOf(false))
	}
	// Failed by its trials, not by an error a resume would get past: no
	// failure.json, whose advice is to resume.
	if sum.Failed != "" {
		t.Errorf("a run that evaluated nothing recorded the failure %q", sum.Failed)
	}
	if st := (&RunSummary{}).StatusOf(false); st != RunFinished {
		t.Errorf("a run planning no trial: %s, want finished", st)
	}
}

// Every event names the best trial learned so far: the highest reward of a
// trial that was evaluated (ok), the earliest among equals, as a plain scan of
// the trials in the events finds it.
func TestEventsNameTheBest(t *testing.T) {
	s := newSearch(t, nasnetConfig(t, t.TempDir(), "paper", 40, 3), nil)
	defer s.Close()
	var seen []rundir.Trial
	checked := 0
	s.Progress = func(e Event) {
		if e.Kind != "trial" {
			return
		}
		seen = append(seen, *e.Trial)
		var want *rundir.Trial
		for i, x := range seen {
			if x.Status == rundir.StatusOK && (want == nil || x.Reward > want.Reward) {
				want = &seen[i]
			}
		}
		if want == nil || e.Best != want.Reward || e.BestArch != want.Arch {
			t.Errorf("after trial %d: best %v %q, want %+v", e.Trial.ID, e.Best, e.BestArch, want)
		}
		checked++
	}
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if checked != 40 {
		t.Errorf("%d trial events, want 40", checked)
	}
}
