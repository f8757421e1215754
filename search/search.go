// Package search is nasctl's search engine: one scheduler drives any agent
// (package controller) through an Executor. The flow of a trial is
//
//	agent -> candidate -> executor -> trial -> reward -> agent
//
// The agent proposes a candidate; the scheduler reuses the result of a
// duplicate, refuses what is over the budget, and hands the rest to the
// executor (training here, or on other machines; or a problem's score); the
// finished trial is recorded in the run directory (package rundir) and its
// reward taught to the agent in trial order. After the last trial the best
// architectures are retrained and tested (the final phase) and the report is
// written. MetaQNN (layer sequences) and NASNet (cell pairs) searches are
// configurations of the same engine (Config.Kind).
package search

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/controller/problem"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
)

// Event reports the progress of a search to whoever draws it.
type Event struct {
	// Kind is "start" (once, first), "info" (a note: the latency model
	// before the trials, missing search weights before the final phase;
	// nasctl search adds its own warnings, at any time), "trial" (learned),
	// "saved" (finished during a stop: recorded, learned by the resumed
	// run), "stopping", "final_start",
	// "final_epoch" (a long retraining's progress: Message), "final", and
	// last "done", or "stopped" when a stop or an interrupt
	// ended the run, or "failed" (Message: the error; also the end of a
	// run none of whose trials could be evaluated, ErrNothingEvaluated).
	Kind string `json:"event"`
	// Dir is the run directory, on "start" and on the last event; the
	// paths of "final" events are relative to it.
	Dir   string              `json:"dir,omitempty"`
	Trial *rundir.Trial       `json:"trial,omitempty"`
	Final *rundir.FinalResult `json:"final,omitempty"`
	// Epoch is a "final_epoch"'s progress.
	Epoch   *rundir.FinalProgress `json:"final_epoch,omitempty"`
	Learned *controller.Learned   `json:"learned,omitempty"` // what the agent did with Trial
	// Replayed marks a trial an earlier run recorded, which a resumed run
	// learns again from the log instead of evaluating it.
	Replayed bool    `json:"replayed,omitempty"`
	Done     int     `json:"done"`  // trials learned
	Total    int     `json:"total"` // trials planned
	InFlight int     `json:"in_flight"`
	Best     float64 `json:"best_reward"`
	BestArch string  `json:"best_arch,omitempty"`
	// Recent is the mean reward of the last 100 trials learned (of all,
	// while fewer).
	Recent    float64 `json:"mean_reward_last_100"`
	Elapsed   float64 `json:"elapsed_seconds"`
	Remaining float64 `json:"remaining_seconds"` // estimate, 0 when unknown
	Message   string  `json:"message,omitempty"`
	// FinalDone of FinalTotal final models are retrained, during the final
	// phase.
	FinalDone  int `json:"final_done,omitempty"`
	FinalTotal int `json:"final_total,omitempty"`
}

// ErrStopped is returned by Run when a stop request ended the search before
// its end; the run can be resumed.
var ErrStopped = errors.New("search stopped before its end")

// FewerTrialsError is returned by Resume when asked for fewer trials than
// the run has recorded: a mistake in the request, not in the run.
type FewerTrialsError struct {
	Run      string
	Recorded int
}

func (e *FewerTrialsError) Error() string {
	return fmt.Sprintf("%s has recorded %d trials: give at least that many (a run goes on with more trials, it does not undo any)", e.Run, e.Recorded)
}

// Search is a search bound to a run directory.
//
// Ownership: a Search owns its run directory (and the directory's lock)
// until Close.
type Search struct {
	cfg    Config
	dir    *rundir.Dir
	exec   Executor
	data   Data
	prob   *problem.Problem // nil for a trained search
	method method
	agent  controller.Agent

	trials []rundir.Trial       // learned, in trial order
	notes  map[int]rundir.Note  // what the agent did with them
	byKey  map[string]int       // first evaluated trial of each architecture: index in trials
	best   int                  // index in trials of ranked(nil)[0]; -1 before any
	csvAt  time.Time            // when save last wrote trials.csv
	logged map[int]rundir.Trial // recorded by an earlier run, not yet replayed
	sched  scheduler            // the trials between proposal and learning
	start  time.Time
	// finals counts the final phase's models: recorded (done) of planned
	// (total), while the phase runs.
	finals struct{ done, total int }
	// latency predicts latencies when the reward needs them (nil: measure).
	latency *bench.LatencyModel
	// retargeted says what a resume with another number of trials set
	// aside (Run's first event says it).
	retargeted string
	// savedWorkers is a resumed run's workers as its config.yaml saves them
	// (zero for a new run): logged trials without their look-ahead were
	// drawn with theirs.
	savedWorkers int

	// Progress, when set, receives every event (from the Run goroutine).
	Progress func(Event)
}

