package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/natsbench"
	"github.com/nasctl/nasctl/search"
	"github.com/urfave/cli/v2"
)

func searchNASNetCommand() *cli.Command {
	return &cli.Command{
		Name:      "nasnet",
		Usage:     "NASNet cells: a REINFORCE LSTM controller designs cells (Zoph et al. 2018, the founding study)",
		ArgsUsage: " ",
		Description: `Runs a search in runs/NAME: the controller samples a cell pair (or a NATS-Bench
cell), the reward scores it and the controller learns, --episodes times. Every
episode is recorded as it finishes (episodes.jsonl: actions, cell, reward,
baseline, temperature, update), the controller's state after every update
(controller.state); at the end (or on a stop) episodes.csv, top.json,
top-cells.txt, report.md and plots/ (reward with its moving average and the
baseline; temperature) are written.

Rewards:
  mock       the founding study's mock reward of a cell pair of --blocks blocks
             (see nasctl reward mock --help); no training
  natsbench  NAS-Bench-201 / NATS-Bench topology cells, table test accuracy / 100,
             column --dataset
Training the cell networks arrives with the cell-network issue.

Settings come from the controller --preset, then --config FILE (YAML, any key of
the saved config.yaml), then the flags given. Controller presets:
  paper      Zoph & Le 2017 (default for mock): 2 x 35 LSTM, Adam 6e-4, EMA baseline
  study      the founding study's: its baseline rule, updates skipped when
             |R - b| < 0.05, gradients clipped to norm 0.3
  natsbench  tuned on NATS-Bench (default for natsbench): Adam 2e-3, entropy 1e-3
All use the study's temperature: 5.0, x0.995 per episode, down to 1.0.

Ctrl-C finishes the episode in flight and stops; a second Ctrl-C abandons it.
Either way the run resumes with --resume runs/NAME exactly where it stopped: the
resumed run samples the same episodes an uninterrupted one would have.

Examples:
  nasctl search nasnet --reward mock --episodes 800 --seed 1 --name mock-1
  nasctl search nasnet --reward natsbench --dataset cifar100 --episodes 300
  nasctl search nasnet --resume runs/mock-1`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "reward", Usage: "reward: " + strings.Join(search.RewardNames(), ", ") + " (default mock)"},
			&cli.IntFlag{Name: "blocks", Usage: "mock: blocks per cell, B (default 2, the study's)"},
			&cli.StringFlag{Name: "dataset", Usage: "natsbench: accuracy column, " + strings.Join(natsbench.DatasetNames(), ", ") + " (default cifar10)"},
			&cli.IntFlag{Name: "episodes", Usage: "architectures sampled (default 800)"},
			&cli.StringFlag{Name: "preset", Usage: "controller preset: " + strings.Join(controller.ReinforcePresetNames(), ", ") + " (default paper, natsbench for --reward natsbench)"},
			&cli.StringFlag{Name: "config", Usage: "YAML file of settings over the preset"},
			&cli.IntFlag{Name: "batch", Usage: "architectures per policy update"},
			&cli.Float64Flag{Name: "temperature", Usage: "softmax temperature of the first episode"},
			&cli.Float64Flag{Name: "temperature-decay", Usage: "factor applied to the temperature after every episode"},
			&cli.Float64Flag{Name: "min-temperature", Usage: "floor of the temperature"},
			&cli.StringFlag{Name: "baseline", Usage: "baseline: ema or study"},
			&cli.Float64Flag{Name: "baseline-decay", Usage: "ema baseline: decay d of b <- d b + (1-d) R"},
			&cli.Float64Flag{Name: "skip-below", Usage: "leave out episodes with |R - b| below this (0: none)"},
			&cli.Float64Flag{Name: "lr", Usage: "Adam learning rate"},
			&cli.Float64Flag{Name: "entropy", Usage: "entropy bonus weight (0: none)"},
			&cli.IntFlag{Name: "top-k", Usage: "distinct cells listed in top.json and the report (default 10)"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the controller's weights and samples (default 1)"},
			&cli.StringFlag{Name: "resume", Usage: "resume the run in this directory (its saved settings are used)"},
			&cli.StringFlag{Name: "name", Usage: "run name (directory under --dir); default nasnet-REWARD"},
			&cli.StringFlag{Name: "dir", Usage: "directory of runs (default runs)"},
			&cli.BoolFlag{Name: "quiet", Usage: "print only the final report"},
			&cli.BoolFlag{Name: "json", Usage: "print progress as JSON events, one per line"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("search nasnet takes no arguments (got %q)", c.Args().Slice())
			}
			opts, err := nasnetOptionsFrom(c)
			if err != nil {
				return err
			}
			return runNASNetSearch(c.Context, opts, c.App.Writer, c.App.ErrWriter)
		},
	}
}

