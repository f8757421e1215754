package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"

	"github.com/dustin/go-humanize"
	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
	"github.com/urfave/cli/v2"
)

// deviceFlags are the flags that choose where graphs run.
func deviceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: `execution provider: cpu, or cuda (a GPU build of ONNX Runtime: "make setup-cuda"; "nasctl doctor --device cuda" checks it)`},
		&cli.IntFlag{Name: "threads", Usage: "intra-op threads of ONNX Runtime (0: one per core)"},
	}
}

func parseDevice(c *cli.Context) (runtime.Device, error) {
	d, err := runtime.ParseDevice(c.String("device"))
	if err != nil {
		return 0, usagef("--device: %v", err)
	}
	if c.Int("threads") < 0 {
		return 0, usagef("--threads %d: must be 0 (one per core) or more", c.Int("threads"))
	}
	return d, nil
}

// splitFlags choose the data split; every command that reads a dataset split
// uses the same ones, so that train, eval and search agree.
func splitFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "plan", Value: "metaqnn", Usage: "split plan: " + strings.Join(dataset.SplitPlanNames(), ", ")},
		&cli.Uint64Flag{Name: "split-seed", Value: 1, Usage: "seed of the shuffle before splitting"},
	}
}

// splitChoice is the split that splitFlags choose, and which of the two
// flags were given: a flag given overrides the split a model or a run
// records; one left out stands in only for a record that is missing.
type splitChoice struct {
	Plan             string
	Seed             uint64
	PlanSet, SeedSet bool
	plan             dataset.SplitPlan // Plan's, when splitChoiceOf read it
}

// splitChoiceOf reads splitFlags, refusing a plan nasctl does not know.
func splitChoiceOf(c *cli.Context) (splitChoice, error) {
	s := splitChoice{Plan: c.String("plan"), Seed: c.Uint64("split-seed"), PlanSet: c.IsSet("plan"), SeedSet: c.IsSet("split-seed")}
	var err error
	if s.plan, err = dataset.ParseSplitPlan(s.Plan); err != nil {
		return s, usagef("--plan: %v", err)
	}
	return s, nil
}

// given says whether either flag was given.
func (s splitChoice) given() bool { return s.PlanSet || s.SeedSet }

// augmentUsage lists the augmentations, for train's and search's --augment.
const augmentUsage = "none, mirror (flip left-right), flips (left-right and top-bottom), shift:N (move by up to N pixels each way; N from 1 to 16, under half the input's side), " +
	"brightness:B (add one offset from -B to B to every pixel, pixels running from 0 to 1), contrast:C (scale the pixels about their mean by 1-C to 1+C), B and C above 0, at most 1; " +
	"or several, each once (flips,shift:2,brightness:0.2); a flip only where a flipped image keeps its class"