// New starts a new run of cfg (WithDefaults and checked) in cfg.Dir/cfg.Name.
// exec evaluates the trials of a trained search; a search on a problem
// makes its own executor (exec nil). Everything that can fail comes before
// the directory is made, so that a failed start leaves nothing behind.
func New(cfg Config, exec Executor) (*Search, error) {
	s, err := prepare(cfg, exec)
	if err != nil {
		return nil, err
	}
	if s.agent, err = s.method.newAgent(); err != nil {
		return nil, err
	}
	if r, ok := s.agent.(*controller.Reinforce); ok {
		// config.yaml saves the controller's settings with its defaults.
		s.cfg.Reinforce.Controller = ControllerOf(r.Config())
		if m, ok := s.method.(nasnetMethod); ok {
			m.cfg = s.cfg
			s.method = m
		}
	}
	if s.cfg.Reward.Table != "" {
		// A table made for another space or input stops the run before its
		// directory exists (Run checks the run's copy again).
		t, err := readRunTable(s.cfg.Reward.Table)
		if err != nil {
			return nil, err
		}
		if err := s.checkTable(t, t.Source.Path); err != nil {
			return nil, err
		}
	}
	if err := s.int8Here(); err != nil { // before the directory exists: the name stays free
		return nil, err
	}
	if s.cfg.Data != "" {
		// Saved absolute, so that the run resumes from any folder.
		if s.cfg.Data, err = filepath.Abs(s.cfg.Data); err != nil {
			return nil, err
		}
	}
	b, err := s.cfg.Marshal()
	if err != nil {
		return nil, err
	}
	if s.dir, err = rundir.Create(filepath.Join(cfg.Dir, cfg.Name), b); err != nil {
		return nil, err
	}
	if err := s.writeData(); err != nil {
		s.dir.Close()
		return nil, err
	}
	s.sched = newScheduler(s.cfg.Workers, 1)
	return s, nil
}

// ResumeOptions are what a resumed run may change: where and how its trials
// run, and whether it has a final phase, none of which changes the trials.
type ResumeOptions struct {
	// Workers and Threads, when positive, override the saved ones.
	Workers, Threads int
	// SkipFinal, when set, replaces the saved final.skip, in config.yaml
	// too: a run searched with --skip-final gets its final phase by a
	// resume with SkipFinal false.
	SkipFinal *bool
	// FinalAugment, when set, replaces the saved final.augment, in
	// config.yaml too, for a final phase with no final recorded, or whose
	// finals more Trials set aside (FinalStartedError otherwise). The
	// trials never read it; a paused retraining's state is taken only
	// with the settings it began with (pausedFor).
	FinalAugment *string
	// Data, when set, replaces the saved image folder, in config.yaml too,
	// for images that moved; they must be the images the run searched (the
	// content hash of data.json).
	Data string
	// Trials, when positive, replaces the trials planned, in config.yaml
	// too: at least the trials recorded. A finished run goes on with more
	// (see retarget).
	Trials int
}

