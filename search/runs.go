package search

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/search/rundir"
)

// RunSummary describes a run directory for nasctl runs list.
type RunSummary struct {
	Name     string  `json:"name"`
	Dir      string  `json:"dir"`
	Kind     Kind    `json:"kind"`
	Trials   int     `json:"trials"`
	Planned  int     `json:"planned"`
	Best     float64 `json:"best_reward"`
	BestArch string  `json:"best_arch,omitempty"`
	Finals   int     `json:"final_models"`
	// FinalsPlanned is how many final models the run retrains in all
	// (Config.FinalsPlanned); BestTest waits until Finals reaches it.
	FinalsPlanned int `json:"final_models_planned,omitempty"`
	// FinalsUntimed: the final models are all retrained, but the timings a
	// latency-aware run picks its best by are not all taken (Report's
	// TimingsPending); OverLimit counts the finals timed over its latency
	// limit.
	FinalsUntimed bool `json:"final_models_untimed,omitempty"`
	OverLimit     int  `json:"final_models_over_latency_limit,omitempty"`
	// Failed is why the run's search last ended with an error
	// (rundir.FileFailure); empty when it did not, or was resumed since.
	Failed string `json:"failed,omitempty"`
	// BestTest is the test accuracy of the best final model as the report
	// picks it (by validation: winners/best.onnx), never the highest test
	// accuracy among the finals, which would choose by the test images.
	BestTest float64 `json:"best_test_accuracy,omitempty"`
	// WinnerArch is the architecture of that model (BestArch is the best
	// reward's, which the final phase may have ranked lower).
	WinnerArch string `json:"winner_arch,omitempty"`
	// WinnerAtChance: that model is no better than chance (a constant
	// predictor), nothing to deploy.
	WinnerAtChance bool `json:"winner_at_chance,omitempty"`
	// FinalSkipped: the run trains but its final phase is skipped
	// (--skip-final), so it has no final models by choice.
	FinalSkipped bool `json:"final_skipped,omitempty"`
	// Started is when the run was made (its config.yaml's modification
	// time, or its first trial's start when that is earlier) and Updated
	// when its latest trial or final model was recorded (config.yaml's time
	// before any): both come from the run's logs where they can, so a
	// copied run keeps its times.
	Started time.Time `json:"started,omitzero"` // left out of an unreadable run
	Updated time.Time `json:"updated,omitzero"`
	Data    string    `json:"data,omitempty"` // the image folder of a trained search
	Problem string    `json:"problem,omitempty"`
	// BestVal is the best validation accuracy of a trained trial: unlike
	// the reward, it compares runs of different rewards. BestScore is, for
	// a run scored by a problem, its best score (NATS-Bench: an accuracy in
	// percent; mock: the mock reward). LastTrial is when the latest trial
	// finished (the search phase's end, once all are recorded), and
	// Remaining estimates the seconds the run still needs (Remaining; 0:
	// unknown, and in a listing for a run that is not running: a stopped
	// run waits for no one).
	BestVal   float64 `json:"best_val_accuracy,omitempty"`
	BestScore float64 `json:"best_score,omitempty"`
	// Metric is train.metric when the run's validation accuracies (and so
	// BestVal and an accuracy reward) are not plain accuracy:
	// balanced_accuracy, not comparable with other runs' accuracies.
	Metric    string    `json:"metric,omitempty"`
	LastTrial time.Time `json:"last_trial,omitzero"`
	Remaining float64   `json:"remaining_seconds,omitempty"`
	// Error says why the run could not be read (made by an older nasctl,
	// say), and the other fields are then empty; or which line of its
	// trials log is damaged, and the other fields count the trials before
	// that line.
	Error string `json:"error,omitempty"`
	// Torn names the run's JSON-lines files that end in a half-written
	// line (rundir.Torn): one being written while the run runs, damage
	// when it does not (Settle).
	Torn []string `json:"torn,omitempty"`
	// Status is where the run stands (StatusOf), set by ListRuns.
	Status RunStatus `json:"status,omitempty"`
	// Evaluated counts the trials trained or scored with status ok; a run
	// with trials and none of them ok has failed (nothingEvaluated).
	Evaluated int `json:"evaluated"`
}

