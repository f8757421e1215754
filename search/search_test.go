package search

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
)

// fakeExecutor "trains" by a deterministic formula of the architecture, so
// the search loop can be tested without ONNX Runtime: the reward grows with
// the number of convolutions and falls with depth.
type fakeExecutor struct {
	mu      sync.Mutex
	trained []string
	jobs    []Job
	fail    bool
	failOn  int           // when set, the search training of this trial fails...
	failed  chan struct{} // ...and closes this channel, when set
	slowOn  int           // when set, the training of this trial waits for failed to close
	block   chan struct{} // when set, Train waits on it (or on ctx)
	jitter  bool          // when set, Train takes a random 0-3 ms
	curves  bool          // when set, Train runs job.Config.Epochs epochs, honouring StopBelow
	// breakFinal, when set, fails the first final retraining; the others
	// wait for the cancel that follows: the second then finishes (it was
	// past its last check of ctx as the first failed), the rest return
	// ctx's error, as an abandoned training does.
	breakFinal bool
	finals     int  // final retrainings begun
	chance     bool // when set, every final retraining stays at chance
}

func (f *fakeExecutor) Data() Data {
	return Data{Input: genotype.Input{Height: 16, Width: 16, Channels: 1}, Classes: []string{"a", "b"}, Hash: "sha256:test",
		Train: 100, Full: 200, Val: 50, Test: 50, ValMajority: 0.5}
}

func fakeReward(g genotype.Genotype) float64 {
	switch a := g.(type) {
	case genotype.Arch:
		convs := 0
		for _, l := range a {
			if l.Kind == genotype.Conv {
				convs++
			}
		}
		return 0.5 + 0.1*float64(min(convs, 4)) - 0.01*float64(len(a))
	case genotype.CellNet: // the later operations (convolutions) score
		r := 0.5
		for _, c := range []genotype.Cell{a.Pair.Normal, a.Pair.Reduction} {
			for _, b := range c.Blocks {
				r += 0.01 * float64(b.Op1+b.Op2)
			}
		}
		return min(r, 0.99)
	}
	panic(fmt.Sprintf("fakeReward: %T", g))
}