// Resume opens the run in dir and brings its agent to exactly where the run
// left it: the agent's last saved state is loaded (a fresh agent when there
// is none), and the trials recorded after it are replayed through the same
// scheduler, answered from the log instead of evaluated. A trial the run had
// proposed but not finished is evaluated again, so a resumed run repeats an
// uninterrupted one. newExec makes the executor of a trained search from the
// saved settings (after the overrides of o); nil for a search on a problem.
func Resume(dir string, o ResumeOptions, newExec func(Config) (Executor, error)) (*Search, error) {
	saved, err := ReadConfig(dir)
	if err != nil {
		return nil, cmp.Or(cutShort(dir), err) // cut short, it may not even parse
	}
	if err := checkUnedited(dir); err != nil {
		return nil, err
	}
	cfg := saved
	if o.Workers > 0 {
		cfg.Workers = o.Workers
	}
	if o.Threads > 0 {
		cfg.Threads = o.Threads
	}
	if o.SkipFinal != nil {
		cfg.Final.Skip = *o.SkipFinal
	}
	if o.FinalAugment != nil {
		cfg.Final.Augment = *o.FinalAugment
	}
	if o.Data != "" {
		if cfg.Data, err = filepath.Abs(o.Data); err != nil {
			return nil, err
		}
	}
	if o.Trials > 0 {
		cfg.Trials = o.Trials
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("%s: invalid settings:\n%v", filepath.Join(dir, rundir.FileConfig), err)
	}
	d, err := rundir.Open(dir) // the lock first: a run in use is refused at once
	if err != nil {
		return nil, err
	}
	// A new number of trials sets the recorded finals aside (retarget).
	old := saved.WithDefaults().Trials // a config.yaml without trials plans the schedule's
	if cfg.Trials == old && !sameAugment(cfg.finalAugment(), saved.finalAugment()) {
		if err := noFinals(d.Path); err != nil {
			d.Close()
			return nil, err
		}
	}
	if o.Trials > 0 { // a mistake in the request: said before the images are read
		recorded, err := rundir.ReadTrials(dir)
		if err == nil && o.Trials < len(recorded) {
			err = &FewerTrialsError{Run: d.Path, Recorded: len(recorded)}
		}
		if err != nil {
			d.Close()
			return nil, err
		}
	}
	var note string
	s, err := resumeIn(d, cfg, newExec, func(s *Search) (err error) {
		s.savedWorkers = saved.WithDefaults().Workers // the look-ahead of trials logged without theirs
		if cfg.Trials == old {
			return nil
		}
		if err := s.checkTableCopy(); err != nil {
			return err
		}
		if note, err = s.retarget(old, cfg.Trials); err != nil {
			return err
		}
		saved.Trials = cfg.Trials
		return saveConfig(d, saved)
	})
	if s != nil {
		s.retargeted = note
	}
	if err == nil && (cfg.Final.Skip != saved.Final.Skip || cfg.Data != saved.Data || cfg.Final.Augment != saved.Final.Augment) {
		saved.Final.Skip, saved.Data, saved.Final.Augment = cfg.Final.Skip, cfg.Data, cfg.Final.Augment
		err = saveConfig(d, saved)
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	// No longer a failed run: it goes on.
	if err := os.Remove(filepath.Join(d.Path, rundir.FileFailure)); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.Close()
		return nil, err
	}
	return s, nil
}

// FinalStartedError is a change of the final phase's augmentation asked
// of a run with finals recorded: its finals would not all have the same.
type FinalStartedError struct {
	Run    string
	Finals int // recorded
}

func (e *FinalStartedError) Error() string {
	return fmt.Sprintf("%s: the final phase has begun (%s), so final.augment (--final-augment) can no longer change: resume without it, "+
		"with more trials (--trials N, whose plan retrains its final phase), or start a new run for other final settings",
		e.Run, english.Plural(e.Finals, "final model", ""))
}

// noFinals returns a *FinalStartedError when the run in dir has a final
// recorded.
func noFinals(dir string) error {
	finals, err := rundir.ReadFinalRecords(dir)
	if err != nil || len(finals) == 0 {
		return err
	}
	return &FinalStartedError{Run: dir, Finals: len(finals)}
}

// sameAugment reports whether two augmentations vary the images alike
// (flips,shift:2 and shift:2,flips do); one that does not parse differs.
func sameAugment(a, b string) bool {
	x, errX := runtime.ParseAugment(a)
	y, errY := runtime.ParseAugment(b)
	return errX == nil && errY == nil && x == y
}

// retarget prepares the run for another number of trials, at least
// those recorded. The agent's checkpoint learned the trials up to the old
// end, while an uninterrupted run of the new length draws each trial
// before it has learned the last few (the lag of the workers in flight):
// so the checkpoint is set aside and the agent learns the log again from
// its seed, checked trial by trial, and goes on as that run would. A
// final phase of the old length is set aside too, with the report that
// describes it: the best architectures may change. Both go to
// earlier/trials-OLD in the run (README.md, "What `make search` leaves behind").
// It returns what it did, for the run's first event.
func (s *Search) retarget(old, trials int) (string, error) {
	d := s.dir
	recorded, err := rundir.ReadTrials(d.Path) // at most trials of them (Resume)
	if err != nil {
		return "", err
	}
	if err := s.drawsFirst(recorded); err != nil {
		return "", err
	}
	what := "checkpoint, report"
	if finals, err := rundir.ReadFinalRecords(d.Path); err != nil {
		return "", err
	} else if len(finals) > 0 {
		what = "checkpoint, final phase, report"
	}
	if _, err := os.Stat(filepath.Join(d.Path, rundir.DirBench)); err == nil {
		what += ", nasctl bench's measurements"
	}
	aside, err := d.SetAside(fmt.Sprintf("trials-%d", old), rundir.FileAgent, rundir.FileNotes, rundir.FileFinal, rundir.FileFinalLatency,
		rundir.DirWinners, rundir.FileReport, rundir.FileReportCSV, rundir.FileTop, rundir.DirPlots, rundir.DirBench)
	note := fmt.Sprintf(" (planned: %d, was %d); the agent learns the %d recorded again", trials, old, len(recorded))
	if aside != "" {
		note += fmt.Sprintf(", and what the run had of its %d-trial plan (%s) is in %s", old, what, filepath.Join(d.Path, aside))
	}
	return note, err
}