func trainCommand() *cli.Command {
	def := runtime.TrainConfig{}.WithDefaults() // the study's settings
	return &cli.Command{
		Name:      "train",
		Usage:     "train one architecture on an image folder and export it as ONNX",
		ArgsUsage: " ",
		Description: `Trains --arch on the training split of --data with Adam, or SGD with --optimizer
sgd (--recipe default: a constant rate, He weights, first layer centred on the data;
--recipe study: the study's settings, the rate x0.2 every 5 epochs, Glorot weights),
validates after every epoch, stops early when validation accuracy stops improving,
restores the best weights, then writes the inference model to --out and reports its
accuracy on the test split (computed from the exported file).
Both recipes keep Baker et al.'s restarts: a network still at chance after its first epoch
starts again from fresh weights at 0.4 times the rate, up to 5 times, and each attempt may
take --epochs epochs. --constant-lr turns the restarts off too. A model still at chance
at the end (a constant predictor) is written, and flagged with what to try ("at_chance"
and "warning" in --json).
Example: nasctl train --arch "C(16,5,1) - P(3,2) - C(32,3,1) - P(3,2) - C(32,3,1) - P(2,2) - SM()" \
           --data data/leaves --epochs 30 --out leaves.onnx`,
		Flags: append(append([]cli.Flag{
			&cli.StringFlag{Name: "arch", Usage: `architecture in the study's text form (required): a layer sequence, e.g. "C(32,3,1) - P(2,2) - SM()", or a cell network as nasctl search nasnet writes it (nasctl arch inspect --help)`},
			&cli.StringFlag{Name: "data", Usage: "image folder (required; see nasctl dataset --help for layouts)"},
			&cli.IntFlag{Name: "epochs", Value: def.Epochs, Usage: "most epochs of one attempt (a restart at chance begins a new one)"},
			&cli.IntFlag{Name: "batch", Value: def.BatchSize, Usage: "mini-batch size"},
			&cli.Float64Flag{Name: "lr", Value: def.LR, Usage: "initial learning rate"},
			&cli.StringFlag{Name: "optimizer", Value: "adam", Usage: "adam (beta1 0.5, as the recipes) or sgd (with --momentum), which search nasnet's presets train with (a model's nasctl.training says how it was trained: nasctl arch inspect)"},
			&cli.Float64Flag{Name: "momentum", Value: 0.9, Usage: "momentum of --optimizer sgd"},
			&cli.IntFlag{Name: "patience", Value: def.Patience, Usage: "stop after this many epochs without a better validation accuracy (0 or negative: never)"},
			&cli.StringFlag{Name: "recipe", Value: "default", Usage: "training recipe: " + strings.Join(runtime.RecipeNames(), ", ") + " (the founding study's)"},
			&cli.BoolFlag{Name: "constant-lr", Usage: "turn off Baker et al.'s learning-rate rule: no restart at chance (x0.4), and no x0.2 every 5 epochs under --recipe study"},
			&cli.StringFlag{Name: "augment", Value: "none", Usage: "vary the training images at random: " + augmentUsage},
			&cli.StringFlag{Name: "metric", Value: "accuracy", Usage: "what validation accuracy means for the best epoch, early stopping and restarts at chance: accuracy (the share right) or balanced_accuracy (the mean of the classes' recalls, for classes of very different sizes)"},
			&cli.StringFlag{Name: "sampling", Value: "shuffle", Usage: "how an epoch draws the training images: shuffle (every image once) or balanced (every class equally often, small classes' images repeated: for classes of very different sizes)"},
			&cli.Float64Flag{Name: "average", Usage: "validate and keep a moving average of the weights over about this many epochs instead of the weights themselves (0: off)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the weights, the shuffling, dropout and the augmentation"},
			&cli.StringFlag{Name: "input", Usage: "resize the images to HxWxC (32x32x1 gray, 32x32x3 RGB) or HxW, keeping their colour: gray when every image is gray, else RGB; default: the data's own size"},
			&cli.StringFlag{Name: "out", Value: "model.onnx", Usage: "where to write the trained inference model"},
			&cli.BoolFlag{Name: "json", Usage: "print the final metrics as one JSON object"},
			&cli.BoolFlag{Name: "quiet", Usage: "print neither the opening line nor a line per epoch (warnings and errors still go to stderr)"},
			skipBadFlag(), memoryFlag(),
		}, deviceFlags()...), splitFlags()...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c, "give the architecture with --arch"); err != nil {
				return err
			}
			opts := trainOptions{
				Data: c.String("data"), Out: c.String("out"), JSON: c.Bool("json"), Quiet: c.Bool("quiet"), SplitSeed: c.Uint64("split-seed"), SkipBad: c.Bool("skip-bad"),
			}
			var err error
			if opts.Config, err = trainConfigOf(c); err != nil {
				return err
			}
			if c.String("arch") == "" || opts.Data == "" {
				return usagef("train needs --arch and --data")
			}
			if err := checkDataFolder("data", opts.Data); err != nil {
				return err
			}
			if opts.Arch, err = genotype.ParseGenotype(c.String("arch")); err != nil {
				return usagef("--arch: %v", err)
			}
			split, err := splitChoiceOf(c)
			if err != nil {
				return err
			}
			opts.Plan = split.Plan
			if s := c.String("input"); s != "" {
				if opts.Input, err = imageInput(s); err != nil {
					return err
				}
			}
			if opts.Config.Device, err = parseDevice(c); err != nil {
				return err
			}
			switch {
			case opts.Config.Epochs < 1:
				return usagef("--epochs must be at least 1, got %d", opts.Config.Epochs)
			case opts.Config.BatchSize < 1:
				return usagef("--batch must be at least 1, got %d", opts.Config.BatchSize)
			case !(opts.Config.LR > 0):
				return usagef("--lr must be positive, got %g", opts.Config.LR)
			}
			if opts.Config.Budget.MaxMemory, err = maxMemory(c); err != nil {
				return err
			}
			if err := checkWritable("out", opts.Out); err != nil {
				return err
			}
			return runTrain(c.Context, opts, c.App.Writer, c.App.ErrWriter)
		},
	}
}

type trainOptions struct {
	Arch      genotype.Genotype
	Input     genotype.Input // zero: the data's size
	Data      string
	Plan      string // a split plan's name
	SplitSeed uint64
	SkipBad   bool
	Out       string
	JSON      bool
	Quiet     bool // no header and no line per epoch
	Config    runtime.TrainConfig
}

