package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/search/rundir"
)

// A damaged line in the middle of final.jsonl stops a resume with how to go
// on, and following it retrains the finals of the lines deleted, to the
// same results.
func TestDamagedFinalLine(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	s := newSearch(t, cfg, &fakeExecutor{})
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(s.Dir(), rundir.FileFinal)
	lines := strings.SplitAfter(readFile(t, path), "\n")
	before := read(t, rundir.ReadFinalRecords, s.Dir())
	damaged := lines[0] + `{"rank":2,"trial` + "\x00\x00\n" + strings.Join(lines[2:], "")
	if err := os.WriteFile(path, []byte(damaged), 0o644); err != nil {
		t.Fatal(err)
	}
	r := resume(t, cfg, &fakeExecutor{})
	err := r.Run(context.Background(), nil)
	r.Close()
	if err == nil || !strings.Contains(err.Error(), "final.jsonl line 2") || !strings.Contains(err.Error(), "delete line 2 and those after it, and resume") {
		t.Fatalf("resumed with a damaged line: %v", err)
	}
	if err := os.WriteFile(path, []byte(lines[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	r = resume(t, cfg, &fakeExecutor{})
	if err := r.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	r.Close()
	after := read(t, rundir.ReadFinalRecords, s.Dir())
	if len(after) != len(before) {
		t.Fatalf("%d finals after the resume, %d before", len(after), len(before))
	}
	for i := range before {
		if a, b := after[i], before[i]; a.Rank != b.Rank || a.Trial != b.Trial || a.ValAccuracy != b.ValAccuracy || a.TestAccuracy != b.TestAccuracy {
			t.Errorf("final %d: %+v, before %+v", i, a, b)
		}
	}
}

// A truncated agent state (its checkpoint line whole) stops a resume with
// the way on, as a damaged checkpoint line does.
func TestTruncatedAgentState(t *testing.T) {
	_, s := searched(t)
	path := filepath.Join(s.Dir(), rundir.FileAgent)
	b := readFile(t, path)
	if err := os.WriteFile(path, []byte(b[:len(b)/2]), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Resume(s.Dir(), ResumeOptions{}, func(Config) (Executor, error) { return &fakeExecutor{}, nil })
	if err == nil || !strings.Contains(err.Error(), "agent.state: ") || !strings.Contains(err.Error(), rundir.Relearn) {
		t.Errorf("resumed with a truncated agent state: %v", err)
	}
}

// A damaged data.json says what to do, and doing it resumes the run.
func TestDamagedDataRecord(t *testing.T) {
	cfg, s := searched(t)
	path := filepath.Join(s.Dir(), rundir.FileData)
	if err := os.WriteFile(path, []byte(`{"input": `), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Resume(s.Dir(), ResumeOptions{}, func(Config) (Executor, error) { return &fakeExecutor{}, nil })
	if err == nil || !strings.Contains(err.Error(), "data.json: unexpected end of JSON input: the record of the run's images is damaged; delete it and resume") {
		t.Errorf("resumed with a damaged data.json: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	r := resume(t, cfg, &fakeExecutor{})
	if err := r.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("data.json not written again: %v", err)
	}
}

// A resume with more trials and another worker count replays the log as it
// was drawn (each trial's look-ahead, or the saved workers' for a log that
// does not record it) and draws the new trials with the new count.
func TestResumeMoreTrialsOtherWorkers(t *testing.T) {
	for _, tc := range []struct{ strip, gap bool }{{false, false}, {true, false}, {false, true}} {
		strip := tc.strip
		cfg := testConfig(t, t.TempDir())
		cfg.Workers, cfg.Final.Skip = 2, true
		s := newSearch(t, cfg, &fakeExecutor{jitter: true})
		if err := s.Run(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		s.Close()
		before := read(t, rundir.ReadTrials, s.Dir())
		if before[0].Lag != 4 {
			t.Fatalf("trial 1 drawn with look-ahead %d, want 4 (2 workers)", before[0].Lag)
		}
		path := filepath.Join(s.Dir(), rundir.FileTrials)
		if strip { // as nasctl before the look-ahead was recorded wrote it
			if err := os.WriteFile(path, []byte(strings.ReplaceAll(readFile(t, path), `,"lag":4`, "")), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if tc.gap {
			// Trial 25 (in the greedy end of the schedule, where the draws
			// depend on what the agent learned) abandoned by a second
			// Ctrl-C, as 26-28 finished: those after 28 could not have been
			// drawn before 25 was learned.
			var kept []string
			for _, line := range strings.SplitAfter(readFile(t, path), "\n") {
				var tr rundir.Trial
				if json.Unmarshal([]byte(line), &tr) == nil && tr.ID != 25 && tr.ID <= 28 {
					kept = append(kept, line)
				}
			}
			if err := os.WriteFile(path, []byte(strings.Join(kept, "")), 0o644); err != nil {
				t.Fatal(err)
			}
			before = before[:28]
		}
		r, err := Resume(s.Dir(), ResumeOptions{Workers: 3, Trials: cfg.Trials + 4}, func(Config) (Executor, error) { return &fakeExecutor{jitter: true}, nil })
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Run(context.Background(), nil); err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		r.Close()
		after := read(t, rundir.ReadTrials, s.Dir())
		if len(after) != cfg.Trials+4 || after[cfg.Trials].Lag != 6 {
			t.Fatalf("%d trials after the resume (want %d), the first new one at look-ahead %d (want 6)", len(after), cfg.Trials+4, after[min(cfg.Trials, len(after)-1)].Lag)
		}
		for i := range before {
			if after[i].Arch != before[i].Arch || after[i].Reward != before[i].Reward {
				t.Errorf("trial %d: %s, before %s", i+1, after[i].Arch, before[i].Arch)
			}
		}
	}
}

// A finished run whose trials log ends in a half-written line that no
// search is writing (damage: a search appends whole lines) is listed as
// stopped, with the damage named, not as finished with a trial missing;
// while a search holds the run, the same line is one being written.
func TestTornLineOfFinishedRun(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	dir := finishedRun(t, cfg, &fakeExecutor{})
	path := filepath.Join(dir, rundir.FileTrials)
	whole := readFile(t, path)
	lines := strings.SplitAfter(whole, "\n")
	last := lines[len(lines)-2]
	torn := whole + last[:len(last)/2] // every planned trial whole, then half a line
	if err := os.WriteFile(path, []byte(torn), 0o644); err != nil {
		t.Fatal(err)
	}
	const want = "trials.jsonl ends in a half-written line that no search is writing (a crash or a full disk while it was written, or damage since): a resume drops it"
	if r := onlyRun(t, cfg.Dir); r.Status != RunStopped || r.Error != want || r.Trials != cfg.Trials {
		t.Errorf("closed run with a torn last line: %s, %d trials, error %q; want stopped, %d trials, %q", r.Status, r.Trials, r.Error, cfg.Trials, want)
	}
	if sum, err := Summarize(dir); err != nil || sum.StatusOf(false) != RunStopped { // as runs show says it
		t.Errorf("its summary's status: %v %v, want stopped", sum.StatusOf(false), err)
	}
	d, err := rundir.Open(dir) // as a search holds it
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if want := []string{rundir.FileTrials}; !slices.Equal(d.Dropped, want) {
		t.Errorf("opening dropped %q, want %q", d.Dropped, want)
	}
	if got := rundir.Torn(dir); got != nil {
		t.Errorf("after opening, torn: %q", got)
	}
	if err := os.WriteFile(path, []byte(torn), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := onlyRun(t, cfg.Dir); r.Status != RunRunning || r.Error != "" {
		t.Errorf("held run with a line being written: %s, error %q; want running, none", r.Status, r.Error)
	}
}

// A line torn by a crash while it was written is dropped by the resume,
// which says so, and its trial trains again: the run ends as an
// uninterrupted one, listed as finished.
func TestResumeDropsTornLine(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip = true
	whole := testConfig(t, t.TempDir())
	whole.Final.Skip = true
	want := read(t, rundir.ReadTrials, finishedRun(t, whole, &fakeExecutor{}))
	dir := filepath.Join(cfg.Dir, cfg.Name)
	if err := runUntil(t, newSearch(t, cfg, &fakeExecutor{}), 7); !errors.Is(err, ErrStopped) {
		t.Fatalf("first part: %v", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, rundir.FileTrials), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, `{"id":8,"arch":"C(8`)
	f.Close()
	if r := onlyRun(t, cfg.Dir); r.Status != RunStopped || !slices.Equal(r.Torn, []string{rundir.FileTrials}) {
		t.Errorf("stopped run with a torn line: %s, torn %q", r.Status, r.Torn)
	}
	events := runResumed(t, dir, ResumeOptions{}, func(Config) (Executor, error) { return &fakeExecutor{}, nil })
	if want := fmt.Sprintf("7 of %d trials done; the half-written last line of trials.jsonl (a crash or a full disk while it was written) was dropped, and its record is made again", cfg.Trials); events[0].Message != want {
		t.Errorf("first event %q, want %q", events[0].Message, want)
	}
	sameTrials(t, read(t, rundir.ReadTrials, dir), want)
	if r := onlyRun(t, cfg.Dir); r.Status != RunFinished || r.Error != "" || r.Torn != nil {
		t.Errorf("after the resume: %s, error %q, torn %q; want finished", r.Status, r.Error, r.Torn)
	}
}

// onlyRun lists the runs in dir, which must be one, and returns it.
func onlyRun(t *testing.T, dir string) *RunSummary {
	t.Helper()
	runs, err := ListRuns(dir)
	if err != nil || len(runs) != 1 {
		t.Fatalf("ListRuns: %v, %d runs", err, len(runs))
	}
	return runs[0]
}

// A final of an earlier plan is taken only when this phase would train
// it the same way: not when this phase quantizes and it was not, when the
// search weights it would start from are gone, when the images or their
// split differ, or when its model file is gone (then retrained, no error).
// Of two earlier plans that retrained a trial, the later one's is taken.
func TestEarlierFinalTakenOnlyWhenSame(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	dir := finishedRun(t, cfg, &fakeExecutor{})
	s, err := Resume(dir, ResumeOptions{Trials: cfg.Trials + 2}, func(Config) (Executor, error) { return &fakeExecutor{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	from := filepath.Join(rundir.DirEarlier, fmt.Sprintf("trials-%d", cfg.Trials))
	earlier := read(t, rundir.ReadFinalRecords, filepath.Join(dir, from))
	f := earlier[0]
	trials := read(t, rundir.ReadTrials, dir)
	trial := trials[slices.IndexFunc(trials, func(t rundir.Trial) bool { return t.ID == f.Trial })]
	taken := func() bool {
		t.Helper()
		e, err := s.earlierFinal(0, trial, f, from)
		if err != nil {
			t.Fatal(err)
		}
		return e != nil
	}
	if !taken() {
		t.Fatal("the same training is not taken")
	}
	moved := func(path string, check func()) {
		t.Helper()
		if err := os.Rename(path, path+".away"); err != nil {
			t.Fatal(err)
		}
		check()
		if err := os.Rename(path+".away", path); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name         string
		change, undo func()
	}{
		{"final.int8 now", func() { s.cfg.Final.Int8 = true }, func() { s.cfg.Final.Int8 = false }},
		{"other images", func() { s.data.Hash = "sha256:other" }, func() { s.data.Hash = "sha256:test" }},
		{"another split", func() { s.data.Split = onnxgen.SplitRecord{Plan: "metaqnn", Seed: 1} }, func() { s.data.Split = onnxgen.SplitRecord{} }},
		{"another final.augment", func() { s.cfg.Final.Augment = "flips" }, func() { s.cfg.Final.Augment = "" }},
	} {
		c.change()
		if taken() {
			t.Errorf("%s: taken", c.name)
		}
		c.undo()
	}
	moved(s.dir.ModelPath(trial.ID), func() {
		if taken() {
			t.Error("without its search weights: taken")
		}
	})
	moved(filepath.Join(dir, from, f.Model), func() {
		if taken() {
			t.Error("without its model file: taken")
		}
	})
	if !taken() {
		t.Fatal("the same training is not taken after the checks")
	}

	// A later plan that retrained the trial too: its final is the one taken.
	later := filepath.Join(rundir.DirEarlier, fmt.Sprintf("trials-%d", cfg.Trials+1))
	if err := os.CopyFS(filepath.Join(dir, later), os.DirFS(filepath.Join(dir, from))); err != nil {
		t.Fatal(err)
	}
	reuse, _, err := s.earlierFinals([]rundir.Trial{trial}, []int{0})
	if err != nil || len(reuse) != 1 || reuse[0].from != later {
		t.Errorf("two plans that retrained trial %d: %v, taken %+v; want the one from %s", f.Trial, err, reuse, later)
	}
}

// newTrialsWorse scores the trials after the 30th at 0.01: none joins the
// best.
type newTrialsWorse struct{ *fakeExecutor }

func (n newTrialsWorse) Evaluate(ctx context.Context, job Job) (*Outcome, error) {
	out, err := n.fakeExecutor.Evaluate(ctx, job)
	if out != nil && out.Training != nil && !job.Full && job.Trial > 30 {
		out.Training.ValAccuracy = 0.01
		out.Training.Epochs[0].ValAccuracy = out.Training.ValAccuracy
	}
	return out, err
}

// A resume with more trials none of which joins the best takes every
// final from the earlier plan: its final phase says so, with none to
// retrain, and retrains nothing.
func TestResumeTakesEveryFinal(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	dir := finishedRun(t, cfg, &fakeExecutor{})
	exec := &fakeExecutor{}
	events := runResumed(t, dir, ResumeOptions{Trials: cfg.Trials + 1}, func(Config) (Executor, error) { return newTrialsWorse{exec}, nil })
	i := slices.IndexFunc(events, func(e Event) bool { return e.Kind == "final_start" })
	if want := fmt.Sprintf("final phase of the %d best architectures: %d taken from %s", cfg.Final.TopK, cfg.Final.TopK, filepath.Join(rundir.DirEarlier, "trials-30")); i < 0 ||
		!strings.HasPrefix(events[i].Message, want) || !strings.Contains(events[i].Message, "; none to retrain (0 done before)") {
		t.Errorf("final_start: %+v, want %q ... none to retrain", events, want)
	}
	for _, j := range exec.jobs {
		if j.Full {
			t.Errorf("trial %d retrained", j.Trial)
		}
	}
	for _, f := range read(t, rundir.ReadFinals, dir) {
		if f.Reused == "" {
			t.Errorf("final #%d not taken", f.Rank)
		}
	}
}