// drawsFirst checks that the run's settings draw its log's first trial, as
// the agent learning the log again will have to, before retarget moves
// anything: settings changed since the run (config.yaml edited or lost)
// would otherwise be found by the replay, with the checkpoint and final
// phase already set aside.
func (s *Search) drawsFirst(recorded []rundir.Trial) error {
	if len(recorded) == 0 || recorded[0].ID != 1 {
		return nil
	}
	a, err := s.method.newAgent()
	if err != nil {
		return err
	}
	p, err := a.Propose(1)
	if err != nil {
		return fmt.Errorf("proposing trial 1: %w", err)
	}
	if arch := rundir.CandidateOf(1, p).Arch; arch != recorded[0].Arch {
		return fmt.Errorf("%s: trial 1 is %s, but these settings propose %s: %s or the log changed since the run began; nothing was moved (put the run's settings back, or start a new run)",
			s.dir.Path, recorded[0].Arch, arch, rundir.FileConfig)
	}
	return nil
}

// saveConfig writes the run's saved settings after a resume changed
// final.skip, final.augment, data or trials: only those lines of config.yaml change, and the
// resume's workers and threads hold for that resume only.
func saveConfig(d *rundir.Dir, saved Config) error {
	b, err := saved.Marshal()
	if err != nil {
		return err
	}
	return d.WriteConfig(b)
}

// resumeIn makes the search of cfg in the opened run directory d;
// beforeRestore runs once the settings and images are known good, before
// the agent is restored.
func resumeIn(d *rundir.Dir, cfg Config, newExec func(Config) (Executor, error), beforeRestore func(*Search) error) (*Search, error) {
	var exec Executor
	if cfg.Trains() {
		var err error
		if cfg, err = pinChannels(d.Path, cfg); err != nil {
			return nil, err
		}
		if exec, err = newExec(cfg); err != nil {
			if _, serr := os.Stat(cfg.Data); serr != nil {
				return nil, fmt.Errorf("the run's images: %w; if they moved, give their folder with --data", serr)
			}
			return nil, err
		}
	}
	s, err := prepare(cfg, exec)
	if err != nil {
		return nil, err
	}
	if err := checkSameData(d.Path, s.data, cfg.Data); err != nil {
		return nil, err
	}
	s.dir = d
	if _, err := os.Stat(filepath.Join(d.Path, rundir.FileData)); errors.Is(err, os.ErrNotExist) {
		// Deleted (say, damaged): written again from the images given.
		if err := s.writeData(); err != nil {
			return nil, err
		}
	}
	if err := beforeRestore(s); err != nil {
		return nil, err
	}
	if err := s.restore(); err != nil {
		return nil, err
	}
	return s, nil
}

// checkSameData refuses to resume the run in dir on images other than those
// it searched: data.json's content hash and input must be now's (a run
// without data.json, or without training, has nothing to compare).
func checkSameData(dir string, now Data, folder string) error {
	was, err := readData(dir)
	if err != nil {
		return err
	}
	if was.Hash != "" && now.Hash != "" && was.Hash != now.Hash {
		what := ""
		if n, m := now.Full+now.Val+now.Test, was.Full+was.Val+was.Test; !slices.Equal(now.Classes, was.Classes) {
			what = fmt.Sprintf("; classes %s, the run's %s", strings.Join(now.Classes, ", "), strings.Join(was.Classes, ", "))
		} else if n != m && m > 0 {
			what = fmt.Sprintf("; %d images in the splits, the run's %d", n, m)
		}
		return fmt.Errorf("the images in %s are not those the run searched (content hash %s, the run's %s%s): give the run's images with --data; for other images, start a new run",
			folder, now.Hash, was.Hash, what)
	}
	if was.Input.Channels != 0 && now.Input.Channels != 0 && was.Input != now.Input {
		return fmt.Errorf("the images in %s load at %s, but the run searched at %s: give the run's input with --input %s", folder, now.Input, was.Input, was.Input)
	}
	return nil
}

