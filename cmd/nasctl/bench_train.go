package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/runtime"
	"github.com/urfave/cli/v2"
)

func benchTrainStepCommand() *cli.Command {
	return &cli.Command{
		Name:      "train-step",
		Usage:     "time one training step (forward, backward, Adam) of an architecture on random data",
		ArgsUsage: " ",
		Description: `Times the training step that "nasctl train" runs: drawing the dropout masks, the
forward pass, the loss, the backward pass and the Adam update of one mini-batch,
with the same graph, session settings and tensors. Reports the median of --steps
timed steps after --warmup untimed ones, images per second, the arithmetic rate
(3 x forward FLOPs per image, the usual estimate of forward plus backward), and
that rate as a share of this machine's float32 peak: the rate of a large MatMul
(2048^3) through ONNX Runtime with the same threads, its fastest of 10 runs,
measured first (or given with --peak-gflops, to measure it once for many runs).
With --inference, also times batch-1 prediction of the exported model (the
inference graph with the weights baked in, as "nasctl train --out" writes it).
Example: nasctl bench train-step --arch "C(16,3,1) - P(2,2) - C(32,3,1) - SM()" --input 32x32x1 --json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "arch", Usage: `architecture: a layer sequence or a cell network, in the text form searches write (required)`},
			&cli.StringFlag{Name: "input", Value: genotype.StudyInput.String(), Usage: "input shape HEIGHTxWIDTHxCHANNELS"},
			&cli.IntFlag{Name: "classes", Value: 2, Usage: "number of classes (2: one sigmoid unit; more: softmax)"},
			&cli.IntFlag{Name: "batch", Value: 128, Usage: "images per step"},
			&cli.IntFlag{Name: "threads", Usage: "intra-op threads of ONNX Runtime (0: one per core)"},
			&cli.IntFlag{Name: "steps", Value: 20, Usage: "timed steps"},
			&cli.IntFlag{Name: "warmup", Value: 3, Usage: "untimed steps before them (at least 1)"},
			&cli.Float64Flag{Name: "peak-gflops", Usage: "the machine's peak in GFLOP/s, from an earlier run (0: measure it)"},
			&cli.BoolFlag{Name: "inference", Usage: "also time batch-1 prediction of the exported model"},
			&cli.StringFlag{Name: "profile", Usage: "write ONNX Runtime's per-operator profile of the training session to PREFIX_<date and time>.json (the name is printed)"},
			&cli.BoolFlag{Name: "no-nchwc", Usage: "time the standard graph on ONNX Runtime's standard Conv kernels, without the NCHWc rewrite training uses (for comparison)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
			memoryFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c, "give the architecture with --arch"); err != nil {
				return err
			}
			opts := benchTrainStepOptions{
				Classes: c.Int("classes"), Batch: c.Int("batch"), Threads: c.Int("threads"), Steps: c.Int("steps"),
				Warmup: c.Int("warmup"), PeakGFLOPs: c.Float64("peak-gflops"), Inference: c.Bool("inference"),
				Profile: c.String("profile"), JSON: c.Bool("json"), NoNCHWc: c.Bool("no-nchwc"),
			}
			var err error
			if c.String("arch") == "" {
				return usagef("bench train-step needs --arch")
			}
			if opts.Arch, err = genotype.ParseGenotype(c.String("arch")); err != nil {
				return usagef("--arch: %v", err)
			}
			if opts.Input, err = genotype.ParseInput(c.String("input")); err != nil {
				return usagef("--input: %v", err)
			}
			if opts.MaxMemory, err = maxMemory(c); err != nil {
				return err
			}
			if opts.Classes < 2 {
				return usagef("--classes %d: must be at least 2", opts.Classes)
			}
			for _, f := range []struct {
				name string
				v    int
			}{{"batch", opts.Batch}, {"steps", opts.Steps}, {"warmup", opts.Warmup}} {
				if f.v < 1 {
					return usagef("--%s %d: must be at least 1", f.name, f.v)
				}
			}
			if opts.Threads < 0 {
				return usagef("--threads %d: must be 0 (one per core) or more", opts.Threads)
			}
			if !(opts.PeakGFLOPs >= 0) {
				return usagef("--peak-gflops %g: must be 0 (measure it) or more", opts.PeakGFLOPs)
			}
			if opts.Profile != "" {
				if err := checkPrefixFolder("profile", opts.Profile); err != nil {
					return err
				}
			}
			return runBenchTrainStep(c.Context, opts, c.App.Writer)
		},
	}
}

type benchTrainStepOptions struct {
	Arch       genotype.Genotype
	Input      genotype.Input
	Classes    int
	Batch      int
	Threads    int
	Steps      int
	Warmup     int
	PeakGFLOPs float64 // 0: measure
	Inference  bool
	Profile    string
	JSON       bool
	NoNCHWc    bool
	MaxMemory  int64 // runtime.Budget.MaxMemory
}

// benchTrainStepReport is the JSON form of bench train-step.
type benchTrainStepReport struct {
	Arch    string `json:"arch"`
	Input   string `json:"input"`
	Params  int64  `json:"params"`
	MACs    int64  `json:"macs"`
	Threads int    `json:"threads"`
	runtime.StepTiming
	PeakGFLOPs float64 `json:"peak_gflops"`
	// PeakShare is GFLOPs / PeakGFLOPs.
	PeakShare float64 `json:"peak_share"`
	// Inference is batch-1 prediction of the exported model, with --inference.
	Inference *runtime.InferenceTiming `json:"inference,omitempty"`
	// Profile is the file ONNX Runtime wrote its profile to, with --profile.
	Profile string `json:"profile,omitempty"`
}

func runBenchTrainStep(ctx context.Context, opts benchTrainStepOptions, out io.Writer) error {
	net, err := opts.Arch.Build(opts.Input, opts.Classes)
	if err != nil {
		return usagef("--arch at input %s: %v", opts.Input, err)
	}
	if why := (runtime.Budget{MaxMemory: opts.MaxMemory}).CheckMemory(net, opts.Batch, nil); why != "" {
		return fmt.Errorf("refused: %s", why)
	}
	if err := runtime.Init(""); err != nil {
		return err
	}
	defer runtime.Close()
	rep := benchTrainStepReport{Arch: opts.Arch.String(), Input: opts.Input.String(), Params: net.Params(), MACs: net.MACs(),
		Threads: opts.Threads, PeakGFLOPs: opts.PeakGFLOPs}
	if rep.PeakGFLOPs == 0 {
		peak, err := runtime.MeasurePeak(ctx, runtime.PeakConfig{Session: runtime.SessionOptions{IntraOpThreads: opts.Threads}})
		if err != nil {
			return err
		}
		rep.PeakGFLOPs = peak.GFLOPs
	}
	before := profiles(opts.Profile)
	st, err := runtime.MeasureTrainStep(ctx, net, runtime.StepBenchConfig{Batch: opts.Batch, Warmup: opts.Warmup, Steps: opts.Steps,
		Threads: opts.Threads, Optimization: runtime.TrainOptimization, ProfilePrefix: opts.Profile, NoNCHWc: opts.NoNCHWc})
	if err != nil {
		return err
	}
	if opts.Profile != "" {
		// ONNX Runtime adds the time to the prefix when the session closes,
		// and returns neither the name nor an error.
		for p := range profiles(opts.Profile) {
			if !before[p] {
				rep.Profile = p
			}
		}
		if rep.Profile == "" {
			return fmt.Errorf("--profile %s: ONNX Runtime wrote no profile (%s*.json); check that the folder takes new files", opts.Profile, opts.Profile)
		}
	}
	rep.StepTiming = *st
	rep.PeakShare = st.GFLOPs / rep.PeakGFLOPs
	if opts.Inference {
		if rep.Inference, err = bench.MeasureNetLatency(ctx, net, runtime.LatencyConfig{Session: runtime.SessionOptions{IntraOpThreads: opts.Threads}}); err != nil {
			return err
		}
	}
	if opts.JSON {
		return printJSON(out, rep)
	}
	threads := "threads: one per core"
	if opts.Threads > 0 {
		threads = fmt.Sprintf("%d threads", opts.Threads)
	}
	fmt.Fprintf(out, "%s at %s, %s parameters, %s MACs per image; batch %d, %s\n", rep.Arch, rep.Input, humanize.Comma(rep.Params), humanize.Comma(rep.MACs), st.Batch, threads)
	fmt.Fprintf(out, "training step  %.2f ms (median of %d after %d warm-up)  %.0f images/s  %.2f GFLOP/s = %.1f%% of the peak (%.1f GFLOP/s, float32 MatMul)\n",
		st.Median, st.Steps, opts.Warmup, st.ImagesPerSecond, st.GFLOPs, 100*rep.PeakShare, rep.PeakGFLOPs)
	if rep.Inference != nil {
		fmt.Fprintf(out, "inference      %.3f ms per image at batch 1 (median of %d; 90th percentile %.3f ms), exported model\n",
			rep.Inference.Median, rep.Inference.Runs, rep.Inference.P90)
	}
	if rep.Profile != "" {
		fmt.Fprintf(out, "profile of the training session: %s\n", rep.Profile)
	}
	return nil
}

// profiles returns the set of profile files, PREFIX*.json, there are now;
// none for an empty prefix.
func profiles(prefix string) map[string]bool {
	found := map[string]bool{}
	if prefix == "" {
		return found
	}
	dir, base := filepath.Split(prefix)
	entries, _ := os.ReadDir(cmp.Or(dir, "."))
	for _, e := range entries {
		if name := e.Name(); strings.HasPrefix(name, base) && strings.HasSuffix(name, ".json") && !e.IsDir() {
			found[dir+name] = true
		}
	}
	return found
}
