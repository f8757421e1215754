package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strings"
	"text/tabwriter"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/internal/shell"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
	"github.com/urfave/cli/v2"
)

const latencyTableDescription = `Measures, on this machine, the per-layer latency model that the latency-aware
rewards of a search use (--reward mnasnet or constraint): --networks networks drawn
from the search space, built for --input, are each timed over --runs batch-1 runs on
ONNX Runtime with --threads threads (in 10 rounds that go through every network in
turn, so that all see the same load), and a linear model of their layers is fitted
(a fifth of the networks held out to measure its error). The table holds the
milliseconds per unit of each layer feature, the space and input it is valid for,
this machine's description, the ONNX Runtime version and the date.

Run it on the robot (the arm64 build: make build-arm64, docs/arm64.md), copy the
table back and give it to the search: nasctl search metaqnn ... --latency-table
robot.json ranks by the robot's latency instead of calibrating on this machine.

--check FILE reads a table, checks it (against --space/--config and --input when
given) and prints its figures; it measures nothing.

Examples:
  nasctl bench latency-table --space cpu --out robot.json
  nasctl bench latency-table --config runs/leaves/config.yaml --threads 4 --out robot.json
  nasctl bench latency-table --check robot.json --space cpu`

// latencyTableOptions measure a latency table, or check one (Check set).
type latencyTableOptions struct {
	Config  search.Config // the space and seed the networks are drawn with
	Input   genotype.Input
	Classes int
	// Networks measured, timed Runs each with Threads intra-op threads.
	Networks, Runs, Threads int
	Out                     string
	// Check is a table to check instead of measuring; Fit says whether to
	// check it against Config and Input too.
	Check string
	Fit   bool
}