// pinChannels gives a resumed run's input size without channels the
// channels the run searched with (data.json): an HxW input once meant one
// channel, and now means the images' own.
func pinChannels(dir string, cfg Config) (Config, error) {
	in, err := genotype.ParseImageSize(cfg.Input)
	if cfg.Input == "" || err != nil || in.Channels != 0 {
		return cfg, nil // checked with the config
	}
	was, err := readData(dir)
	if err != nil {
		return cfg, err
	}
	if c := was.Input.Channels; c != 0 && was.Input.Height == in.Height && was.Input.Width == in.Width {
		cfg.Input = genotype.Input{Height: in.Height, Width: in.Width, Channels: c}.String()
	}
	return cfg, nil
}

// prepare makes the parts of a search that do not touch its directory.
func prepare(cfg Config, exec Executor) (*Search, error) {
	s := &Search{cfg: cfg, exec: exec, notes: map[int]rundir.Note{}, byKey: map[string]int{}, best: -1, logged: map[int]rundir.Trial{}}
	if !cfg.Trains() {
		p, err := problem.New(cfg.Problem.Name, cfg.Problem.Blocks, cfg.Problem.Dataset)
		if err != nil {
			return nil, err
		}
		s.prob, s.exec = p, ProblemExecutor{Problem: p}
	}
	s.data = s.exec.Data()
	m, err := newMethod(cfg, s.data, s.prob)
	if err != nil {
		return nil, err
	}
	s.method = m
	return s, nil
}

// restore loads the agent's checkpoint and queues the replay of the log.
func (s *Search) restore() error {
	trials, err := rundir.ReadTrials(s.dir.Path)
	if err != nil {
		return err
	}
	for _, t := range trials {
		s.logged[t.ID] = t
	}
	cp, state, err := s.dir.LoadAgent()
	if err != nil {
		return err
	}
	learned := 0
	if cp == nil {
		s.agent, err = s.method.newAgent()
	} else {
		learned = cp.Learned
		s.agent, err = s.method.loadAgent(state)
	}
	if err != nil && cp != nil { // the saved state itself: a new agent cannot fail so
		return fmt.Errorf("%s: %w (%s)", filepath.Join(s.dir.Path, rundir.FileAgent), err, rundir.Relearn)
	} else if err != nil {
		return err
	}
	if err := s.dir.KeepNotes(learned); err != nil {
		return err
	}
	notes, err := rundir.ReadNotes(s.dir.Path)
	if err != nil {
		return err
	}
	for _, n := range notes {
		s.notes[n.Trial] = n
	}
	// The trials learned before the checkpoint are the run's memory; those
	// after it are replayed.
	for id := 1; id <= learned; id++ {
		t, ok := s.logged[id]
		if !ok {
			return fmt.Errorf("%s: the agent has learned trial %d, which %s lacks; the files do not belong together (%s)",
				s.dir.Path, id, rundir.FileTrials, rundir.Relearn)
		}
		delete(s.logged, id)
		s.remember(t)
	}
	s.sched = newScheduler(s.cfg.Workers, learned+1)
	if s.savedWorkers > 0 {
		s.sched.loggedLag = lagOf(s.savedWorkers)
	}
	if cp != nil {
		for _, c := range cp.Outstanding {
			g, err := s.method.genotype(c)
			if err != nil {
				return fmt.Errorf("%s: outstanding trial %d: %w", rundir.FileAgent, c.ID, err)
			}
			s.sched.restored = append(s.sched.restored, proposal{c, controller.Proposal{Genotype: g, Actions: c.Actions, Epsilon: c.Epsilon, Temperature: c.Temperature, Greedy: c.Greedy}})
		}
	}
	return nil
}

// writeData records what the trials train on.
func (s *Search) writeData() error {
	if !s.cfg.Trains() {
		return nil
	}
	return s.dir.WriteJSON(rundir.FileData, s.data)
}

// Close releases the run directory.
func (s *Search) Close() error { return s.dir.Close() }

// Config returns the run's settings.
func (s *Search) Config() Config { return s.cfg }

// Dir returns the run directory.
func (s *Search) Dir() string { return s.dir.Path }

// Data describes what the trials train on (zero for a search on a problem).
func (s *Search) Data() Data { return s.data }

