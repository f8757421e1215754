package main

import (
	"cmp"
	"slices"
	"strings"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/controller/problem"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/natsbench"
	"github.com/nasctl/nasctl/search"
	"github.com/urfave/cli/v2"
)

// searchNASNetDescription is search nasnet's help text.
const searchNASNetDescription = `Runs a search in runs/NAME, in the same layout as a MetaQNN run: the controller
samples a cell pair (or a NATS-Bench cell), the reward scores it and the controller
learns, --episodes times. Every trial is recorded as it finishes (trials.jsonl:
actions, cell, reward, temperature), what the controller did with it (agent.jsonl:
baseline, update) and its state after every update (agent.state); at the end (or on a
stop) trials.csv, top.json, report.md and plots/ (reward with its moving average and
the baseline; temperature) are written. Each trial's progress line begins
"[i/N] T t", t being the temperature the controller sampled it at.

Agents (--agent): reinforce, the controller (default); random, every decision
uniform among the valid ones and nothing learnt, the baseline that shows what the
controller buys; evolution, regularized evolution (the first 20 trials at random,
then each a one-decision mutation of the best of 3 of the last 20; nasnet.evolution
in --config sets population and sample). Random and evolution take no controller
settings.

Rewards:
  train       each cell pair is stacked into a network (--cells), trained on --data
              and rewarded with its validation accuracy (the presets: the best of the
              last 5 epochs, cubed, as the study); the best --top-k are retrained on
              the whole training split, tested and exported to winners/ (default)
  mnasnet     train, rewarded ACC x (LAT/T)^-0.07 with --target-ms T (MnasNet)
  constraint  train, refusing cells over --max-params or --max-latency-ms
              (mnasnet and constraint time the final models after the final
              phase and pick the best by those timings: search metaqnn --help)
  mock        the founding study's mock reward of a cell pair of --blocks blocks
              (see nasctl reward mock --help); no training
  natsbench   NAS-Bench-201 / NATS-Bench topology cells, table test accuracy / 100,
              column --dataset

Settings come from --preset, then --config FILE (YAML, any key of the saved
config.yaml), then the flags given. Presets of the searches that train:
  cpu        sized for a 2-core CPU (default): 32x32 input, an 8-filter network of one
             normal and one reduction cell in Zoph et al.'s style (ReLU, conv, batch
             norm), 60 episodes, SGD with momentum; about 10 min with the final
             phase (figures: README.md, docs/performance.md)
  study      the founding study's: at the images' size (64x64 for the study's), 32
             filters, normal, normal, reduction, conv + ReLU, SGD 0.1 momentum 0.9,
             batch 32, up to 50 epochs, early stopping on validation loss (patience
             3), the trials on a fifth of the training split (498 of the study's 4,000 images),
             800 episodes (GPU work)
Presets of the controller (--preset chooses one for mock and natsbench; the
training presets take natsbench's (cpu) or the study's (study), and a --config
file's reinforce section, or the controller flags, change it):
  paper      Zoph & Le 2017 (default for mock): 2 x 35 LSTM, Adam 6e-4, EMA baseline
  study      the founding study's: its baseline rule, updates skipped when
             |R - b| < 0.05, gradients clipped to norm 0.3
  natsbench  tuned on NATS-Bench (default for natsbench): Adam 2e-3, entropy 1e-3
All use the study's temperature: 5.0, x0.995 per episode, down to 1.0.

--cells changes the network around the cells, e.g. --cells "stem=16, style=study":
stem (filters of the 3x3 stem convolution), filters (of the first cells; doubled by
each reduction cell), normal (normal cells before each reduction), reductions,
style (study: conv + ReLU; nasnet: ReLU, conv, batch normalisation).

Trials on other machines, for the searches that train: --broker nats://HOST:4222
sends every trial to the workers of that broker (nasctl server, nasctl worker);
--broker embedded starts one in this process. --workers is then how many trials are
in flight (see nasctl search metaqnn --help).

Ctrl-C finishes the episodes in flight and stops (the final phase's retrainings
pause at the end of their epoch, to go on from there); a second Ctrl-C abandons them.
Either way the run resumes with --resume runs/NAME exactly where it stopped: the
resumed run samples the same episodes an uninterrupted one would have (with the same
--workers; another count changes what follows, see nasctl search metaqnn --help).
A trained run searched with --skip-final gets its final phase from --resume with
--skip-final=false, takes another --final-augment while no final is recorded, and
takes --data when its images moved (as search metaqnn).
--resume runs/NAME --episodes N gives a run more episodes, as search metaqnn's
--trials does.
(An episode is a trial: nasctl runs list and show count them as trials.)

Examples:
  nasctl search nasnet --data data/leaves --name cells
  nasctl search nasnet --preset study --data data/leaves --device cuda
  nasctl search nasnet --reward mock --episodes 800 --seed 1 --name mock-1
  nasctl search nasnet --reward natsbench --dataset cifar100 --episodes 300
  nasctl search nasnet --data data/leaves --name cells-random --agent random
  nasctl search nasnet --resume runs/mock-1`

