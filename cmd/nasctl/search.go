package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/cluster"
	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/internal/progress"
	"github.com/nasctl/nasctl/internal/shell"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
	"github.com/urfave/cli/v2"
)

func searchCommand() *cli.Command {
	return &cli.Command{
		Name:        "search",
		Usage:       "search architectures by reinforcement learning",
		Subcommands: []*cli.Command{searchMetaQNNCommand(), searchNASNetCommand()},
	}
}

// searchOptions run a search of either kind: a new one of Config, or the
// one in Resume.
type searchOptions struct {
	Config search.Config
	Resume string
	// Overrides of a resumed run's saved settings.
	Resumed     search.ResumeOptions
	Quiet, JSON bool
	// Broker, when set, sends the trials to workers (not a setting of the
	// run: a resumed run may train here or elsewhere).
	Broker brokerOptions
	// Notes say what a flag given did not do (a warning's line each,
	// printed as the run starts).
	Notes []string
	// Budget, when set, is the wall-clock time of this session's trials:
	// once it has passed, no trial starts, those in flight finish, and the
	// final phase retrains the best of the trials recorded (runSearch).
	Budget time.Duration
}

// resumeOptions returns the options of a resumed run of kind after checking
// that no flag in settingFlags, which shape a run, is given, and that the
// run is of that kind. trialsFlag (--trials, --episodes) plans another
// number of trials.
func resumeOptions(c *cli.Context, kind search.Kind, settingFlags []string, trialsFlag string) (searchOptions, error) {
	opts := searchOptions{Resume: c.String("resume"), Quiet: c.Bool("quiet"), JSON: c.Bool("json")}
	var given []string // all of them at once, not one per attempt
	for _, f := range settingFlags {
		if c.IsSet(f) {
			given = append(given, "--"+f)
		}
	}
	if len(given) > 0 {
		return opts, usagef("%s cannot change a resumed run, even to the value it has (its settings are in %s): drop them; only --%s (more trials), --workers, --threads, --skip-final, --final-augment (while no final is recorded, or with more trials), --data (the same images, moved), --broker, --quiet and --json can",
			strings.Join(given, ", "), filepath.Join(opts.Resume, rundir.FileConfig), trialsFlag)
	}
	var finalAugment runtime.Augment
	if c.IsSet("final-augment") {
		aug := c.String("final-augment")
		var err error
		if finalAugment, err = runtime.ParseAugment(aug); err != nil {
			return opts, usagef("--final-augment: %v", err)
		}
		opts.Resumed.FinalAugment = &aug
	}
	if c.IsSet(trialsFlag) {
		if opts.Resumed.Trials = c.Int(trialsFlag); opts.Resumed.Trials < 1 {
			return opts, usagef("--%s must be at least 1, got %d", trialsFlag, opts.Resumed.Trials)
		}
	}
	if err := checkRunFolder(opts.Resume); err != nil {
		return opts, err
	}
	// A run that cannot be read is left to search.Resume, whose error says why.
	if saved, err := search.ReadConfig(opts.Resume); err == nil {
		if k := cmp.Or(saved.Kind, search.KindMetaQNN); k != kind {
			return opts, usagef("%s is a %s run: resume it with nasctl search %s --resume %s", opts.Resume, k, k, shell.Quote(opts.Resume))
		}
		for _, f := range []string{"skip-final", "final-augment", "data"} {
			if c.IsSet(f) && !saved.Trains() {
				return opts, usagef("--%s applies to the searches that train; the run in %s scores its trials with %s: no images, no final phase", f, opts.Resume, saved.Problem.Name)
			}
		}
		// A run of the images' own size (no input) is checked once they are read.
		if in, err := imageInput(saved.Input); opts.Resumed.FinalAugment != nil && err == nil {
			if err := finalAugment.Fits(in.Height, in.Width); err != nil {
				return opts, usagef("--final-augment: %v", err)
			}
		}
	}
	if err := checkDataFlag(c); err != nil {
		return opts, err
	}
	var err error
	if opts.Broker, err = brokerOptionsOf(c); err != nil {
		return opts, err
	}
	opts.Resumed.Workers, opts.Resumed.Threads, opts.Resumed.Data = c.Int("workers"), c.Int("threads"), c.String("data")
	if c.IsSet("skip-final") {
		skip := c.Bool("skip-final")
		opts.Resumed.SkipFinal = &skip
	}
	return opts, nil
}

// progressFlags say how search metaqnn and search nasnet draw their
// progress.
func progressFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "quiet", Usage: "print only the final report"},
		&cli.DurationFlag{Name: "time-budget", Usage: "wall-clock time for this session's trials (10m, 1h30m): once it has passed, no trial starts, those in flight finish, the run's plan becomes the trials recorded, and the final phase retrains the best of them (which trials a run has then depends on the machine's speed; with --json, the first part's stopped is followed by an info and the second part's events, from start)", DefaultText: "none"},
		&cli.BoolFlag{Name: "json", Usage: "print progress as JSON events, one per line: start, info (a note, at any time), trial, saved, stopping, final_start, final_epoch (a retraining's epoch, at most every 30 s), final, then done, stopped or failed (start and the last name the run directory, dir; a search that cannot start ends with failed, without start; a flag that cannot be read at all, such as an unknown one, prints only its error)"},
	}
}