// trainReport is the JSON form of nasctl train's result.
type trainReport struct {
	Arch         string         `json:"arch"`
	Status       runtime.Status `json:"status"`
	Reason       string         `json:"reason,omitempty"`
	Params       int64          `json:"params"`
	MACs         int64          `json:"macs"`
	ValAccuracy  float64        `json:"val_accuracy"`
	TestAccuracy *float64       `json:"test_accuracy"` // null: not tested (an interrupted or failed training)
	// TestBalanced is the test images' balanced accuracy, given when it is
	// the training's metric (--metric balanced_accuracy).
	TestBalanced *float64 `json:"test_balanced_accuracy,omitempty"`
	// AtChance: the model is a constant predictor, its validation accuracy
	// no better than the most common class's share (runtime.Result.AtChance);
	// Warning then says what to try.
	AtChance bool   `json:"at_chance"`
	Warning  string `json:"warning,omitempty"`
	// Epochs counts the epochs of every attempt; Attempts is Restarts + 1,
	// and BestEpoch is an epoch of the last attempt.
	Epochs          int                   `json:"epochs"`
	Attempts        int                   `json:"attempts"`
	BestEpoch       int                   `json:"best_epoch"`
	Restarts        int                   `json:"restarts"`
	Seconds         float64               `json:"seconds"`
	ImagesPerSecond float64               `json:"images_per_second"`
	Model           string                `json:"model,omitempty"`
	History         []runtime.EpochRecord `json:"history"`

	// Training is how the model was trained, as its metadata records it
	// (nasctl.training).
	Training runtime.TrainRecord `json:"training"`
}

// newTrainReport is a training's result as train --json prints it, before
// the model and its test accuracy.
func newTrainReport(arch genotype.Genotype, tc runtime.TrainConfig, res *runtime.Result) trainReport {
	return trainReport{Arch: arch.String(), Training: tc.Record(), Status: res.Status, Reason: res.Reason, Params: res.Params, MACs: res.MACs,
		ValAccuracy: res.ValAccuracy, AtChance: res.AtChance, Epochs: len(res.Epochs), Attempts: res.Restarts + 1,
		BestEpoch: res.BestEpoch, Restarts: res.Restarts, Seconds: res.Seconds, ImagesPerSecond: res.ImagesPerSecond, History: res.Epochs}
}