func searchNASNetCommand() *cli.Command {
	return &cli.Command{
		Name:        "nasnet",
		Usage:       "NASNet cells: a REINFORCE LSTM controller designs cells (Zoph et al. 2018, the founding study); --agent random or evolution for the baselines",
		ArgsUsage:   " ",
		Description: searchNASNetDescription,
		Flags: presetDefaults(append(append([]cli.Flag{
			&cli.StringFlag{Name: "reward", Usage: "reward: " + strings.Join(nasnetRewards, ", ") + " (default train)"},
			&cli.StringFlag{Name: "agent", Usage: "reinforce (the controller, the default); random: decisions drawn uniformly, the baseline; evolution: regularized evolution"},
			&cli.StringFlag{Name: "cells", Usage: `network around the cells, keys over the preset's: "stem=S, filters=F, normal=N, reductions=R, style=study|nasnet"`},
			&cli.IntFlag{Name: "blocks", Usage: "blocks per cell, B, 1 to 10; not natsbench", DefaultText: "2, the study's"},
			&cli.StringFlag{Name: "dataset", Usage: "natsbench: accuracy column, " + strings.Join(natsbench.DatasetNames(), ", ") + " (default cifar10)"},
			&cli.IntFlag{Name: "episodes", Usage: "architectures sampled; with --resume, the run goes on to this many"},
			// search metaqnn's name for the episodes, defined to be refused
			// with a pointer to --episodes rather than as an unknown flag
			// (listed: every flag a command takes is in its help). A string:
			// presetDefaults would give a number a default.
			&cli.StringFlag{Name: "trials", Usage: "search metaqnn's; here the trials are --episodes (refused with that hint)"},
			&cli.StringFlag{Name: "preset", Usage: "preset: cpu, study (training; default cpu); " + strings.Join(controller.ReinforcePresetNames(), ", ") + " (mock, natsbench)"},
			&cli.StringFlag{Name: "config", Usage: "YAML file of settings over the preset"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the controller's weights and samples, and of the training", DefaultText: "1"},
			&cli.StringFlag{Name: "resume", Usage: "resume the run in this directory (its saved settings are used)"},
			&cli.StringFlag{Name: "name", Usage: "run name (directory under --dir); default nasnet-PRESET, or nasnet-REWARD for mock and natsbench"},
			&cli.StringFlag{Name: "dir", Aliases: []string{"runs"}, Usage: "directory of runs (default runs; --runs works too)"},
		}, append(progressFlags(), trainingFlags()...)...), reinforceFlags()...)),
		Action: func(c *cli.Context) error {
			if err := noArgs(c, ""); err != nil {
				return jsonFailed(c, err)
			}
			if c.IsSet("trials") {
				return jsonFailed(c, usagef("--trials is search metaqnn's: search nasnet counts its trials as episodes, --episodes"))
			}
			opts, err := nasnetOptions(c)
			if err != nil {
				return jsonFailed(c, err)
			}
			return runSearchCommand(c, opts)
		},
	}
}

// nasnetRewards are the values of search nasnet's --reward: the trained
// rewards (the latency-aware ones are search.RewardSettings modes), then
// the problems.
var nasnetRewards = append([]string{"train", search.RewardMnasNet, search.RewardConstraint}, problem.Names...)

// nasnetSettingFlags are the flags that shape a run; a resumed run keeps
// its saved settings.
var nasnetSettingFlags = slices.Concat([]string{"reward", "agent", "cells", "blocks", "dataset", "preset", "config", "seed", "name", "dir"},
	trainingSettingFlags, reinforceFlagNames())

// nasnetOptions builds the configuration: preset, then file, then flags.
// Every mistake is a usage error that names the flag or key.
func nasnetOptions(c *cli.Context) (searchOptions, error) {
	if c.String("resume") != "" {
		return resumeOptions(c, search.KindNASNet, nasnetSettingFlags, "episodes")
	}
	broker, err := brokerOptionsOf(c)
	if err != nil {
		return searchOptions{}, err
	}
	opts := searchOptions{Quiet: c.Bool("quiet"), JSON: c.Bool("json"), Broker: broker}
	cfg, err := nasnetBase(c)
	if err != nil {
		return opts, err
	}
	if err := checkNASNetFlags(c, cfg.Problem.Name); err != nil {
		return opts, err
	}
	if cfg.Trains() {
		if err := applyTrainingFlags(c, &cfg); err != nil {
			return opts, err
		}
		if c.IsSet("reward") {
			cfg.Reward.Mode = cmp.Or(strings.TrimPrefix(c.String("reward"), "train"), search.RewardAccuracy)
		}
		if err := rewardLimits(c, &cfg); err != nil {
			return opts, err
		}
		set(c, "blocks", func() { cfg.Cells.Blocks = c.Int("blocks") })
		if c.IsSet("cells") {
			m := cfg.Cells.CellMacro
			if m == (genotype.CellMacro{}) {
				m = genotype.StudyMacro
			}
			if err := m.Apply(c.String("cells")); err != nil {
				return opts, usagef("--cells: %v", err)
			}
			cfg.Cells.CellMacro = m
		}
	} else {
		set(c, "blocks", func() { cfg.Problem.Blocks = c.Int("blocks") })
		set(c, "dataset", func() { cfg.Problem.Dataset = c.String("dataset") })
		set(c, "top-k", func() { cfg.Final.TopK = c.Int("top-k") })
	}
	set(c, "episodes", func() { cfg.Trials = c.Int("episodes") })
	set(c, "seed", func() { cfg.Seed = c.Uint64("seed") })
	if err := setRunName(c, &cfg); err != nil {
		return opts, err
	}
	set(c, "dir", func() { cfg.Dir = c.String("dir") })
	set(c, "agent", func() { cfg.NASNet.Agent = c.String("agent") })
	if err := checkAgentFlags(c, cfg); err != nil {
		return opts, err
	}
	r := cfg.Reinforce.Controller.Config()
	if err := applyReinforceFlags(c, &r); err != nil {
		return opts, err
	}
	cfg.Reinforce.Controller = search.ControllerOf(r)
	// A flag given as 0 would silently mean the default; say so instead.
	for _, f := range []string{"episodes", "blocks"} {
		if c.IsSet(f) && c.Int(f) < 1 {
			return opts, usagef("--%s must be at least 1, got %d", f, c.Int(f))
		}
	}
	opts.Config, err = checked(cfg)
	return opts, err
}

// checkAgentFlags refuses the controller's flags for the agents without
// one.
func checkAgentFlags(c *cli.Context, cfg search.Config) error {
	agent := cfg.NASNet.Agent
	if agent == "" || agent == search.AgentReinforce {
		return nil
	}
	if !slices.Contains(search.NASNetAgents, agent) {
		return usagef("--agent: unknown agent %q (valid: %s)", agent, strings.Join(search.NASNetAgents, ", "))
	}
	for _, name := range reinforceFlagNames() {
		if c.IsSet(name) {
			return usagef("--%s sets the REINFORCE controller; --agent %s has none (drop --%s, or use --agent reinforce)", name, agent, name)
		}
	}
	if c.IsSet("preset") && !cfg.Trains() {
		return usagef("--preset names a controller preset for --reward %s; --agent %s has no controller (drop --preset)", cfg.Problem.Name, agent)
	}
	return nil
}

// checkNASNetFlags refuses the flags that do not apply to the reward.
func checkNASNetFlags(c *cli.Context, prob string) error {
	if c.IsSet("dataset") && prob != "natsbench" {
		return usagef("--dataset applies to --reward natsbench only; add --reward natsbench or drop --dataset")
	}
	if c.IsSet("blocks") && prob == "natsbench" {
		return usagef("--blocks does not apply to --reward natsbench (the NATS-Bench cell is fixed); drop --blocks")
	}
	if prob == "" {
		return nil
	}
	if c.IsSet("cells") {
		return usagef("--cells applies to the searches that train (--reward train, mnasnet, constraint); --reward %s scores cells without building networks", prob)
	}
	for _, f := range trainingFlags() {
		if name := f.Names()[0]; c.IsSet(name) && name != "top-k" {
			return usagef("--%s applies to the searches that train (--reward train, mnasnet, constraint); --reward %s trains nothing", name, prob)
		}
	}
	return nil
}

// nasnetBase is the configuration the flags apply to: the preset of the
// reward (from the flags, else from --config), then --config.
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
	if c.IsSet("reward") {
		r := c.String("reward")
		if !slices.Contains(nasnetRewards, r) {
			return file, usagef("--reward: unknown reward %q (valid: %s)", r, strings.Join(nasnetRewards, ", "))
		}
		prob = r
		if !slices.Contains(problem.Names, r) {
			prob = ""
		}
	}
	preset := file.Reinforce.Preset
	if c.IsSet("preset") {
		preset = c.String("preset")
	} else if prob == "" && file.Reinforce.Preset != "" {
		preset = "" // a trained search's file names its controller preset, not a search preset
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