// trainingFlags are the settings of a search that trains its candidates,
// which search metaqnn and search nasnet share (unset, each is the
// preset's), and where it trains them (the broker flags).
func trainingFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "image folder (see nasctl dataset --help)"},
		&cli.StringFlag{Name: "plan", Usage: "split plan: " + strings.Join(dataset.SplitPlanNames(), ", ") + " (-stratified: the same shares in every class; default: the preset's)"},
		&cli.Uint64Flag{Name: "split-seed", Usage: "seed of the shuffle before splitting"},
		&cli.StringFlag{Name: "input", Usage: "resize images to HxWxC (32x32x1 gray, 32x32x3 RGB) or HxW, keeping their colour: gray when every image is gray, else RGB (default: the preset's)"},
		&cli.IntFlag{Name: "epochs", Usage: "most epochs per trial"},
		&cli.IntFlag{Name: "batch", Usage: "mini-batch size"},
		&cli.Float64Flag{Name: "lr", Usage: "learning rate"},
		&cli.Float64Flag{Name: "data-fraction", Usage: "share of the training split used by the trials"},
		&cli.StringFlag{Name: "augment", Usage: "vary the training images at random, in the trials and the final phase: " + augmentUsage + " (default: the preset's)"},
		&cli.StringFlag{Name: "final-augment", Usage: "the final phase's own augmentation, in place of --augment's there (same forms; final.augment in --config); a resumed run takes it while no final is recorded", DefaultText: "--augment's"},
		&cli.StringFlag{Name: "metric", Usage: "what validation accuracy means for rewards, best epochs, early stops and the winner: accuracy (the share right) or balanced_accuracy (the mean of the classes' recalls, for classes of very different sizes, where a model that misses a small class can still score high on accuracy) (default: accuracy)"},
		&cli.StringFlag{Name: "sampling", Usage: "how an epoch draws the training images, in the trials and the final phase: shuffle (every image once) or balanced (every class equally often, small classes' images repeated: for classes of very different sizes, with --metric balanced_accuracy) (default: shuffle)"},
		&cli.IntFlag{Name: "median-stop", Usage: "from this epoch on (before the last), stop a trial whose best validation accuracy is below the median of the earlier trials' at the same epoch, once 10 earlier trials have trained (0: never; train.median_stop.min_trials in --config sets the 10)"},
		&cli.IntFlag{Name: "give-up-after", Usage: "stop a trial still at chance (validation accuracy within a point of the majority share, or of 1/K under --metric balanced_accuracy) after this many epochs (0: never). search metaqnn's cpu preset's 2 suits images like the leaves, where a network that learns leaves chance in its first epoch; on others, where networks leave it later, the report and a warning say how many trials it stopped"},
		&cli.IntFlag{Name: "halving", Usage: "successive halving from this epoch: at it and at every 3x later epoch, a trial goes on only among the best third of the earlier trials there once 10 earlier trials reached it (0: off; train.halving.eta and min_trials in --config set the factor and the 10)"},
		&cli.IntFlag{Name: "top-k", Usage: "best architectures listed, and retrained in the final phase of a search that trains"},
		&cli.BoolFlag{Name: "skip-final", Usage: "leave out the final phase; on a resumed run, --skip-final=false adds it"},
		&cli.Float64Flag{Name: "target-ms", Usage: "mnasnet: target batch-1 latency T in ms", DefaultText: "none; --reward mnasnet needs it"},
		&cli.Float64Flag{Name: "max-latency-ms", Usage: "constraint: largest batch-1 latency in ms (0: none). Unless --latency-table is given, the final models are timed on this machine after the final phase and the best is picked among those within it; with none within, no best is written and the search exits 1"},
		&cli.Int64Flag{Name: "max-params", Usage: "constraint: most parameters"},
		&cli.StringFlag{Name: "latency", Usage: "where the latency of --reward mnasnet or --max-latency-ms comes from: predicted (a per-layer model calibrated at the start) or measured (every network timed here)"},
		latencyTableFlag(),
		&cli.IntFlag{Name: "workers", Usage: "trials trained at once"},
		&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime threads per worker (0: one per core)"},
		&cli.StringFlag{Name: "device", Usage: "cpu or cuda"},
		skipBadFlag(), memoryFlag(),
	}, append(brokerFlags("send the trials to workers through this broker, nats://HOST:4222, or start one here: embedded (see nasctl worker --help)"),
		embeddedFlags()...)...)
}

// presetDefaults makes the help of every numeric flag without a default of
// its own say that the preset's value applies when it is not given, where
// it would show a zero the search never uses.
func presetDefaults(flags []cli.Flag) []cli.Flag {
	for _, f := range flags {
		var zero bool
		var text *string
		switch f := f.(type) {
		case *cli.IntFlag:
			zero, text = f.Value == 0, &f.DefaultText
		case *cli.Int64Flag:
			zero, text = f.Value == 0, &f.DefaultText
		case *cli.Uint64Flag:
			zero, text = f.Value == 0, &f.DefaultText
		case *cli.Float64Flag:
			zero, text = f.Value == 0, &f.DefaultText
		}
		if zero && *text == "" {
			*text = "the preset's"
		}
	}
	return flags
}

// trainingSettingFlags are the trainingFlags that shape a run (a resumed
// run keeps them). --skip-final is not one: a resume may add the final
// phase, or leave it out, without changing a trial; nor is --final-augment,
// which a resume may change while no final is recorded; nor is --data, which
// a resume takes for images that moved (the same images: search.Resume
// compares their content hash).
var trainingSettingFlags = []string{"plan", "split-seed", "input", "epochs", "batch", "lr", "data-fraction", "augment", "metric", "sampling", "median-stop", "give-up-after", "halving", "top-k",
	"target-ms", "max-latency-ms", "max-params", "latency", "device", "skip-bad", "max-memory"}