func (f *fakeExecutor) Evaluate(ctx context.Context, job Job) (*Outcome, error) {
	if f.breakFinal && job.Full {
		f.mu.Lock()
		f.finals++
		n := f.finals
		f.mu.Unlock()
		if n == 1 {
			return nil, errors.New("retraining broke")
		}
		<-ctx.Done()
		if n > 2 {
			return nil, ctx.Err()
		}
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.slowOn != 0 && job.Trial == f.slowOn && !job.Full {
		select {
		case <-f.failed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.jitter {
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
	}
	f.mu.Lock()
	f.trained = append(f.trained, job.Genotype.String())
	f.jobs = append(f.jobs, job)
	f.mu.Unlock()
	if f.failOn != 0 && job.Trial == f.failOn && !job.Full {
		if f.failed != nil {
			close(f.failed)
		}
		return nil, errors.New("executor broke")
	}
	if f.fail {
		return nil, errors.New("executor broke")
	}
	net, err := job.Genotype.Build(f.Data().Input, 2)
	if err != nil {
		return nil, err
	}
	acc := fakeReward(job.Genotype)
	if job.Full {
		acc = min(acc+0.05, 1)
	}
	chance := f.chance && job.Full
	if chance {
		acc = f.Data().ValMajority
	}
	res := &runtime.Result{Status: runtime.StatusOK, Params: net.Params(), MACs: net.MACs(), ValAccuracy: acc, BestEpoch: 1,
		Epochs:  []runtime.EpochRecord{{Epoch: 1, ValAccuracy: acc}},
		Weights: onnxgen.Init(onnxgen.Params(net), nil2rand()), Seconds: 0.01, Waited: fakeWaited, AtChance: chance}
	if f.curves {
		fakeCurve(res, acc, job.Config)
	}
	if job.Config.Progress != nil { // as runtime.Train calls it
		for _, e := range res.Epochs {
			job.Config.Progress(e)
		}
	}
	return &Outcome{Training: res}, nil
}

// fakeWaited is the wait for memory the fake executor reports.
const fakeWaited = 0.25

// fakeCurve makes res a training of cfg.Epochs epochs that rises to acc,
// more or less steeply by acc's digits (so that curves cross), stopped as
// runtime.Train stops it by cfg.StopBelow.
func fakeCurve(res *runtime.Result, acc float64, cfg runtime.TrainConfig) {
	res.Epochs = nil
	for e := 1; e <= cfg.Epochs; e++ {
		v := acc * (1 - 0.3/float64(e)*(1+math.Mod(acc*37, 1)))
		res.Epochs = append(res.Epochs, runtime.EpochRecord{Epoch: e, ValAccuracy: v})
		res.ValAccuracy, res.BestEpoch = v, e
		if e <= len(cfg.StopBelow) && v < cfg.StopBelow[e-1] {
			res.Pruned = true
			return
		}
	}
}

func (f *fakeExecutor) Test(ctx context.Context, model []byte) (*runtime.Evaluation, error) {
	info, err := onnxgen.ReadModelInfo(model)
	if err != nil {
		return nil, err
	}
	return &runtime.Evaluation{N: 50, Correct: 40, Accuracy: fakeReward(info.Arch), Confusion: [][]int{{22, 3}, {7, 18}}}, nil
}

func testConfig(t *testing.T, dir string) Config {
	c, err := Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	c.Dir, c.Name, c.Data = dir, "run", "unused"
	c.MetaQNN.Schedule = ScheduleSpec{controller.EpsilonSchedule{{Epsilon: 1, Models: 12}, {Epsilon: 0.5, Models: 8}, {Epsilon: 0.1, Models: 10}}}
	c.Final.TopK = 3
	c.Workers = 1
	c.MetaQNN.Space.MaxMACs = 0
	c.Budget = runtime.Budget{MaxMACs: 2_000_000}
	// The engine's tests choose next best and a parameter limit themselves
	// where they test them.
	c.MetaQNN.QLearning.NextBest, c.Reward = 0, RewardSettings{}
	c.Seed = 42
	c = c.WithDefaults()
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	return c
}

func newSearch(t *testing.T, cfg Config, exec Executor) *Search {
	t.Helper()
	s, err := New(cfg, exec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// searched is a finished run of the test config without its final phase.
func searched(t *testing.T) (Config, *Search) {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip = true
	s := newSearch(t, cfg, &fakeExecutor{})
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	return cfg, s
}

// resume reopens the run of cfg with exec.
func resume(t *testing.T, cfg Config, exec Executor) *Search {
	t.Helper()
	s, err := Resume(filepath.Join(cfg.Dir, cfg.Name), ResumeOptions{}, func(Config) (Executor, error) { return exec, nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// runResumed resumes the run in dir with o, runs it to its end and closes
// it, failing the test on an error; it returns the run's events.
func runResumed(t *testing.T, dir string, o ResumeOptions, newExec func(Config) (Executor, error)) []Event {
	t.Helper()
	s, err := Resume(dir, o, newExec)
	if err != nil {
		t.Fatal(err)
	}
	var events []Event
	s.Progress = func(e Event) { events = append(events, e) }
	err = s.Run(context.Background(), nil)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// finishedRun runs the search of cfg on exec to its end and returns its
// run directory, closed.
func finishedRun(t *testing.T, cfg Config, exec Executor) string {
	t.Helper()
	s := newSearch(t, cfg, exec)
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	return s.Dir()
}

// sameTrials compares two runs trial for trial: what was proposed and how
// it ended (not when, nor how long it took).
func sameTrials(t *testing.T, got, want []rundir.Trial) {
	t.Helper()
	if i := rundir.FirstDifference(got, want); i >= 0 {
		if i >= min(len(got), len(want)) {
			t.Fatalf("%d trials, want %d", len(got), len(want))
		}
		t.Fatalf("trial %d differs:\n got %+v\nwant %+v", i+1, got[i], want[i])
	}
}

// read reads a file of the run in dir, failing the test on an error.
func read[T any](t *testing.T, f func(string) ([]T, error), dir string) []T {
	t.Helper()
	v, err := f(dir)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A whole search: every slot of the schedule ends as a recorded trial, each
// architecture is trained once (duplicates reuse the reward), budget
// refusals are recorded, the final phase and the report are written.
func TestSearchRun(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.MetaQNN.QLearning.Redraw = 0 // repeats come up, and are reused
	exec := &fakeExecutor{}
	s := newSearch(t, cfg, exec)
	var events []Event
	s.Progress = func(e Event) { events = append(events, e) }
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	trials := s.Trials()
	if len(trials) != 30 {
		t.Fatalf("%d trials, want 30", len(trials))
	}
	seen := map[string]int{}
	counts := map[rundir.Status]int{}
	for i, tr := range trials {
		counts[tr.Status]++
		if tr.ID != i+1 {
			t.Errorf("trial %d has id %d", i, tr.ID)
		}
		switch tr.Status {
		case rundir.StatusReused:
			if orig, ok := seen[tr.Arch]; !ok || orig != tr.ReusedFrom {
				t.Errorf("trial %d reuses %d, the first training of %s was %d", tr.ID, tr.ReusedFrom, tr.Arch, orig)
			}
		case rundir.StatusRefused:
			if tr.Reward != 0 || !strings.Contains(tr.Reason, "exceed the limit") {
				t.Errorf("refused trial %+v", tr)
			}
			seen[tr.Arch] = tr.ID
		default:
			if _, dup := seen[tr.Arch]; dup {
				t.Errorf("%s trained twice", tr.Arch)
			}
			if tr.WaitedSeconds != fakeWaited {
				t.Errorf("trial %d waited %g s for memory, the executor said %g", tr.ID, tr.WaitedSeconds, fakeWaited)
			}
			seen[tr.Arch] = tr.ID
		}
	}
	if len(exec.trained) != counts[rundir.StatusOK]+3 { // + the final phase's 3 retrainings
		t.Errorf("executor trained %d times for %d ok trials", len(exec.trained), counts[rundir.StatusOK])
	}
	// Trials train with the train settings; the retraining with the final
	// ones (the cpu preset: 3 x 10 epochs at 1e-3, patience 10).
	for _, j := range exec.jobs {
		c := j.Config
		want := runtime.TrainConfig{Epochs: 10, LR: 3e-3, Patience: 6}
		if j.Full {
			want = runtime.TrainConfig{Epochs: 30, LR: 1e-3, Patience: 10}
		}
		if c.Epochs != want.Epochs || c.LR != want.LR || c.Patience != want.Patience {
			t.Errorf("job %d (full %v): epochs %d, lr %g, patience %d; want %d, %g, %d", j.Trial, j.Full, c.Epochs, c.LR, c.Patience, want.Epochs, want.LR, want.Patience)
		}
	}
	// Seed 42 with this schedule gives both reuses and refusals (seen:
	// counts are logged), so both paths above were exercised.
	if counts[rundir.StatusReused] == 0 || counts[rundir.StatusRefused] == 0 {
		t.Errorf("counts %v: the test needs reused and refused trials; pick another seed", counts)
	}
	t.Logf("counts %v", counts)
	// On disk: the log equals the trials, the report and winners exist.
	sameTrials(t, read(t, rundir.ReadTrials, s.Dir()), trials)
	for _, f := range []string{rundir.FileReport, rundir.FileReportCSV, rundir.FileTrialsCSV, rundir.FileAgent, rundir.FileData, rundir.FileTop,
		"winners/rank-01.onnx", "winners/best.onnx", "plots/accuracy.png", "plots/epsilon.svg", "plots/params.png"} {
		if _, err := os.Stat(filepath.Join(cfg.Dir, cfg.Name, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	finals, _ := rundir.ReadFinals(s.Dir())
	if len(finals) != 3 || finals[0].Rank != 1 {
		t.Fatalf("finals %+v", finals)
	}
	top := s.ranked(nil)
	for i, f := range finals {
		if f.Trial != top[i].ID || f.ValAccuracy != min(top[i].ValAccuracy+0.05, 1) {
			t.Errorf("final %d: %+v, top %+v", i, f, top[i])
		}
	}
	// Only the top K search models are kept.
	models, _ := os.ReadDir(filepath.Join(cfg.Dir, cfg.Name, rundir.DirModels))
	if len(models) != 3 {
		t.Errorf("%d search models kept, want 3", len(models))
	}
	if events[0].Kind != "start" || events[len(events)-1].Kind != "done" {
		t.Errorf("events from %s to %s", events[0].Kind, events[len(events)-1].Kind)
	}
	// The final phase says it begins, then counts its models, and its
	// estimate of the time left falls to 0 with the last one.
	var phase []string
	for _, e := range events {
		if e.FinalTotal > 0 {
			phase = append(phase, fmt.Sprintf("%s %d/%d %v", e.Kind, e.FinalDone, e.FinalTotal, e.Remaining > 0))
		}
	}
	want := []string{"final_start 0/3 true", "final 1/3 true", "final 2/3 true", "final 3/3 false", "done 3/3 false"}
	if !slices.Equal(phase, want) || !strings.HasPrefix(events[len(events)-5].Message, "final phase: retraining the 3 best architectures (0 done before), up to 30 epochs each") {
		t.Errorf("the final phase's events %q, want %q (first: %q)", phase, want, events[len(events)-5].Message)
	}
}

// Stopping after some trials and resuming, again and again, with the damage
// a kill -9 can do in between (a torn last line, an agent checkpoint older
// than the log, or none at all), gives exactly the trials of an
// uninterrupted run and its agent state: the agent is restored from its
// checkpoint and the trials logged after it are replayed; trials stopped in
// flight or queued are evaluated again. With several workers finishing in
// any order too.
func TestResumeEqualsUninterrupted(t *testing.T) {
	for _, c := range []struct {
		agent   string
		workers int
		median  bool // the median stopping rule and successive halving, which depend on the earlier trials' curves
		next    bool // next_best, which counts the proposals in flight as tried
	}{{AgentQLearning, 1, false, false}, {AgentQLearning, 3, false, false}, {AgentEvolution, 3, false, false}, {AgentQLearning, 3, true, false}, {AgentQLearning, 3, false, true}} {
		agent, workers, median, next := c.agent, c.workers, c.median, c.next
		t.Run(fmt.Sprintf("%s/workers=%d/median=%v/next_best=%v", agent, workers, median, next), func(t *testing.T) {
			testConfig := func(t *testing.T, dir string) Config {
				c := testConfig(t, dir)
				c.MetaQNN.Agent = agent
				if next {
					// Greedy at the end, so that greedy draws repeat
					// trials in flight, across the stops too.
					c.MetaQNN.QLearning.NextBest, c.MetaQNN.QLearning.Redraw = 50, 5
					c.MetaQNN.Schedule.EpsilonSchedule = controller.EpsilonSchedule{{Epsilon: 1, Models: 6}, {Epsilon: 0, Models: 24}}
				}
				if median {
					c.Train.Epochs, c.Train.MedianStop = 5, MedianStop{After: 2, MinTrials: 3}
					c.Train.Halving = Halving{First: 1, Eta: 2, MinTrials: 4}
				}
				return c.WithDefaults()
			}
			whole := testConfig(t, t.TempDir())
			whole.Final.Skip, whole.Workers = true, workers
			s := newSearch(t, whole, &fakeExecutor{jitter: true, curves: median})
			if err := s.Run(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			want := read(t, rundir.ReadTrials, s.Dir())
			if median && !slices.ContainsFunc(want, func(t rundir.Trial) bool { return t.Pruned }) {
				t.Fatal("no trial stopped early")
			}
			wantState, _ := os.ReadFile(filepath.Join(s.Dir(), rundir.FileAgent))

			cfg := testConfig(t, t.TempDir())
			cfg.Final.Skip, cfg.Workers = true, workers
			dir := filepath.Join(cfg.Dir, cfg.Name)
			if err := runUntil(t, newSearch(t, cfg, &fakeExecutor{jitter: true, curves: median}), 7); !errors.Is(err, ErrStopped) {
				t.Fatalf("first part: %v", err)
			}
			// kill -9 during a write: a torn line at the end of the log.
			f, _ := os.OpenFile(filepath.Join(dir, rundir.FileTrials), os.O_APPEND|os.O_WRONLY, 0)
			fmt.Fprint(f, `{"id":99,"arch":"C(8`)
			f.Close()
			for _, part := range []struct {
				stopAt      int
				removeState bool
			}{{16, false}, {23, true}, {0, false}} {
				if part.removeState {
					// Killed before the checkpoint's first save: the agent
					// starts from the seed and replays the whole log.
					os.Remove(filepath.Join(dir, rundir.FileAgent))
				}
				err := runUntil(t, resume(t, cfg, &fakeExecutor{jitter: true, curves: median}), part.stopAt)
				if part.stopAt > 0 && !errors.Is(err, ErrStopped) || part.stopAt == 0 && err != nil {
					t.Fatalf("part to %d: %v", part.stopAt, err)
				}
			}
			sameTrials(t, read(t, rundir.ReadTrials, dir), want)
			gotState, _ := os.ReadFile(filepath.Join(dir, rundir.FileAgent))
			if len(gotState) == 0 || !bytes.Equal(gotState, wantState) {
				t.Errorf("agent states differ (%d and %d bytes)", len(gotState), len(wantState))
			}
		})
	}
}

// Cancelling abandons the trials in flight: nothing of them is recorded,
// while a trial that finished before is in the log.
func TestCancelAbandonsInFlight(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Workers = 2
	exec := &fakeExecutor{block: make(chan struct{})}
	s := newSearch(t, cfg, exec)
	trainedIn := func(log []rundir.Trial) []rundir.Trial {
		var ok []rundir.Trial
		for _, tr := range log {
			if tr.Status == rundir.StatusOK {
				ok = append(ok, tr)
			}
		}
		return ok
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // let exactly one trial through, then cancel once it is logged
		exec.block <- struct{}{}
		for {
			log, err := rundir.ReadTrials(s.Dir())
			if err != nil || len(trainedIn(log)) > 0 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	reported := map[int]bool{}
	var last Event
	s.Progress = func(e Event) {
		if e.Kind == "trial" || e.Kind == "saved" {
			reported[e.Trial.ID] = true
		}
		last = e
	}
	if err := s.Run(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	log := read(t, rundir.ReadTrials, s.Dir())
	for _, tr := range log {
		if tr.Status == rundir.StatusFailed {
			t.Errorf("abandoned trial recorded as %+v", tr)
		}
		if !reported[tr.ID] {
			t.Errorf("trial %d recorded but never reported", tr.ID)
		}
	}
	if last.Kind != "stopped" || !strings.HasPrefix(last.Message, "interrupted") {
		t.Errorf("last event %+v, want stopped: interrupted", last)
	}
	if n := len(exec.trained); n != 1 {
		t.Fatalf("%d trainings finished", n)
	}
	if ok := trainedIn(log); len(ok) != 1 || ok[0].Arch != exec.trained[0] {
		t.Errorf("log has trained trials %+v; want the one training that finished, %s", ok, exec.trained[0])
	}
}

// An executor that keeps failing stops the search with its error after 3
// failed trials; they are recorded with the reason.
func TestFailingExecutorStops(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	s := newSearch(t, cfg, &fakeExecutor{fail: true})
	err := s.Run(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "3 trials in a row failed, the last with: executor broke") {
		t.Fatalf("Run: %v", err)
	}
	failed := 0
	for _, tr := range s.Trials() {
		if tr.Status == rundir.StatusFailed {
			failed++
		}
	}
	if failed != 3 {
		t.Errorf("%d failed trials recorded", failed)
	}
	// The run is listed as failed, with why, not as stopped; a resume goes
	// on, and it is no longer failed.
	dir := s.Dir()
	s.Close()
	if sum, err := Summarize(dir); err != nil || sum.StatusOf(false) != RunFailed || !strings.Contains(sum.Failed, "3 trials in a row failed") {
		t.Errorf("summary after the failure: %+v, %v; want failed, with the error", sum, err)
	}
	r, err := Resume(dir, ResumeOptions{}, func(Config) (Executor, error) { return &fakeExecutor{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if sum, err := Summarize(dir); err != nil || sum.Failed != "" || sum.StatusOf(false) != RunStopped {
		t.Errorf("summary once resumed: %+v, %v; want stopped, without the error", sum, err)
	}
}

// orderedFailures fails trials 13-15 after every earlier trial has
// returned, and holds the later trials until the three failures have, so
// that the breaker trips on them whatever the timing and trials that
// succeed are still in flight when it does. (The proposals are the same at
// every timing, and 13-15 are trained, not reused.)
type orderedFailures struct {
	fakeExecutor
	mu     sync.Mutex
	cond   *sync.Cond
	early  int // trials before 13 being evaluated
	failed int // of 13-15, returned
}

func (o *orderedFailures) Evaluate(ctx context.Context, job Job) (*Outcome, error) {
	o.mu.Lock()
	switch {
	case job.Trial < 13:
		o.early++
		o.mu.Unlock()
		defer func() { o.mu.Lock(); o.early--; o.cond.Broadcast(); o.mu.Unlock() }()
		return o.fakeExecutor.Evaluate(ctx, job)
	case job.Trial <= 15:
		for o.early > 0 {
			o.cond.Wait()
		}
		o.mu.Unlock()
		time.Sleep(10 * time.Millisecond) // after the earlier outcomes are delivered
		o.mu.Lock()
		o.failed++
		o.cond.Broadcast()
		o.mu.Unlock()
		return nil, errors.New("executor broke")
	}
	for o.failed < 3 {
		o.cond.Wait()
	}
	o.mu.Unlock()
	time.Sleep(30 * time.Millisecond) // after the failures are delivered
	return o.fakeExecutor.Evaluate(ctx, job)
}

// A run ended by its failure breaker learns no more than a stopped one: its
// log stays the trials an agent replaying it from the seed proposes (the
// trials in flight at the trip are learned after the resume).
func TestBreakerKeepsTheLogReplayable(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.MetaQNN.Agent = AgentEvolution
	cfg = cfg.WithDefaults()
	cfg.Final.Skip, cfg.Workers = true, 3
	dir := filepath.Join(cfg.Dir, cfg.Name)
	exec := &orderedFailures{}
	exec.cond = sync.NewCond(&exec.mu)
	s := newSearch(t, cfg, exec)
	if err := s.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "3 trials in a row failed") {
		t.Fatalf("first run: %v", err)
	}
	s.Close()
	if err := runUntil(t, resume(t, cfg, &fakeExecutor{}), 20); !errors.Is(err, ErrStopped) {
		t.Fatalf("resumed to 20: %v", err)
	}
	// Killed before the agent's first save: it replays the whole log.
	if err := os.Remove(filepath.Join(dir, rundir.FileAgent)); err != nil {
		t.Fatal(err)
	}
	if err := runUntil(t, resume(t, cfg, &fakeExecutor{}), 0); err != nil {
		t.Errorf("replay from the seed: %v", err)
	}
}

// After a stop, Done counts every trial on disk, the finished ones the
// agent has not learned yet too (what "stopped after N trials" says).
func TestDoneCountsTrialsOnDisk(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip, cfg.Workers = true, 3
	s := newSearch(t, cfg, &fakeExecutor{jitter: true})
	if err := runUntil(t, s, 7); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	if n := len(read(t, rundir.ReadTrials, s.Dir())); s.Done() != n {
		t.Errorf("Done() = %d (%d learned), %d trials on disk", s.Done(), len(s.Trials()), n)
	}
}

func TestNewRefusesExistingRun(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	first := newSearch(t, cfg, &fakeExecutor{})
	// While the first search holds it, a second is told so, with its ID.
	if _, err := New(cfg, &fakeExecutor{}); !errors.Is(err, rundir.ErrExists) || !strings.Contains(err.Error(), fmt.Sprintf("nasctl process %d is searching it now", os.Getpid())) {
		t.Errorf("second New: %v", err)
	}
	// The first search holds the lock: resuming it at the same time fails.
	open := func(dir string) error {
		_, err := Resume(dir, ResumeOptions{}, func(Config) (Executor, error) { return &fakeExecutor{}, nil })
		return err
	}
	if err := open(filepath.Join(cfg.Dir, cfg.Name)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("in use by another nasctl process (%d)", os.Getpid())) {
		t.Errorf("Resume while locked: %v", err)
	}
	first.Close()
	if _, err := New(cfg, &fakeExecutor{}); !errors.Is(err, rundir.ErrExists) || !strings.Contains(err.Error(), "resume it with --resume") {
		t.Errorf("New after the first closed: %v", err)
	}
	if err := open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a run directory") {
		t.Errorf("Resume of an empty dir: %v", err)
	}
}

func nil2rand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// A training whose accuracy is not a number fails its trial, with a reason,
// and the trial can be recorded; a finite one is left alone.
func TestNonFiniteRewardFails(t *testing.T) {
	s := newSearch(t, testConfig(t, t.TempDir()), &fakeExecutor{})
	defer s.Close()
	for _, acc := range []float64{math.NaN(), math.Inf(1), 0.75} {
		got := s.finish(outcome{out: &Outcome{Training: &runtime.Result{Status: runtime.StatusOK, ValAccuracy: acc}}})
		bad := acc != 0.75
		if failed := got.Status == rundir.StatusFailed; failed != bad || (bad && !strings.Contains(got.Reason, "not a finite number")) ||
			(!bad && got.Reward != acc) {
			t.Errorf("accuracy %v: status %s, reason %q, reward %v", acc, got.Status, got.Reason, got.Reward)
		}
		if _, err := json.Marshal(got); err != nil {
			t.Errorf("accuracy %v: the trial cannot be recorded: %v", acc, err)
		}
	}
	// A latency model that predicts NaN (a degenerate fit) fails the trial too.
	got := s.finish(outcome{trial: rundir.Trial{LatencyMs: math.NaN()}, out: &Outcome{Training: &runtime.Result{Status: runtime.StatusOK, ValAccuracy: 0.75}}})
	if _, err := json.Marshal(got); got.Status != rundir.StatusFailed || err != nil {
		t.Errorf("latency NaN: status %s, recorded: %v", got.Status, err)
	}
}

// MnasNet's soft reward and the hard limits, by hand: with T = 2 ms and
// w = -0.07, a 4 ms model at accuracy 0.9 gets 0.9 * 2^-0.07 = 0.857 and a
// 1 ms one 0.9 * 0.5^-0.07 = 0.945.
func TestLatencyRewards(t *testing.T) {
	r := RewardSettings{Mode: RewardMnasNet, TargetMs: 2}.withDefaults()
	if got := r.reward(0.9, 4); math.Abs(got-0.9*math.Pow(2, -0.07)) > 1e-12 || math.Abs(got-0.857) > 1e-3 {
		t.Errorf("reward(0.9, 4 ms) = %v", got)
	}
	if got := r.reward(0.9, 1); math.Abs(got-0.945) > 1e-3 {
		t.Errorf("reward(0.9, 1 ms) = %v", got)
	}
	if got := r.reward(0.9, 2); got != 0.9 {
		t.Errorf("reward at the target = %v", got)
	}
	if got := r.reward(0.9, 0); math.Abs(got-0.9*math.Pow(1e-4/2, -0.07)) > 1e-12 {
		t.Errorf("reward at 0 ms = %v, want that at the floor of 1e-4 ms", got)
	}
	c := RewardSettings{Mode: RewardConstraint, MaxParams: 1000, MaxLatencyMs: 0.5}.withDefaults()
	for _, tc := range []struct {
		params int64
		ms     float64
		want   string
	}{{999, 0.4, ""}, {1000, 0.5, ""}, {1001, 0.1, "1001 parameters exceed the limit of 1000"}, {10, 0.6, "latency 0.6000 ms exceeds the limit of 0.5000 ms"}} {
		if got := c.refuse(tc.params, tc.ms); got != tc.want {
			t.Errorf("refuse(%d, %v) = %q, want %q", tc.params, tc.ms, got, tc.want)
		}
	}
	if ps := (RewardSettings{Mode: "fast"}).withDefaults().check(); len(ps) == 0 {
		t.Error("unknown mode accepted")
	}
	if ps := (RewardSettings{Mode: RewardMnasNet}).withDefaults().check(); len(ps) == 0 {
		t.Error("mnasnet without a target accepted")
	}
}

// A parameter limit refuses architectures before training: none trained is
// over it, and the refused ones say why.
func TestConstraintSearch(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip = true
	cfg.Budget = runtime.Budget{}
	cfg.Reward = RewardSettings{Mode: RewardConstraint, MaxParams: 3000}.withDefaults()
	exec := &fakeExecutor{}
	s := newSearch(t, cfg, exec)
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, tr := range s.Trials() {
		switch tr.Status {
		case rundir.StatusRefused:
			refused++
			if tr.Params <= 3000 || !strings.Contains(tr.Reason, "parameters exceed the limit of 3000") {
				t.Errorf("refused %+v", tr)
			}
		case rundir.StatusOK:
			if tr.Params > 3000 {
				t.Errorf("trained %s with %d parameters", tr.Arch, tr.Params)
			}
		}
	}
	if refused == 0 {
		t.Error("no architecture was over the limit; the test needs some")
	}
}

// With several workers finishing in any order, the agent samples and learns
// in trial order: two runs of the same search are the same trial for trial.
func TestWorkersRepeat(t *testing.T) {
	var runs [2][]rundir.Trial
	for i := range runs {
		cfg := testConfig(t, t.TempDir())
		cfg.Workers = 3
		cfg.Final.Skip = true
		s := newSearch(t, cfg, &fakeExecutor{jitter: true})
		if err := s.Run(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		runs[i] = s.Trials()
	}
	a, b := runs[0], runs[1]
	if len(a) != 30 || len(b) != 30 {
		t.Fatalf("%d and %d trials", len(a), len(b))
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Arch != b[i].Arch || a[i].Status != b[i].Status || a[i].Reward != b[i].Reward {
			t.Errorf("trial %d: %d %s %s %v, then %d %s %s %v", i, a[i].ID, a[i].Arch, a[i].Status, a[i].Reward, b[i].ID, b[i].Arch, b[i].Status, b[i].Reward)
		}
	}
}

// A failed trial teaches nothing and lends its result to no duplicate: one
// drawn while it trained, or after it failed but before the agent learned
// it, trains the architecture itself, and later ones reuse that training.
// The space has 4 architectures; 2 workers make a lag of 4. Two runs with
// random training times agree trial for trial.
func TestFailedTrialNotReused(t *testing.T) {
	for _, tc := range []struct {
		name                string
		seed                uint64
		failOn, slowOn, dup int // dup: the duplicate that must train again
	}{
		// Seed 42 draws SM() as trials 1-3 (all drawn at the start): 2 and
		// 3 wait for 1, which fails.
		{name: "waiting", seed: 42, failOn: 1, dup: 2},
		// Seed 1 draws C(8,3,1) - GAP(), SM(), GAP(), C(8,3,1) - SM(), SM():
		// trial 1 finishes after 2 failed, and 5 is drawn once 1 is learned,
		// before 2 is.
		{name: "finished", seed: 1, failOn: 2, slowOn: 1, dup: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var runs [2][]rundir.Trial
			for i := range runs {
				cfg := testConfig(t, t.TempDir())
				cfg.MetaQNN.Space.Space = genotype.Space{Name: "tiny", ConvFilters: []int{8}, ConvKernels: []int{3}, ConvStrides: []int{1}, MaxDepth: 1}
				cfg.Workers = 2
				cfg.Seed = tc.seed
				cfg.Final.Skip = true
				exec := &fakeExecutor{failOn: tc.failOn, failed: make(chan struct{}), slowOn: tc.slowOn, jitter: true}
				s := newSearch(t, cfg, exec)
				if err := s.Run(context.Background(), nil); err != nil {
					t.Fatal(err)
				}
				runs[i] = s.Trials()
				byID := map[int]rundir.Trial{}
				for _, tr := range runs[i] {
					byID[tr.ID] = tr
				}
				failed, dup := byID[tc.failOn], byID[tc.dup]
				if failed.Status != rundir.StatusFailed || dup.Arch != failed.Arch {
					t.Fatalf("trial %d: %s %s, trial %d: %s; the test needs the first failed and the second a duplicate of it", failed.ID, failed.Arch, failed.Status, dup.ID, dup.Arch)
				}
				if dup.Status != rundir.StatusOK {
					t.Errorf("trial %d, a duplicate of failed trial %d: %s (reused from %d), want trained", dup.ID, failed.ID, dup.Status, dup.ReusedFrom)
				}
				for _, tr := range runs[i] {
					if tr.Status == rundir.StatusReused && byID[tr.ReusedFrom].Status != rundir.StatusOK {
						t.Errorf("trial %d reuses trial %d, which is %s", tr.ID, tr.ReusedFrom, byID[tr.ReusedFrom].Status)
					}
				}
			}
			a, b := runs[0], runs[1]
			if len(a) != len(b) {
				t.Fatalf("%d and %d trials", len(a), len(b))
			}
			for i := range a {
				if a[i].ID != b[i].ID || a[i].Arch != b[i].Arch || a[i].Status != b[i].Status || a[i].Reward != b[i].Reward || a[i].ReusedFrom != b[i].ReusedFrom {
					t.Errorf("trial %d: %d %s %s from %d, then %d %s %s from %d", i, a[i].ID, a[i].Arch, a[i].Status, a[i].ReusedFrom, b[i].ID, b[i].Arch, b[i].Status, b[i].ReusedFrom)
				}
			}
		})
	}
}

// The cheap refusals (budget, parameter limit) come before the latency, and
// a latency that cannot be measured fails its trial, not the search, until
// 3 trials in a row have failed. The tests of this package do not initialise
// ONNX Runtime, so every measurement fails.
func TestLatencyFailureFailsTrial(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip = true
	cfg.Reward = RewardSettings{Mode: RewardConstraint, MaxParams: 3000, MaxLatencyMs: 1, Latency: LatencyMeasured}.withDefaults()
	s := newSearch(t, cfg, &fakeExecutor{})
	const why = "measuring its latency: "
	if err := s.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "3 trials in a row failed, the last with: "+why) {
		t.Fatalf("Run: %v", err)
	}
	counts := map[rundir.Status]int{}
	for _, tr := range s.Trials() {
		counts[tr.Status]++
		switch tr.Status {
		case rundir.StatusFailed:
			if tr.Params > 3000 || !strings.HasPrefix(tr.Reason, why) {
				t.Errorf("failed %+v", tr)
			}
		case rundir.StatusRefused:
			if tr.LatencyMs != 0 {
				t.Errorf("latency measured for %s, refused as: %s", tr.Arch, tr.Reason)
			}
		default:
			t.Errorf("trial %d is %s", tr.ID, tr.Status)
		}
	}
	if counts[rundir.StatusFailed] != 3 || counts[rundir.StatusRefused] == 0 {
		t.Errorf("counts %v: want 3 failed and some refused before them", counts)
	}
}

// A latency model saved with another number of coefficients than the
// features (testdata: the 6 of a run of an older nasctl) is refused with
// what to do; one with as many is used as saved.
func TestSavedLatencyModel(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "latency_model_6_features.json"))
	if err != nil {
		t.Fatal(err)
	}
	coef := make([]float64, len(bench.Features))
	coef[0] = 0.5 // the constant term: every network 0.5 ms
	current, err := json.Marshal(bench.LatencyModel{Coefficients: coef, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range coef {
		coef[i] = 1e308 // a degenerate fit: every prediction overflows to +Inf
	}
	degenerate, err := json.Marshal(bench.LatencyModel{Coefficients: coef, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		model []byte
		err   string
	}{
		{"older", old, fmt.Sprintf("has 6 coefficients, but this nasctl's latency model has %d", len(bench.Features))},
		{"current", current, ""},
		// Trials fail, recorded, until the breaker stops the run.
		{"degenerate", degenerate, "its latency, +Inf, is not a finite number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.Final.Skip = true
			cfg.Reward = RewardSettings{Mode: RewardConstraint, MaxLatencyMs: 1}.withDefaults()
			s := newSearch(t, cfg, &fakeExecutor{})
			if err := os.WriteFile(filepath.Join(s.Dir(), rundir.FileLatencyModel), tc.model, 0o644); err != nil {
				t.Fatal(err)
			}
			var last Event
			s.Progress = func(e Event) { last = e }
			err := s.Run(context.Background(), nil)
			if tc.name == "degenerate" {
				log := read(t, rundir.ReadTrials, s.Dir())
				if err == nil || !strings.Contains(err.Error(), tc.err) || len(log) == 0 || log[0].Status != rundir.StatusFailed ||
					log[0].Reason != tc.err+" (predicted by the run's latency model: delete latency_model.json and resume to calibrate a new one)" {
					t.Errorf("Run: %v; log %+v", err, log)
				}
				return
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "delete the file and resume") {
					t.Errorf("Run: %v; want %q and what to do", err, tc.err)
				}
				if last.Kind != "failed" { // before any trial, the events end too
					t.Errorf("last event %+v, want failed", last)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range s.Trials() {
				if tr.Status == rundir.StatusOK && tr.LatencyMs != 0.5 {
					t.Errorf("trial %d: latency %v ms, want the saved model's 0.5", tr.ID, tr.LatencyMs)
				}
			}
		})
	}
}

// A resumed run replays its log in trial order, whatever order it was
// written in (with several workers, trials are logged as they finish): from
// a shuffled log and no checkpoint, the resumed run evaluates nothing and
// ends with the agent state of the run that wrote the log.
func TestResumeReplaysShuffledLog(t *testing.T) {
	cfg, s := searched(t)
	dir := s.Dir()
	want, _ := os.ReadFile(filepath.Join(dir, rundir.FileAgent))
	lines := strings.SplitAfter(strings.TrimSuffix(readFile(t, filepath.Join(dir, rundir.FileTrials)), "\n"), "\n")
	shuffled := slices.Clone(lines)
	rand.New(rand.NewPCG(1, 1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if slices.Equal(shuffled, lines) {
		t.Fatal("the shuffle left the log in order; pick another seed")
	}
	os.WriteFile(filepath.Join(dir, rundir.FileTrials), []byte(strings.Join(shuffled, "")+"\n"), 0o644)
	os.Remove(filepath.Join(dir, rundir.FileAgent))
	exec := &fakeExecutor{}
	r := resume(t, cfg, exec)
	if err := r.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, rundir.FileAgent)); !bytes.Equal(got, want) {
		t.Error("the agent rebuilt from a shuffled log differs from the search's")
	}
	if len(exec.trained) != 0 {
		t.Errorf("the resumed run trained %d times", len(exec.trained))
	}
	sameTrials(t, r.Trials(), s.Trials())
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A run searched without its final phase gets it by a resume that says so:
// no trial is trained again, the finals are written, and config.yaml now
// says the phase is not skipped, its other settings as they were. A resume
// that says nothing keeps the saved choice.
func TestResumeAddsFinal(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip = true
	dir := filepath.Join(cfg.Dir, cfg.Name)
	exec := &fakeExecutor{}
	first := newSearch(t, cfg, exec)
	if err := first.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	first.Close()
	trained := len(exec.trained)
	if _, err := os.Stat(filepath.Join(dir, rundir.FileFinal)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a run with final.skip has finals: %v", err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, rundir.FileConfig))
	for _, skip := range []*bool{nil, new(bool)} {
		runResumed(t, dir, ResumeOptions{SkipFinal: skip, Workers: 2}, func(Config) (Executor, error) { return exec, nil })
		finals, _ := rundir.ReadFinals(dir)
		after, _ := os.ReadFile(filepath.Join(dir, rundir.FileConfig))
		if skip == nil {
			if len(finals) != 0 || len(exec.trained) != trained || string(after) != string(before) {
				t.Errorf("a plain resume: %d finals, %d trainings (want %d), config changed %v", len(finals), len(exec.trained), trained, string(after) != string(before))
			}
			continue
		}
		if len(finals) != cfg.Final.TopK || len(exec.trained) != trained+cfg.Final.TopK {
			t.Errorf("resumed with the final phase: %d finals, %d trainings; want %d and %d", len(finals), len(exec.trained), cfg.Final.TopK, trained+cfg.Final.TopK)
		}
		// final.skip false is the default, which config.yaml leaves out.
		if want := strings.Replace(string(before), "    skip: true\n", "", 1); string(after) != want || want == string(before) {
			t.Errorf("config.yaml after the resume:\n%s\nwant\n%s", after, want)
		}
	}
}

// A finished run resumed with more trials goes on as an uninterrupted run
// of that length: the same trials (the agent learns the log again, so the
// first new trials are drawn with the lag of the workers in flight), the
// same final phase and agent state. What the shorter plan had (checkpoint,
// final phase, report) is set aside in earlier/trials-N, and config.yaml
// plans the new count. Fewer trials than recorded are refused, and so is a
// resume that cannot train, changing nothing.
func TestResumeMoreTrials(t *testing.T) {
	const more = 38 // the schedule's 30, then 8 at its last epsilon
	exec := func(Config) (Executor, error) { return laterBetter{&fakeExecutor{jitter: true}}, nil }
	whole := testConfig(t, t.TempDir())
	whole.Trials, whole.Workers = more, 2
	s := newSearch(t, whole, laterBetter{&fakeExecutor{jitter: true}})
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	wantTrials, wantFinals := read(t, rundir.ReadTrials, s.Dir()), read(t, rundir.ReadFinals, s.Dir())
	wantState, _ := os.ReadFile(filepath.Join(s.Dir(), rundir.FileAgent))

	cfg := testConfig(t, t.TempDir())
	cfg.Workers = 2
	dir := filepath.Join(cfg.Dir, cfg.Name)
	first := newSearch(t, cfg, laterBetter{&fakeExecutor{jitter: true}})
	if err := first.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	first.Close()
	shortFinals := read(t, rundir.ReadFinals, dir)
	if len(shortFinals) != cfg.Final.TopK || cfg.Trials != 30 {
		t.Fatalf("the 30-trial run: %d finals, %d trials planned", len(shortFinals), cfg.Trials)
	}
	// A config.yaml without trials plans the schedule's: a plain resume of
	// it changes nothing.
	b, _ := os.ReadFile(filepath.Join(dir, rundir.FileConfig))
	if stripped := strings.Replace(string(b), "trials: 30\n", "", 1); stripped == string(b) {
		t.Fatalf("no trials line in config.yaml:\n%s", b)
	} else if err := os.WriteFile(filepath.Join(dir, rundir.FileConfig), []byte(stripped), 0o644); err != nil {
		t.Fatal(err)
	}
	runResumed(t, dir, ResumeOptions{}, exec)
	before, _ := os.ReadFile(filepath.Join(dir, rundir.FileConfig))
	var fewer *FewerTrialsError
	unread := func(Config) (Executor, error) { // the refusal comes before the images are read
		t.Error("29 trials after 30 recorded: the images were read")
		return exec(Config{})
	}
	if _, err := Resume(dir, ResumeOptions{Trials: 29}, unread); !errors.As(err, &fewer) || fewer.Recorded != 30 || !strings.Contains(err.Error(), "has recorded 30 trials") {
		t.Errorf("29 trials after 30 recorded: %v", err)
	}
	// Nor does a resume that cannot train (images gone, say) move anything.
	broken := func(Config) (Executor, error) { return nil, errors.New("no images") }
	if _, err := Resume(dir, ResumeOptions{Trials: more}, broken); err == nil {
		t.Error("a resume without an executor started")
	}
	after, _ := os.ReadFile(filepath.Join(dir, rundir.FileConfig))
	if _, err := os.Stat(filepath.Join(dir, rundir.DirEarlier)); string(after) != string(before) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a plain or refused resume changed the run: config changed %v, earlier/: %v", string(after) != string(before), err)
	}

	// nasctl bench's measurements of the old winners go with them.
	if err := os.MkdirAll(filepath.Join(dir, rundir.DirBench), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, rundir.DirBench, "bench.csv"), []byte("model\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	extension := &fakeExecutor{jitter: true}
	events := runResumed(t, dir, ResumeOptions{Trials: more}, func(Config) (Executor, error) { return laterBetter{extension}, nil })
	if want := "30 of 38 trials done (planned: 38, was 30); the agent learns the 30 recorded again, and what the run had of its 30-trial plan (checkpoint, final phase, report, nasctl bench's measurements) is in " + filepath.Join(dir, "earlier", "trials-30"); events[0].Message != want {
		t.Errorf("first event %q, want %q", events[0].Message, want)
	}
	sameTrials(t, read(t, rundir.ReadTrials, dir), wantTrials)
	var replayed, evaluated []int // the trial events, marked as learned from the log or not
	for _, e := range events {
		if e.Kind == "trial" && e.Replayed {
			replayed = append(replayed, e.Trial.ID)
		} else if e.Kind == "trial" {
			evaluated = append(evaluated, e.Trial.ID)
		}
	}
	if len(replayed) != 30 || replayed[29] != 30 || len(evaluated) != more-30 || evaluated[0] != 31 {
		t.Errorf("trial events: %v replayed, %v evaluated; want 1-30 and 31-%d", replayed, evaluated, more)
	}
	finals := read(t, rundir.ReadFinals, dir)
	if len(finals) != len(wantFinals) {
		t.Fatalf("%d finals, want %d", len(finals), len(wantFinals))
	}
	byRank := func(a, b rundir.FinalResult) int { return a.Rank - b.Rank } // recorded as they finish
	slices.SortFunc(finals, byRank)
	slices.SortFunc(wantFinals, byRank)
	slices.SortFunc(shortFinals, byRank)
	if !slices.ContainsFunc(finals, func(f rundir.FinalResult) bool { return f.Trial > 30 }) {
		t.Errorf("no trial after the 30th among the finals %+v: the test shows nothing", finals)
	}
	for i, f := range finals {
		if w := wantFinals[i]; f.Trial != w.Trial || f.Rank != w.Rank || f.ValAccuracy != w.ValAccuracy || f.TestAccuracy != w.TestAccuracy {
			t.Errorf("final %d: %+v, want %+v", i, f, w)
		}
	}
	reusedFinals(t, dir, finals, shortFinals, extension.jobs)
	if state, _ := os.ReadFile(filepath.Join(dir, rundir.FileAgent)); len(state) == 0 || !bytes.Equal(state, wantState) {
		t.Errorf("agent states differ (%d and %d bytes)", len(state), len(wantState))
	}
	earlier := filepath.Join(dir, rundir.DirEarlier, "trials-30")
	got := read(t, rundir.ReadFinals, earlier)
	slices.SortFunc(got, byRank)
	if len(got) != len(shortFinals) || got[0].Trial != shortFinals[0].Trial || got[0].TestAccuracy != shortFinals[0].TestAccuracy {
		t.Errorf("the 30-trial run's finals set aside: %+v, want %+v", got, shortFinals)
	}
	for _, f := range []string{rundir.FileAgent, rundir.FileReport, rundir.BestName, rundir.WinnerName(1), filepath.Join(rundir.DirBench, "bench.csv")} {
		if _, err := os.Stat(filepath.Join(earlier, f)); err != nil {
			t.Errorf("set aside: %v", err)
		}
	}
	if saved, err := ReadConfig(dir); err != nil || saved.Trials != more {
		t.Errorf("config.yaml after the resume: %d trials planned (%v), want %d", saved.Trials, err, more)
	}
	// The report names the folder it was set aside in.
	rep, err := ReadReport(dir)
	md, _ := os.ReadFile(filepath.Join(dir, rundir.FileReport))
	if want := filepath.Join(rundir.DirEarlier, "trials-30"); err != nil || !slices.Equal(rep.Earlier, []string{want}) || !strings.Contains(string(md), "when its number of trials changed (each with its checkpoint, and its final phase and report if it had them): "+want+".") {
		t.Errorf("the report's earlier plans: %q, %v; want %q, in report.md too:\n%s", rep.Earlier, err, want, md)
	}
}

// laterBetter is a fakeExecutor whose later search trials validate
// higher (0.002 per trial), so that more trials change the best.
// reusedFinals checks the final phase of a run given more trials (finals):
// the networks that the shorter plan's final phase retrained (short, set
// aside in earlier/trials-30) are taken from it, under their new rank, and
// not trained again (jobs); the others are retrained. It returns how many
// were taken under another rank.
func reusedFinals(t *testing.T, dir string, finals, short []rundir.FinalResult, jobs []Job) (moved int) {
	t.Helper()
	retrained := map[int]bool{}
	for _, j := range jobs {
		retrained[j.Trial] = retrained[j.Trial] || j.Full
	}
	for _, f := range finals {
		i := slices.IndexFunc(short, func(s rundir.FinalResult) bool { return s.Trial == f.Trial })
		if i < 0 {
			if f.Reused != "" || !retrained[f.Trial] {
				t.Errorf("final #%d (trial %d, new): reused %q, retrained %v", f.Rank, f.Trial, f.Reused, retrained[f.Trial])
			}
			continue
		}
		if want := filepath.Join(rundir.DirEarlier, "trials-30"); f.Reused != want || retrained[f.Trial] {
			t.Errorf("final #%d (trial %d, #%d before): reused %q, retrained %v; want taken from %s", f.Rank, f.Trial, short[i].Rank, f.Reused, retrained[f.Trial], want)
		}
		if f.Rank != short[i].Rank {
			moved++
		}
		b, err := os.ReadFile(filepath.Join(dir, f.Model))
		if err != nil {
			t.Fatal(err)
		}
		info, err := onnxgen.ReadModelInfo(b)
		if err != nil || info.Meta[onnxgen.MetaRank] != strconv.Itoa(f.Rank) || f.Model != rundir.WinnerName(f.Rank) {
			t.Errorf("final #%d taken from the shorter plan: %s's rank in its metadata %q (%v)", f.Rank, f.Model, info.Meta[onnxgen.MetaRank], err)
		}
	}
	return moved
}

// A run given more trials takes from its shorter plan's final phase the
// models of the networks it retrains again: the same network, search
// weights, settings and images train the same model. Those whose training
// would differ (other settings, or their model gone) are retrained.
func TestResumeMoreTrialsReusesFinals(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Workers = 2
	dir := filepath.Join(cfg.Dir, cfg.Name)
	first := newSearch(t, cfg, newTrialsBetter{&fakeExecutor{}})
	if err := first.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	first.Close()
	short := read(t, rundir.ReadFinals, dir)
	extension := &fakeExecutor{}
	events := runResumed(t, dir, ResumeOptions{Trials: 32}, func(Config) (Executor, error) { return newTrialsBetter{extension}, nil })
	finals := read(t, rundir.ReadFinals, dir)
	if reusedFinals(t, dir, finals, short, extension.jobs) == 0 {
		t.Fatalf("no final of the shorter plan kept under another rank: finals %+v, before %+v", finals, short)
	}
	i := slices.IndexFunc(events, func(e Event) bool { return e.Kind == "final_start" })
	if want := "taken from " + filepath.Join(rundir.DirEarlier, "trials-30"); i < 0 || !strings.Contains(events[i].Message, want) {
		t.Errorf("no final_start event saying %q: %+v", want, events)
	}
	report, _ := os.ReadFile(filepath.Join(dir, rundir.FileReport))
	if !strings.Contains(string(report), "taken from "+filepath.Join(rundir.DirEarlier, "trials-30")+", whose final phase") {
		t.Errorf("the report does not say which finals were taken from the shorter plan:\n%s", report)
	}

	// A damaged record of an earlier plan: warned of, and its networks
	// retrained, not the resume failed.
	damaged := newTrialsBetter{&fakeExecutor{}}
	if err := os.WriteFile(filepath.Join(dir, rundir.DirEarlier, "trials-30", rundir.FileFinal), []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var warned []string
	for _, e := range runResumed(t, dir, ResumeOptions{Trials: 33}, func(Config) (Executor, error) { return damaged, nil }) {
		if strings.Contains(e.Message, "are not taken, as its record cannot be read") {
			warned = append(warned, e.Message)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "the final models of "+filepath.Join(rundir.DirEarlier, "trials-30")) {
		t.Errorf("a damaged earlier record: warnings %q", warned)
	}

	// Another learning rate for the final phase: each trains anew.
	saved, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	saved.Final.LR = 0.0123
	if err := saveConfig(first.dir, saved); err != nil {
		t.Fatal(err)
	}
	other := &fakeExecutor{}
	runResumed(t, dir, ResumeOptions{Trials: 34}, func(Config) (Executor, error) { return newTrialsBetter{other}, nil })
	full := 0
	for _, j := range other.jobs {
		if j.Full {
			full++
		}
	}
	for _, f := range read(t, rundir.ReadFinals, dir) {
		if f.Reused != "" {
			t.Errorf("final #%d with another learning rate taken from %s", f.Rank, f.Reused)
		}
	}
	if full != cfg.Final.TopK {
		t.Errorf("%d final retrainings with another learning rate, want %d", full, cfg.Final.TopK)
	}
}

// newTrialsBetter scores trial 31 above the others.
type newTrialsBetter struct{ *fakeExecutor }

func (n newTrialsBetter) Evaluate(ctx context.Context, job Job) (*Outcome, error) {
	out, err := n.fakeExecutor.Evaluate(ctx, job)
	if out != nil && out.Training != nil && !job.Full && job.Trial == 31 {
		out.Training.ValAccuracy += 0.3
		out.Training.Epochs[0].ValAccuracy = out.Training.ValAccuracy
	}
	return out, err
}

type laterBetter struct{ *fakeExecutor }

func (l laterBetter) Evaluate(ctx context.Context, job Job) (*Outcome, error) {
	out, err := l.fakeExecutor.Evaluate(ctx, job)
	if out != nil && out.Training != nil && !job.Full {
		out.Training.ValAccuracy += 0.002 * float64(job.Trial)
		out.Training.Epochs[0].ValAccuracy = out.Training.ValAccuracy
	}
	return out, err
}

// otherImages is a fakeExecutor whose images have another content hash.
type otherImages struct{ *fakeExecutor }

func (o otherImages) Data() Data {
	d := o.fakeExecutor.Data()
	d.Hash, d.Test = "sha256:other", d.Test+1 // an image added
	return d
}

// A run saves its image folder absolute, so that it resumes from any folder.
// A resume may point to images that moved (ResumeOptions.Data), which then
// replace the folder in config.yaml, but only when they are the run's
// images: other images are refused and change nothing.
func TestResumeMovedImages(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	dir := filepath.Join(cfg.Dir, cfg.Name)
	exec := &fakeExecutor{}
	first := newSearch(t, cfg, exec)
	first.Close()
	saved, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.Abs("unused"); saved.Data != want {
		t.Errorf("config.yaml data: %q, want %q", saved.Data, want)
	}
	before, _ := os.ReadFile(filepath.Join(dir, rundir.FileConfig))
	moved := filepath.Join(t.TempDir(), "leaves")
	_, err = Resume(dir, ResumeOptions{Data: moved}, func(Config) (Executor, error) { return otherImages{exec}, nil })
	if err == nil || !strings.Contains(err.Error(), "the images in "+moved+" are not those the run searched (content hash sha256:other, the run's sha256:test; 301 images in the splits, the run's 300): "+
		"give the run's images with --data; for other images, start a new run") {
		t.Errorf("resume on other images: %v", err)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, rundir.FileConfig)); string(now) != string(before) {
		t.Errorf("a refused resume changed config.yaml:\n%s", now)
	}
	s, err := Resume(dir, ResumeOptions{Data: moved}, func(c Config) (Executor, error) {
		if c.Data != moved {
			t.Errorf("the executor loads %q, want %q", c.Data, moved)
		}
		return exec, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	after, _ := os.ReadFile(filepath.Join(dir, rundir.FileConfig))
	if want := strings.Replace(string(before), "data: "+saved.Data+"\n", "data: "+moved+"\n", 1); string(after) != want || want == string(before) {
		t.Errorf("config.yaml after the resume:\n%s\nwant\n%s", after, want)
	}
}

// Finals that stay at chance are marked so in final.jsonl, and a best model
// at chance brings a warning before the report, which says it too; finals
// above chance bring neither.
func TestFinalAtChanceWarns(t *testing.T) {
	for _, chance := range []bool{true, false} {
		cfg := testConfig(t, t.TempDir())
		s := newSearch(t, cfg, &fakeExecutor{chance: chance})
		var warnings []string
		s.Progress = func(e Event) {
			if e.Kind == "info" && strings.Contains(e.Message, "do not deploy") {
				warnings = append(warnings, e.Message)
			}
		}
		if err := s.Run(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		finals, err := rundir.ReadFinals(filepath.Join(cfg.Dir, cfg.Name))
		if err != nil || len(finals) != 3 {
			t.Fatalf("finals: %d, %v", len(finals), err)
		}
		for _, f := range finals {
			if f.AtChance != chance {
				t.Errorf("chance %v: final %d marked at chance %v", chance, f.Rank, f.AtChance)
			}
		}
		want := 0
		if chance {
			want = 1
		}
		if len(warnings) != want || chance && !strings.HasPrefix(warnings[0], "warning: the best model, winners/best.onnx (rank 1), is no better than chance: validation 0.5000 against the majority share, 0.5000") {
			t.Errorf("chance %v: warnings %q", chance, warnings)
		}
		dir := filepath.Join(cfg.Dir, cfg.Name)
		md, err := os.ReadFile(filepath.Join(dir, rundir.FileReport))
		if err != nil || strings.Contains(string(md), "do not deploy") != chance {
			t.Errorf("chance %v: report.md (%v):\n%s", chance, err, md)
		}
		if sum, err := Summarize(dir); err != nil || sum.WinnerAtChance != chance {
			t.Errorf("chance %v: summary's winner at chance %v (%v)", chance, sum.WinnerAtChance, err)
		}
		// final.jsonl as runs recorded before the mark wrote it: read with
		// the mark all the same, by the validation accuracy.
		for i := range finals {
			finals[i].AtChance = false
		}
		var lines []byte
		for _, f := range finals {
			b, _ := json.Marshal(f)
			lines = append(append(lines, b...), '\n')
		}
		if err := os.WriteFile(filepath.Join(dir, rundir.FileFinal), lines, 0o644); err != nil {
			t.Fatal(err)
		}
		read, err := ReadFinals(dir)
		if err != nil || len(read) != 3 || read[0].AtChance != chance || read[2].AtChance != chance {
			t.Errorf("chance %v: finals read without the mark: %+v, %v", chance, read, err)
		}
		if sum, err := Summarize(dir); err != nil || sum.WinnerAtChance != chance {
			t.Errorf("chance %v: summary's winner at chance %v (%v) without the mark", chance, sum.WinnerAtChance, err)
		}
	}
}

// A final phase stopped part-way picks no best: the report says it is
// incomplete, winners/best.onnx is not there (not even from before), and
// the run's summary gives no best test accuracy; once every final is in,
// the best is picked again.
func TestFinalIncomplete(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	dir := filepath.Join(cfg.Dir, cfg.Name)
	s := newSearch(t, cfg, &fakeExecutor{})
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(filepath.Join(dir, rundir.FileFinal))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSpace(string(whole)), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d finals, want 3", len(lines))
	}
	best := filepath.Join(dir, rundir.BestName)
	for _, tc := range []struct {
		finals   string
		complete bool
	}{{lines[0] + lines[1], false}, {string(whole), true}} {
		if err := os.WriteFile(filepath.Join(dir, rundir.FileFinal), []byte(tc.finals), 0o644); err != nil {
			t.Fatal(err)
		}
		md, _, err := s.writeReport()
		if err != nil {
			t.Fatal(err)
		}
		_, statErr := os.Stat(best)
		sum, err := Summarize(dir)
		if err != nil {
			t.Fatal(err)
		}
		incomplete := strings.Contains(md, "The final phase is incomplete: 2 of 3 models retrained.")
		if incomplete == tc.complete || (statErr == nil) != tc.complete || strings.Contains(md, "Best after retraining") != tc.complete ||
			sum.FinalsPlanned != 3 || (sum.BestTest > 0) != tc.complete || (sum.WinnerArch != "") != tc.complete {
			t.Errorf("complete %v: report says incomplete %v, best.onnx %v, summary %d of %d finals, best test %v\n%s",
				tc.complete, incomplete, statErr, sum.Finals, sum.FinalsPlanned, sum.BestTest, md)
		}
		if tc.complete { // the summary names the network in winners/best.onnx
			b, err := os.ReadFile(best)
			if err != nil {
				t.Fatal(err)
			}
			if info, err := onnxgen.ReadModelInfo(b); err != nil || info.Arch.String() != sum.WinnerArch {
				t.Errorf("summary's winner %q, best.onnx holds %v (%v)", sum.WinnerArch, info.Arch, err)
			}
		}
	}

	// runs show reads the report from the files: while the run's process
	// holds it open the missing finals are still to come; once it is
	// closed, a resume finishes them.
	if err := os.WriteFile(filepath.Join(dir, rundir.FileFinal), []byte(lines[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		running bool
		want    string
	}{
		{true, "The final phase is under way: 1 of 3 models retrained. The best is picked and winners/best.onnx written when the rest are."},
		{false, "The final phase is incomplete: 1 of 3 models retrained."},
	} {
		if !tc.running {
			s.Close()
		}
		rep, err := ReadReport(dir)
		if err != nil {
			t.Fatal(err)
		}
		if md := rep.Markdown(); rep.Running != tc.running || !strings.Contains(md, tc.want) ||
			strings.Contains(md, "--resume") == tc.running {
			t.Errorf("running %v: the report read from the files says running %v, want %q:\n%s", tc.running, rep.Running, tc.want, md)
		}
	}
}

// A stop asked for while the last trials train ends the run before its
// final phase: no retraining starts, and a resume retrains all of them.
func TestStopBeforeFinal(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Workers = 2
	exec := &fakeExecutor{}
	s := newSearch(t, cfg, exec)
	var kinds []string
	stop := make(chan struct{})
	s.Progress = func(e Event) {
		kinds = append(kinds, e.Kind)
		if e.Kind == "trial" && e.Done == cfg.Trials {
			close(stop)
		}
	}
	if err := s.Run(context.Background(), stop); !errors.Is(err, ErrStopped) {
		t.Fatalf("stopped at the last trial: %v, want ErrStopped", err)
	}
	s.Close()
	if slices.Contains(kinds, "final_start") || kinds[len(kinds)-1] != "stopped" {
		t.Errorf("events %v: want no final phase announced, and stopped last", kinds)
	}
	full := 0
	for _, j := range exec.jobs {
		if j.Full {
			full++
		}
	}
	if full > 0 || len(read(t, rundir.ReadTrials, s.Dir())) != cfg.Trials {
		t.Fatalf("stopped at the last trial: %d retrainings began, %d trials recorded", full, len(read(t, rundir.ReadTrials, s.Dir())))
	}
	runResumed(t, s.Dir(), ResumeOptions{}, func(Config) (Executor, error) { return exec, nil })
	if finals := read(t, rundir.ReadFinals, s.Dir()); len(finals) != cfg.Final.TopK {
		t.Errorf("the resumed run has %d finals, want %d", len(finals), cfg.Final.TopK)
	}
}

// A failed retraining ends the final phase, but a retraining that finished
// meanwhile is recorded, not thrown away with those abandoned.
func TestFailedFinalKeepsFinished(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Workers = 3
	s := newSearch(t, cfg, &fakeExecutor{breakFinal: true})
	defer s.Close()
	var last Event
	s.Progress = func(e Event) { last = e }
	err := s.Run(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "retraining broke") {
		t.Fatalf("Run: %v, want the retraining's failure", err)
	}
	if finals := read(t, rundir.ReadFinals, s.Dir()); len(finals) != 1 {
		t.Errorf("%d finals recorded, want the one that finished (not the abandoned one)", len(finals))
	}
	if last.Kind != "failed" || !strings.Contains(last.Message, "retraining broke") {
		t.Errorf("last event %+v, want failed with the error", last)
	}
}

// A run whose report cannot be written ends its events with "failed" too.
func TestReportFailureEndsEvents(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip = true
	s := newSearch(t, cfg, &fakeExecutor{})
	defer s.Close()
	if err := os.Mkdir(filepath.Join(s.Dir(), rundir.FileReport), 0o755); err != nil { // a folder where the file goes
		t.Fatal(err)
	}
	var last Event
	s.Progress = func(e Event) { last = e }
	if err := s.Run(context.Background(), nil); err == nil || last.Kind != "failed" || last.Message != err.Error() {
		t.Errorf("Run: %v; last event %+v, want failed with the error", err, last)
	}
}

// Every trial a stopped run records is reported once: learned ("trial") or,
// when it finished during the stop behind one still in flight, "saved" for
// the resumed run to learn; a "stopped" event ends the run's events.
func TestStopReportsEveryRecordedTrial(t *testing.T) {
	saved := 0
	for stopAt := 1; stopAt <= 9; stopAt++ {
		cfg := testConfig(t, t.TempDir())
		cfg.Workers = 3
		s := newSearch(t, cfg, &fakeExecutor{jitter: true})
		stop := make(chan struct{})
		seen := map[int]string{}
		var last string
		var stoppedDone int
		s.Progress = func(e Event) {
			last = e.Kind
			if e.Kind == "stopped" {
				stoppedDone = e.Done
			}
			if e.Kind == "trial" || e.Kind == "saved" {
				if seen[e.Trial.ID] != "" {
					t.Errorf("stop at %d: trial %d reported twice (%s, %s)", stopAt, e.Trial.ID, seen[e.Trial.ID], e.Kind)
				}
				seen[e.Trial.ID] = e.Kind
				saved += map[string]int{"saved": 1}[e.Kind]
			}
			if e.Kind == "trial" && e.Done == stopAt {
				close(stop)
			}
		}
		if err := s.Run(context.Background(), stop); !errors.Is(err, ErrStopped) {
			t.Fatalf("stop at %d: %v", stopAt, err)
		}
		onDisk := read(t, rundir.ReadTrials, s.Dir())
		for _, tr := range onDisk {
			if seen[tr.ID] == "" {
				t.Errorf("stop at %d: trial %d recorded but never reported", stopAt, tr.ID)
			}
		}
		if len(seen) != len(onDisk) || last != "stopped" {
			t.Errorf("stop at %d: %d reported, %d recorded; last event %q", stopAt, len(seen), len(onDisk), last)
		}
		// The stop's count is of the trials recorded, as its message says
		// and the resume finds.
		if stoppedDone != len(onDisk) || stoppedDone != s.Done() {
			t.Errorf("stop at %d: the stopped event says %d done, %d recorded", stopAt, stoppedDone, len(onDisk))
		}
		s.Close()
		// The resume starts from the same count (here it stops at once).
		r, err := Resume(s.Dir(), ResumeOptions{}, func(Config) (Executor, error) { return &fakeExecutor{jitter: true}, nil })
		if err != nil {
			t.Fatal(err)
		}
		startDone := -1
		r.Progress = func(e Event) {
			if e.Kind == "start" {
				startDone = e.Done
			}
		}
		closed := make(chan struct{})
		close(closed)
		r.Run(context.Background(), closed)
		r.Close()
		if startDone != stoppedDone {
			t.Errorf("stop at %d: stopped with %d done, resumed with %d", stopAt, stoppedDone, startDone)
		}
	}
	t.Logf("%d trials reported as saved over the nine stops", saved)
}

// A run's start and last update come from its logs, not from its files'
// times, so a copied run (here, files touched an hour later) keeps them.
func TestRunTimesFromLogs(t *testing.T) {
	dir := finishedRun(t, testConfig(t, t.TempDir()), &fakeExecutor{jitter: true})
	var started, updated time.Time
	for _, tr := range read(t, rundir.ReadTrials, dir) {
		if b := tr.Finished.Add(-time.Duration(tr.Seconds * float64(time.Second))); started.IsZero() || b.Before(started) {
			started = b
		}
		updated = maxTime(updated, tr.Finished)
	}
	finals := read(t, rundir.ReadFinals, dir)
	for _, f := range finals {
		if f.Finished.Before(started) {
			t.Errorf("final %d recorded at %v, before the run started (%v)", f.Rank, f.Finished, started)
		}
		updated = maxTime(updated, f.Finished)
	}
	later := time.Now().Add(time.Hour)
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, later, later)
	})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Summarize(dir)
	if err != nil || len(finals) == 0 {
		t.Fatalf("%v (%d finals)", err, len(finals))
	}
	if !sum.Started.Equal(started) || !sum.Updated.Equal(updated) {
		t.Errorf("copied run: started %v, updated %v; want %v and %v from its logs", sum.Started, sum.Updated, started, updated)
	}

	// Before its first trial, a run has only its config.yaml's time.
	fresh := filepath.Join(t.TempDir(), "fresh")
	d, err := rundir.Create(fresh, []byte("kind: metaqnn\n"))
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	fi, _ := os.Stat(filepath.Join(fresh, rundir.FileConfig))
	if sum, err := Summarize(fresh); err != nil || !sum.Started.Equal(fi.ModTime()) || !sum.Updated.Equal(fi.ModTime()) {
		t.Errorf("a run without trials: %+v, %v; want both times %v", sum, err, fi.ModTime())
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// A resume with more trials moves nothing when the run's settings are
// lost or changed: an empty config.yaml is refused as it is read, and one
// whose settings do not draw the log's first trial before anything is set
// aside (the replay would find it only after). A config.yaml that is not
// YAML, and a file given for the run, are named as such.
func TestResumeRefusesChangedSettings(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	dir := finishedRun(t, cfg, &fakeExecutor{})
	path := filepath.Join(dir, rundir.FileConfig)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ReadConfig(dir) // the settings as saved, with the data's absolute path
	if err != nil {
		t.Fatal(err)
	}
	other.Seed = 43
	changed, err := other.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	exec := func(Config) (Executor, error) { return &fakeExecutor{}, nil }
	for _, tc := range []struct {
		name, config, want string
	}{
		{"empty", "\n", path + " is empty: the run's settings are lost"},
		{"another seed", string(changed), path + " was edited since nasctl wrote it (seed: 42 -> 43): "},
		{"more trials", strings.Replace(string(good), "trials: ", "trials: 1", 1), "(nasctl's copy is .config.yaml.written) (trials: resume with --trials N instead)"},
		{"not YAML", "kind: [metaqnn\n", path + " is not valid YAML: "},
		// Cut short (a full disk): not "edited" to defaults.
		{"cut short", string(good[:len(good)/2]), path + " is cut short: it holds the first "},
		// A run of an older nasctl has no copy to compare with: its first
		// trial is drawn again before anything is moved.
		{"another seed, no copy", string(changed), "trial 1 is " + read(t, rundir.ReadTrials, dir)[0].Arch + ", but these settings propose "},
	} {
		if strings.HasSuffix(tc.name, "no copy") {
			os.Remove(filepath.Join(dir, rundir.FileConfigWritten))
		}
		if err := os.WriteFile(path, []byte(tc.config), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Resume(dir, ResumeOptions{Trials: cfg.Trials + 5}, exec)
		after, _ := os.ReadFile(path)
		_, statErr := os.Stat(filepath.Join(dir, rundir.DirEarlier))
		if err == nil || !strings.Contains(err.Error(), tc.want) || string(after) != tc.config || !errors.Is(statErr, os.ErrNotExist) {
			t.Errorf("%s: %v (want %q); config.yaml changed %v; earlier/: %v", tc.name, err, tc.want, string(after) != tc.config, statErr)
		}
	}
	if _, err := ReadConfig(filepath.Join(dir, rundir.FileTrials)); err == nil || !strings.Contains(err.Error(), "is a file, not a run directory") {
		t.Errorf("a file for a run: %v", err)
	}
	// With its settings back, the run goes on to more trials.
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	runResumed(t, dir, ResumeOptions{Trials: cfg.Trials + 5}, exec)
	if n := len(read(t, rundir.ReadTrials, dir)); n != cfg.Trials+5 {
		t.Errorf("%d trials after the resume, want %d", n, cfg.Trials+5)
	}
}

// A final model whose search weights are gone trains from fresh weights:
// the final phase warns before it starts, the record says so, and the
// report does not claim every model was fine-tuned.
func TestFinalWithoutSearchWeights(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip = true
	exec := &fakeExecutor{}
	dir := finishedRun(t, cfg, exec)
	models, err := os.ReadDir(filepath.Join(dir, rundir.DirModels))
	if err != nil || len(models) != cfg.Final.TopK {
		t.Fatalf("%d search models kept: %v", len(models), err)
	}
	gone := filepath.Join(rundir.DirModels, models[1].Name())
	if err := os.Remove(filepath.Join(dir, gone)); err != nil {
		t.Fatal(err)
	}
	events := runResumed(t, dir, ResumeOptions{SkipFinal: new(bool)}, func(Config) (Executor, error) { return exec, nil })
	rank := 0
	for _, f := range read(t, rundir.ReadFinals, dir) {
		if fresh := strings.Contains(f.Reason, freshWeights); fresh != (rundir.ModelName(f.Trial) == gone) {
			t.Errorf("final #%d (trial %d): reason %q", f.Rank, f.Trial, f.Reason)
		} else if fresh {
			rank = f.Rank
		}
	}
	want := fmt.Sprintf("warning: the search weights of #%d (%s) are missing: these retrain from fresh weights", rank, gone)
	if !slices.ContainsFunc(events, func(e Event) bool { return e.Kind == "info" && strings.HasPrefix(e.Message, want) }) {
		t.Errorf("no warning %q among the events", want)
	}
	report := fmt.Sprintf("Retrained from their search weights (rank %d from fresh weights: their search weights were missing) on the whole training split", rank)
	if b, _ := os.ReadFile(filepath.Join(dir, rundir.FileReport)); !strings.Contains(string(b), report) {
		t.Errorf("report.md lacks %q:\n%s", report, b)
	}
}

// A run searched without its final phase takes another final
// augmentation on a resume: config.yaml keeps it, and the finals that a
// later resume adds train with it. Once a final is recorded another
// augmentation is refused, config.yaml left as it was; the same one
// (written otherwise) is not, nor another with more trials, whose plan
// retrains every final with it.
func TestResumeFinalAugment(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip, cfg.Train.Augment = true, "flips"
	exec := &fakeExecutor{}
	dir := finishedRun(t, cfg, exec)
	open := func(o ResumeOptions) error {
		s, err := Resume(dir, o, func(Config) (Executor, error) { return exec, nil })
		if err == nil {
			s.Close()
		}
		return err
	}
	finalsWith := func(aug string) {
		t.Helper()
		want, _ := runtime.ParseAugment(aug)
		var finals int
		for _, j := range exec.jobs {
			if j.Full {
				finals++
				if j.Config.Augment != want {
					t.Errorf("final of trial %d trained with augment %v, want %v", j.Trial, j.Config.Augment, want)
				}
			}
		}
		if finals != cfg.Final.TopK {
			t.Errorf("%d finals trained, want %d (none taken from an earlier plan)", finals, cfg.Final.TopK)
		}
		exec.jobs = nil
	}
	exec.jobs = nil
	runResumed(t, dir, ResumeOptions{FinalAugment: new("flips,shift:2")}, func(Config) (Executor, error) { return exec, nil })
	runResumed(t, dir, ResumeOptions{SkipFinal: new(false)}, func(Config) (Executor, error) { return exec, nil })
	finalsWith("flips,shift:2")
	saved, err := ReadConfig(dir)
	if err != nil || saved.Final.Augment != "flips,shift:2" || saved.Train.Augment != "flips" || saved.Final.Skip {
		t.Errorf("config.yaml after the resume: final %+v, train.augment %q, %v", saved.Final, saved.Train.Augment, err)
	}
	if err := checkUnedited(dir); err != nil {
		t.Errorf("config.yaml written with the change, as nasctl's copy: %v", err)
	}

	err = open(ResumeOptions{FinalAugment: new("flips")})
	begun := (*FinalStartedError)(nil)
	if !errors.As(err, &begun) || begun.Finals != cfg.Final.TopK || !strings.Contains(err.Error(), "final.augment (--final-augment) can no longer change") {
		t.Errorf("another final augmentation once the finals are recorded: %v", err)
	}
	if now, err := ReadConfig(dir); err != nil || now.Final.Augment != "flips,shift:2" {
		t.Errorf("config.yaml after the refusal: final.augment %q, %v", now.Final.Augment, err)
	}
	if err := open(ResumeOptions{FinalAugment: new("shift:2,flips")}); err != nil {
		t.Errorf("the same final augmentation written otherwise: %v", err)
	}
	runResumed(t, dir, ResumeOptions{FinalAugment: new("flips"), Trials: cfg.Trials + 2}, func(Config) (Executor, error) { return exec, nil })
	finalsWith("flips")
}

// A final model that cannot be written into the run (a full disk; here a
// folder in its place) is kept in the temporary folder, and the error says
// where, with its figures; the run records no final without its model.
func TestFinalModelRescued(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip, cfg.Workers = true, 1
	exec := &fakeExecutor{}
	dir := finishedRun(t, cfg, exec)
	if err := os.MkdirAll(filepath.Join(dir, rundir.WinnerName(1), "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Resume(dir, ResumeOptions{SkipFinal: new(bool)}, func(Config) (Executor, error) { return exec, nil })
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(context.Background(), nil)
	s.Close()
	m := regexp.MustCompile(`^writing \S+/winners/rank-01\.onnx: .*; final #1 \(val [0-9.]+, test [0-9.]+\) is saved in (\S+) instead, and a resume trains it again$`).FindStringSubmatch(fmt.Sprint(err))
	if m == nil {
		t.Fatalf("the final phase with rank 1's model unwritable: %v", err)
	}
	defer os.Remove(m[1])
	if b, err := os.ReadFile(m[1]); err != nil || len(b) == 0 {
		t.Errorf("the rescued model: %d bytes, %v", len(b), err)
	}
	if finals := read(t, rundir.ReadFinals, dir); slices.ContainsFunc(finals, func(f rundir.FinalResult) bool { return f.Rank == 1 }) {
		t.Errorf("final #1 recorded without its model: %+v", finals)
	}
}

// What counts as an edit of config.yaml: a changed value, named by its
// path; not a comment, another layout or a default written out.
func TestSettingsChanged(t *testing.T) {
	base := "kind: metaqnn\nseed: 7\ntrain:\n    epochs: 3\n"
	for _, c := range []struct {
		name, after, want string
	}{
		{"a comment and another layout", "# mine\nkind: metaqnn\ntrain: {epochs: 3}\nseed: 7\n", ""},
		{"a default written out", base + "data_fraction: " + fmt.Sprint(Config{}.WithDefaults().DataFraction) + "\n", ""},
		{"the epochs", strings.Replace(base, "epochs: 3", "epochs: 2", 1), "train.epochs: 3 -> 2"},
		{"the seed and the epochs", "kind: metaqnn\nseed: 8\ntrain:\n    epochs: 2\n", "seed: 7 -> 8; train.epochs: 3 -> 2"},
	} {
		got, err := settingsChanged([]byte(base), []byte(c.after))
		if err != nil || strings.Join(got, "; ") != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

// A damaged line in the middle of the log stops a resume with what to do,
// and doing it (the line and those after it deleted, and the checkpoint)
// gives back the same run.
func TestDamagedLogSaysHowToGoOn(t *testing.T) {
	dir := finishedRun(t, testConfig(t, t.TempDir()), &fakeExecutor{})
	want := read(t, rundir.ReadTrials, dir)
	log := filepath.Join(dir, rundir.FileTrials)
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	damaged := strings.Join(lines[:9], "") + `{"id": 10, "arch` + "\x00\n" + strings.Join(lines[10:], "")
	if err := os.WriteFile(log, []byte(damaged), 0o644); err != nil {
		t.Fatal(err)
	}
	// A viewer still has the nine trials before the line, and the error.
	before, err := rundir.ReadTrials(dir)
	if le := (*rundir.LineError)(nil); !errors.As(err, &le) || le.Line != 10 || len(before) != 9 || before[8].ID != want[8].ID {
		t.Errorf("trials before the damaged line: %d, %v", len(before), err)
	}
	if sum, err := Summarize(dir); err != nil || sum.Trials != 9 || !strings.Contains(sum.Error, "trials.jsonl line 10: ") || sum.StatusOf(false) == RunFinished {
		t.Errorf("summary of the damaged run: %+v, %v", sum, err)
	}
	if _, err := ReadReport(dir); err == nil {
		t.Error("a report of the damaged run was built")
	}
	exec := func(Config) (Executor, error) { return &fakeExecutor{}, nil }
	_, err = Resume(dir, ResumeOptions{}, exec)
	if err == nil || !strings.Contains(err.Error(), "trials.jsonl line 10: ") || !strings.Contains(err.Error(), "delete line 10 and those after it and agent.state, and resume") {
		t.Fatalf("a resume of a damaged log: %v", err)
	}
	if err := os.WriteFile(log, []byte(strings.Join(lines[:9], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, rundir.FileAgent)); err != nil {
		t.Fatal(err)
	}
	runResumed(t, dir, ResumeOptions{}, exec)
	sameTrials(t, read(t, rundir.ReadTrials, dir), want)
}

// interruptedBadWeights is a fakeExecutor whose trainings are interrupted
// with weights that do not fit the network.
type interruptedBadWeights struct{ *fakeExecutor }

func (i interruptedBadWeights) Evaluate(ctx context.Context, job Job) (*Outcome, error) {
	out, err := i.fakeExecutor.Evaluate(ctx, job)
	if err != nil {
		return out, err
	}
	out.Training.Weights = out.Training.Weights[:1]
	return out, context.Canceled
}

// An interrupted training whose best epoch cannot be exported says so, and
// still reports the interruption.
func TestFitInterruptedExportFails(t *testing.T) {
	g := genotype.MustParse("C(8,3,1) - SM()")
	f, err := Fit(context.Background(), interruptedBadWeights{&fakeExecutor{}}, Job{Genotype: g, Full: true}, nil)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "could not be exported") {
		t.Errorf("error %v; want the interruption and the failed export", err)
	}
	if f == nil || f.Model != nil {
		t.Errorf("fitted %+v; want one without a model", f)
	}
}

// The final phase trains EpochFactor times the trials' epochs, rounded to
// the nearest epoch, and at least one.
func TestFinalEpochs(t *testing.T) {
	for _, tc := range []struct {
		epochs int
		factor float64
		want   int
	}{{10, 3, 30}, {15, 1.5, 23}, {15, 1.4, 21}, {5, 0.1, 1}, {3, 0.5, 2}} {
		var c Config
		c.Train.Epochs, c.Final.EpochFactor = tc.epochs, tc.factor
		if got := c.finalEpochs(); got != tc.want {
			t.Errorf("%d epochs x %g: %d final epochs, want %d", tc.epochs, tc.factor, got, tc.want)
		}
	}
}

// The ranking puts the higher reward first and, among equal rewards, the
// earlier trial, learned or not; only trials evaluated (ok) rank, and only
// the first trial of an architecture.
func TestRankedOrder(t *testing.T) {
	s := &Search{byKey: map[string]int{}, best: -1}
	s.cfg.Final.TopK = 3
	for _, tr := range []rundir.Trial{
		{Candidate: rundir.Candidate{ID: 1, Arch: "a"}, Status: rundir.StatusOK, Reward: 0.5},
		{Candidate: rundir.Candidate{ID: 2, Arch: "b"}, Status: rundir.StatusRefused, Reward: 0.99},
		{Candidate: rundir.Candidate{ID: 3, Arch: "c"}, Status: rundir.StatusOK, Reward: 0.9},
		{Candidate: rundir.Candidate{ID: 5, Arch: "d"}, Status: rundir.StatusOK, Reward: 0.9},
		{Candidate: rundir.Candidate{ID: 6, Arch: "c"}, Status: rundir.StatusReused, Reward: 0.9},
	} {
		s.remember(tr)
	}
	unlearned := []rundir.Trial{
		{Candidate: rundir.Candidate{ID: 4, Arch: "e"}, Status: rundir.StatusOK, Reward: 0.9},
		{Candidate: rundir.Candidate{ID: 7, Arch: "d"}, Status: rundir.StatusReused, Reward: 0.9},
		{Candidate: rundir.Candidate{ID: 8, Arch: "f"}, Status: rundir.StatusFailed, Reward: 0.95},
		{Candidate: rundir.Candidate{ID: 9, Arch: "g"}, Status: rundir.StatusRefused, Reward: 0.97},
	}
	var ids []int
	for _, tr := range s.ranked(unlearned) {
		ids = append(ids, tr.ID)
	}
	if want := []int{3, 4, 5, 1}; !slices.Equal(ids, want) {
		t.Errorf("ranked: trials %v, want %v", ids, want)
	}
	ids = nil
	for _, tr := range s.top(unlearned) {
		ids = append(ids, tr.ID)
	}
	if want := []int{3, 4, 5}; !slices.Equal(ids, want) {
		t.Errorf("top 3: trials %v, want %v", ids, want)
	}
	if s.best < 0 || s.trials[s.best].ID != 3 {
		t.Errorf("best learned trial at %d, want trial 3", s.best)
	}
}

// A trained search keeps trials.csv up to date with every trial learned:
// when the final phase starts, the file holds them all.
func TestTrialsCSVBeforeFinalPhase(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := newSearch(t, cfg, &fakeExecutor{})
	checked := false
	s.Progress = func(e Event) {
		if e.Kind != "final_start" {
			return
		}
		f, err := os.Open(filepath.Join(dir, cfg.Name, rundir.FileTrialsCSV))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil || len(rows)-1 != len(s.trials) {
			t.Errorf("at the final phase's start trials.csv holds %d trials (%v), %d are learned", len(rows)-1, err, len(s.trials))
		}
		checked = true
	}
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Fatal("no final_start event")
	}
}

// A run that evaluated nothing names the commonest kind of reason (figures
// aside), with the last reason of that kind, not the last of all: 19
// latency refusals and then one over the parameter limit.
func TestNothingEvaluatedCommonestReason(t *testing.T) {
	var trials []rundir.Trial
	for i := range 19 {
		trials = append(trials, rundir.Trial{Status: rundir.StatusRefused, Reason: fmt.Sprintf("predicted latency 0.00%d ms exceeds the limit of 0.001 ms", 30+i)})
	}
	trials = append(trials, rundir.Trial{Status: rundir.StatusRefused, Reason: "180081 parameters exceed the limit of 160000"})
	err := nothingEvaluated(trials, "run")
	if !errors.Is(err, ErrNothingEvaluated) || !strings.Contains(err.Error(), "(20 refused); the commonest reason (19 of 20 trials), the last of them: predicted latency 0.0048 ms exceeds the limit of 0.001 ms (") {
		t.Errorf("%v", err)
	}
	// Figures with their units and exponents are figures too.
	for _, pair := range [][2]string{
		{"needs 12.5MiB of memory, 3KiB available", "needs 900KiB of memory, 1.2GiB available"},
		{"diverged at learning rate 1e-05", "diverged at learning rate 0.003"},
	} {
		if a, b := reasonKind(pair[0]), reasonKind(pair[1]); a != b {
			t.Errorf("%q and %q are of kinds %q and %q", pair[0], pair[1], a, b)
		}
	}
	// Trials without a reason: no reason is named, rather than an empty one.
	if err := nothingEvaluated([]rundir.Trial{{Status: rundir.StatusFailed}}, "run"); err == nil || err.Error() != "no trial of the run was evaluated (1 failed) (every trial is in run/trials.csv)" {
		t.Errorf("without reasons: %v", err)
	}
	if err := nothingEvaluated(append(trials, rundir.Trial{Status: rundir.StatusOK}), "run"); err != nil {
		t.Errorf("with an evaluated trial: %v", err)
	}
	// Every network over the parameter limit: the smallest one drawn says
	// how far the limit is from this space's networks.
	over := []rundir.Trial{
		{Candidate: rundir.Candidate{Arch: "C(8,5,1) - SM()"}, Status: rundir.StatusRefused, Params: 7785, Reason: "7785 parameters exceed the limit of 200"},
		{Candidate: rundir.Candidate{Arch: "C(32,3,1) - GAP()"}, Status: rundir.StatusRefused, Params: 353, Reason: "353 parameters exceed the limit of 200"},
		{Candidate: rundir.Candidate{Arch: "C(8,1,1) - SM()"}, Status: rundir.StatusRefused, Params: 90, Reason: "predicted latency 0.5 ms exceeds the limit of 0.1 ms"},
		{Candidate: rundir.Candidate{Arch: "C(8,5,1) - SM()"}, Status: rundir.StatusReused, Reason: "7785 parameters exceed the limit of 200"},
	}
	if err := nothingEvaluated(over, "run"); err == nil || !strings.HasSuffix(err.Error(),
		"; the smallest network over the parameter limit, C(32,3,1) - GAP(), has 353 parameters: a new run with a limit above that trains some (every trial is in run/trials.csv)") {
		t.Errorf("every network over the parameter limit: %v", err)
	}
	if err := nothingEvaluated(trials, "run"); err == nil || strings.Contains(err.Error(), "smallest network") {
		t.Errorf("mostly over the latency limit: %v", err)
	}
}