// RunStatus is where a run stands.
type RunStatus string

// The statuses of a run.
const (
	// RunRunning: a live process holds the run open (rundir.Running).
	RunRunning RunStatus = "running"
	// RunStopped: no process holds it, and planned trials or (for a
	// trained search) final models, or the timings a latency-aware run
	// picks its best by, are missing: it can be resumed.
	RunStopped RunStatus = "stopped"
	// RunFinished: every planned trial and, for a trained search that does
	// not skip it, the final phase (its timings too) are recorded.
	RunFinished RunStatus = "finished"
	// RunFailed: its search ended with an error (Failed), such as trials
	// failing one after another, which a resume gets past; or every
	// planned trial is recorded, and none was evaluated (all refused,
	// failed or diverged: the search ended with ErrNothingEvaluated), which
	// a resume would not change.
	RunFailed RunStatus = "failed"
)

// SetStatus sets Status to st and leaves the time-left estimate to running
// runs: a stopped or failed run waits for no one.
func (s *RunSummary) SetStatus(st RunStatus) {
	s.Status = st
	if st != RunRunning {
		s.Remaining = 0
	}
}

// Settle sets Status to where the run stands, given whether a process
// holds it. A half-written last line that no process is writing is damage
// (a search appends whole lines): Error names it, and the run is stopped,
// since a resume drops the line.
func (s *RunSummary) Settle(running bool) {
	if !running && len(s.Torn) > 0 && s.Error == "" {
		s.Error = fmt.Sprintf("%s %s in a half-written line that no search is writing (a crash or a full disk while it was written, or damage since): a resume drops it",
			english.OxfordWordSeries(s.Torn, "and"), english.PluralWord(len(s.Torn), "ends", "end"))
	}
	s.SetStatus(s.StatusOf(running))
}

// StatusOf says where the run stands, given whether a process holds it; a
// run that could not be read is stopped.
func (s *RunSummary) StatusOf(running bool) RunStatus {
	switch {
	case running:
		return RunRunning
	case s.Failed != "":
		return RunFailed
	case s.Error == "" && len(s.Torn) == 0 && s.Trials >= s.Planned && s.Finals >= s.FinalsPlanned && !s.FinalsUntimed: // a half-written line no process writes: damage (Settle)
		if s.Trials > 0 && s.Evaluated == 0 {
			return RunFailed
		}
		return RunFinished
	}
	return RunStopped
}

