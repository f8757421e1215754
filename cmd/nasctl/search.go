package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
	"github.com/urfave/cli/v2"
)

func searchCommand() *cli.Command {
	return &cli.Command{
		Name:        "search",
		Usage:       "search architectures by reinforcement learning",
		Subcommands: []*cli.Command{searchMetaQNNCommand(), searchNASNetCommand()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unknown command \"search %s\" (valid: metaqnn, nasnet)", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
	}
}

func searchMetaQNNCommand() *cli.Command {
	return &cli.Command{
		Name:      "metaqnn",
		Usage:     "MetaQNN: a Q-learning agent builds CNNs layer by layer (Baker et al. 2017)",
		ArgsUsage: " ",
		Description: `Runs a search in runs/NAME: every trial is recorded as it finishes (trials.jsonl,
trials.csv), with the agent's Q-table and replay memory; then the best --top-k
architectures are retrained and tested, and report.md, report.csv, plots/ and
winners/*.onnx are written.

Settings come from --preset, then --config FILE (YAML, any key of the saved
config.yaml), then the flags given. Presets:
  cpu        sized for a 2-core CPU (32x32 input, narrow layers, 162 trials, about 12 min)
  study      the founding study's settings (64x64, 270 trials: GPU work, ~2 h on an A10G)
  baker2017  Baker et al.'s space and 2,700-trial schedule

Ctrl-C stops starting trials and finishes those in flight; a second Ctrl-C abandons
them. Either way the run resumes with --resume runs/NAME, losing at most the
trials that were in flight.

--sample N prints N architectures drawn at epsilon 1.0 and trains nothing.

Latency-aware search: --reward mnasnet --target-ms T rewards ACC x (LAT/T)^-0.07
(MnasNet's soft constraint); --reward constraint --max-latency-ms L and/or
--max-params P refuses, before training, architectures over the limits (recorded
with the reason). LAT is batch-1 latency on ONNX Runtime with one thread, predicted
by a per-layer model calibrated on this machine at the start of the run
(latency_model.json holds it and its error on held-out architectures), or
--latency measured.

Examples:
  nasctl search metaqnn --preset cpu --data data/leaves --name leaves
  nasctl search metaqnn --resume runs/leaves
  nasctl search metaqnn --sample 5 --space study`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "preset", Value: "cpu", Usage: "base settings: " + strings.Join(search.PresetNames(), ", ")},
			&cli.StringFlag{Name: "config", Usage: "YAML file of settings over the preset"},
			&cli.StringFlag{Name: "resume", Usage: "resume the run in this directory (its saved settings are used)"},
			&cli.StringFlag{Name: "name", Usage: "run name (directory under --dir); default metaqnn-PRESET"},
			&cli.StringFlag{Name: "dir", Usage: "directory of runs (default runs)"},
			&cli.StringFlag{Name: "data", Usage: "image folder (see nasctl dataset --help)"},
			&cli.StringFlag{Name: "input", Usage: "resize images to HxWxC, e.g. 32x32x1"},
			&cli.StringFlag{Name: "space", Usage: "search space: cpu, study, baker2017"},
			&cli.StringFlag{Name: "schedule", Usage: `epsilon schedule: cpu, study, baker2017 or "EPS:MODELS,..."`},
			&cli.IntFlag{Name: "epochs", Usage: "most epochs per trial"},
			&cli.IntFlag{Name: "batch", Usage: "mini-batch size"},
			&cli.Float64Flag{Name: "lr", Usage: "learning rate"},
			&cli.Float64Flag{Name: "data-fraction", Usage: "share of the training split used by the trials"},
			&cli.IntFlag{Name: "top-k", Usage: "architectures retrained in the final phase"},
			&cli.BoolFlag{Name: "skip-final", Usage: "leave out the final phase"},
			&cli.StringFlag{Name: "reward", Usage: "accuracy, mnasnet (ACC x (LAT/T)^-0.07) or constraint (refuse over --max-params/--max-latency-ms)"},
			&cli.Float64Flag{Name: "target-ms", Usage: "mnasnet: target batch-1 latency T in ms"},
			&cli.Float64Flag{Name: "max-latency-ms", Usage: "constraint: largest batch-1 latency in ms"},
			&cli.Int64Flag{Name: "max-params", Usage: "constraint: most parameters"},
			&cli.StringFlag{Name: "latency", Usage: "latency source: predicted (a per-layer model calibrated at the start) or measured"},
			&cli.IntFlag{Name: "workers", Usage: "trials trained at once"},
			&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime threads per worker (0: one per core)"},
			&cli.StringFlag{Name: "device", Usage: "cpu or cuda"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the agent, the weights and the shuffling"},
			&cli.IntFlag{Name: "sample", Usage: "print this many architectures drawn at epsilon 1.0 and exit"},
			&cli.BoolFlag{Name: "quiet", Usage: "print only the final report"},
			&cli.BoolFlag{Name: "json", Usage: "print progress as JSON events, one per line"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("search metaqnn takes no arguments (got %q)", c.Args().Slice())
			}
			if n := c.Int("sample"); c.IsSet("sample") {
				return runSample(c, n)
			}
			opts, err := searchOptionsFrom(c)
			if err != nil {
				return err
			}
			return runSearch(c.Context, opts, c.App.Writer, c.App.ErrWriter)
		},
	}
}