// applyTrainingFlags sets the settings of cfg whose trainingFlags were
// given.
func applyTrainingFlags(c *cli.Context, cfg *search.Config) error {
	// A flag given as 0 would silently mean the preset's value; say so instead.
	for _, f := range []string{"epochs", "batch", "top-k", "workers"} {
		if c.IsSet(f) && c.Int(f) < 1 {
			return usagef("--%s must be at least 1, got %d", f, c.Int(f))
		}
	}
	if lr := c.Float64("lr"); c.IsSet("lr") && !(lr > 0) {
		return usagef("--lr must be positive, got %g", lr)
	}
	// 0 is no limit, which search.Config.Check answers with how to search
	// without one; a negative limit is a mistake of its own.
	if n := c.Int64("max-params"); n < 0 {
		return usagef("--max-params must be positive, got %d", n)
	}
	if ms := c.Float64("max-latency-ms"); ms < 0 || math.IsNaN(ms) {
		return usagef("--max-latency-ms must be positive, got %g", ms)
	}
	if f := c.Float64("data-fraction"); c.IsSet("data-fraction") && !(f > 0 && f <= 1) {
		return usagef("--data-fraction %g: give the share of the training split the trials use, in (0, 1]", f)
	}
	if s := c.String("input"); s != "" {
		if _, err := imageInput(s); err != nil {
			return err
		}
	}
	for _, f := range []string{"augment", "final-augment"} {
		if _, err := runtime.ParseAugment(c.String(f)); err != nil {
			return usagef("--%s: %v", f, err)
		}
	}
	if _, err := runtime.ParseMetric(c.String("metric")); c.IsSet("metric") && err != nil {
		return usagef("--metric: %v", err)
	}
	if _, err := runtime.ParseSampling(c.String("sampling")); c.IsSet("sampling") && err != nil {
		return usagef("--sampling: %v", err)
	}
	if err := checkDataFlag(c); err != nil {
		return err
	}
	if p := c.String("plan"); c.IsSet("plan") && !slices.Contains(dataset.SplitPlanNames(), p) {
		return usagef("--plan %q: give one of %s", p, strings.Join(dataset.SplitPlanNames(), ", "))
	}
	set(c, "data", func() { cfg.Data = c.String("data") })
	set(c, "plan", func() { cfg.Split = c.String("plan") })
	set(c, "split-seed", func() { cfg.SplitSeed = c.Uint64("split-seed") })
	set(c, "input", func() { cfg.Input = c.String("input") })
	set(c, "epochs", func() { cfg.Train.Epochs = c.Int("epochs") })
	set(c, "batch", func() { cfg.Train.BatchSize = c.Int("batch") })
	set(c, "lr", func() { cfg.Train.LR = c.Float64("lr") })
	set(c, "data-fraction", func() { cfg.DataFraction = c.Float64("data-fraction") })
	set(c, "augment", func() { cfg.Train.Augment = c.String("augment") })
	set(c, "final-augment", func() { cfg.Final.Augment = c.String("final-augment") })
	set(c, "metric", func() { cfg.Train.Metric = c.String("metric") })
	set(c, "sampling", func() { cfg.Train.Sampling = c.String("sampling") })
	set(c, "median-stop", func() { cfg.Train.MedianStop.After = c.Int("median-stop") })
	set(c, "give-up-after", func() { cfg.Train.GiveUpAfter = c.Int("give-up-after") })
	set(c, "halving", func() { cfg.Train.Halving.First = c.Int("halving") })
	set(c, "top-k", func() { cfg.Final.TopK = c.Int("top-k") })
	set(c, "skip-final", func() { cfg.Final.Skip = c.Bool("skip-final") })
	set(c, "target-ms", func() { cfg.Reward.TargetMs = c.Float64("target-ms") })
	set(c, "max-latency-ms", func() { cfg.Reward.MaxLatencyMs = c.Float64("max-latency-ms") })
	set(c, "max-params", func() { cfg.Reward.MaxParams = c.Int64("max-params") })
	set(c, "latency", func() { cfg.Reward.Latency = c.String("latency") })
	set(c, "latency-table", func() { cfg.Reward.Table = c.String("latency-table") })
	set(c, "workers", func() { cfg.Workers = c.Int("workers") })
	set(c, "threads", func() { cfg.Threads = c.Int("threads") })
	set(c, "device", func() { cfg.Device = c.String("device") })
	set(c, "skip-bad", func() { cfg.SkipBad = c.Bool("skip-bad") })
	if c.IsSet("max-memory") {
		var err error
		if cfg.Budget.MaxMemory, err = maxMemory(c); err != nil {
			return err
		}
	}
	return nil
}

// set calls apply when flag name was given.
func set(c *cli.Context, name string, apply func()) {
	if c.IsSet(name) {
		apply()
	}
}