// Describe names the agent and its reward.
func (s *Search) Describe() string { return s.method.describe() }

// Trials returns the trials the agent has learned, in trial order.
func (s *Search) Trials() []rundir.Trial { return s.trials }

// droppedNote says which half-written last lines opening the run cut, for
// the run's first event: a trial whose line was cut trains again.
func droppedNote(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("; the half-written last %s of %s (a crash or a full disk while it was written) %s dropped, and %s made again",
		english.PluralWord(len(names), "line", "lines"), english.OxfordWordSeries(names, "and"),
		english.PluralWord(len(names), "was", "were"), english.PluralWord(len(names), "its record is", "their records are"))
}

// Run evaluates the remaining trials, then (for a trained search, unless
// configured otherwise) the final phase, and writes the report. Closing stop
// makes it start no more trials and return ErrStopped once those in flight
// are recorded; cancelling ctx abandons the trials in flight (returning
// ctx.Err()). Either way every finished trial is on disk, the report is
// written, and the run can be resumed.
func (s *Search) Run(ctx context.Context, stop <-chan struct{}) error {
	s.start = time.Now()
	s.emit(Event{Kind: "start", Message: fmt.Sprintf("%d of %d trials done%s%s", len(s.trials)+len(s.logged), s.cfg.Trials, s.retargeted, droppedNote(s.dir.Dropped))})
	if err := s.int8Here(); err != nil {
		s.ended(ctx, err)
		return err
	}
	if err := s.prepareLatency(ctx); err != nil {
		s.ended(ctx, err)
		return err
	}
	err := s.loop(ctx, stop)
	if err == nil && s.cfg.Trains() && !s.cfg.Final.Skip {
		err = s.final(ctx, stop)
	}
	if err == nil {
		err = s.timeFinals(ctx)
	}
	s.ended(ctx, err)
	md, rep, werr := s.writeReport()
	switch {
	case err != nil:
	case werr != nil:
		err = werr
		s.ended(ctx, err)
	default:
		if err = cmp.Or(nothingEvaluated(s.trials, s.dir.Path), noneWithinLimit(rep)); err != nil {
			s.ended(ctx, err) // finished and reported, but not a success
		} else {
			// Once, when the run is done: not at every stop's report.
			for _, w := range rep.BudgetWarnings() {
				s.emit(Event{Kind: "info", Message: "warning: " + w})
			}
			s.emit(Event{Kind: "done", Message: md})
		}
	}
	return err
}

// ErrNoneWithinLimit is the error of a run that ran to its end, report
// written, whose final models were all timed over its latency limit: it
// picked no best, and a resume would not change that.
var ErrNoneWithinLimit = errors.New("no final model is within the latency limit")

// noneWithinLimit is ErrNoneWithinLimit with the limit and what to do, when
// rep's finals are all over the limit as timed; nil otherwise.
func noneWithinLimit(rep Report) error {
	if rep.Best != nil || len(rep.OverLimit) == 0 || rep.FinalIncomplete() {
		return nil
	}
	return fmt.Errorf("%w of %g ms as timed after the final phase (%s has their timings): no best is picked, and %s is not written; "+
		"search again with a limit some way under the one you need", ErrNoneWithinLimit, rep.LatencyLimitMs, rundir.FileReport, rundir.BestName)
}

// ErrNothingEvaluated is the error of a run that ran to its end, report
// written, without evaluating any of its trials: all failed or were refused
// (a worker that cannot work, limits that no network meets). It must not
// look like a success.
var ErrNothingEvaluated = errors.New("no trial of the run was evaluated")

