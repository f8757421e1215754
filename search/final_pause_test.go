package search

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nasctl/nasctl/internal/buildinfo"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
)

// pausingExecutor is a fakeExecutor whose final retrainings, when pauses
// is set, wait for their TrainConfig.Pause and pause after epoch 2, as
// runtime.Train does; resumed ones note the state they went on from.
type pausingExecutor struct {
	*fakeExecutor
	pauses  bool
	mu      *sync.Mutex
	resumed map[int]int // trial: the epoch its state stood at
}

func newPausingExecutor(pauses bool) pausingExecutor {
	return pausingExecutor{fakeExecutor: &fakeExecutor{}, pauses: pauses, mu: &sync.Mutex{}, resumed: map[int]int{}}
}

func (p pausingExecutor) Evaluate(ctx context.Context, job Job) (*Outcome, error) {
	switch {
	case job.Full && job.Config.Resume != nil:
		p.mu.Lock()
		p.resumed[job.Trial] = job.Config.Resume.Epoch
		p.mu.Unlock()
	case job.Full && p.pauses && job.Config.Pause != nil:
		select {
		case <-job.Config.Pause:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		st := &runtime.TrainState{Epoch: 2, LR: float64(job.Trial), Order: []int{job.Trial}, Seconds: pausedSeconds}
		return &Outcome{Training: &runtime.Result{Status: runtime.StatusInterrupted, State: st}}, runtime.ErrPaused
	}
	return p.fakeExecutor.Evaluate(ctx, job)
}

// pausedAtFinals runs a search of cfg whose final retrainings pause (a
// pausingExecutor), stopped as its final phase starts, and returns its
// run's folder and the messages of its events.
func pausedAtFinals(t *testing.T, cfg Config) (dir string, msgs []string) {
	t.Helper()
	s := newSearch(t, cfg, newPausingExecutor(true))
	stop := make(chan struct{})
	s.Progress = func(e Event) {
		msgs = append(msgs, e.Message)
		if e.Kind == "final_start" {
			close(stop)
		}
	}
	if err := s.Run(context.Background(), stop); !errors.Is(err, ErrStopped) {
		t.Fatalf("Run: %v, want stopped", err)
	}
	s.Close()
	return s.Dir(), msgs
}

// A stop in the final phase pauses the local retrainings in flight at the
// end of their epoch: each state is kept in paused/, nothing of them is
// recorded, and the resume goes on from the states (a damaged one is
// warned of and retrained anew), removing them once recorded.
func TestFinalPausedAndResumed(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Workers = 2
	dir, msgs := pausedAtFinals(t, cfg)
	all := strings.Join(msgs, "\n")
	if !strings.Contains(all, "pausing 2 retraining(s) in flight at the end of their epoch") || strings.Count(all, "paused after epoch 2 of at most 30: a resume goes on from there") != 2 {
		t.Errorf("events:\n%s", all)
	}
	if finals, err := rundir.ReadFinalRecords(dir); err != nil || len(finals) != 0 {
		t.Errorf("paused retrainings recorded: %+v (%v)", finals, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, rundir.DirPaused, "trial-*.gob"))
	if len(files) != 2 {
		t.Fatalf("paused states: %v, want 2", files)
	}
	damaged := files[1]
	if err := os.WriteFile(damaged, []byte("not a state"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A state of a trial that is not among the best (left by an earlier
	// plan, say) is removed once the final phase ends.
	stale := filepath.Join(dir, rundir.PausedName(9999))
	if err := os.WriteFile(stale, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}

	again := newPausingExecutor(false)
	events := runResumed(t, dir, ResumeOptions{}, func(Config) (Executor, error) { return again, nil })
	msgs = nil
	for _, e := range events {
		msgs = append(msgs, e.Message)
	}
	all = strings.Join(msgs, "\n")
	if len(again.resumed) != 1 || strings.Count(all, "goes on after epoch 2, where a stop paused it") != 1 ||
		!strings.Contains(all, "retrains from its search weights: the state that a stop left in "+damaged+" is not taken, as it cannot be read") {
		t.Errorf("resumed from %v:\n%s", again.resumed, all)
	}
	for trial, epoch := range again.resumed {
		if name := filepath.Join(dir, rundir.PausedName(trial)); name == damaged || epoch != 2 {
			t.Errorf("trial %d went on from epoch %d (%s)", trial, epoch, name)
		}
	}
	finals, err := rundir.ReadFinalRecords(dir)
	if err != nil || len(finals) != cfg.Final.TopK {
		t.Errorf("%d finals after the resume (%v), want %d", len(finals), err, cfg.Final.TopK)
	}
	if _, err := os.Stat(filepath.Join(dir, rundir.DirPaused)); !errors.Is(err, os.ErrNotExist) {
		left, _ := filepath.Glob(filepath.Join(dir, rundir.DirPaused, "*"))
		t.Errorf("%s after the final phase: %v, holding %v", rundir.DirPaused, err, left)
	}
	if !slices.ContainsFunc(finals, func(f rundir.FinalResult) bool { _, ok := again.resumed[f.Trial]; return ok }) {
		t.Error("the retraining that went on from its state is not among the finals")
	}
	// Its seconds count the training before the pause.
	for _, f := range finals {
		if _, ok := again.resumed[f.Trial]; ok && f.Seconds < pausedSeconds {
			t.Errorf("final #%d went on from its state: %.1f s, want the %d s before the pause and more", f.Rank, f.Seconds, pausedSeconds)
		}
	}
}

// pausedSeconds is the training time that newPausingExecutor's states
// hold.
const pausedSeconds = 1000

// slowFinals is a fakeExecutor whose final retrainings take 0 to 60 ms,
// so that several run side by side.
type slowFinals struct{ *fakeExecutor }

func (s slowFinals) Evaluate(ctx context.Context, job Job) (*Outcome, error) {
	if job.Full {
		time.Sleep(time.Duration(job.Trial%3) * 30 * time.Millisecond)
	}
	return s.fakeExecutor.Evaluate(ctx, job)
}

// Retrainings that go on from their states side by side are announced by
// the search's goroutine, which alone calls Progress (the race detector of
// make test watches this one): three paused, then resumed on three
// workers.
func TestFinalsResumedSideBySide(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Workers = 3
	dir, _ := pausedAtFinals(t, cfg)
	var said []string
	for _, e := range runResumed(t, dir, ResumeOptions{}, func(Config) (Executor, error) { return slowFinals{&fakeExecutor{}}, nil }) {
		said = append(said, e.Message)
	}
	if n := strings.Count(strings.Join(said, "\n"), "goes on after epoch 2, where a stop paused it"); n != cfg.Final.TopK {
		t.Errorf("%d retrainings went on from their states, want %d:\n%s", n, cfg.Final.TopK, strings.Join(said, "\n"))
	}
}

// remotePausing is a pausingExecutor whose trainings run on remote workers,
// which neither pause nor go on from a state.
type remotePausing struct{ pausingExecutor }

func (remotePausing) TrainsElsewhere() bool { return true }

// A run paused locally and resumed on remote workers retrains from the
// search weights: a worker is sent no state, and the search says of none
// that it goes on.
func TestPausedFinalsResumedRemotely(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Workers = 2
	dir, _ := pausedAtFinals(t, cfg)
	remote := remotePausing{newPausingExecutor(false)}
	for _, e := range runResumed(t, dir, ResumeOptions{}, func(Config) (Executor, error) { return remote, nil }) {
		if strings.Contains(e.Message, "where a stop paused it") {
			t.Errorf("on remote workers: %q", e.Message)
		}
	}
	if len(remote.resumed) != 0 {
		t.Errorf("states sent to remote workers: %v", remote.resumed)
	}
	for _, j := range remote.jobs {
		if j.Full && j.Config.Resume != nil {
			t.Errorf("trial %d's job carries a state", j.Trial)
		}
	}
}

// A paused state is taken only for the same trial, network, settings,
// images, layout and build; each difference is warned of, naming it, and
// the retraining starts anew.
func TestPausedStateMatches(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	dir := finishedRun(t, cfg, &fakeExecutor{})
	s := resume(t, cfg, &fakeExecutor{})
	var said []string
	s.Progress = func(e Event) { said = append(said, e.Message) }
	trial := read(t, rundir.ReadTrials, dir)[0]
	const training = `{"epochs":30}`
	good := pausedFinal{Format: pausedFormat, Trial: trial.ID, Arch: trial.Arch, Training: training, Data: s.data.Hash, Version: buildinfo.Version(),
		State: runtime.TrainState{Epoch: 4}}
	if err := os.MkdirAll(filepath.Join(dir, rundir.DirPaused), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		change func(*pausedFinal)
		why    string // "": taken
	}{
		{"the same", func(*pausedFinal) {}, ""},
		{"another build", func(p *pausedFinal) { p.Version = "v0.0.1" }, "another build of nasctl (v0.0.1) paused it"},
		{"another layout", func(p *pausedFinal) { p.Format = pausedFormat + 1 }, "another build of nasctl"},
		{"another trial", func(p *pausedFinal) { p.Trial++ }, "it was trained with other settings or images"},
		{"another network", func(p *pausedFinal) { p.Arch = "SM()" }, "it was trained with other settings or images"},
		{"other images", func(p *pausedFinal) { p.Data = "sha256:other" }, "it was trained with other settings or images"},
		{"other settings", func(p *pausedFinal) { p.Training = `{"epochs":60}` }, "it was trained with other settings or images"},
	} {
		p := good
		c.change(&p)
		var b bytes.Buffer
		if err := gob.NewEncoder(&b).Encode(p); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, rundir.PausedName(trial.ID)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		said = nil
		st := s.pausedState(1, trial, training)
		switch {
		case c.why == "" && (st == nil || st.Epoch != 4 || len(said) != 0):
			t.Errorf("%s: state %+v, said %q; want it taken", c.name, st, said)
		case c.why != "" && (st != nil || len(said) != 1 || !strings.Contains(said[0], "is not taken, as "+c.why)):
			t.Errorf("%s: state %+v, said %q; want it left, as %s", c.name, st, said, c.why)
		}
	}
}

// stopsAgain resumes the paused retraining of trial done to its end and
// pauses every other one at its TrainConfig.Pause, as a second stop asks.
type stopsAgain struct {
	*fakeExecutor
	done int
}

func (p stopsAgain) Evaluate(ctx context.Context, job Job) (*Outcome, error) {
	if job.Full && job.Trial != p.done && job.Config.Pause != nil {
		select {
		case <-job.Config.Pause:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		st := &runtime.TrainState{Epoch: 3, Order: []int{job.Trial}}
		return &Outcome{Training: &runtime.Result{Status: runtime.StatusInterrupted, State: st}}, runtime.ErrPaused
	}
	return p.fakeExecutor.Evaluate(ctx, job)
}

// A final recorded between two stops leaves no state of its own in
// paused/: only the retrainings the second stop paused have one there.
func TestSecondStopKeepsOnlyPausedStates(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Workers = 2
	dir, _ := pausedAtFinals(t, cfg)
	files, _ := filepath.Glob(filepath.Join(dir, rundir.DirPaused, "trial-*.gob"))
	if len(files) != 2 {
		t.Fatalf("paused states: %v, want 2", files)
	}
	var first, second int
	fmt.Sscanf(filepath.Base(files[0]), "trial-%04d.gob", &first)
	fmt.Sscanf(filepath.Base(files[1]), "trial-%04d.gob", &second)
	s := resume(t, cfg, stopsAgain{&fakeExecutor{}, first})
	stop := make(chan struct{})
	s.Progress = func(e Event) {
		if e.Kind == "final" && e.Final != nil && e.Final.Trial == first {
			close(stop)
		}
	}
	if err := s.Run(context.Background(), stop); !errors.Is(err, ErrStopped) {
		t.Fatalf("second part: %v, want stopped", err)
	}
	s.Close()
	recorded := read(t, rundir.ReadFinalRecords, dir)
	if len(recorded) != 1 || recorded[0].Trial != first {
		t.Fatalf("recorded after the second stop: %+v, want trial %d alone", recorded, first)
	}
	// The second paused again; a third may have started and paused too.
	left, _ := filepath.Glob(filepath.Join(dir, rundir.DirPaused, "trial-*.gob"))
	if !slices.Contains(left, filepath.Join(dir, rundir.PausedName(second))) || slices.Contains(left, filepath.Join(dir, rundir.PausedName(first))) {
		t.Errorf("paused/ after the second stop: %v; want trial %d's state, not recorded trial %d's", left, second, first)
	}
}

// staggeredPauses is a pausingExecutor whose final retrainings report an
// epoch at once, and pause when asked: the first at once, the others only
// once gate is closed.
type staggeredPauses struct {
	pausingExecutor
	first *sync.Once
	gate  chan struct{}
}

func (p staggeredPauses) Evaluate(ctx context.Context, job Job) (*Outcome, error) {
	if !job.Full || job.Config.Pause == nil {
		return p.pausingExecutor.Evaluate(ctx, job)
	}
	job.Config.Progress(runtime.EpochRecord{Epoch: 1, ValAccuracy: 0.5})
	select {
	case <-job.Config.Pause:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	waits := true
	p.first.Do(func() { waits = false })
	if waits {
		select { // a minute at most: a bound on a hang, should no pause be seen
		case <-p.gate:
		case <-time.After(time.Minute):
		}
	}
	return p.pausingExecutor.Evaluate(ctx, job)
}

// A retraining that paused leaves the final phase's progress file while
// another still runs to the end of its epoch: the file lists only
// retrainings in flight (mutation pass 4, S21).
func TestPausedLeavesProgress(t *testing.T) {
	defer func(d time.Duration) { finalEpochEvery = d }(finalEpochEvery)
	finalEpochEvery = 0
	cfg := testConfig(t, t.TempDir())
	cfg.Workers = 2
	exec := staggeredPauses{pausingExecutor: newPausingExecutor(true), first: &sync.Once{}, gate: make(chan struct{})}
	s := newSearch(t, cfg, exec)
	stop := make(chan struct{})
	reported := map[int]bool{}
	var checked, stopped bool
	s.Progress = func(e Event) {
		switch {
		case e.Kind == "final_epoch":
			// Stopped once both retrainings in flight are in the file.
			if reported[e.Epoch.Rank] = true; len(reported) == 2 && !stopped {
				close(stop)
				stopped = true
			}
		case e.Kind == "info" && strings.Contains(e.Message, "paused after epoch") && !checked:
			checked = true
			var inFlight []rundir.FinalProgress
			b, err := os.ReadFile(filepath.Join(s.Dir(), rundir.FileFinalProgress))
			if err == nil {
				err = json.Unmarshal(b, &inFlight)
			}
			if err != nil || len(inFlight) != 1 || !strings.Contains(e.Message, fmt.Sprintf("#%d ", 3-inFlight[0].Rank)) {
				t.Errorf("at %q, %s lists %+v (%v): want only the retraining still running", e.Message, rundir.FileFinalProgress, inFlight, err)
			}
			close(exec.gate)
		}
	}
	if err := s.Run(context.Background(), stop); !errors.Is(err, ErrStopped) {
		t.Fatalf("Run: %v, want stopped", err)
	}
	if !checked {
		t.Fatal("no retraining paused")
	}
}
