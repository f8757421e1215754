package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
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
}

func (f *fakeExecutor) Data() Data {
	return Data{Input: genotype.Input{Height: 16, Width: 16, Channels: 1}, Classes: []string{"a", "b"}, Hash: "sha256:test",
		Train: 100, Full: 200, Val: 50, Test: 50, ValMajority: 0.5}
}

func fakeReward(a genotype.Arch) float64 {
	convs := 0
	for _, l := range a {
		if l.Kind == genotype.Conv {
			convs++
		}
	}
	return 0.5 + 0.1*float64(min(convs, 4)) - 0.01*float64(len(a))
}

func (f *fakeExecutor) Train(ctx context.Context, job Job) (*runtime.Result, error) {
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
		time.Sleep(time.Duration(mathrand.IntN(3000)) * time.Microsecond)
	}
	f.mu.Lock()
	f.trained = append(f.trained, job.Arch.String())
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
	net, err := job.Arch.Build(f.Data().Input, 2)
	if err != nil {
		return nil, err
	}
	acc := fakeReward(job.Arch)
	if job.Full {
		acc = min(acc+0.05, 1)
	}
	return &runtime.Result{Status: runtime.StatusOK, Params: net.Params(), MACs: net.MACs(), ValAccuracy: acc, BestEpoch: 1,
		Weights: onnxgen.Init(onnxgen.Params(net), nil2rand()), Seconds: 0.01}, nil
}

func (f *fakeExecutor) Test(ctx context.Context, model []byte) (*runtime.Evaluation, error) {
	info, err := onnxgen.ReadModelInfo(model)
	if err != nil {
		return nil, err
	}
	return &runtime.Evaluation{N: 50, Correct: 40, Accuracy: fakeReward(info.Arch)}, nil
}

func testConfig(t *testing.T, dir string) Config {
	c, err := Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	c.Dir, c.Name, c.Data = dir, "run", "unused"
	c.Schedule = ScheduleSpec{controller.Schedule{{Epsilon: 1, Models: 12}, {Epsilon: 0.5, Models: 8}, {Epsilon: 0.1, Models: 10}}}
	c.Final.TopK = 3
	c.Workers = 1 // one worker: the trial order is deterministic
	c.Space.MaxMACs = 0
	c.Budget = runtime.Budget{MaxMACs: 2_000_000}
	c.Seed = 42
	c = c.WithDefaults()
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	return c
}