// nothingEvaluated is ErrNothingEvaluated with the counts of trials and
// the commonest reason, when none of trials was evaluated; nil when one was
// (or there are none).
func nothingEvaluated(trials []rundir.Trial, dir string) error {
	counts := map[rundir.Status]int{}
	kinds := map[string]int{} // reasons by their words, numbers left out
	reasons := map[string]string{}
	for _, t := range trials {
		if t.Status == rundir.StatusOK { // a reuse copies a trial, which may have been refused
			return nil
		}
		counts[t.Status]++
		if t.Reason != "" {
			k := reasonKind(t.Reason)
			kinds[k]++
			reasons[k] = t.Reason // the last of its kind
		}
	}
	if len(trials) == 0 {
		return nil
	}
	var parts []string
	for _, st := range rundir.Statuses {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	common := ""
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		if common == "" || kinds[k] > kinds[common] {
			common = k
		}
	}
	why := ""
	if common != "" {
		why = fmt.Sprintf("; the commonest reason (%d of %d trials), the last of them: %s", kinds[common], len(trials), reasons[common])
	}
	if counts[rundir.StatusRefused]+counts[rundir.StatusReused] == len(trials) && strings.Contains(common, "parameters exceed the limit") {
		// Every network over the parameter limit: how far it is from
		// what this space draws.
		// Among those over the parameter limit: one refused for its
		// latency may be under it.
		over := slices.DeleteFunc(slices.Clone(trials), func(t rundir.Trial) bool { return reasonKind(t.Reason) != common })
		smallest := slices.MinFunc(over, func(a, b rundir.Trial) int {
			return cmp.Compare(cmp.Or(a.Params, math.MaxInt64), cmp.Or(b.Params, math.MaxInt64)) // a reuse may record none
		})
		why += fmt.Sprintf("; the smallest network over the parameter limit, %s, has %d parameters: a new run with a limit above that trains some", smallest.Arch, smallest.Params)
	}
	return fmt.Errorf("%w (%s)%s (every trial is in %s)", ErrNothingEvaluated, strings.Join(parts, ", "), why, filepath.Join(dir, rundir.FileTrialsCSV))
}

// reasonKind is a trial's reason without its figures: reasons of one kind
// ("180081 parameters exceed the limit of 160000") differ only in those. A
// word with a digit in it is a figure, with its unit ("12.5MiB", "1e-05").
func reasonKind(reason string) string {
	words := strings.Fields(reason)
	for i, w := range words {
		if strings.ContainsAny(w, "0123456789") {
			words[i] = "#"
		}
	}
	return strings.Join(words, " ")
}

// ended reports how a run that did not finish ended: "stopped" (by a stop
// or an interrupt) or "failed". A finished run's "done" comes with its
// report.
func (s *Search) ended(ctx context.Context, err error) {
	switch {
	case err == nil:
	case errors.Is(err, ErrStopped):
		s.stopped("stopped")
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		s.stopped("interrupted, the work in flight abandoned")
	default:
		// A run that evaluated nothing is failed by its trials already, and
		// a resume would change nothing. Best effort: a disk that failed
		// the run may fail this too.
		if !errors.Is(err, ErrNothingEvaluated) && !errors.Is(err, ErrNoneWithinLimit) {
			s.dir.WriteJSON(rundir.FileFailure, rundir.Failure{Error: err.Error(), Time: time.Now()})
		}
		s.emit(Event{Kind: "failed", Message: err.Error()})
	}
}

// remember adds a learned trial to the search's memory.
func (s *Search) remember(t rundir.Trial) {
	s.trials = append(s.trials, t)
	if _, ok := s.byKey[t.Arch]; !ok && t.Status != rundir.StatusReused && t.Status != rundir.StatusFailed {
		s.byKey[t.Arch] = len(s.trials) - 1
		if t.Status == rundir.StatusOK && (s.best < 0 || better(t, s.trials[s.best])) {
			s.best = len(s.trials) - 1
		}
	}
}

// better says whether a ranks before b (ranked's order).
func better(a, b rundir.Trial) bool {
	if a.Reward != b.Reward {
		return a.Reward > b.Reward
	}
	return a.ID < b.ID
}

// ranked returns the distinct architectures evaluated with status ok, best
// reward first (ties: the earlier trial), among the learned trials and
// unlearned ones.
func (s *Search) ranked(unlearned []rundir.Trial) []rundir.Trial {
	var out []rundir.Trial
	for _, i := range s.byKey {
		if s.trials[i].Status == rundir.StatusOK {
			out = append(out, s.trials[i])
		}
	}
	for _, t := range unlearned {
		if t.Status == rundir.StatusOK {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return better(out[i], out[j]) })
	return out
}

// top returns the first TopK of ranked.
func (s *Search) top(unlearned []rundir.Trial) []rundir.Trial {
	r := s.ranked(unlearned)
	return r[:min(len(r), s.cfg.Final.TopK)]
}