type nasnetOptions struct {
	Config search.NASNetConfig
	Resume string
	Quiet  bool
	JSON   bool
}

// nasnetSettingFlags are the flags that shape a run; a resumed run keeps
// its saved settings.
var nasnetSettingFlags = []string{"reward", "blocks", "dataset", "episodes", "preset", "config", "batch", "temperature",
	"temperature-decay", "min-temperature", "baseline", "baseline-decay", "skip-below", "lr", "entropy", "top-k", "seed", "name", "dir"}

// nasnetOptionsFrom builds the configuration: controller preset, then file,
// then flags. Every mistake is a usage error that names the flag or key.
func nasnetOptionsFrom(c *cli.Context) (nasnetOptions, error) {
	opts := nasnetOptions{Resume: c.String("resume"), Quiet: c.Bool("quiet"), JSON: c.Bool("json")}
	if opts.Resume != "" {
		for _, f := range nasnetSettingFlags {
			if c.IsSet(f) {
				return opts, usagef("--%s cannot change a resumed run (its settings are in %s); only --quiet and --json can", f, filepath.Join(opts.Resume, "config.yaml"))
			}
		}
		return opts, nil
	}
	// The reward and the preset decide the base, so they are read first:
	// from the flags, else from the file.
	var file search.NASNetConfig
	if f := c.String("config"); f != "" {
		var err error
		if file, err = search.LoadNASNetConfig(f, search.NASNetConfig{}); err != nil {
			return opts, usagef("--config: %v", err)
		}
	}
	reward := file.Reward
	if c.IsSet("reward") {
		var err error
		if reward, err = search.ParseRewardKind(c.String("reward")); err != nil {
			return opts, usagef("--reward: %v", err)
		}
	}
	preset := file.Preset
	if c.IsSet("preset") {
		preset = c.String("preset")
	}
	cfg, err := search.NewNASNetConfig(reward, preset)
	if err != nil {
		return opts, usagef("--preset: %v", err)
	}
	if f := c.String("config"); f != "" {
		if cfg, err = search.LoadNASNetConfig(f, cfg); err != nil {
			return opts, usagef("--config: %v", err)
		}
	}
	cfg.Reward = reward
	if c.IsSet("dataset") && reward != search.RewardNATSBench {
		return opts, usagef("--dataset applies to --reward natsbench only; add --reward natsbench or drop --dataset")
	}
	if c.IsSet("blocks") && reward != search.RewardMock {
		return opts, usagef("--blocks applies to --reward mock only (the NATS-Bench cell is fixed); drop --blocks")
	}
	set := func(name string, apply func()) {
		if c.IsSet(name) {
			apply()
		}
	}
	r := &cfg.Controller
	set("blocks", func() { cfg.Blocks = c.Int("blocks") })
	set("dataset", func() { cfg.Dataset = c.String("dataset") })
	set("episodes", func() { cfg.Episodes = c.Int("episodes") })
	set("batch", func() { r.BatchSize = c.Int("batch") })
	set("temperature", func() { r.Temperature = c.Float64("temperature") })
	set("temperature-decay", func() { r.TemperatureDecay = c.Float64("temperature-decay") })
	set("min-temperature", func() { r.MinTemperature = c.Float64("min-temperature") })
	set("baseline-decay", func() { r.BaselineDecay = c.Float64("baseline-decay") })
	set("skip-below", func() { r.SkipBelow = c.Float64("skip-below") })
	set("lr", func() { r.LearningRate = c.Float64("lr") })
	set("entropy", func() { r.EntropyWeight = c.Float64("entropy") })
	set("top-k", func() { cfg.TopK = c.Int("top-k") })
	set("seed", func() { cfg.Seed = c.Uint64("seed") })
	set("name", func() { cfg.Name = c.String("name") })
	set("dir", func() { cfg.Dir = c.String("dir") })
	if c.IsSet("baseline") {
		if r.Baseline, err = controller.ParseBaselineKind(c.String("baseline")); err != nil {
			return opts, usagef("--baseline: %v", err)
		}
	}
	// A flag given as 0 would silently mean the default; say so instead.
	for _, f := range []string{"episodes", "blocks", "batch", "top-k"} {
		if c.IsSet(f) && c.Int(f) < 1 {
			return opts, usagef("--%s must be at least 1, got %d", f, c.Int(f))
		}
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Check(); err != nil {
		return opts, usagef("invalid settings:\n%v", err)
	}
	opts.Config = cfg
	return opts, nil
}

func runNASNetSearch(ctx context.Context, opts nasnetOptions, out, errOut io.Writer) error {
	var s *search.NASNetSearch
	var err error
	if opts.Resume != "" {
		s, err = search.ResumeNASNet(opts.Resume, nil)
	} else {
		var reward search.Reward
		if reward, err = search.NewReward(opts.Config); err == nil {
			s, err = search.NewNASNet(opts.Config, reward)
		}
	}
	if err != nil {
		return err
	}
	defer s.Close()
	cfg := s.Config()
	if !opts.Quiet && !opts.JSON {
		fmt.Fprintf(errOut, "run %s: %d episodes planned (%d done); reward: %s; controller preset %s, seed %d\n",
			s.Dir(), cfg.Episodes, len(s.Episodes()), s.Describe(), cfg.Preset, cfg.Seed)
	}

	stop := make(chan struct{})
	var once sync.Once
	remove := onFirstInterrupt(func() { once.Do(func() { close(stop) }) })
	defer remove()

	p := newNASNetProgress(opts, out, errOut)
	s.Progress = p.event
	err = s.Run(ctx, stop)
	p.close()
	switch {
	case errors.Is(err, search.ErrStopped), errors.Is(err, context.Canceled):
		fmt.Fprintf(errOut, "stopped after %d episodes; every finished episode is saved. Resume with:\n  nasctl search nasnet --resume %s\n", len(s.Episodes()), s.Dir())
		return err
	case err != nil:
		return fmt.Errorf("%w (finished episodes are saved; resume with --resume %s)", err, s.Dir())
	}
	if !opts.JSON {
		b, rerr := os.ReadFile(filepath.Join(s.Dir(), "report.md"))
		if rerr != nil {
			return rerr
		}
		fmt.Fprintf(out, "%s\nRun directory: %s\n", b, s.Dir())
	}
	return nil
}

// nasnetProgress draws a NASNet search's events: JSON lines on out with
// --json, nothing with --quiet, else a line per event on errOut under a live
// status line when errOut is a terminal.
type nasnetProgress struct {
	opts   nasnetOptions
	errOut io.Writer
	enc    *json.Encoder
	status *statusLine // nil unless live

	mu   sync.Mutex
	last search.NASNetEvent
}

func newNASNetProgress(opts nasnetOptions, out, errOut io.Writer) *nasnetProgress {
	p := &nasnetProgress{opts: opts, errOut: errOut, enc: json.NewEncoder(out)}
	if !opts.Quiet && !opts.JSON && isTerminal(errOut) {
		p.status = newStatusLine(errOut, p.statusText)
	}
	return p
}

func (p *nasnetProgress) statusText() string {
	p.mu.Lock()
	e := p.last
	p.mu.Unlock()
	return fmt.Sprintf("episode %d of %d  T %.2f  mean(last 100) %.4f  best %.4f  elapsed %s  remaining ~%s  (Ctrl-C stops)",
		min(e.Done+1, e.Total), e.Total, e.Temperature, e.Recent, e.Best, duration(e.Elapsed), duration(e.Remaining))
}

func (p *nasnetProgress) event(e search.NASNetEvent) {
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
	line := nasnetEventLine(e)
	switch {
	case p.opts.Quiet || line == "":
	case p.status != nil:
		p.status.Println(line)
	default:
		fmt.Fprintln(p.errOut, line)
	}
}

func (p *nasnetProgress) close() {
	if p.status != nil {
		p.status.Close()
	}
}

// nasnetEventLine renders one event as a plain line, or "" for none.
func nasnetEventLine(e search.NASNetEvent) string {
	switch e.Kind {
	case "episode":
		ep := e.Episode
		update := ""
		if u := ep.Update; u != nil && u.Skipped {
			update = "  update skipped"
		} else if u != nil {
			update = fmt.Sprintf("  update %d (loss %.3g)", u.Index+1, u.Loss)
		}
		return fmt.Sprintf("[%d/%d] T %.2f  reward %.4f  baseline %.4f%s  best %.4f  %s  elapsed %s, ~%s left",
			ep.Episode, e.Total, ep.Temperature, ep.Reward, ep.Baseline, update, e.Best, ep.Cell, duration(e.Elapsed), duration(e.Remaining))
	case "start", "stopping":
		return e.Message
	}
	return ""
}
