package main

import (
	"cmp"
	"slices"
	"strings"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/controller/problem"
	"github.com/nasctl/nasctl/natsbench"
	"github.com/nasctl/nasctl/search"
	"github.com/urfave/cli/v2"
)

func searchNASNetCommand() *cli.Command {
	return &cli.Command{
		Name:      "nasnet",
		Usage:     "NASNet cells: a REINFORCE LSTM controller designs cells (Zoph et al. 2018, the founding study)",
		ArgsUsage: " ",
		Description: `Runs a search in runs/NAME, in the same layout as a MetaQNN run: the controller
samples a cell pair (or a NATS-Bench cell), the reward scores it and the controller
learns, --episodes times. Every trial is recorded as it finishes (trials.jsonl:
actions, cell, reward, temperature), what the controller did with it (agent.jsonl:
baseline, update) and its state after every update (agent.state); at the end (or on a
stop) trials.csv, top.json, report.md and plots/ (reward with its moving average and
the baseline; temperature) are written.

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
(An episode is a trial: nasctl runs list and show count them as trials.)

Examples:
  nasctl search nasnet --reward mock --episodes 800 --seed 1 --name mock-1
  nasctl search nasnet --reward natsbench --dataset cifar100 --episodes 300
  nasctl search nasnet --resume runs/mock-1`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "reward", Usage: "reward: " + strings.Join(problem.Names, ", ") + " (default mock)"},
			&cli.IntFlag{Name: "blocks", Usage: "mock: blocks per cell, B (default 2, the study's)"},
			&cli.StringFlag{Name: "dataset", Usage: "natsbench: accuracy column, " + strings.Join(natsbench.DatasetNames(), ", ") + " (default cifar10)"},
			&cli.IntFlag{Name: "episodes", Usage: "architectures sampled (default 800)"},
			&cli.StringFlag{Name: "preset", Usage: "controller preset: " + strings.Join(controller.ReinforcePresetNames(), ", ") + " (default paper, natsbench for --reward natsbench)"},
			&cli.StringFlag{Name: "config", Usage: "YAML file of settings over the preset"},
			&cli.IntFlag{Name: "top-k", Usage: "distinct cells listed in top.json and the report (default 10)"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the controller's weights and samples (default 1)"},
			&cli.StringFlag{Name: "resume", Usage: "resume the run in this directory (its saved settings are used)"},
			&cli.StringFlag{Name: "name", Usage: "run name (directory under --dir); default nasnet-REWARD"},
			&cli.StringFlag{Name: "dir", Usage: "directory of runs (default runs)"},
			&cli.BoolFlag{Name: "quiet", Usage: "print only the final report"},
			&cli.BoolFlag{Name: "json", Usage: "print progress as JSON events, one per line"},
		}, reinforceFlags()...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c, ""); err != nil {
				return err
			}
			opts, err := nasnetOptions(c)
			if err != nil {
				return err
			}
			return runSearch(c.Context, opts, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// nasnetSettingFlags are the flags that shape a run; a resumed run keeps
// its saved settings.
var nasnetSettingFlags = append([]string{"reward", "blocks", "dataset", "episodes", "preset", "config", "top-k", "seed", "name", "dir"},
	reinforceFlagNames()...)

// nasnetOptions builds the configuration: controller preset, then file,
// then flags. Every mistake is a usage error that names the flag or key.
func nasnetOptions(c *cli.Context) (searchOptions, error) {
	if c.String("resume") != "" {
		return resumeOptions(c, nasnetSettingFlags)
	}
	opts := searchOptions{Quiet: c.Bool("quiet"), JSON: c.Bool("json")}
	cfg, err := nasnetBase(c)
	if err != nil {
		return opts, err
	}
	prob := cfg.Problem.Name
	if c.IsSet("dataset") && prob != "natsbench" {
		return opts, usagef("--dataset applies to --reward natsbench only; add --reward natsbench or drop --dataset")
	}
	if c.IsSet("blocks") && prob != "mock" {
		return opts, usagef("--blocks applies to --reward mock only (the NATS-Bench cell is fixed); drop --blocks")
	}
	set(c, "blocks", func() { cfg.Problem.Blocks = c.Int("blocks") })
	set(c, "dataset", func() { cfg.Problem.Dataset = c.String("dataset") })
	set(c, "episodes", func() { cfg.Trials = c.Int("episodes") })
	set(c, "top-k", func() { cfg.Final.TopK = c.Int("top-k") })
	set(c, "seed", func() { cfg.Seed = c.Uint64("seed") })
	set(c, "name", func() { cfg.Name = c.String("name") })
	set(c, "dir", func() { cfg.Dir = c.String("dir") })
	r := cfg.Reinforce.Controller.Config()
	if err := applyReinforceFlags(c, &r); err != nil {
		return opts, err
	}
	cfg.Reinforce.Controller = search.ControllerOf(r)
	// A flag given as 0 would silently mean the default; say so instead.
	for _, f := range []string{"episodes", "blocks", "top-k"} {
		if c.IsSet(f) && c.Int(f) < 1 {
			return opts, usagef("--%s must be at least 1, got %d", f, c.Int(f))
		}
	}
	opts.Config, err = checked(cfg)
	return opts, err
}

// nasnetBase is the configuration the flags apply to: the controller preset
// of the problem (from the flags, else from --config), then --config.
func nasnetBase(c *cli.Context) (search.Config, error) {
	var file search.Config
	if f := c.String("config"); f != "" {
		var err error
		if file, err = search.LoadConfig(f, search.Config{Kind: search.KindNASNet}); err != nil {
			return file, usagef("--config: %v", err)
		}
		if file.Kind != search.KindNASNet {
			return file, usagef("--config: %s describes a %s search; run it with nasctl search %s", f, file.Kind, file.Kind)
		}
	}
	prob := file.Problem.Name
	prob = cmp.Or(prob, "mock")
	if c.IsSet("reward") {
		prob = c.String("reward")
		if !slices.Contains(problem.Names, prob) {
			return file, usagef("--reward: unknown reward %q (valid: %s)", prob, strings.Join(problem.Names, ", "))
		}
	}
	preset := file.Reinforce.Preset
	if c.IsSet("preset") {
		preset = c.String("preset")
	}
	cfg, err := search.NASNetPreset(prob, preset)
	if err != nil {
		return cfg, usagef("--preset: %v", err)
	}
	if f := c.String("config"); f != "" {
		if cfg, err = search.LoadConfig(f, cfg); err != nil {
			return cfg, usagef("--config: %v", err)
		}
	}
	cfg.Problem.Name = prob
	return cfg, nil
}