// rewardLimits keeps --max-params and --max-latency-ms with the reward that
// refuses by them: given with another they would be recorded in
// config.yaml and refuse nothing, so they are a usage error; a preset's
// limits go with another reward ("--reward accuracy lifts the limit").
func rewardLimits(c *cli.Context, cfg *search.Config) error {
	mode := cmp.Or(cfg.Reward.Mode, search.RewardAccuracy)
	if usesLatency := mode == search.RewardMnasNet || mode == search.RewardConstraint && cfg.Reward.MaxLatencyMs > 0; c.IsSet("latency") && !usesLatency {
		return usagef("--latency says where the latency of --reward mnasnet or of --max-latency-ms comes from, and this search uses none: add --reward mnasnet --target-ms T or --reward constraint --max-latency-ms L, or leave --latency out")
	}
	if c.IsSet("target-ms") && mode != search.RewardMnasNet {
		return usagef("--target-ms is the target latency of the mnasnet reward, and the %s reward does not use it: add --reward mnasnet, or leave --target-ms out", mode)
	}
	if mode == search.RewardConstraint {
		return nil
	}
	for _, f := range []string{"max-params", "max-latency-ms"} {
		if c.IsSet(f) {
			return usagef("--%s is a limit of the constraint reward, and the %s reward refuses nothing by it: add --reward constraint, or leave --%s out", f, mode, f)
		}
	}
	cfg.Reward.MaxParams, cfg.Reward.MaxLatencyMs = 0, 0
	return nil
}

// setRunName sets cfg's name from --name. An empty --name is a usage
// error rather than the default name: it is most often a shell variable
// left unset, and search.Config's own default for an empty name is the
// kind alone (runs/metaqnn), not the preset's name the help promises.
func setRunName(c *cli.Context, cfg *search.Config) error {
	if !c.IsSet("name") {
		return nil
	}
	name := c.String("name")
	if strings.TrimSpace(name) == "" {
		return usagef("--name %q: give a run name, or leave --name out for the default (here %s)", name, cfg.WithDefaults().Name)
	}
	cfg.Name = name
	return nil
}

// checked fills cfg's defaults and returns it, or a usage error that lists
// every problem.
func checked(cfg search.Config) (search.Config, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Check(); err != nil {
		return cfg, usagef("invalid settings:\n%v", err)
	}
	return cfg, nil
}

// executors makes the executors of trained searches: it initialises ONNX
// Runtime once and loads the data; with a broker, it connects to it (or
// starts it) and sends the trials there. close releases all of it.
type executors struct {
	ctx context.Context
	say func(format string, args ...any)
	// warn reports what the broker and its workers do: no worker waiting,
	// a lost connection; under --quiet too, and an info event under --json.
	warn   func(format string, args ...any)
	inited bool
	broker brokerOptions // URL empty: the trials train here

	server *cluster.Server   // the embedded broker, if any
	conn   *cluster.Broker   // the connection to the broker, if any
	remote *cluster.Executor // the distributed executor, if any
}