func benchLatencyTableCommand() *cli.Command {
	return &cli.Command{
		Name:        "latency-table",
		Usage:       "measure the latency model of the latency-aware rewards on this machine (the target) as a table",
		ArgsUsage:   " ",
		Description: latencyTableDescription,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "space", Value: "cpu", Usage: "search space the networks are drawn from: cpu, " + strings.Join(genotype.PresetNames(), ", ")},
			&cli.StringFlag{Name: "config", Usage: "a search's settings (its run's config.yaml, or a --config file): its space, input and seed, instead of --space"},
			&cli.StringFlag{Name: "input", Usage: "input HxWxC the networks are built for (default: the config's, one channel when it gives none; for --space cpu 32x32x1, else 64x64x1)"},
			&cli.IntFlag{Name: "classes", Value: 2, Usage: "classes of the networks' classifier"},
			&cli.IntFlag{Name: "networks", Value: 120, Usage: fmt.Sprintf("networks measured (at least %d; a fifth are held out)", 2*len(bench.Features))},
			&cli.IntFlag{Name: "runs", Value: 100, Usage: "timed batch-1 runs per network (the median is fitted)"},
			&cli.IntFlag{Name: "threads", Value: 1, Usage: "ONNX Runtime intra-op threads: those the robot's program will use (a search's reward.latency_threads)"},
			&cli.StringFlag{Name: "out", Usage: "file the table is written to (JSON; required unless --check)"},
			&cli.StringFlag{Name: "check", Usage: "check this table and print its figures instead of measuring (and warn, as its measurement did, of a layer given a negative cost)"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c, ""); err != nil {
				return err
			}
			opts, err := latencyTableOptionsOf(c)
			if err != nil {
				return err
			}
			return runLatencyTable(c.Context, opts, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// latencyTableOptionsOf reads and checks the flags.
func latencyTableOptionsOf(c *cli.Context) (latencyTableOptions, error) {
	opts := latencyTableOptions{Classes: c.Int("classes"), Networks: c.Int("networks"), Runs: c.Int("runs"), Threads: c.Int("threads"),
		Out: c.String("out"), Check: c.String("check")}
	opts.Fit = c.IsSet("space") || c.IsSet("config") || c.IsSet("input")
	switch {
	case opts.Check == "" && opts.Out == "":
		return opts, usagef("latency-table needs --out FILE (or --check FILE to read a table)")
	case opts.Check != "" && opts.Out != "":
		return opts, usagef("--check reads a table and --out writes one; give one of them")
	case opts.Classes < 2 || opts.Runs < 1 || opts.Threads < 1:
		return opts, usagef("--classes %d, --runs %d, --threads %d: need at least 2 classes, 1 run and 1 thread", opts.Classes, opts.Runs, opts.Threads)
	case opts.Networks < 2*len(bench.Features):
		return opts, usagef("--networks %d: the model has %d features; measure at least %d networks", opts.Networks, len(bench.Features), 2*len(bench.Features))
	case c.IsSet("space") && c.IsSet("config"):
		return opts, usagef("--config gives the space; leave out --space")
	}
	if opts.Out != "" {
		if err := checkWritable("out", opts.Out); err != nil { // before the measuring, not after
			return opts, err
		}
	}
	var err error
	if opts.Config, err = latencyTableConfig(c.String("config"), c.String("space")); err != nil {
		return opts, err
	}
	in := cmp.Or(c.String("input"), opts.Config.Input, genotype.StudyInput.String())
	if opts.Input, err = genotype.ParseImageSize(in); err != nil {
		return opts, usagef("--input: %v", err)
	}
	if opts.Input.Channels == 0 {
		// A search's HxW takes the images' channels, which no table can know.
		// A --check against no space or input uses none, so says nothing.
		opts.Input.Channels = 1
		doing := "measuring at"
		if opts.Check != "" {
			doing = "checking the table against"
		}
		if opts.Check == "" || opts.Fit {
			fmt.Fprintf(c.App.ErrWriter, "note: %s leaves the channels to the images; %s %s (gray): give --input %sx3 for RGB images\n",
				inputOrigin(c, in), doing, opts.Input, in)
		}
	}
	return opts, nil
}

// inputOrigin names the input HxW in as the user knows it: the flag, the
// config's setting, or the default.
func inputOrigin(c *cli.Context, in string) string {
	switch {
	case c.IsSet("input"):
		return "--input " + in
	case c.IsSet("config"):
		return "the config's input " + in
	}
	return "the default input " + in
}

// latencyTableConfig is the search whose space the table is measured for:
// the settings in file, or the cpu preset with the named space (and the
// preset's input when that space is the preset's own).
func latencyTableConfig(file, space string) (search.Config, error) {
	cfg, err := search.Preset("cpu")
	if err != nil {
		return cfg, err
	}
	if file != "" {
		if cfg, err = search.LoadConfig(file, cfg); err != nil {
			return cfg, usagef("--config: %v", err)
		}
		if !cfg.Trains() {
			return cfg, usagef("--config: %s scores its trials from a table (problem %s); its networks are never run", file, cfg.Problem.Name)
		}
		return cfg.WithDefaults(), nil
	}
	sp, err := search.SpacePreset(space)
	if err != nil {
		return cfg, usagef("--space: %v", err)
	}
	if sp.Name != search.CPUSpace.Name {
		cfg.Input = ""
	}
	cfg.MetaQNN.Space = search.SpaceSpec{Space: sp}
	return cfg.WithDefaults(), nil
}

// runLatencyTable measures a table and writes it to opts.Out, or checks
// opts.Check; either way it prints the table's figures on out.
func runLatencyTable(ctx context.Context, opts latencyTableOptions, out, errOut io.Writer) error {
	if opts.Check != "" {
		t, err := bench.ReadLatencyTable(opts.Check)
		if err != nil {
			return err
		}
		if opts.Fit {
			space, digest := search.LatencySpace(opts.Config)
			if err := t.CheckGiven(space, digest, opts.Input); err != nil {
				return fmt.Errorf("%s: %w", opts.Check, err)
			}
		}
		if doubt := t.Model().Doubt(); doubt != "" {
			fmt.Fprintf(errOut, "warning: %s (--networks, --runs)\n", doubt)
		}
		printLatencyTable(out, t)
		return nil
	}
	if err := runtime.Init(""); err != nil {
		return err
	}
	defer runtime.Close()
	space, _ := search.LatencySpace(opts.Config)
	fmt.Fprintf(errOut, "timing %d networks of the %s space at %s, %d runs each with %d thread(s) on ONNX Runtime %s\n",
		opts.Networks, space, opts.Input, opts.Runs, opts.Threads, runtime.Version())
	t, err := search.MeasureLatencyTable(ctx, opts.Config, opts.Input, opts.Classes, opts.Networks, opts.Runs, opts.Threads)
	if err != nil {
		return err
	}
	t.Machine = thisMachine()
	if err := writeJSON(opts.Out, t); err != nil {
		return err
	}
	if doubt := t.Model().Doubt(); doubt != "" {
		fmt.Fprintf(errOut, "warning: %s (--networks, --runs)\n", doubt)
	}
	printLatencyTable(out, t)
	fmt.Fprintf(out, "written to %s; use it with nasctl search ... --latency-table %s\n", opts.Out, shell.Quote(opts.Out))
	return nil
}

// printLatencyTable prints what a table was measured on and its figures.
func printLatencyTable(w io.Writer, t *bench.LatencyTable) {
	fmt.Fprintln(w, t.Describe())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "feature\tms per unit\t")
	for _, e := range t.MsPerUnit {
		fmt.Fprintf(tw, "%s\t%.4g\t\n", e.Feature, e.Ms)
	}
	tw.Flush()
}

// thisMachine describes the computer nasctl runs on.
func thisMachine() bench.Machine {
	m := bench.Machine{OS: goruntime.GOOS, Arch: goruntime.GOARCH, CPU: cpuModel(), Cores: goruntime.NumCPU()}
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// cpuModel names the CPU: /proc/cpuinfo's model name (x86, some ARM
// kernels), else the board's device-tree model (ARM boards), else "".
func cpuModel() string {
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	if b, err := os.ReadFile("/sys/firmware/devicetree/base/model"); err == nil {
		return strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
	}
	return ""
}

// latencyTableFlag is search's --latency-table: the table is read and
// checked when the flag is parsed, so a bad file fails before the run
// directory is made; a resumed run keeps its own.
func latencyTableFlag() cli.Flag {
	return &cli.StringFlag{
		Name:  "latency-table",
		Usage: "rank by the latency this table predicts (measured on the target: nasctl bench latency-table) instead of a model calibrated here",
		Action: func(c *cli.Context, path string) error {
			if c.String("resume") != "" {
				return usagef("--latency-table cannot change a resumed run: a run keeps the latency source it started with (a table's is copied to %s in its directory); start a new run to rank by this table", search.FileLatencyTable)
			}
			if _, err := bench.ReadLatencyTable(path); err != nil {
				return usagef("--latency-table: %v", err)
			}
			return nil
		},
	}
}