// emit fills the running totals of an event and reports it.
func (s *Search) emit(e Event) {
	if s.Progress == nil {
		return
	}
	e.Done, e.Total = len(s.trials), s.cfg.Trials
	if e.Kind == "start" || e.Kind == "stopped" {
		// With those recorded but not yet learned (during a stop, or
		// before it for a resume): what the stop leaves and the resume
		// finds, as their messages say.
		e.Done = s.Done()
	}
	if s.sched.pool != nil {
		e.InFlight = s.sched.pool.busy
	}
	if s.best >= 0 {
		e.Best, e.BestArch = s.trials[s.best].Reward, s.trials[s.best].Arch
	}
	recent := s.trials[max(0, len(s.trials)-100):]
	for _, t := range recent {
		e.Recent += t.Reward / float64(len(recent))
	}
	e.Elapsed = time.Since(s.start).Seconds()
	e.Remaining = s.remaining()
	e.FinalDone, e.FinalTotal = s.finals.done, s.finals.total
	switch e.Kind {
	case "start", "done", "stopped", "failed":
		e.Dir = s.dir.Path
	}
	s.Progress(e)
}

// remaining estimates the seconds left (Remaining).
func (s *Search) remaining() float64 {
	return Remaining(s.cfg, s.data, s.trials, s.finals.done)
}

// Remaining estimates the seconds a run of cfg (with defaults) on data
// still needs, with trials and finalsDone final models recorded: the mean
// time of the trials evaluated so far times those left (over the workers),
// plus the final phase: the time per epoch of the trials it would retrain
// now, scaled to its epochs and data (finalSeconds); 0 before any trial was
// evaluated. A search whose rewards need no training is paced by the clock
// instead (scoredRemaining). The progress lines and the dashboard show it.
func Remaining(cfg Config, data Data, trials []rundir.Trial, finalsDone int) float64 {
	if !cfg.Trains() {
		return scoredRemaining(cfg, trials)
	}
	var sum float64
	var n int
	for _, t := range trials {
		if t.Status.Trained() {
			sum += t.Seconds
			n++
		}
	}
	if n == 0 {
		return 0
	}
	mean := sum / float64(n)
	left := float64(max(cfg.Trials-len(trials), 0))
	share := float64(n) / float64(len(trials)) // of the trials that need evaluating
	est := left * share * mean / float64(cfg.Workers)
	if cfg.Trains() && !cfg.Final.Skip {
		scale := cfg.Final.EpochFactor * float64(data.Full) / float64(max(data.Train, 1))
		est += float64(max(cfg.Final.TopK-finalsDone, 0)) * finalSeconds(cfg, trials, mean) * scale / float64(cfg.Workers)
	}
	return est
}

// scoredWindow is how many of the latest trials scoredRemaining paces:
// recent enough that a stop and resume falls out of it soon.
const scoredWindow = 50

// scoredRemaining is Remaining for a search whose rewards need no training
// (a formula or a table): a trial's score takes microseconds, and the time
// goes to the agent (sampling, a controller's update), so the pace is the
// wall-clock time between the latest trials' ends.
func scoredRemaining(cfg Config, trials []rundir.Trial) float64 {
	recent := trials[max(0, len(trials)-scoredWindow):]
	if len(recent) < 2 {
		return 0
	}
	first, last := recent[0].Finished, recent[0].Finished // workers finish out of order
	for _, t := range recent[1:] {
		if t.Finished.Before(first) {
			first = t.Finished
		}
		if t.Finished.After(last) {
			last = t.Finished
		}
	}
	per := last.Sub(first).Seconds() / float64(len(recent)-1)
	return per * float64(max(cfg.Trials-len(trials), 0))
}

// finalSeconds is the mean time of cfg.Train.Epochs epochs of the best
// cfg.Final.TopK trials, those the final phase retrains: they are larger
// than the average trial, which early stopping also shortens, so on small
// runs the mean trial (mean, which it falls back on) made the phase look
// about half as long as it took (docs/performance.md, "The time left").
func finalSeconds(cfg Config, trials []rundir.Trial, mean float64) float64 {
	var top []rundir.Trial
	for _, t := range trials {
		if t.Status == rundir.StatusOK && len(t.Epochs) > 0 {
			top = append(top, t)
		}
	}
	if len(top) == 0 {
		return mean
	}
	sort.Slice(top, func(i, j int) bool { return better(top[i], top[j]) })
	top = top[:min(len(top), cfg.Final.TopK)]
	var sum float64
	for _, t := range top {
		sum += t.Seconds / float64(len(t.Epochs)) * float64(cmp.Or(cfg.Train.Epochs, len(t.Epochs)))
	}
	return sum / float64(len(top))
}

// Done returns the number of trials finished and recorded: learned, on
// disk and not yet learned (a stop leaves some so), or recorded by an
// earlier run and not yet replayed.
func (s *Search) Done() int { return len(s.trials) + len(s.sched.finished) + len(s.logged) }
