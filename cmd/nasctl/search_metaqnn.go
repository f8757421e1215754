package main

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"

	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/search"
	"github.com/urfave/cli/v2"
)

// searchMetaQNNDescription is search metaqnn's help text.
const searchMetaQNNDescription = `Runs a search in runs/NAME: every trial is recorded as it finishes (trials.jsonl,
trials.csv), with the agent's Q-table and replay memory (agent.state); then the best
--top-k architectures are retrained and tested, and report.md, report.csv, top.json,
plots/ and winners/*.onnx are written.

Settings come from --preset, then --config FILE (YAML, any key of the saved
config.yaml), then the flags given. Presets:
  cpu        sized for a 2-core CPU (32x32 input, narrow layers, at most 160k parameters,
             225 trials, about 13 min)
  study      the founding study's settings (at the images' size, 64x64 for the study's;
             270 trials: GPU work, ~2 h on an A10G)
  baker2017  Baker et al.'s space and 2,700-trial schedule

Ctrl-C stops starting trials and finishes those in flight (the final phase's
retrainings pause at the end of their epoch, to go on from there; on remote workers
they finish); a second Ctrl-C abandons them. Either way the run resumes with
--resume runs/NAME: the trials recorded are
kept, those that were in flight are trained again, and the resumed run gives the
trials of an uninterrupted one (with the same --workers: the agent draws trial i
after learning trials 1..i-2xworkers, 1..i-1 with one worker, so another count
changes what follows; trials.jsonl records each trial's look-ahead as lag, by
which a resume replays the trials recorded).
A run searched with --skip-final gets its final phase from --resume with
--skip-final=false, and another --final-augment while no final is recorded
(or with --trials N, whose plan retrains the final phase). The run saves its image folder's full path; if the images
moved, --resume takes --data with their new folder (the same images: their
content hash must be the run's).

Another number of trials for a run, finished or not (at least those recorded):
--resume runs/NAME --trials N. The agent learns the recorded trials again and goes on
as a run planned for N trials would; what the old plan had (checkpoint, final phase,
report, plots, bench/) moves to runs/NAME/earlier/trials-OLD, and the final phase is
done again for the new best: a network the old final phase retrained with the same
weights, settings and images is copied from there instead of trained again.

--sample N prints N architectures drawn at epsilon 1.0 and trains nothing; it
takes --space, --preset, --config (to preview a space of one's own, such as
conv_strides: [1, 2]), --input, --seed and --json, and no other flag.

Trials on other machines: --broker nats://HOST:4222 sends every trial to the
workers of that broker (nasctl server, nasctl worker); --broker embedded starts a
broker in this process (on 127.0.0.1:4222 unless --broker-listen says otherwise).
--workers is then how many trials are in flight: the slots of all workers together.
The trials are those of a local run with the same settings; the final models are
tested here. A resumed run may take --broker or not.

Latency-aware search: --reward mnasnet --target-ms T rewards ACC x (LAT/T)^-0.07
(MnasNet's soft constraint); --reward constraint --max-latency-ms L and/or
--max-params P refuses, before training, architectures over the limits (recorded
with the reason). LAT is batch-1 latency on ONNX Runtime with one thread, predicted
by a per-layer model calibrated on this machine at the start of the run
(latency_model.json holds it and its error on held-out architectures), or
--latency measured. Once the final models are all retrained, such a search times
them on this machine (batch 1, in rounds as nasctl bench does: final_latency.json)
and picks its best by those timings: under constraint, among the finals within
--max-latency-ms, and a run none of whose finals is within exits 1 without
winners/best.onnx. A run stopped before they are timed is stopped, not finished,
and its resume times them. Not with --latency-table, whose figures are for
another machine.

Examples:
  nasctl search metaqnn --preset cpu --data data/leaves --name leaves
  nasctl search metaqnn --resume runs/leaves
  nasctl search metaqnn --resume runs/leaves --skip-final=false
  nasctl search metaqnn --resume runs/leaves --trials 300
  nasctl search metaqnn --preset cpu --data data/leaves --name leaves-random --agent random
  nasctl search metaqnn --preset cpu --data data/leaves --name leaves --broker nats://gpu-box:4222 --workers 8
  nasctl search metaqnn --sample 5 --space study`