type searchOptions struct {
	Config search.Config
	Resume string
	Quiet  bool
	JSON   bool
	// overrides applied to a resumed run's saved settings
	Workers, Threads int
}

// searchOptionsFrom builds the configuration: preset, then file, then flags.
func searchOptionsFrom(c *cli.Context) (searchOptions, error) {
	opts := searchOptions{Resume: c.String("resume"), Quiet: c.Bool("quiet"), JSON: c.Bool("json"),
		Workers: c.Int("workers"), Threads: c.Int("threads")}
	if opts.Resume != "" {
		for _, f := range []string{"preset", "config", "name", "dir", "data", "input", "space", "schedule", "epochs", "batch", "lr", "data-fraction", "top-k", "skip-final", "seed", "device", "reward", "target-ms", "max-latency-ms", "max-params", "latency"} {
			if c.IsSet(f) {
				return opts, usagef("--%s cannot change a resumed run (its settings are in %s); only --workers, --threads, --quiet and --json can", f, filepath.Join(opts.Resume, "config.yaml"))
			}
		}
		return opts, nil
	}
	cfg, err := search.Preset(c.String("preset"))
	if err != nil {
		return opts, usagef("--preset: %v", err)
	}
	if f := c.String("config"); f != "" {
		if cfg, err = search.LoadConfig(f, cfg); err != nil {
			return opts, usagef("--config: %v", err)
		}
	}
	set := func(name string, apply func()) {
		if c.IsSet(name) {
			apply()
		}
	}
	set("name", func() { cfg.Name = c.String("name") })
	set("dir", func() { cfg.Dir = c.String("dir") })
	set("data", func() { cfg.Data = c.String("data") })
	set("input", func() { cfg.Input = c.String("input") })
	set("epochs", func() { cfg.Train.Epochs = c.Int("epochs") })
	set("batch", func() { cfg.Train.BatchSize = c.Int("batch") })
	set("lr", func() { cfg.Train.LR = c.Float64("lr") })
	set("data-fraction", func() { cfg.DataFraction = c.Float64("data-fraction") })
	set("top-k", func() { cfg.Final.TopK = c.Int("top-k") })
	set("skip-final", func() { cfg.Final.Skip = c.Bool("skip-final") })
	set("workers", func() { cfg.Workers = c.Int("workers") })
	set("threads", func() { cfg.Threads = c.Int("threads") })
	set("device", func() { cfg.Device = c.String("device") })
	set("seed", func() { cfg.Seed = c.Uint64("seed") })
	set("reward", func() { cfg.Reward.Mode = c.String("reward") })
	set("target-ms", func() { cfg.Reward.TargetMs = c.Float64("target-ms") })
	set("max-latency-ms", func() { cfg.Reward.MaxLatencyMs = c.Float64("max-latency-ms") })
	set("max-params", func() { cfg.Reward.MaxParams = c.Int64("max-params") })
	set("latency", func() { cfg.Reward.Latency = c.String("latency") })
	if c.IsSet("space") {
		sp, err := search.SpacePreset(c.String("space"))
		if err != nil {
			return opts, usagef("--space: %v", err)
		}
		cfg.Space = search.SpaceSpec{Space: sp}
	}
	if c.IsSet("schedule") {
		s, err := controller.ParseSchedule(c.String("schedule"))
		if err != nil {
			return opts, usagef("--schedule: %v", err)
		}
		cfg.Schedule = search.ScheduleSpec{Schedule: s}
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Check(); err != nil {
		return opts, usagef("invalid settings:\n%v", err)
	}
	opts.Config = cfg
	return opts, nil
}

// runSample prints architectures drawn at epsilon 1 from a space.
func runSample(c *cli.Context, n int) error {
	if n < 1 {
		return usagef("--sample %d: must be at least 1", n)
	}
	name := c.String("space")
	if name == "" {
		p, err := search.Preset(c.String("preset"))
		if err != nil {
			return usagef("--preset: %v", err)
		}
		name = p.Space.Name
	}
	space, err := search.SpacePreset(name)
	if err != nil {
		return usagef("--space: %v", err)
	}
	in := genotype.StudyInput
	if s := c.String("input"); s != "" {
		if in, err = genotype.ParseInput(s); err != nil {
			return usagef("--input: %v", err)
		}
	} else if p, err := search.Preset(c.String("preset")); err == nil && p.Input != "" && !c.IsSet("space") {
		in, _ = genotype.ParseInput(p.Input)
	}
	agent, err := controller.NewMetaQNN(space, in, controller.QConfig{})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(c.Uint64("seed"), 0x73616d706c65)) // "sample"
	for range n {
		arch, _ := agent.Sample(1, rng)
		fmt.Fprintln(c.App.Writer, arch)
	}
	return nil
}