// Summarize reads a run directory without locking or changing it (a search
// may be writing it; a line being written is left out). A damaged line of
// the trials log does not hide the run: its summary counts the trials
// before that line and says what is wrong in Error.
func Summarize(dir string) (*RunSummary, error) {
	r, err := readRun(dir)
	if r == nil {
		return nil, err
	}
	sum := &RunSummary{Name: filepath.Base(dir), Dir: dir, Kind: r.cfg.Kind, Trials: len(r.trials), Planned: r.cfg.Trials,
		Finals: len(r.finals), Data: r.cfg.Data, Problem: r.cfg.Problem.Name, FinalSkipped: r.cfg.Trains() && r.cfg.Final.Skip}
	sum.Remaining = Remaining(r.cfg, r.data, r.trials, len(r.finals))
	sum.Metric = r.cfg.Train.metricName()
	for _, t := range r.trials {
		if t.Status == rundir.StatusOK {
			sum.Evaluated++
		}
		sum.BestVal, sum.BestScore = max(sum.BestVal, t.ValAccuracy), max(sum.BestScore, t.Score)
		if t.Finished.After(sum.LastTrial) {
			sum.LastTrial = t.Finished
		}
		// Trials that trained or were scored: a reused one repeats the
		// reward of one of them, and a refused or failed one has none.
		if evaluated := t.Status == rundir.StatusOK || t.Status == rundir.StatusDiverged; evaluated && (sum.BestArch == "" || t.Reward > sum.Best) {
			sum.Best, sum.BestArch = t.Reward, t.Arch
		}
		sum.recorded(t.Finished.Add(-time.Duration(t.Seconds*float64(time.Second))), t.Finished)
	}
	for _, f := range r.finals {
		sum.recorded(f.Finished, f.Finished)
	}
	rep := Report{Majority: r.data.ValMajority}
	if rep.finals(r.cfg, r.trials, slices.Clone(r.finals)); rep.Best != nil {
		sum.BestTest, sum.WinnerArch, sum.WinnerAtChance = rep.Best.TestAccuracy, rep.Best.Arch, rep.finalAtChance(*rep.Best)
	}
	sum.FinalsPlanned, sum.FinalsUntimed, sum.OverLimit = rep.FinalsPlanned, rep.TimingsPending, len(rep.OverLimit)
	sum.Failed, sum.Torn = rundir.ReadFailure(dir).Error, rundir.Torn(dir)
	if err != nil { // a damaged line: the summary counts the trials before it
		sum.Error = err.Error()
	}
	// config.yaml was written when the run was made, unless the run was
	// copied or given more trials since: then its recorded times are earlier.
	if fi, err := os.Stat(filepath.Join(dir, rundir.FileConfig)); err == nil {
		if sum.Started.IsZero() || fi.ModTime().Before(sum.Started) {
			sum.Started = fi.ModTime()
		}
		if sum.Updated.IsZero() {
			sum.Updated = fi.ModTime()
		}
	}
	return sum, nil
}

// recorded widens the run's times to a record that began at start and
// ended at end; a record without a time (older runs' finals) is skipped.
func (s *RunSummary) recorded(start, end time.Time) {
	if end.IsZero() {
		return
	}
	if s.Started.IsZero() || start.Before(s.Started) {
		s.Started = start
	}
	if end.After(s.Updated) {
		s.Updated = end
	}
}

// ListRuns summarizes every run directory under dir, newest first; a run
// that cannot be read is listed with its error.
func ListRuns(dir string) ([]*RunSummary, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if fi, serr := os.Stat(dir); serr == nil && !fi.IsDir() {
		return nil, fmt.Errorf("%s is a file, not a folder of runs: give the folder of the runs (searches write to runs/ by default)", dir)
	}
	if err != nil {
		return nil, err
	}
	var out []*RunSummary
	for _, e := range entries {
		// A run linked in from another disk is listed too: the Stat below
		// follows the link.
		if !e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), rundir.FileConfig)); err != nil {
			continue
		}
		s, err := Summarize(filepath.Join(dir, e.Name()))
		if err != nil {
			s = &RunSummary{Name: e.Name(), Dir: filepath.Join(dir, e.Name()), Error: err.Error()}
		}
		s.Settle(rundir.Running(s.Dir))
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Updated.After(out[j].Updated) })
	return out, nil
}

// RunTestData returns the image folder and split of the trained run in dir,
// for measuring its models on their test images; nil for a folder that
// holds no run and for a run whose trials a problem scored.
func RunTestData(dir string) (*bench.TestData, error) {
	if _, err := os.Stat(filepath.Join(dir, rundir.FileConfig)); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if !cfg.Trains() {
		return nil, nil
	}
	plan, err := dataset.ParseSplitPlan(cfg.Split)
	if err != nil {
		return nil, fmt.Errorf("%s: split: %w", filepath.Join(dir, rundir.FileConfig), err)
	}
	return &bench.TestData{Dir: cfg.Data, Plan: plan, PlanName: cfg.Split, Seed: cfg.SplitSeed, SkipBad: cfg.SkipBad}, nil
}