func searchMetaQNNCommand() *cli.Command {
	return &cli.Command{
		Name:        "metaqnn",
		Usage:       "MetaQNN: a Q-learning agent builds CNNs layer by layer (Baker et al. 2017)",
		ArgsUsage:   " ",
		Description: searchMetaQNNDescription,
		Flags: presetDefaults(append([]cli.Flag{
			&cli.StringFlag{Name: "preset", Value: "cpu", Usage: "base settings: " + strings.Join(search.PresetNames(), ", ")},
			&cli.StringFlag{Name: "config", Usage: "YAML file of settings over the preset"},
			&cli.StringFlag{Name: "resume", Usage: "resume the run in this directory (its saved settings are used)"},
			&cli.StringFlag{Name: "name", Usage: "run name (directory under --dir); default metaqnn-PRESET"},
			&cli.StringFlag{Name: "dir", Aliases: []string{"runs"}, Usage: "directory of runs (default runs; --runs works too)"},
			&cli.StringFlag{Name: "space", Usage: "search space: cpu, study, baker2017"},
			&cli.StringFlag{Name: "schedule", Usage: `epsilon schedule: cpu, study, baker2017, "EPS:MODELS,..." or scaled (the preset's or --config's, fitted to --trials phase by phase)`},
			&cli.IntFlag{Name: "trials", DefaultText: "the schedule's", Usage: "trials planned; those past the schedule's end are at its last epsilon; with --resume, a run goes on to this many"},
			&cli.StringFlag{Name: "agent", Usage: "qlearning (MetaQNN, the default); random: the same space, trial count (a --schedule's too) and training, architectures drawn uniformly (the baseline); evolution: regularized evolution after the random first phase"},
			&cli.StringFlag{Name: "reward", Usage: "accuracy, mnasnet (ACC x (LAT/T)^-0.07) or constraint (refuse over --max-params/--max-latency-ms)"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the agent, the weights and the shuffling", DefaultText: "1"},
			&cli.IntFlag{Name: "sample", Usage: "print this many architectures drawn at epsilon 1.0 and exit (with --json, one JSON array of them, not events)", DefaultText: "none"},
		}, append(progressFlags(), trainingFlags()...)...)),
		Action: func(c *cli.Context) error {
			if err := noArgs(c, ""); err != nil {
				return jsonFailed(c, err)
			}
			if n := c.Int("sample"); c.IsSet("sample") {
				if c.String("resume") != "" {
					return usagef("--sample draws from a new search's space and trains nothing; it does not go with --resume")
				}
				if err := sampleFlagsOnly(c); err != nil {
					return err
				}
				return runSample(c, n)
			}
			opts, err := metaqnnOptions(c)
			if err != nil {
				return jsonFailed(c, err)
			}
			return runSearchCommand(c, opts)
		},
	}
}

// metaqnnSettingFlags are the flags that shape a run; a resumed run keeps
// its saved settings.
var metaqnnSettingFlags = append([]string{"preset", "config", "name", "dir", "space", "schedule", "agent", "seed", "reward"}, trainingSettingFlags...)

// metaqnnOptions builds the configuration: preset, then file, then flags.
func metaqnnOptions(c *cli.Context) (searchOptions, error) {
	if c.String("resume") != "" {
		return resumeOptions(c, search.KindMetaQNN, metaqnnSettingFlags, "trials")
	}
	broker, err := brokerOptionsOf(c)
	if err != nil {
		return searchOptions{}, err
	}
	opts := searchOptions{Quiet: c.Bool("quiet"), JSON: c.Bool("json"), Broker: broker}
	cfg, err := search.Preset(c.String("preset"))
	if err != nil {
		return opts, usagef("--preset: %v", err)
	}
	if f := c.String("config"); f != "" {
		if cfg, err = search.LoadConfig(f, cfg); err != nil {
			return opts, usagef("--config: %v", err)
		}
		if cfg.Kind != search.KindMetaQNN {
			return opts, usagef("--config: %s describes a %s search; run it with nasctl search %s", f, cfg.Kind, cfg.Kind)
		}
	}
	if err := setRunName(c, &cfg); err != nil {
		return opts, err
	}
	set(c, "dir", func() { cfg.Dir = c.String("dir") })
	set(c, "seed", func() { cfg.Seed = c.Uint64("seed") })
	set(c, "reward", func() { cfg.Reward.Mode = c.String("reward") })
	set(c, "agent", func() {
		cfg.MetaQNN.Agent = c.String("agent")
		if cfg.MetaQNN.Agent != search.AgentQLearning {
			// next_best follows a Q-table (the cpu preset's): another agent
			// on the same preset has none to follow.
			cfg.MetaQNN.QLearning.NextBest = 0
		}
	})
	if err := applyTrainingFlags(c, &cfg); err != nil {
		return opts, err
	}
	if err := rewardLimits(c, &cfg); err != nil {
		return opts, err
	}
	if c.IsSet("space") {
		sp, err := search.SpacePreset(c.String("space"))
		if err != nil {
			return opts, usagef("--space: %v", err)
		}
		cfg.MetaQNN.Space = search.SpaceSpec{Space: sp}
	}
	trials := c.Int("trials")
	if c.IsSet("trials") && trials < 1 {
		return opts, usagef("--trials must be at least 1, got %d", trials) // 0 would silently mean the schedule's
	}
	if c.IsSet("schedule") {
		s, err := scheduleFlag(c.String("schedule"), cfg, trials)
		if err != nil {
			return opts, err
		}
		cfg.MetaQNN.Schedule = search.ScheduleSpec{EpsilonSchedule: s}
		cfg.Trials = 0 // the schedule's (a scaled one's is the trials')
		if cfg.Agent() == search.AgentRandom {
			// Accepted, so that a Q-learning command with --agent random
			// added is its baseline: the same trials, drawn at random.
			count := fmt.Sprintf("the schedule's %d trials", s.Total())
			if trials > 0 {
				count = fmt.Sprintf("the %d trials of --trials", trials)
			}
			opts.Notes = append(opts.Notes, fmt.Sprintf("the random agent uses no epsilon: it runs %s, every layer drawn at random, and its report groups them by the schedule's phases, to set beside Q-learning's", count))
		}
	}
	if c.IsSet("trials") {
		cfg.Trials = trials
	}
	opts.Config, err = checked(cfg)
	return opts, err
}

// scheduleScaled is the --schedule that fits the run's schedule (its
// preset's or configuration's) to --trials, phase by phase.
const scheduleScaled = "scaled"

// scheduleFlag reads --schedule: a preset's name, phases, or scaled, which
// fits cfg's schedule to the --trials given (zero when none), else to
// cfg's trials (a --config's).
func scheduleFlag(v string, cfg search.Config, trials int) (controller.EpsilonSchedule, error) {
	if v != scheduleScaled {
		s, err := controller.ParseSchedule(v)
		if err != nil {
			return nil, usagef("--schedule: %v", err)
		}
		return s, nil
	}
	if trials = cmp.Or(trials, cfg.Trials); trials == 0 {
		return nil, usagef("--schedule scaled fits the run's schedule to --trials: give --trials too")
	}
	return cfg.WithDefaults().MetaQNN.Schedule.Scale(trials), nil
}

// sampleFlags are the flags --sample uses; it trains nothing, so the others
// would be ignored.
var sampleFlags = []string{"sample", "space", "preset", "config", "input", "seed", "json"}

// sampleFlagsOnly refuses, all at once, the flags given that --sample does
// not use.
func sampleFlagsOnly(c *cli.Context) error {
	var given []string
	for _, f := range c.Command.Flags {
		if fromEnvironment(f) {
			continue // NASCTL_BROKER_TOKEN exported for a cluster, say: not typed here
		}
		if name := f.Names()[0]; c.IsSet(name) && !slices.Contains(sampleFlags, name) && name != "help" {
			given = append(given, "--"+name)
		}
	}
	if len(given) > 0 {
		return usagef("--sample draws architectures from the space and trains nothing; it takes only --space, --preset, --config, --input, --seed and --json: drop %s (or drop --sample to run a search)",
			english.WordSeries(given, "and"))
	}
	return nil
}

// fromEnvironment reports whether one of the flag's environment variables
// is set, which urfave/cli's IsSet counts as the flag given.
func fromEnvironment(f cli.Flag) bool {
	ev, ok := f.(interface{ GetEnvVars() []string })
	return ok && slices.ContainsFunc(ev.GetEnvVars(), func(v string) bool { _, set := os.LookupEnv(v); return set })
}

// runSample prints architectures drawn at epsilon 1 from a space.
func runSample(c *cli.Context, n int) error {
	if n < 1 {
		return usagef("--sample %d: must be at least 1", n)
	}
	cfg, err := search.Preset(c.String("preset"))
	if err != nil {
		return usagef("--preset: %v", err)
	}
	if f := c.String("config"); f != "" { // a space of one's own, to preview
		if cfg, err = search.LoadConfig(f, cfg); err != nil {
			return usagef("--config: %v", err)
		}
		if cfg.Kind != search.KindMetaQNN {
			return usagef("--config: %s describes a %s search, whose architectures --sample does not draw", f, cfg.Kind)
		}
	}
	space := cfg.MetaQNN.Space.Space
	if name := c.String("space"); name != "" {
		if space, err = search.SpacePreset(name); err != nil {
			return usagef("--space: %v", err)
		}
	}
	in := genotype.StudyInput
	if s := c.String("input"); s != "" {
		if in, err = genotype.ParseInput(s); err != nil {
			return usagef("--input: %v", err)
		}
	} else if cfg.Input != "" && !c.IsSet("space") {
		if in, err = genotype.ParseInput(cfg.Input); err != nil {
			return usagef("--config: input: %v", err)
		}
	}
	seed := cmp.Or(cfg.Seed, 1) // every preset's, as --seed's help says
	if c.IsSet("seed") {
		seed = c.Uint64("seed")
	}
	agent, err := controller.NewMetaQNN(space, in, controller.QConfig{}, controller.ScheduleStudy, seed)
	if err != nil {
		return usagef("%v", err) // a space or input given wrong
	}
	rng := rand.New(rand.NewPCG(seed, 0x73616d706c65)) // "sample"
	archs := make([]string, n)
	for i := range archs {
		arch, _ := agent.Sample(1, rng)
		archs[i] = arch.String()
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, archs)
	}
	for _, a := range archs {
		fmt.Fprintln(c.App.Writer, a)
	}
	return nil
}