func runTrain(ctx context.Context, opts trainOptions, out, errOut io.Writer) error {
	cfg := search.Config{Data: opts.Data, Split: opts.Plan, SplitSeed: opts.SplitSeed, DataFraction: 1,
		Device: opts.Config.Device.String(), Threads: opts.Config.Threads, SkipBad: opts.SkipBad,
		Train: search.TrainSettings{Metric: opts.Config.Metric.String(), Sampling: opts.Config.Sampling.String()}}
	if opts.Input != (genotype.Input{}) {
		cfg.Input = opts.Input.String()
	}
	exec, err := search.NewLocalExecutor(cfg, nil)
	if err != nil {
		return withInputFlag(err)
	}
	reportSkipped(errOut, exec.Skipped())
	for _, g := range exec.Gaps() {
		fmt.Fprintf(errOut, "warning: %s\n", g)
	}
	d := exec.Data()
	net, err := opts.Arch.Build(d.Input, len(d.Classes))
	if err != nil {
		return usagef("--arch at the data's input %s: %v", d.Input, err)
	}
	if err := opts.Config.Augment.Fits(d.Input.Height, d.Input.Width); err != nil {
		return usagef("--augment: %v", err)
	}
	if err := runtime.InitDevice(opts.Config.Device, opts.Config.DeviceID); err != nil {
		return err
	}
	defer runtime.Close()
	progress := errOut
	if opts.Quiet {
		progress = io.Discard
	}
	fmt.Fprintf(progress, "training %s: %s parameters, %s MACs per image; %d train, %d validation, %d test images of %s; %s\n",
		opts.Arch, humanize.Comma(net.Params()), humanize.Comma(net.MACs()), d.Full, d.Val, d.Test, d.Input, classList(d.Classes))
	tc := opts.Config
	valWord := "acc"
	if tc.Metric == runtime.MetricBalanced {
		valWord = "bal acc"
	}
	tc.Progress = func(r runtime.EpochRecord) {
		restart := ""
		if r.Attempt > 0 {
			restart = fmt.Sprintf(" (restart %d)", r.Attempt)
		}
		fmt.Fprintf(progress, "epoch %2d%s  lr %.2g  loss %.4f  acc %.4f  val loss %.4f  val %s %.4f  %.1fs\n",
			r.Epoch, restart, r.LR, r.TrainLoss, r.TrainAccuracy, r.ValLoss, valWord, r.ValAccuracy, r.Seconds)
	}
	fit, err := search.Fit(ctx, exec, search.Job{Genotype: opts.Arch, Config: tc, Full: true},
		map[onnxgen.MetaKey]string{onnxgen.MetaSeed: strconv.FormatUint(tc.Seed, 10)})
	if err != nil {
		if fit != nil && fit.Model != nil {
			res := fit.Result
			if werr := saveOrRescue(opts.Out, fit.Model); werr != nil {
				return fmt.Errorf("%w (%v)", err, werr)
			}
			fmt.Fprintf(errOut, "interrupted: the best of the finished epochs (validation accuracy %.4f, %s) is saved in %s\n",
				res.ValAccuracy, stoppedEpochText(res, tc.Epochs), opts.Out)
			if opts.JSON { // what was saved, without a test accuracy: the test split was not run
				rep := newTrainReport(opts.Arch, tc, res)
				rep.Status, rep.Reason, rep.Model = runtime.StatusInterrupted, stoppedReason(err, opts.Out), opts.Out
				if jerr := printJSON(out, rep); jerr != nil {
					return jerr
				}
			}
		}
		return err
	}
	res := fit.Result
	rep := newTrainReport(opts.Arch, tc, res)
	if fit.Model != nil {
		// Atomically: a crash leaves the old file or the new one, never half of one.
		if err := saveOrRescue(opts.Out, fit.Model); err != nil {
			return err
		}
		rep.Model, rep.TestAccuracy = opts.Out, &fit.Test.Accuracy
		if tc.Metric != runtime.MetricAccuracy {
			b := fit.Test.Score(tc.Metric)
			rep.TestBalanced = &b
		}
	}
	if rep.AtChance && res.Status == runtime.StatusOK {
		rep.Warning = atChanceAdvice(opts.Config, res, d.Full)
		fmt.Fprintf(errOut, "warning: %s\n", rep.Warning)
	}
	if opts.JSON {
		if err := printJSON(out, rep); err != nil {
			return err
		}
	}
	if res.Status != runtime.StatusOK { // the JSON above says why too; the exit code says that it failed
		return fmt.Errorf("%s: %s", res.Status, res.Reason)
	}
	if opts.JSON {
		return nil
	}
	return printTrainResult(out, rep, res)
}

// stoppedReason is the reason train --json gives for a training cut
// short, with the model saved from it: the signal that stopped it rather
// than Go's "context canceled".
func stoppedReason(err error, saved string) string {
	if !errors.Is(err, context.Canceled) {
		return err.Error()
	}
	by := "Ctrl-C"
	if sig, ok := firstSignal.Load().(syscall.Signal); ok {
		by = map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGHUP: "SIGHUP", syscall.SIGPIPE: "the output's reader went away"}[sig]
		if by == "" {
			by = "Ctrl-C"
		}
	}
	return fmt.Sprintf("interrupted (%s); the best finished epoch was saved to %s", by, saved)
}

// printTrainResult prints a finished training's result as text.
func printTrainResult(out io.Writer, rep trainReport, res *runtime.Result) error {
	chance := ""
	if rep.AtChance {
		chance = ", at chance: no better than a constant predictor (see the warning)"
	}
	test := "not measured"
	if rep.TestAccuracy != nil {
		test = fmt.Sprintf("%.4f", *rep.TestAccuracy)
	}
	if rep.TestBalanced != nil {
		test += fmt.Sprintf(" (balanced %.4f)", *rep.TestBalanced)
	}
	val := "validation accuracy"
	if rep.Training.Metric != "" {
		val = "validation balanced accuracy"
	}
	_, err := fmt.Fprintf(out, "%s\n%s %.4f (%s)%s, test accuracy %s\n%.1f s, %.0f training images per second; model written to %s\n",
		rep.Arch, val, rep.ValAccuracy, bestEpochText(res), chance, test, rep.Seconds, rep.ImagesPerSecond, rep.Model)
	return err
}

// bestEpochText says which epoch gave res's weights: BestEpoch counts
// within the last attempt, and every restart at chance began a new one.
func bestEpochText(res *runtime.Result) string {
	if res.Restarts == 0 {
		return fmt.Sprintf("epoch %d of %d", res.BestEpoch, len(res.Epochs))
	}
	restarts := "restarts"
	if res.Restarts == 1 {
		restarts = "restart"
	}
	return fmt.Sprintf("epoch %d of the last attempt; %d epochs in all over %d attempts: %d %s at chance",
		res.BestEpoch, len(res.Epochs), res.Restarts+1, res.Restarts, restarts)
}