func newSearch(t *testing.T, cfg Config, exec Executor) *Search {
	t.Helper()
	store, err := Create(filepath.Join(cfg.Dir, cfg.Name), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s, err := New(cfg, store, exec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A whole search: every slot of the schedule ends as a recorded trial, each
// architecture is trained once (duplicates reuse the reward), budget
// refusals are recorded, the final phase and the report are written.
func TestSearchRun(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
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
	counts := map[string]int{}
	for i, tr := range trials {
		counts[tr.Status]++
		if tr.ID != i+1 {
			t.Errorf("trial %d has id %d", i, tr.ID)
		}
		switch tr.Status {
		case StatusReused:
			if orig, ok := seen[tr.Arch]; !ok || orig != tr.ReusedFrom {
				t.Errorf("trial %d reuses %d, the first training of %s was %d", tr.ID, tr.ReusedFrom, tr.Arch, orig)
			}
		case StatusRefused:
			if tr.Reward != 0 || !strings.Contains(tr.Reason, "exceed the limit") {
				t.Errorf("refused trial %+v", tr)
			}
			seen[tr.Arch] = tr.ID
		default:
			if _, dup := seen[tr.Arch]; dup {
				t.Errorf("%s trained twice", tr.Arch)
			}
			seen[tr.Arch] = tr.ID
		}
	}
	if len(exec.trained) != counts[StatusOK]+3 { // + the final phase's 3 retrainings
		t.Errorf("executor trained %d times for %d ok trials", len(exec.trained), counts[StatusOK])
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
	if counts[StatusReused] == 0 || counts[StatusRefused] == 0 {
		t.Errorf("counts %v: the test needs reused and refused trials; pick another seed", counts)
	}
	t.Logf("counts %v", counts)
	// On disk: the log equals the trials, the report and winners exist.
	logged, err := readJSONL[Trial](filepath.Join(cfg.Dir, cfg.Name, fileTrials), false)
	if err != nil || len(logged) != 30 {
		t.Fatalf("log has %d trials: %v", len(logged), err)
	}
	for _, f := range []string{fileReportM, fileReportC, fileCSV, fileQTable, fileReplay, fileData, "winners/rank-01.onnx", "winners/best.onnx", "plots/accuracy.png", "plots/epsilon.svg", "plots/params.png"} {
		if _, err := os.Stat(filepath.Join(cfg.Dir, cfg.Name, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	finals, _ := s.store.Finals()
	if len(finals) != 3 || finals[0].Rank != 1 {
		t.Fatalf("finals %+v", finals)
	}
	top := s.ranked()
	for i, f := range finals {
		if f.Trial != top[i].ID || f.ValAccuracy != min(top[i].ValAccuracy+0.05, 1) {
			t.Errorf("final %d: %+v, top %+v", i, f, top[i])
		}
	}
	// Only the top K search models are kept.
	models, _ := os.ReadDir(filepath.Join(cfg.Dir, cfg.Name, dirModels))
	if len(models) != 3 {
		t.Errorf("%d search models kept, want 3", len(models))
	}
	if events[0].Kind != "start" || events[len(events)-1].Kind != "done" {
		t.Errorf("events from %s to %s", events[0].Kind, events[len(events)-1].Kind)
	}
}

// Stopping after some trials and resuming gives exactly the trials of an
// uninterrupted run: the agent is rebuilt from the log.
func TestResumeEqualsUninterrupted(t *testing.T) {
	whole := testConfig(t, t.TempDir())
	whole.Final.Skip = true
	s := newSearch(t, whole, &fakeExecutor{})
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	want := s.Trials()

	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip = true
	stop := make(chan struct{})
	s1 := newSearch(t, cfg, &fakeExecutor{})
	n := 0
	s1.Progress = func(e Event) {
		if e.Kind == "trial" {
			if n++; n == 11 {
				close(stop)
			}
		}
	}
	if err := s1.Run(context.Background(), stop); !errors.Is(err, ErrStopped) {
		t.Fatalf("stopped run returned %v", err)
	}
	done := len(s1.Trials())
	s1.store.Close()

	store, saved, trials, err := Open(filepath.Join(cfg.Dir, cfg.Name))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if len(trials) != done || !reflect.DeepEqual(saved.Schedule, cfg.Schedule) {
		t.Fatalf("reopened %d trials (want %d), schedule %v", len(trials), done, saved.Schedule)
	}
	s2, err := New(saved.WithDefaults(), store, &fakeExecutor{}, trials)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	got := s2.Trials()
	if len(got) != len(want) {
		t.Fatalf("%d trials after resume, uninterrupted %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Arch != want[i].Arch || got[i].Status != want[i].Status || got[i].Reward != want[i].Reward {
			t.Errorf("trial %d: resumed %d %s %s %v, uninterrupted %d %s %s %v", i, got[i].ID, got[i].Arch, got[i].Status, got[i].Reward,
				want[i].ID, want[i].Arch, want[i].Status, want[i].Reward)
		}
	}
}

// Cancelling abandons the trials in flight: nothing of them is recorded,
// while a trial that finished before is in the log.
func TestCancelAbandonsInFlight(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Workers = 2
	exec := &fakeExecutor{block: make(chan struct{})}
	s := newSearch(t, cfg, exec)
	logPath := filepath.Join(cfg.Dir, cfg.Name, fileTrials)
	trainedIn := func(log []Trial) []Trial {
		var ok []Trial
		for _, tr := range log {
			if tr.Status == StatusOK {
				ok = append(ok, tr)
			}
		}
		return ok
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // let exactly one trial through, then cancel once it is logged
		exec.block <- struct{}{}
		for {
			log, err := readJSONLTolerant[Trial](logPath)
			if err != nil || len(trainedIn(log)) > 0 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if err := s.Run(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	log, err := readJSONL[Trial](logPath, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range log {
		if tr.Status == StatusFailed {
			t.Errorf("abandoned trial recorded as %+v", tr)
		}
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
		if tr.Status == StatusFailed {
			failed++
		}
	}
	if failed != 3 {
		t.Errorf("%d failed trials recorded", failed)
	}
}

func TestCreateRefusesExistingRun(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	s := newSearch(t, cfg, &fakeExecutor{})
	_ = s
	if _, err := Create(filepath.Join(cfg.Dir, cfg.Name), cfg); !errors.Is(err, ErrRunExists) {
		t.Errorf("second Create: %v", err)
	}
	// The first store holds the lock: opening it again fails.
	if _, _, _, err := Open(filepath.Join(cfg.Dir, cfg.Name)); err == nil || !strings.Contains(err.Error(), "in use by another nasctl process") {
		t.Errorf("Open while locked: %v", err)
	}
	if _, _, _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a run directory") {
		t.Errorf("Open of an empty dir: %v", err)
	}
}

func TestTornLogLine(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	store, err := Create(filepath.Join(dir, "run"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if err := store.Append(Trial{ID: i, Arch: "SM()", Status: StatusOK}); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	f, _ := os.OpenFile(filepath.Join(dir, "run", fileTrials), os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprint(f, `{"id":3,"arch":"C(8`) // a write cut by kill -9
	f.Close()
	store, _, trials, err := Open(filepath.Join(dir, "run"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if len(trials) != 2 {
		t.Errorf("%d trials after a torn line, want 2", len(trials))
	}
	if err := store.Append(Trial{ID: 3, Arch: "GAP()", Status: StatusOK}); err != nil {
		t.Fatal(err)
	}
	all, err := readJSONL[Trial](filepath.Join(dir, "run", fileTrials), false)
	if err != nil || len(all) != 3 || all[2].Arch != "GAP()" {
		t.Errorf("log after append: %v %+v", err, all)
	}
}

func nil2rand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

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
		case StatusRefused:
			refused++
			if tr.Params <= 3000 || !strings.Contains(tr.Reason, "parameters exceed the limit of 3000") {
				t.Errorf("refused %+v", tr)
			}
		case StatusOK:
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
	var runs [2][]Trial
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
			var runs [2][]Trial
			for i := range runs {
				cfg := testConfig(t, t.TempDir())
				cfg.Space.Space = genotype.Space{Name: "tiny", ConvFilters: []int{8}, ConvKernels: []int{3}, ConvStrides: []int{1}, MaxDepth: 1}
				cfg.Workers = 2
				cfg.Seed = tc.seed
				cfg.Final.Skip = true
				exec := &fakeExecutor{failOn: tc.failOn, failed: make(chan struct{}), slowOn: tc.slowOn, jitter: true}
				s := newSearch(t, cfg, exec)
				if err := s.Run(context.Background(), nil); err != nil {
					t.Fatal(err)
				}
				runs[i] = s.Trials()
				byID := map[int]Trial{}
				for _, tr := range runs[i] {
					byID[tr.ID] = tr
				}
				failed, dup := byID[tc.failOn], byID[tc.dup]
				if failed.Status != StatusFailed || dup.Arch != failed.Arch {
					t.Fatalf("trial %d: %s %s, trial %d: %s; the test needs the first failed and the second a duplicate of it", failed.ID, failed.Arch, failed.Status, dup.ID, dup.Arch)
				}
				if dup.Status != StatusOK {
					t.Errorf("trial %d, a duplicate of failed trial %d: %s (reused from %d), want trained", dup.ID, failed.ID, dup.Status, dup.ReusedFrom)
				}
				for _, tr := range runs[i] {
					if tr.Status == StatusReused && byID[tr.ReusedFrom].Status != StatusOK {
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
	counts := map[string]int{}
	for _, tr := range s.Trials() {
		counts[tr.Status]++
		switch tr.Status {
		case StatusFailed:
			if tr.Params > 3000 || !strings.HasPrefix(tr.Reason, why) {
				t.Errorf("failed %+v", tr)
			}
		case StatusRefused:
			if tr.LatencyMs != 0 {
				t.Errorf("latency measured for %s, refused as: %s", tr.Arch, tr.Reason)
			}
		default:
			t.Errorf("trial %d is %s", tr.ID, tr.Status)
		}
	}
	if counts[StatusFailed] != 3 || counts[StatusRefused] == 0 {
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
	for _, tc := range []struct {
		name  string
		model []byte
		err   string
	}{
		{"older", old, fmt.Sprintf("has 6 coefficients, but this nasctl's latency model has %d", len(bench.Features))},
		{"current", current, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.Final.Skip = true
			cfg.Reward = RewardSettings{Mode: RewardConstraint, MaxLatencyMs: 1}.withDefaults()
			s := newSearch(t, cfg, &fakeExecutor{})
			if err := os.WriteFile(filepath.Join(s.store.Dir, fileLatencyModel), tc.model, 0o644); err != nil {
				t.Fatal(err)
			}
			err := s.Run(context.Background(), nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "delete the file and resume") {
					t.Errorf("Run: %v; want %q and what to do", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range s.Trials() {
				if tr.Status == StatusOK && tr.LatencyMs != 0.5 {
					t.Errorf("trial %d: latency %v ms, want the saved model's 0.5", tr.ID, tr.LatencyMs)
				}
			}
		})
	}
}

// New learns a resumed log in trial order, whatever order it was written in
// (with several workers, trials are logged as they finish): a shuffled log
// rebuilds the agent of the search that wrote it, as the ordered one does.
func TestNewLearnsInTrialOrder(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip = true
	s := newSearch(t, cfg, &fakeExecutor{})
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	ordered := s.Trials()
	shuffled := slices.Clone(ordered)
	rand.New(rand.NewPCG(1, 1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	byID := func(a, b Trial) int { return a.ID - b.ID }
	if slices.IsSortedFunc(shuffled, byID) {
		t.Fatal("the shuffle left the log in order; pick another seed")
	}
	for name, log := range map[string][]Trial{"ordered": ordered, "shuffled": shuffled} {
		store, err := Create(filepath.Join(t.TempDir(), "run"), cfg)
		if err != nil {
			t.Fatal(err)
		}
		r, err := New(cfg, store, &fakeExecutor{}, log)
		store.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.agent.Table.Q, s.agent.Table.Q) || !reflect.DeepEqual(r.agent.Table.Memory, s.agent.Table.Memory) {
			t.Errorf("%s log: the rebuilt agent differs from the search's", name)
		}
		if !reflect.DeepEqual(r.Trials(), ordered) || r.nextID != s.nextID {
			t.Errorf("%s log: trials or next id (%d, want %d) differ", name, r.nextID, s.nextID)
		}
	}
}
