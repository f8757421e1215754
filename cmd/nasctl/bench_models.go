package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
	"github.com/urfave/cli/v2"
)

const benchModelsDescription = `nasctl bench MODEL.onnx... | RUN_DIR... measures exported models: parameters,
multiply-accumulates, file size, peak activation memory, batch-1 latency (p50, p95,
p99 over --runs timed runs after --warmup) and throughput at --batch, on ONNX
Runtime; runs every model also through a second, pure-Go ONNX runtime (onnx-go)
and reports the largest difference of their outputs (or the operator it lacks);
marks the Pareto front of (parameters, latency) against accuracy; writes a CSV and
the plots (parameters against latency coloured by accuracy, accuracy against
latency) to --out.

A run directory stands for its winners/*.onnx, its data for --data and its split
for --plan and --split-seed (flags given explicitly win). With data the
comparison and the accuracy use real test images (split as in training; the
data's classes must be the models'); without, random images and the accuracy
in the models' metadata.
Example: nasctl bench runs/leaves-cpu --threads 1`

func benchModelsFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "image folder for real images (default: a run directory's data)"},
		&cli.IntFlag{Name: "runs", Value: 200, Usage: "timed batch-1 runs per model"},
		&cli.IntFlag{Name: "warmup", Value: 20, Usage: "untimed runs first (at least 1)"},
		&cli.IntFlag{Name: "batch", Value: 64, Usage: "batch size of the throughput measurement"},
		&cli.StringFlag{Name: "out", Usage: "folder for bench.csv and the plots (default: RUN_DIR/bench, else ./bench)"},
		&cli.BoolFlag{Name: "json", Usage: "print the results as a JSON list"},
	}, splitFlags()...)
}

func benchModelsAction(c *cli.Context) error {
	if c.NArg() == 0 {
		return cli.ShowSubcommandHelp(c)
	}
	opts := benchModelsOptions{Data: c.String("data"), Out: c.String("out"), JSON: c.Bool("json"), SplitSeed: c.Uint64("split-seed"),
		PlanSet: c.IsSet("plan"), SeedSet: c.IsSet("split-seed"),
		Measure: bench.Options{Runs: c.Int("runs"), Warmup: c.Int("warmup"), Batch: c.Int("batch")}}
	var err error
	if opts.Plan, err = dataset.ParseSplitPlan(c.String("plan")); err != nil {
		return usagef("--plan: %v", err)
	}
	if opts.Measure.Session.Device, err = parseDevice(c); err != nil {
		return err
	}
	opts.Measure.Session.IntraOpThreads = c.Int("threads")
	if opts.Measure.Runs < 1 || opts.Measure.Warmup < 1 || opts.Measure.Batch < 1 {
		return usagef("--runs, --warmup and --batch must be at least 1")
	}
	if opts.Models, opts.RunDir, err = benchTargets(c.Args().Slice()); err != nil {
		return err
	}
	return runBenchModels(c.Context, opts, c.App.Writer, c.App.ErrWriter)
}

type benchModelsOptions struct {
	Models    []string
	RunDir    string // the first run directory given, if any
	Data      string
	Plan      dataset.SplitPlan
	SplitSeed uint64
	// PlanSet and SeedSet: the user gave Plan and SplitSeed; otherwise
	// RunDir's own split replaces them.
	PlanSet, SeedSet bool
	Out              string
	JSON             bool
	Measure          bench.Options
}

// benchTargets expands run directories into their winners, and other
// folders into the models they hold.
func benchTargets(args []string) (models []string, runDir string, err error) {
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, "", err
		}
		if !fi.IsDir() {
			models = append(models, a)
			continue
		}
		found := rundir.Winners(a)
		if len(found) == 0 {
			found, _ = filepath.Glob(filepath.Join(a, "*.onnx"))
			sort.Strings(found)
		} else if runDir == "" {
			runDir = a
		}
		if len(found) == 0 {
			return nil, "", fmt.Errorf("%s holds no .onnx models (nor winners/*.onnx)", a)
		}
		models = append(models, found...)
	}
	return models, runDir, nil
}