// stoppedEpochText is bestEpochText for a training stopped before its end,
// with the epochs it had planned: "epoch 5 of 5" read as a finished one.
func stoppedEpochText(res *runtime.Result, planned int) string {
	if res.Restarts > 0 {
		return fmt.Sprintf("%s, of at most %d per attempt", bestEpochText(res), planned)
	}
	return fmt.Sprintf("epoch %d; %d of %d epochs finished", res.BestEpoch, len(res.Epochs), planned)
}

// atChanceAdvice says that a training ended at chance (res.AtChance) and
// what train's flags can change about it (docs/search-quality.md, "Constant
// predictors"); trainImages is the size of the training split.
func atChanceAdvice(cfg runtime.TrainConfig, res *runtime.Result, trainImages int) string {
	tries := []string{fmt.Sprintf("a larger --lr than %g", cfg.LR)}
	if res.Restarts > 0 && !cfg.Schedule.Constant {
		last := res.Epochs[len(res.Epochs)-1].LR
		tries = append(tries, fmt.Sprintf("--constant-lr, so that a first epoch at chance does not start again at 0.4 times the rate (the last attempt trained at %.2g)", last))
	}
	if steps := (trainImages + cfg.BatchSize - 1) / cfg.BatchSize; steps < 10 {
		tries = append(tries, fmt.Sprintf("a smaller --batch (%d training images make %d steps per epoch at --batch %d)", trainImages, steps, cfg.BatchSize))
	}
	if !cfg.Centre {
		tries = append(tries, "--recipe default (He weights and a first layer centred on the data, which leave chance far more often)")
	}
	if res.Restarts == 0 {
		tries = append(tries, "more --epochs")
	}
	return "the model is at chance: its validation accuracy is no better than answering one class for every image " +
		"(a constant predictor; docs/search-quality.md, \"Constant predictors\"). Try " + strings.Join(tries, "; ")
}

// trainConfigOf is the training that train's flags ask for: the recipe's,
// with the flags that change it.
func trainConfigOf(c *cli.Context) (runtime.TrainConfig, error) {
	cfg := runtime.TrainConfig{
		Epochs: c.Int("epochs"), BatchSize: c.Int("batch"), LR: c.Float64("lr"), Patience: c.Int("patience"),
		Seed: c.Uint64("seed"), Threads: c.Int("threads"), Schedule: runtime.LRSchedule{Constant: c.Bool("constant-lr")},
	}
	recipe, err := runtime.Recipe(c.String("recipe"))
	if err != nil {
		return cfg, usagef("--recipe: %v", err)
	}
	cfg.WeightInit, cfg.Centre = recipe.WeightInit, recipe.Centre
	if cfg.Optimizer, err = trainOptimizer(c, recipe.Optimizer); err != nil {
		return cfg, err
	}
	if !c.Bool("constant-lr") {
		cfg.Schedule = recipe.Schedule
	}
	if cfg.Augment, err = runtime.ParseAugment(c.String("augment")); err != nil {
		return cfg, usagef("--augment: %v", err)
	}
	if cfg.Metric, err = runtime.ParseMetric(c.String("metric")); err != nil {
		return cfg, usagef("--metric: %v", err)
	}
	if cfg.Sampling, err = runtime.ParseSampling(c.String("sampling")); err != nil {
		return cfg, usagef("--sampling: %v", err)
	}
	if cfg.Average = c.Float64("average"); !(cfg.Average >= 0 && cfg.Average <= 1000) {
		return cfg, usagef("--average %g: a time constant in epochs, from 0 (off) to 1000", cfg.Average)
	}
	if cfg.Patience <= 0 {
		// Never stop early: -1, as a model's training record says it.
		cfg.Patience = -1
	}
	return cfg, nil
}

// trainOptimizer is --optimizer with --momentum: the recipe's Adam, or SGD.
func trainOptimizer(c *cli.Context, recipe onnxgen.Optimizer) (onnxgen.Optimizer, error) {
	m := c.Float64("momentum")
	switch name := c.String("optimizer"); name {
	case "adam":
		if c.IsSet("momentum") {
			return nil, usagef("--momentum applies to --optimizer sgd")
		}
		return recipe, nil
	case "sgd":
		if !(m >= 0 && m < 1) {
			return nil, usagef("--momentum %g: must be in [0, 1)", m)
		}
		return onnxgen.SGD{Momentum: float32(m)}, nil
	default:
		return nil, usagef("--optimizer %q: valid are adam and sgd", name)
	}
}