// make is the executor of cfg's trials: here, or on the broker's workers.
func (e *executors) make(cfg search.Config) (search.Executor, error) {
	if e.broker.URL != "" {
		return e.distributed(cfg)
	}
	l, err := e.loadLocal(cfg)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (e *executors) loadLocal(cfg search.Config) (*search.LocalExecutor, error) {
	if !e.inited {
		dev, err := runtime.ParseDevice(cmp.Or(cfg.Device, "cpu"))
		if err != nil {
			return nil, err
		}
		if err := runtime.InitDevice(dev, 0); err != nil {
			return nil, err
		}
		e.inited = true
	}
	e.say("loading %s", cfg.Data)
	l, err := search.NewLocalExecutor(cfg, nil)
	if err != nil {
		return nil, withInputFlag(err)
	}
	for _, b := range l.Skipped() {
		e.say("skipped (--skip-bad): %v", b)
	}
	for _, g := range l.Gaps() {
		e.warn("warning: %s", g)
	}
	return l, nil
}

func (e *executors) close() {
	e.closeBroker()
	if e.inited {
		runtime.Close()
	}
}

// jsonFailed ends a --json search's events with failed when its options
// are refused (a missing --data folder, a bad --cells): a search that
// cannot start ends with failed, as its --help says. err is returned as
// it is, with its exit code.
func jsonFailed(c *cli.Context, err error) error {
	if c.Bool("json") {
		json.NewEncoder(c.App.Writer).Encode(search.Event{Kind: "failed", Message: withBadFileHint(err).Error()})
	}
	return err
}

// runSearchCommand runs the search of opts with the command's
// --time-budget (runSearch).
func runSearchCommand(c *cli.Context, opts searchOptions) error {
	if opts.Budget = c.Duration("time-budget"); opts.Budget < 0 {
		return jsonFailed(c, usagef("--time-budget %s: give a positive duration, such as 10m", opts.Budget))
	}
	return runSearch(c.Context, opts, c.App.Writer, c.App.ErrWriter)
}

// runSearch runs the search of opts (runSearchOnce); with a time budget
// that runs out before the last trial, it then plans the run anew at the
// trials recorded, as --resume DIR --trials N would, and runs its final
// phase.
func runSearch(ctx context.Context, opts searchOptions, out, errOut io.Writer) error {
	err := runSearchOnce(ctx, opts, out, errOut)
	var spent budgetSpent
	if !errors.As(err, &spent) {
		return err
	}
	cfg, err := search.ReadConfig(spent.dir)
	if err != nil {
		return err
	}
	cfg.Trials = spent.done
	if err := cfg.WithDefaults().Check(); err != nil { // too few trials for the run's settings (evolution's population, say)
		return fmt.Errorf("the time budget of %s was spent after %s, too few to end the run there (%v); go on with more time: %s",
			opts.Budget, english.Plural(spent.done, "trial", "trials"), strings.ReplaceAll(err.Error(), "\n", "; "), opts.Broker.resumeCommand(cfg.Kind, spent.dir))
	}
	then := ""
	if cfg.Trains() && !cfg.Final.Skip {
		then = ", and the final phase retrains the best of them"
	}
	if gap := spent.done - spent.recorded; gap > 0 {
		then = fmt.Sprintf(" (%s drawn before the last one and queued at the stop train first)", english.Plural(gap, "trial", "trials")) + then
	}
	msg := fmt.Sprintf("time budget of %s spent after %s of %d: the run's plan becomes its first %d%s",
		opts.Budget, english.Plural(spent.recorded, "trial", "trials"), spent.planned, spent.done, then)
	switch {
	case opts.JSON: // after the first part's "stopped": the stream goes on
		json.NewEncoder(out).Encode(search.Event{Kind: "info", Message: msg})
	case !opts.Quiet:
		fmt.Fprintln(errOut, msg)
	}
	opts.Resume, opts.Budget = spent.dir, 0
	opts.Resumed.Trials = spent.done // the rest of a resume's overrides (--workers, --threads) stay
	return runSearchOnce(ctx, opts, out, errOut)
}

// budgetSpent is runSearchOnce's error when the time budget stopped the
// search: recorded of planned trials recorded in dir, done the last one's
// number. The plan ends there: a trial drawn before it but queued at the
// stop, not recorded, trains first in the second part.
type budgetSpent struct {
	dir                     string
	done, recorded, planned int
}

// budgetSpentIn reads what the budget left in dir, of planned trials;
// false when no trial was recorded.
func budgetSpentIn(dir string, planned int) (budgetSpent, bool) {
	recorded, err := rundir.ReadTrials(dir)
	if err != nil || len(recorded) == 0 {
		return budgetSpent{}, false
	}
	spent := budgetSpent{dir: dir, recorded: len(recorded), planned: planned}
	for _, t := range recorded {
		spent.done = max(spent.done, t.ID)
	}
	return spent, true
}

func (b budgetSpent) Error() string {
	return fmt.Sprintf("the time budget stopped %s after %d of %d trials", b.dir, b.done, b.planned)
}

// budgetStop stops a search's trials when its time budget has passed:
// through the once and stop channel that an interrupt shares, so that the
// first of the two decides. Once the last trial is recorded, or the final
// phase has begun, the budget has nothing left to limit.
type budgetStop struct {
	spent, over, interrupted atomic.Bool // the budget stopped the trials; every trial is recorded; the user stopped the run
	timer                    *time.Timer
}

// startBudget starts the budget of s (none for 0, or when no trial is left).
func startBudget(budget time.Duration, s *search.Search, once *sync.Once, stop chan struct{}) *budgetStop {
	b := &budgetStop{}
	if budget > 0 && s.Done() < s.Config().Trials {
		b.timer = time.AfterFunc(budget, func() { b.fire(once, stop) })
	}
	return b
}

// fire stops the trials, unless every one is recorded already: a stop
// between the last trial and the final phase would only replan the run at
// the same count.
func (b *budgetStop) fire(once *sync.Once, stop chan struct{}) {
	if !b.over.Load() {
		once.Do(func() { b.spent.Store(true); close(stop) })
	}
}

// seen notes the run's events: the last trial recorded, or the final
// phase's start, ends the budget.
func (b *budgetStop) seen(e search.Event) {
	if e.Kind == "final_start" || e.Kind == "trial" && e.Done >= e.Total {
		b.over.Store(true)
	}
}

func (b *budgetStop) end() {
	if b.timer != nil {
		b.timer.Stop()
	}
}

// startNotes says, as a run starts, what its settings will not do: the
// schedule's warning, the flags' notes, and the budget's.
func startNotes(s *search.Search, opts searchOptions, say, warn func(string, ...any)) {
	// Not when no trial is left to draw (a resume that only finishes the
	// final phase): the schedule no longer matters.
	if note := s.Config().ScheduleNote(opts.Resume != ""); note != "" && s.Done() < s.Config().Trials {
		warn("warning: %s", note) // --quiet too: the run is not what its agent promises
	}
	for _, note := range opts.Notes {
		warn("note: %s", note)
	}
	if note := s.Config().BaselineNote(); note != "" && opts.Resume == "" {
		say("note: %s", note)
	}
}

// runSearchOnce runs a new search or resumes one, drawing its progress;
// on a stop it says how to resume. Everything that can fail before the
// first trial comes before the run directory is made.
func runSearchOnce(ctx context.Context, opts searchOptions, out, errOut io.Writer) error {
	say := func(format string, args ...any) {
		if !opts.Quiet && !opts.JSON {
			fmt.Fprintf(errOut, format+"\n", args...)
		}
	}
	warn := func(format string, args ...any) {
		if opts.JSON {
			json.NewEncoder(out).Encode(search.Event{Kind: "info", Message: fmt.Sprintf(format, args...)}) // one Write: whole lines
			return
		}
		fmt.Fprintf(errOut, format+"\n", args...)
	}
	execs := &executors{ctx: ctx, say: say, warn: warn, broker: opts.Broker}
	defer execs.close()
	s, err := openSearch(opts, execs)
	if err != nil {
		if opts.JSON { // the stream's consumer sees how it ended, as for a failure later on
			json.NewEncoder(out).Encode(search.Event{Kind: "failed", Message: withBadFileHint(err).Error()}) // as stderr says it
		}
		return err
	}
	defer s.Close()
	say("%s", searchSummary(s))
	startNotes(s, opts, say, warn)
	if sum, err := search.Summarize(s.Dir()); err != nil || !slices.Contains([]search.RunStatus{search.RunFinished, search.RunFailed}, sum.StatusOf(false)) { // else a finished run, resumed: nothing to watch
		say("watch it live: %s", rundir.WatchHint(s.Dir()))
	}

	stop := make(chan struct{})
	var once sync.Once
	ctx, abandon := context.WithCancel(ctx)
	defer abandon()
	budget := startBudget(opts.Budget, s, &once, stop)
	defer budget.end()
	remove := onFirstInterrupt(func() {
		budget.interrupted.Store(true)
		if budget.spent.Load() {
			// The budget stopped the trials already: this interrupt is the
			// second stop, which abandons those in flight.
			abandon()
			return
		}
		once.Do(func() { close(stop) })
		// Finishing trials that no worker trains would wait for ever (a
		// SIGTERM is sent once): they are abandoned to the queue, as by a
		// second interrupt, for the resume to collect. Looked at aside:
		// the broker's answers must not hold up a second interrupt.
		if x := execs.remote; x != nil {
			go whenUnserved(ctx, unservedEvery, x.Unserved, func() {
				warn("no worker is training this search's trials: they stay queued on the broker instead of being waited for")
				abandon()
			})
		}
	})
	defer remove()
	p := newSearchProgress(opts, s.Config(), out, errOut)
	s.Progress = func(e search.Event) {
		budget.seen(e)
		p.event(e)
	}
	err = s.Run(ctx, stop)
	p.close()
	kind, dir := s.Config().Kind, s.Dir()
	switch {
	case errors.Is(err, search.ErrStopped) && budget.spent.Load() && !budget.interrupted.Load():
		if spent, ok := budgetSpentIn(dir, s.Config().Trials); ok {
			return spent
		}
		return fmt.Errorf("the time budget of %s ran out before the first trial was recorded (the run's start counts, a latency model's calibration too): give a longer one; go on with: %s",
			opts.Budget, opts.Broker.resumeCommand(kind, dir))
	case errors.Is(err, search.ErrStopped), errors.Is(err, context.Canceled):
		sayStopped(s, opts, err, errOut)
		return err
	case errors.Is(err, search.ErrNothingEvaluated), errors.Is(err, search.ErrNoneWithinLimit): // finished and reported, but not a success
	case errors.As(err, new(*rundir.LineError)):
		return err // says how to go on: a plain resume would fail alike
	case err != nil:
		advice := afterFailure(kind, dir, s.Config().Name, opts.Broker, s.Trials())
		if errors.Is(err, syscall.ENOSPC) {
			advice = "free space on the disk of " + dir + ", then resume: " + advice
		}
		return fmt.Errorf("%w (%s)", err, advice)
	}
	if !opts.JSON {
		b, err := os.ReadFile(filepath.Join(dir, rundir.FileReport))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s\nRun directory: %s\n", b, dir)
	}
	return err
}

// sayStopped tells how far a stopped run s got (err: ErrStopped, or
// context.Canceled after a second Ctrl-C) and how to resume it.
func sayStopped(s *search.Search, opts searchOptions, err error, errOut io.Writer) {
	kind, dir := s.Config().Kind, s.Dir()
	done := english.Plural(s.Done(), "trial", "")
	planned := s.Config().FinalsPlanned(s.Trials())
	// Once the last trial is in, the final phase counts, none retrained
	// too (a second Ctrl-C abandons the retrainings in flight).
	if finals, err := rundir.ReadFinalRecords(dir); err == nil && planned > 0 && (len(finals) > 0 || s.Done() >= s.Config().Trials) {
		if rep, err := search.ReadReport(dir); err == nil && rep.TimingsPending {
			done += fmt.Sprintf(" and %d of %d final models, not yet timed (no best is picked until they are)", len(finals), planned)
		} else {
			done += fmt.Sprintf(" and %d of %d final models (no best is picked until all are)", len(finals), planned)
		}
	}
	saved := "every finished trial is saved"
	// States of retrainings paused by this stop: only a final phase has
	// them (one that an earlier plan left may not be of this plan's best).
	if paused, _ := filepath.Glob(filepath.Join(dir, rundir.DirPaused, "*.gob")); len(paused) > 0 && s.Done() >= s.Config().Trials {
		saved += fmt.Sprintf(", and %s paused where %s stood, which the resume goes on from",
			english.Plural(len(paused), "retraining", ""), english.PluralWord(len(paused), "it", "they"))
	}
	if errors.Is(err, context.Canceled) && (opts.Broker.URL == "" || opts.Broker.embedded()) { // a second Ctrl-C: said, so that it leaves no doubt
		saved += "; what was in flight was abandoned, and the resume trains it again"
	}
	fmt.Fprintf(errOut, "stopped after %s; %s. Resume with:\n  %s\n", done, saved, opts.Broker.resumeCommand(kind, dir))
	if best := earlierBest(dir); best != "" {
		fmt.Fprintf(errOut, "Until a final phase writes a new best, the best model of the run's earlier plan is %s\n", best)
	}
	if errors.Is(err, context.Canceled) && opts.Broker.URL != "" && !opts.Broker.embedded() {
		fmt.Fprintf(errOut, "The trials in flight stay queued on the broker for the resume, and workers train them meanwhile; if no resume is coming, remove them:\n  %s\n",
			opts.Broker.dropCommand(s.Config().Name))
	}
}

// afterFailure says what to do after a run named name failed: resume it;
// when it recorded failed trials, which a resume counts as done, how to
// train those again; with a broker, how to remove its trials in flight.
func afterFailure(kind search.Kind, dir, name string, broker brokerOptions, trials []rundir.Trial) string {
	msg := "finished trials are saved; resume with " + broker.resumeCommand(kind, dir)
	if slices.ContainsFunc(trials, func(t rundir.Trial) bool { return t.Status == rundir.StatusFailed }) {
		msg += "; a resume keeps the trials recorded as failed: to train those again, move the run away and search anew with the same --name and settings"
	}
	if broker.URL != "" && !broker.embedded() {
		// As after a second Ctrl-C: workers would train them for nobody.
		msg += "; trials in flight, if any, stay queued on the broker for that resume, and workers train them meanwhile; if no resume is coming, remove them: " +
			broker.dropCommand(name)
	}
	return msg
}

// openSearch starts the search of opts or resumes it.
func openSearch(opts searchOptions, execs *executors) (*search.Search, error) {
	if opts.Resume != "" {
		saved, err := search.ReadConfig(opts.Resume)
		if recorded, _ := rundir.ReadTrials(opts.Resume); err == nil && opts.Resumed.Workers > 0 && opts.Resumed.Workers != max(1, saved.Workers) &&
			len(recorded) < max(saved.WithDefaults().Trials, opts.Resumed.Trials) {
			// The look-ahead is twice the workers (README.md, "The CPU
			// preset, repeatable runs, and the study's settings"), so the
			// trials from here on change: said under --quiet too, as the run
			// is no longer the uninterrupted one.
			execs.warn("note: --workers %d, the run started with %d: from here on the trials are those of a run with %s, not of the uninterrupted one",
				opts.Resumed.Workers, max(1, saved.Workers), english.Plural(opts.Resumed.Workers, "worker", "workers"))
		}
		s, err := search.Resume(opts.Resume, opts.Resumed, execs.make)
		fewer, begun := (*search.FewerTrialsError)(nil), (*search.FinalStartedError)(nil)
		if errors.As(err, &fewer) || errors.As(err, &begun) {
			return nil, usageError{err.Error()}
		}
		return s, err
	}
	// Before the images are read: a name taken is the user's to change.
	if opts.Config.Name != "" {
		if err := rundir.Free(filepath.Join(opts.Config.Dir, opts.Config.Name)); err != nil {
			return nil, usagef("%v", err)
		}
	}
	var exec search.Executor
	if opts.Config.Trains() {
		var err error
		if exec, err = execs.make(opts.Config); err != nil {
			return nil, err
		}
	} else if opts.Broker.URL != "" {
		return nil, usagef("--broker: this search scores its trials from a table; there is nothing to send to workers")
	}
	return search.New(opts.Config, exec)
}

// searchSummary is the line that says what a search is about to do.
func searchSummary(s *search.Search) string {
	cfg, d := s.Config(), s.Data()
	line := fmt.Sprintf("run %s: %d trials planned (%d done); %s", s.Dir(), cfg.Trials, s.Done(), s.Describe())
	if cfg.Trains() {
		line += fmt.Sprintf("; input %s, %s, %d/%d/%d train/val/test images (%d for the trials), %d worker(s)",
			d.Input, classList(d.Classes), d.Full, d.Val, d.Test, d.Train, cfg.Workers)
	}
	return line
}

// classList names the classes a command trains on, the first eight of
// more: a glance at them shows a folder read with the wrong layout.
func classList(classes []string) string {
	const shown = 8
	if len(classes) > shown {
		return fmt.Sprintf("%d classes (%s, ...)", len(classes), strings.Join(classes[:shown], ", "))
	}
	return fmt.Sprintf("%d classes (%s)", len(classes), strings.Join(classes, ", "))
}

// searchProgress draws a search's events: JSON lines on out with --json,
// nothing with --quiet, else a line per event on errOut under a live status
// line when errOut is a terminal.
type searchProgress struct {
	opts   searchOptions
	agent  string // the run's agent, for how each trial was drawn
	errOut io.Writer
	enc    *json.Encoder
	status *progress.Status // nil unless live

	mu   sync.Mutex
	last search.Event
}

func newSearchProgress(opts searchOptions, cfg search.Config, out, errOut io.Writer) *searchProgress {
	p := &searchProgress{opts: opts, agent: cfg.Agent(), errOut: errOut, enc: json.NewEncoder(out)}
	if !opts.Quiet && !opts.JSON && progress.IsTerminal(errOut) {
		p.status = progress.NewStatus(errOut, p.statusText)
	}
	return p
}

func (p *searchProgress) statusText() string {
	p.mu.Lock()
	e := p.last
	p.mu.Unlock()
	if e.FinalTotal > 0 {
		return fmt.Sprintf("final phase: %d of %d retrained  elapsed %s  remaining ~%s  (Ctrl-C stops)",
			e.FinalDone, e.FinalTotal, progress.Duration(e.Elapsed), progress.Duration(e.Remaining))
	}
	return fmt.Sprintf("trial %d of %d  best %s  mean(last 100) %.4f  elapsed %s  remaining ~%s  (Ctrl-C stops)",
		min(e.Done+1, e.Total), e.Total, bestText(e), e.Recent, progress.Duration(e.Elapsed), progress.Duration(e.Remaining))
}

func (p *searchProgress) event(e search.Event) {
	p.mu.Lock()
	p.last = e
	p.mu.Unlock()
	if p.opts.JSON {
		if e.Kind == "done" {
			e.Message = "" // the report is in report.md
		}
		p.enc.Encode(e)
		return
	}
	line := eventLine(e, p.agent)
	switch {
	case p.opts.Quiet || line == "":
	case p.status != nil:
		p.status.Println(line)
	default:
		fmt.Fprintln(p.errOut, line)
	}
}

func (p *searchProgress) close() {
	if p.status != nil {
		p.status.Close()
	}
}

// eventLine renders one event of a run of agent as a plain line, or "" for
// none.
func eventLine(e search.Event, agent string) string {
	switch e.Kind {
	case "trial":
		if e.Replayed {
			return "" // trained before the resume; its start line counts it
		}
		t := e.Trial
		explore := "ε " + controller.EpsilonText(t.Epsilon)
		switch {
		case t.Temperature > 0:
			explore = fmt.Sprintf("T %.2f", t.Temperature)
		case agent == search.AgentEvolution && t.Epsilon == 0:
			explore = "mutant" // evolution's trials after its random start
		case agent == search.AgentEvolution || agent == search.AgentRandom:
			explore = "random" // random search, or evolution's random start: no epsilon to speak of
		}
		return fmt.Sprintf("[%d/%d] %s  %s  %s  best %s  elapsed %s, ~%s left", e.Done, e.Total, explore, t.Arch, trialResult(t, e.Learned),
			bestText(e), progress.Duration(e.Elapsed), progress.Duration(e.Remaining))
	case "saved":
		t := e.Trial
		return fmt.Sprintf("[trial %d] %s  %s  (%s)", t.ID, t.Arch, trialResult(t, nil), e.Message)
	case "final":
		f := e.Final
		if f.Status != rundir.StatusOK {
			return fmt.Sprintf("final #%d %s: %s %s", f.Rank, f.Arch, f.Status, f.Reason)
		}
		line := fmt.Sprintf("final #%d %s: val %.4f, test %.4f (%s)", f.Rank, f.Arch, f.ValAccuracy, f.TestAccuracy, f.Model)
		if f.AtChance {
			line += " (at chance: no better than a constant predictor)"
		}
		if f.Reason != "" { // trained from fresh weights, say
			line += "; " + f.Reason
		}
		if f.Reused != "" {
			line += fmt.Sprintf("; taken from %s, whose final phase trained it from the same weights and settings", f.Reused)
		}
		return line
	case "start", "info", "stopping", "final_start", "final_epoch":
		return e.Message
	}
	return ""
}

// bestText is the best reward so far, "-" before any trial was evaluated
// (every trial refused by a limit, say).
func bestText(e search.Event) string {
	if e.BestArch == "" {
		return "-"
	}
	return fmt.Sprintf("%.4f", e.Best)
}

// trialResult says how a trial ended and what the agent did with it.
func trialResult(t *rundir.Trial, l *controller.Learned) string {
	// A problem's score is the reward; a trained trial's metric is its
	// validation accuracy.
	res := fmt.Sprintf("val %.4f", t.ValAccuracy)
	if t.Score != 0 {
		res = fmt.Sprintf("reward %.4f", t.Reward)
	} else if math.Abs(t.Reward-t.ValAccuracy) > 1e-9 && t.Status != rundir.StatusRefused {
		// A reward of other epochs, a power or latency: show both, and the
		// accuracy of other epochs the reward was computed from.
		res += fmt.Sprintf(", reward %.4f", t.Reward)
		if t.RewardAccuracy != 0 {
			res += fmt.Sprintf(" (from val %.4f of another epoch)", t.RewardAccuracy)
		}
	}
	switch t.Status {
	case rundir.StatusOK:
		if t.Score == 0 {
			res += fmt.Sprintf(" in %.1fs", t.Seconds)
			if t.WaitedSeconds >= 0.1 {
				res += fmt.Sprintf(" after %.1fs waiting for memory", t.WaitedSeconds)
			}
		}
		switch {
		case t.Pruned: // by median stopping or halving: its accuracy is that of a shorter training
			res += fmt.Sprintf(" (stopped after epoch %d)", len(t.LastAttempt()))
		case t.AtChance:
			res += " (at chance: no better than a constant predictor)"
		}
	case rundir.StatusReused:
		res += fmt.Sprintf(" (reused from trial %d)", t.ReusedFrom)
	default:
		return string(t.Status) + ": " + t.Reason
	}
	if l != nil && (l.Baseline != 0 || l.Update != nil) {
		res += fmt.Sprintf("  baseline %.4f", l.Baseline)
		if u := l.Update; u != nil && u.Kept == 0 {
			res += "  update skipped"
		} else if u != nil {
			res += fmt.Sprintf("  update %d (loss %.3g)", u.Index+1, u.Loss)
		}
	}
	return res
}

// earlierBest is the best model of the run's latest earlier plan that had
// one, set aside by a resume with more trials, when the run has none yet:
// the path a user deploys from is gone until the new final phase writes it.
func earlierBest(dir string) string {
	if fileExists(filepath.Join(dir, rundir.BestName)) {
		return ""
	}
	earlier, err := rundir.Earlier(dir)
	if err != nil {
		return ""
	}
	// The latest plan that had one: an extension stopped before its final
	// phase, extended again, left a plan without a best.
	for _, e := range slices.Backward(earlier) {
		if best := filepath.Join(dir, e, rundir.BestName); fileExists(best) {
			return best
		}
	}
	return ""
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// unservedEvery is how often a stopping search looks again whether a
// worker trains its trials: the last one may leave after the stop began.
const unservedEvery = 30 * time.Second

// whenUnserved calls then once unserved reports that no worker trains the
// search's trials, looking every every until ctx ends. One look at the
// stop was not enough: a search whose last worker left afterwards waited
// for ever (the cluster review of 2026-12-07).
func whenUnserved(ctx context.Context, every time.Duration, unserved func(context.Context) bool, then func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for ctx.Err() == nil { // a tick and the end can come together
		if unserved(ctx) {
			then()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