func runSearch(ctx context.Context, opts searchOptions, out, errOut io.Writer) error {
	cfg := opts.Config
	var trials []search.Trial
	var store *search.Store
	var err error
	if opts.Resume != "" {
		if store, cfg, trials, err = search.Open(opts.Resume); err != nil {
			return err
		}
		defer store.Close()
		if opts.Workers > 0 {
			cfg.Workers = opts.Workers
		}
		if opts.Threads > 0 {
			cfg.Threads = opts.Threads
		}
		cfg = cfg.WithDefaults()
		if err := cfg.Check(); err != nil {
			return fmt.Errorf("%s: invalid settings:\n%v", filepath.Join(opts.Resume, "config.yaml"), err)
		}
	}
	say := func(format string, args ...any) {
		if !opts.Quiet && !opts.JSON {
			fmt.Fprintf(errOut, format+"\n", args...)
		}
	}
	// Everything that can fail before the first trial comes before the run
	// directory is created, so that a failed start leaves nothing behind.
	if err := runtime.Init(""); err != nil {
		return err
	}
	defer runtime.Close()
	say("loading %s", cfg.Data)
	exec, err := search.NewLocalExecutor(cfg, nil)
	if err != nil {
		return err
	}
	if store == nil {
		if store, err = search.Create(filepath.Join(cfg.Dir, cfg.Name), cfg); err != nil {
			return err
		}
		defer store.Close()
	}
	s, err := search.New(cfg, store, exec, trials)
	if err != nil {
		return err
	}
	d := exec.Data()
	say("run %s: %d trials planned (%d done), space %s, input %s, %d/%d/%d train/val/test images (%d for the trials), %d worker(s)",
		store.Dir, cfg.Schedule.Total(), len(trials), cfg.Space.Name, d.Input, d.Full, d.Val, d.Test, d.Train, cfg.Workers)

	stop := make(chan struct{})
	var once sync.Once
	remove := onFirstInterrupt(func() { once.Do(func() { close(stop) }) })
	defer remove()

	var status *statusLine
	var last search.Event
	var mu sync.Mutex
	live := !opts.Quiet && !opts.JSON && isTerminal(errOut)
	if live {
		status = newStatusLine(errOut, func() string {
			mu.Lock()
			defer mu.Unlock()
			return fmt.Sprintf("trial %d of %d  ε %.1f  best %.4f  elapsed %s  remaining ~%s  (Ctrl-C stops)",
				min(last.Done+1, last.Total), last.Total, last.Epsilon, last.Best, duration(last.Elapsed), duration(last.Remaining))
		})
	}
	enc := json.NewEncoder(out)
	s.Progress = func(e search.Event) {
		mu.Lock()
		last = e
		mu.Unlock()
		if opts.JSON {
			if e.Kind == "done" {
				e.Message = ""
			}
			enc.Encode(e)
			return
		}
		if opts.Quiet {
			return
		}
		line := eventLine(e)
		if line == "" {
			return
		}
		if live {
			status.Println(line)
		} else {
			fmt.Fprintln(errOut, line)
		}
	}
	err = s.Run(ctx, stop)
	if live {
		status.Close()
	}
	switch {
	case errors.Is(err, search.ErrStopped), errors.Is(err, context.Canceled):
		fmt.Fprintf(errOut, "stopped after %d trials; every finished trial is saved. Resume with:\n  nasctl search metaqnn --resume %s\n", len(s.Trials()), store.Dir)
		return err
	case err != nil:
		return fmt.Errorf("%w (finished trials are saved; resume with --resume %s)", err, store.Dir)
	}
	if !opts.JSON {
		b, rerr := os.ReadFile(filepath.Join(store.Dir, "report.md"))
		if rerr != nil {
			return rerr
		}
		fmt.Fprintf(out, "%s\nRun directory: %s\n", b, store.Dir)
	}
	return nil
}