func runBenchModels(ctx context.Context, opts benchModelsOptions, out, errOut io.Writer) error {
	if err := runtime.InitDevice(opts.Measure.Session.Device, opts.Measure.Session.DeviceID); err != nil {
		return err
	}
	defer runtime.Close()
	data, err := benchData(opts, errOut)
	if err != nil {
		return err
	}
	results, err := bench.MeasureAll(ctx, opts.Models, opts.Measure, data, func(i int, path string) {
		fmt.Fprintf(errOut, "[%d/%d] %s\n", i+1, len(opts.Models), path)
	})
	if err != nil {
		return err
	}
	dir := opts.Out
	if dir == "" {
		dir = "bench"
		if opts.RunDir != "" {
			dir = filepath.Join(opts.RunDir, "bench")
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := bench.WriteCSV(filepath.Join(dir, "bench.csv"), results); err != nil {
		return err
	}
	files, err := bench.WritePlots(dir, results)
	if err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	printBench(out, results)
	fmt.Fprintf(out, "\nwritten: %s, %s\n", filepath.Join(dir, "bench.csv"), strings.Join(files, ", "))
	// A missing operator is a finding about onnx-go, reported above; outputs
	// that differ, or a failure, are a finding about the export.
	for _, r := range results {
		if r.PureGo.UnsupportedOp == "" && !r.PureGo.Agree {
			return errors.New("the pure-Go runtime did not reproduce every model it could run (see the pure-Go column)")
		}
	}
	return nil
}

// benchData is where the models' test images come from: --data, --plan and
// --split-seed, else the run directory's own data and split; nil (random
// images) when there is none or the folder is missing.
func benchData(opts benchModelsOptions, errOut io.Writer) (*bench.TestData, error) {
	data := &bench.TestData{Dir: opts.Data, Plan: opts.Plan, Seed: opts.SplitSeed}
	if opts.RunDir != "" {
		rs, err := search.RunTestData(opts.RunDir)
		if err != nil {
			return nil, err
		}
		if rs != nil {
			data.Dir = cmp.Or(data.Dir, rs.Dir)
			if !opts.PlanSet {
				data.Plan = rs.Plan
			}
			if !opts.SeedSet {
				data.Seed = rs.Seed
			}
		}
	}
	if data.Dir == "" {
		return nil, nil
	}
	if _, err := os.Stat(data.Dir); err != nil {
		fmt.Fprintf(errOut, "note: %s not found; comparing on random images and taking the accuracy from the models' metadata\n", data.Dir)
		return nil, nil
	}
	return data, nil
}

func pureGoText(p bench.PureGo) string {
	switch {
	case p.MaxAbsDiff != nil:
		s := fmt.Sprintf("%.1e", *p.MaxAbsDiff)
		if !p.Agree {
			s += fmt.Sprintf(" (over %g)", bench.Tolerance)
		}
		return s
	case p.UnsupportedOp != "":
		var ops []string
		for _, gap := range pureGoGaps(p) {
			op, _, _ := strings.Cut(gap, " (")
			ops = append(ops, op)
		}
		return "lacks " + strings.Join(ops, ", ")
	}
	return "error: " + p.Error
}

// pureGoGaps splits PureGo.UnsupportedOp into its gaps.
func pureGoGaps(p bench.PureGo) []string {
	if p.UnsupportedOp == "" {
		return nil
	}
	return strings.Split(p.UnsupportedOp, "; ")
}

// pureGoLatencyText is onnx-go's batch-1 p50 in milliseconds, or "-".
func pureGoLatencyText(p bench.PureGo) string {
	if p.LatencyMs == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f", p.LatencyMs.P50)
}

func printBench(out io.Writer, rs []*bench.Result) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tPARAMS\tMACS\tFILE\tPEAK ACT\tP50 ms\tP95 ms\tP99 ms\tIMG/S@B\tACCURACY\tPURE-GO MAX DIFF\tPURE-GO P50 ms\tPARETO")
	for _, r := range rs {
		acc := "-"
		if r.Accuracy != nil {
			acc = fmt.Sprintf("%.4f", *r.Accuracy)
		}
		front := ""
		if r.Pareto {
			front = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.3f\t%.3f\t%.3f\t%.0f@%d\t%s\t%s\t%s\t%s\n", r.Model, humanize.Comma(r.Params), humanize.Comma(r.MACs),
			humanize.IBytes(uint64(r.FileBytes)), humanize.IBytes(uint64(r.PeakActivationBytes)), r.LatencyMs.P50, r.LatencyMs.P95, r.LatencyMs.P99,
			r.Throughput, r.ThroughputBatch, acc, pureGoText(r.PureGo), pureGoLatencyText(r.PureGo), front)
	}
	tw.Flush()
	if len(rs) > 0 {
		threads := "one thread per core"
		if rs[0].Threads > 0 {
			threads = fmt.Sprintf("%d thread(s)", rs[0].Threads)
		}
		fmt.Fprintf(out, "\nlatency: batch 1, %d runs after a warm-up, %s on %s; accuracy: %s; * Pareto front of (parameters, p50 latency) against accuracy\n",
			rs[0].LatencyMs.Runs, threads, rs[0].Device, rs[0].AccuracySource)
	}
	seen := map[string]bool{}
	for _, r := range rs {
		for _, gap := range pureGoGaps(r.PureGo) {
			if !seen[gap] {
				seen[gap] = true
				fmt.Fprintf(out, "pure Go: onnx-go lacks %s; ONNX Runtime's outputs are the reference\n", gap)
			}
		}
	}
	for _, r := range rs {
		if l := r.PureGo.LatencyMs; l != nil {
			fmt.Fprintf(out, "pure Go: onnx-go's batch-1 p50 over %d runs, in this process on one goroutine\n", l.Runs)
			break
		}
	}
}