// eventLine renders one event as a plain line, or "" for none.
func eventLine(e search.Event) string {
	switch e.Kind {
	case "trial":
		t := e.Trial
		res := fmt.Sprintf("val %.4f", t.ValAccuracy)
		switch t.Status {
		case search.StatusReused:
			res += fmt.Sprintf(" (reused from trial %d)", t.ReusedFrom)
		case search.StatusOK:
			res += fmt.Sprintf(" in %.1fs", t.Seconds)
		default:
			res = t.Status + ": " + t.Reason
		}
		return fmt.Sprintf("[%d/%d] ε %.1f  %s  %s  best %.4f  elapsed %s, ~%s left", e.Done, e.Total, t.Epsilon, t.Arch, res, e.Best, duration(e.Elapsed), duration(e.Remaining))
	case "final":
		f := e.Final
		if f.Status != search.StatusOK {
			return fmt.Sprintf("final #%d %s: %s %s", f.Rank, f.Arch, f.Status, f.Reason)
		}
		return fmt.Sprintf("final #%d %s: val %.4f, test %.4f (%s)", f.Rank, f.Arch, f.ValAccuracy, f.TestAccuracy, f.Model)
	case "start", "stopping":
		return e.Message
	}
	return ""
}

func runsCommand() *cli.Command {
	return &cli.Command{
		Name:  "runs",
		Usage: "list and show search runs",
		Subcommands: []*cli.Command{{
			Name:      "list",
			Usage:     "list the runs under --dir",
			ArgsUsage: " ",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "dir", Value: "runs", Usage: "directory of runs"},
				&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() > 0 {
					return usagef("runs list takes no arguments")
				}
				return runRunsList(c.String("dir"), c.Bool("json"), c.App.Writer)
			},
		}, {
			Name:      "show",
			Usage:     "show a run's report (trials per epsilon, best architectures)",
			ArgsUsage: "NAME|DIR",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "dir", Value: "runs", Usage: "directory of runs, for a NAME"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return usagef("runs show takes one run name or directory")
				}
				return runRunsShow(c.String("dir"), c.Args().First(), c.App.Writer)
			},
		}},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unknown command \"runs %s\" (valid: list, show)", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
	}
}

func runRunsList(dir string, asJSON bool, out io.Writer) error {
	runs, err := search.ListRuns(dir)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if runs == nil {
			runs = []*search.RunSummary{}
		}
		return enc.Encode(runs)
	}
	if len(runs) == 0 {
		fmt.Fprintf(out, "no runs in %s\n", dir)
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	// BEST is the best validation accuracy of a metaqnn run, the best reward
	// of a nasnet run (whose trials are episodes).
	fmt.Fprintln(tw, "NAME\tKIND\tTRIALS\tBEST\tFINAL\tBEST TEST\tUPDATED\tBEST ARCHITECTURE")
	for _, r := range runs {
		test := "-"
		if r.Finals > 0 {
			test = fmt.Sprintf("%.4f", r.BestTest)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%.4f\t%d\t%s\t%s\t%s\n", r.Name, r.Kind, r.Trials, r.Planned, r.Best, r.Finals, test, r.Updated.Local().Format("2006-01-02 15:04"), r.BestArch)
	}
	return tw.Flush()
}

func runRunsShow(dir, name string, out io.Writer) error {
	path := name
	if _, err := os.Stat(filepath.Join(path, "config.yaml")); err != nil {
		path = filepath.Join(dir, name)
	}
	if kind, err := search.RunKind(path); err == nil && kind == search.KindNASNet {
		rep, err := search.ReadNASNetReport(path)
		if err != nil {
			return err
		}
		fmt.Fprint(out, rep.Markdown())
		return nil
	}
	rep, err := search.ReadReport(path)
	if err != nil {
		return err
	}
	fmt.Fprint(out, rep.Markdown())
	return nil
}
