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
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/internal/atomicfile"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/quantize"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
	"github.com/urfave/cli/v2"
)

const benchModelsDescription = `nasctl bench MODEL.onnx... | RUN_DIR... measures exported models: parameters,
multiply-accumulates, file size, peak activation memory (the network's float32
tensors for one image; an int8 model is given its float model's), batch-1 latency
(p50, p95, p99 over --runs timed runs after --warmup, taken in 10 rounds that go through every
model in turn, so that all see the same load) and throughput at --batch, on ONNX
Runtime; runs every model also through a second, pure-Go ONNX runtime (onnx-go)
and reports the largest difference of their outputs (a float model that onnx-go
cannot run as it is in the form "nasctl export --pure-go" writes, marked so; an
int8 model: the operators onnx-go lacks);
marks the Pareto front of (parameters, latency) against accuracy; for a run of a
--reward constraint search, names the winners whose measured p50 exceeds its
max_latency_ms (JSON: over_latency_limit_ms), and says so when the search timed
its finals itself (final_latency.json) and picked its best among those within
the limit; warns when the run's final phase is not finished (the finals still to
come are not measured: bench it again when it is); writes a CSV (bench.csv, with
each model file's sha256, by which nasctl runs show names winners retrained
since) and
the plots (parameters against latency coloured by accuracy, accuracy against
latency) to --out (by default a run directory's bench/, or MODEL-bench/ beside the
first model given; never the working directory), removing the files an earlier
bench wrote there that it does not rewrite. Interrupted, it writes the models
measured in full before (the latency rounds of all models come first), into the
folder's interrupted/ when an earlier bench's results are there, which it leaves
as they were.

A float32 model and its int8 quantization ("nasctl export --int8"), both given, are
also shown side by side: file sizes, batch-1 latency p50 and p95, throughput, accuracy,
and the ratio of their batch-1 latencies measured in --rounds interleaved rounds (so
that both see the same load). --int8 quantizes every float model given first, on
the first --images training images of the data (as "nasctl export --int8" does,
written to OUT/int8/), and compares them.

A run directory stands for its winners/*.onnx, its data for --data and its split
for --plan and --split-seed; model files given alone stand for the split they
record (flags given explicitly win). With data the comparison and the accuracy
use real test images (split as in training; the data's classes must be the
models'); without, random images and the accuracy in the models' metadata.
Examples:
  nasctl bench runs/leaves-cpu --threads 1
  nasctl bench runs/leaves-cpu --threads 1 --int8`

func benchModelsFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "image folder for real images (default: a run directory's data)"},
		&cli.IntFlag{Name: "runs", Value: 200, Usage: "timed batch-1 runs per model (in 10 rounds through all the models)"},
		&cli.IntFlag{Name: "warmup", Value: 20, Usage: "untimed runs first (at least 1)"},
		&cli.IntFlag{Name: "batch", Value: 64, Usage: "batch size of the throughput measurement"},
		&cli.StringFlag{Name: "out", Usage: "folder for bench.csv, the plots and --int8's models (default: RUN_DIR/bench, else MODEL-bench beside the first model)"},
		&cli.BoolFlag{Name: "json", Usage: "print the results as a JSON list (an int8 model compared with its float model, by --int8 or both given, carries against_float: the float model and their size and latency ratios)"},
		&cli.BoolFlag{Name: "int8", Usage: "also quantize every float model to int8 (calibrated on the data's training images) and compare"},
		&cli.IntFlag{Name: "images", Value: 200, Usage: "calibration images of --int8: the first N of the training split"},
		&cli.IntFlag{Name: "rounds", Value: 9, Usage: "interleaved rounds of --runs batch-1 runs each timing a float model against its int8 model"},
		skipBadFlag(),
	}, splitFlags()...)
}

func benchModelsAction(c *cli.Context) error {
	if c.NArg() == 0 {
		return usagef("bench takes one or more model files or run directories")
	}
	opts := benchModelsOptions{Data: c.String("data"), Out: c.String("out"), JSON: c.Bool("json"), SkipBad: c.Bool("skip-bad"),
		Measure: bench.Options{Runs: c.Int("runs"), Warmup: c.Int("warmup"), Batch: c.Int("batch")}}
	var err error
	if opts.SplitBy, err = splitChoiceOf(c); err != nil {
		return err
	}
	if opts.Data != "" {
		if err := checkDataFolder("data", opts.Data); err != nil {
			return err
		}
	}
	if opts.Measure.Session.Device, err = parseDevice(c); err != nil {
		return err
	}
	opts.Measure.Session.IntraOpThreads = c.Int("threads")
	opts.Int8, opts.Images, opts.Rounds = c.Bool("int8"), c.Int("images"), c.Int("rounds")
	var bad []string
	for _, f := range []struct {
		name  string
		value int
	}{{"runs", opts.Measure.Runs}, {"warmup", opts.Measure.Warmup}, {"batch", opts.Measure.Batch}, {"images", opts.Images}, {"rounds", opts.Rounds}} {
		if f.value < 1 {
			bad = append(bad, fmt.Sprintf("--%s %d", f.name, f.value))
		}
	}
	if len(bad) > 0 {
		return usagef("%s: must be at least 1", strings.Join(bad, ", "))
	}
	if opts.Models, opts.RunDir, err = benchTargets(c.Args().Slice()); err != nil {
		return err
	}
	return runBenchModels(c.Context, opts, c.App.Writer, c.App.ErrWriter)
}

type benchModelsOptions struct {
	Models []string
	RunDir string // the first run directory given, if any
	Data   string
	// SplitBy: the split of the images; the flags not given are replaced
	// by RunDir's own split, or by the one the models record.
	SplitBy splitChoice
	SkipBad bool // --skip-bad, or the run's skip_bad
	Out     string
	JSON    bool
	Measure bench.Options
	// Int8 quantizes the float models first, on Images calibration
	// images; Rounds is the number of interleaved rounds of a float and
	// int8 pair.
	Int8           bool
	Images, Rounds int
}

// benchTargets expands run directories into their winners, and other
// folders into the models they hold.
func benchTargets(args []string) (models []string, runDir string, err error) {
	for _, a := range args {
		fi, err := os.Stat(a)
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", usagef("%s: no such file or folder; give exported models (.onnx), folders of them, or run folders (nasctl runs list shows the runs)", a)
		}
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
		} else {
			// final.int8's models, paired with their float winners; not
			// the copy of the best's (as Winners leaves out best.onnx).
			q, _ := filepath.Glob(filepath.Join(a, filepath.Dir(search.Int8WinnerName(1)), "rank-*.onnx"))
			sort.Strings(q)
			found = append(found, q...)
			if runDir == "" {
				runDir = a
			}
		}
		if len(found) == 0 {
			err := fmt.Errorf("%s holds no .onnx models (nor winners/*.onnx)", a)
			if isRunFolder(a) {
				err = fmt.Errorf("%w: %s", err, noWinnersReason(a))
			}
			return nil, "", err
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
	if opts.RunDir != "" {
		warnUnfinished(opts.RunDir, errOut)
	}
	w := &benchWriter{dir: benchOut(opts), inputs: opts.Models, errOut: errOut}
	_, statErr := os.Stat(w.dir)
	w.made = errors.Is(statErr, os.ErrNotExist)
	_, statErr = os.Stat(filepath.Join(w.dir, "bench.csv"))
	w.earlier = statErr == nil
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		if opts.Out != "" {
			return usagef("--out %s: cannot make the folder (%v); give another --out", w.dir, err)
		}
		return usagef("cannot make the folder %s for the results (%v); give one with --out", w.dir, err) // as for --out: a usage error
	}
	models := opts.Models
	if opts.Int8 {
		if data == nil {
			return usagef("--int8 calibrates on images: give --data DIR, or a run directory whose data is at hand")
		}
		// The new int8 models would sit beside an earlier run's results,
		// which name other ones: clear those before writing any (an earlier
		// complete bench's are not there, but beside this one's; see staging).
		if err := w.clear(w.staging()); err != nil {
			return err
		}
		if err := w.quantize(ctx, opts, data); err != nil {
			return err
		}
		models = append(slices.Clone(models), w.quantized...)
	}
	results, err := bench.MeasureAll(ctx, models, opts.Measure, data, &bench.Progress{
		Rounds: func(rounds int) {
			if len(models) > 1 {
				fmt.Fprintf(errOut, "batch-1 latency of %s: %d rounds of every model in turn\n", nModels(len(models)), rounds)
			}
		},
		Model: func(i int, path string) { fmt.Fprintf(errOut, "[%d/%d] %s\n", i+1, len(models), path) },
	})
	for _, r := range results {
		interruptedNote(errOut, r.Model, r.Interrupted)
	}
	if err != nil {
		return w.keepMeasured(ctx, results, nil, 0, err)
	}
	var pairs []*bench.Quantized
	all := bench.Pairs(results)
	for _, p := range all {
		fmt.Fprintf(errOut, "float32 against int8: %s, %s (%d interleaved rounds)\n", p[0].Model, p[1].Model, opts.Rounds)
		q, err := bench.CompareQuantized(ctx, p, opts.Rounds, opts.Measure.Runs, opts.Measure.Session, func(round, rounds int, ratio float64) {
			fmt.Fprintf(errOut, "  [%d/%d] int8 over float32 latency %.3f\n", round, rounds, ratio)
		})
		if err != nil {
			return w.keepMeasured(ctx, results, pairs, len(all), err)
		}
		pairs = append(pairs, q)
	}
	if err := w.settle(results); err != nil {
		return err
	}
	files, err := w.write(w.dir, results, pairs)
	if err != nil {
		return err
	}
	limit := runLatencyLimit(opts.RunDir)
	if opts.JSON {
		return printJSON(out, benchJSON(results, pairs, limit))
	}
	printBench(out, results)
	printOverLimit(out, results, limit, opts.Measure.Session.IntraOpThreads)
	printQuantized(out, pairs)
	fmt.Fprintf(out, "\nwritten: %s\n", strings.Join(files, ", "))
	// A missing operator is a finding about onnx-go, reported above; outputs
	// that differ, or a failure, are a finding about the export.
	for _, r := range results {
		if r.PureGo.UnsupportedOp == "" && !r.PureGo.Agree {
			return errors.New("the pure-Go runtime did not reproduce every model it could run (see the pure-Go column)")
		}
	}
	return nil
}

// benchInt8Dir is the subfolder of a bench's folder that --int8 writes its
// models to.
const benchInt8Dir = "int8"

// benchPartialDir is the subfolder of a bench's folder that a bench writes
// to while an earlier bench's results are in the folder, and keeps when
// interrupted: fewer models measured must not replace those results.
const benchPartialDir = "interrupted"

// benchWriter writes a bench's results to its folder, dir, and owns the
// files it writes there and in benchPartialDir: bench.csv, the plots,
// int8.json and the int8 models of --int8 (quantized). An earlier bench's
// files that a complete bench does not rewrite are removed, so that the
// folder never mixes two runs; an interrupted one leaves them alone. Other
// files are never touched, nor the models benched (inputs).
type benchWriter struct {
	dir       string
	made      bool     // the folder did not exist before this bench
	earlier   bool     // the folder held an earlier bench's bench.csv
	quantized []string // the int8 models this bench wrote
	inputs    []string
	errOut    io.Writer
}

// staging is the folder this bench writes to until it completes: dir, or,
// beside an earlier bench's results, its benchPartialDir.
func (w *benchWriter) staging() string {
	if w.earlier {
		return filepath.Join(w.dir, benchPartialDir)
	}
	return w.dir
}

// quantize quantizes the float models of opts into staging's int8/
// (quantizeForBench). Beside an earlier bench's results, the progress
// names them there until settle moves them: a note says where they end up.
func (w *benchWriter) quantize(ctx context.Context, opts benchModelsOptions, data *bench.TestData) error {
	dir := filepath.Join(w.staging(), benchInt8Dir)
	var err error
	w.quantized, err = quantizeForBench(ctx, opts, data, dir, w.errOut)
	switch {
	case err != nil && len(w.quantized) > 0:
		fmt.Fprintf(w.errOut, "%s before it stopped\n", w.int8Left())
	case err == nil && len(w.quantized) > 0 && w.staging() != w.dir:
		fmt.Fprintf(w.errOut, "note: the int8 models are written to %s while this bench runs (the earlier bench's results in %s are kept until it completes), "+
			"then moved to %s\n", dir, w.dir, filepath.Join(w.dir, benchInt8Dir))
	}
	return err
}

// int8Left names the int8 models this bench quantized, where a bench that
// stops before settle leaves them.
func (w *benchWriter) int8Left() string {
	names := make([]string, len(w.quantized))
	for i, path := range w.quantized {
		names[i] = filepath.Base(path)
	}
	return fmt.Sprintf("the int8 models quantized are in %s (%s)", filepath.Dir(w.quantized[0]), strings.Join(names, ", "))
}

// settle moves the int8 models this bench quantized in staging to dir's
// int8/, now that the bench is complete and replaces the earlier one, and
// renames them in results (and so in the comparisons, which share them).
func (w *benchWriter) settle(results []*bench.Result) error {
	for i, path := range w.quantized {
		dst := filepath.Join(w.dir, benchInt8Dir, filepath.Base(path))
		if dst == path {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Rename(path, dst); err != nil {
			return err
		}
		for _, r := range results {
			if r.Model == path {
				r.Model = dst
			}
		}
		w.quantized[i] = dst
	}
	return nil
}

// write writes the models' results (bench.csv and the plots) and the
// float32-int8 comparisons, if any (int8.json), to dir (w.dir or
// staging), then clears what an earlier bench left there (see clear); it
// returns the files written.
func (w *benchWriter) write(dir string, results []*bench.Result, pairs []*bench.Quantized) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	csv := filepath.Join(dir, "bench.csv")
	if err := bench.WriteCSV(csv, results); err != nil {
		return nil, err
	}
	plots, err := bench.WritePlots(dir, results)
	if err != nil {
		return nil, err
	}
	files := append([]string{csv}, plots...)
	if len(pairs) > 0 {
		path := filepath.Join(dir, "int8.json")
		if err := writeJSON(path, pairs); err != nil {
			return nil, err
		}
		files = append(files, path)
	}
	return files, w.clear(dir, files...)
}

// clear removes the files a bench writes in dir, except keep and this
// bench's int8 models, and then dir's int8/ if that left it empty. For
// w.dir, it clears its benchPartialDir too (an interrupted bench's, which
// a complete one replaces); for benchPartialDir, only that.
func (w *benchWriter) clear(dir string, keep ...string) error {
	partial := filepath.Join(w.dir, benchPartialDir)
	dirs := []string{partial}
	if dir == w.dir {
		dirs = append(dirs, w.dir)
	}
	var owned []string
	for _, d := range dirs {
		owned = append(owned, filepath.Join(d, "bench.csv"), filepath.Join(d, "int8.json"))
		owned = append(owned, bench.PlotFiles(d)...)
		// In int8/, only nasctl's int8 models are bench's: a float model or
		// other file put there is someone else's.
		found, _ := filepath.Glob(filepath.Join(d, benchInt8Dir, "*.onnx"))
		for _, path := range found {
			if m, err := readModels([]string{path}); err == nil && m[0].settings != nil {
				owned = append(owned, path)
			}
		}
	}
	keep = append(slices.Clone(keep), w.quantized...)
	for _, path := range owned {
		if slices.Contains(keep, path) || sameFileAsAny(path, w.inputs) {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing an earlier bench's %s: %w", path, err)
		}
	}
	for _, d := range dirs {
		os.Remove(filepath.Join(d, benchInt8Dir)) // only if empty
	}
	os.Remove(partial) // only if empty
	return nil
}

// sameFileAsAny reports whether path is one of paths' files.
func sameFileAsAny(path string, paths []string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	for _, p := range paths {
		if pi, err := os.Stat(p); err == nil && os.SameFile(fi, pi) {
			return true
		}
	}
	return false
}

// keepMeasured ends a bench that stopped at err. When it was interrupted,
// what it measured before is written (the models' results, and pairs, the
// float32-int8 comparisons finished of the comparisons it was making, if
// any), so that the minutes it took are not lost: to staging, so that an
// earlier complete bench is kept too. A folder this bench made and left
// empty is removed.
func (w *benchWriter) keepMeasured(ctx context.Context, results []*bench.Result, pairs []*bench.Quantized, comparisons int, err error) error {
	if ctx.Err() != nil && len(results) > 0 {
		files, werr := w.write(w.staging(), results, pairs)
		if werr != nil {
			return fmt.Errorf("%w (and the %s measured could not be written: %v)", err, nModels(len(results)), werr)
		}
		where := files[0] + " and the plots beside it"
		left := w.keptNote()
		if comparisons == 0 {
			verb := "are"
			if len(results) == 1 {
				verb = "is"
			}
			fmt.Fprintf(w.errOut, "interrupted: the %s measured before %s in %s%s\n", nModels(len(results)), verb, where, left)
			return err
		}
		kept := fmt.Sprintf("none of the %d float32-int8 comparisons was finished", comparisons)
		switch {
		case comparisons == 1:
			kept = "the float32-int8 comparison was not finished"
		case len(pairs) > 0:
			kept = fmt.Sprintf("%d of %d float32-int8 comparisons were finished, in %s", len(pairs), comparisons, files[len(files)-1])
		}
		fmt.Fprintf(w.errOut, "interrupted: the %s measured are in %s; %s%s\n", nModels(len(results)), where, kept, left)
		return err
	}
	if ctx.Err() != nil { // during the latency rounds, which come first
		fmt.Fprintf(w.errOut, "interrupted during the batch-1 latency rounds, before any model was measured in full%s\n", w.keptNote())
	}
	if w.earlier {
		os.Remove(filepath.Join(w.staging(), benchInt8Dir)) // only if empty
		os.Remove(w.staging())
	}
	if w.made {
		os.Remove(filepath.Join(w.dir, benchInt8Dir)) // only if empty
		os.Remove(w.dir)
	}
	return err
}

// keptNote ends the message of an interrupted bench with what it leaves
// besides its measurements: the earlier bench's results, kept as they
// were, and this bench's int8 models, which settle did not move.
func (w *benchWriter) keptNote() string {
	var s string
	if w.earlier {
		s = fmt.Sprintf("; the earlier bench's results in %s are kept as they were", w.dir)
	}
	if len(w.quantized) > 0 {
		s += "; " + w.int8Left()
	}
	return s
}

// nModels is "one model" or "N models".
func nModels(n int) string {
	if n == 1 {
		return "one model"
	}
	return fmt.Sprintf("%d models", n)
}

// benchOut is the folder of a bench's outputs: --out, else the run
// directory's bench/, else MODEL-bench beside the first model, so that a
// bench of loose models never writes into the working directory.
func benchOut(opts benchModelsOptions) string {
	switch {
	case opts.Out != "":
		return opts.Out
	case opts.RunDir != "":
		return filepath.Join(opts.RunDir, rundir.DirBench)
	}
	first := opts.Models[0]
	return strings.TrimSuffix(first, filepath.Ext(first)) + "-bench"
}

// benchData is where the models' test images come from: --data, --plan and
// --split-seed, else the run directory's own data and split; nil (random
// images) when there is none or the run's folder is missing.
func benchData(opts benchModelsOptions, errOut io.Writer) (*bench.TestData, error) {
	data := &bench.TestData{Dir: opts.Data, Plan: opts.SplitBy.plan, PlanName: opts.SplitBy.Plan, Seed: opts.SplitBy.Seed, SkipBad: opts.SkipBad,
		Skipped: func(bad []*dataset.BadFile) { reportSkipped(errOut, bad) }}
	if opts.RunDir != "" {
		rs, err := search.RunTestData(opts.RunDir)
		if err != nil {
			return nil, err
		}
		if rs != nil {
			data.Dir = cmp.Or(data.Dir, rs.Dir)
			if !opts.SplitBy.PlanSet {
				data.Plan, data.PlanName = rs.Plan, rs.PlanName
			}
			if !opts.SplitBy.SeedSet {
				data.Seed = rs.Seed
			}
			data.SkipBad = data.SkipBad || rs.SkipBad
		}
	}
	if data.Dir == "" {
		return nil, nil
	}
	if opts.RunDir == "" && !opts.SplitBy.given() {
		rec, err := modelsSplit(opts.Models)
		if err != nil {
			return nil, err
		}
		if rec != nil {
			if data.Plan, err = dataset.ParseSplitPlan(rec.Plan); err != nil {
				return nil, fmt.Errorf("the models record the split plan %q: %w; give --plan", rec.Plan, err)
			}
			data.PlanName, data.Seed = rec.Plan, rec.Seed
		}
	}
	if _, err := os.Stat(data.Dir); err != nil { // the run's folder: --data is checked with the flags
		fmt.Fprintf(errOut, "note: the run's images (%s) are not found; comparing on random images and taking the accuracy from the models' metadata (give the images with --data)\n", data.Dir)
		return nil, nil
	}
	// An accuracy on other data than the model's is eval's case too: the
	// same test, the same words.
	e := &evaluator{opts: evalOptions{Models: opts.Models, Data: data.Dir, Split: "test"}, errOut: errOut, warned: map[string]bool{},
		otherDataHint: fmt.Sprintf(`"nasctl eval MODEL --data %s --split all"`, data.Dir)}
	data.Trained = e.warnOtherData
	noted := map[genotype.Input]bool{}
	data.Loaded = func(model, trained string, in genotype.Input, d *dataset.Dataset, test []int) {
		// Once per input, for the first model not trained on these very
		// images (one that was saw them read so).
		if trained == d.Hash || noted[in] {
			return
		}
		if n := colourNote(d.Dir, d.Files, d.Recoloured, d.Channels, test); n != "" {
			noted[in] = true
			fmt.Fprintf(errOut, "note: %s on the test images of %s: %s: %s\n", model, data.Dir, n, answersAlike)
		}
	}
	return data, nil
}

// modelsSplit is the split the models record (nasctl.split), which their
// test images come from; nil when none records one. Models that record
// different splits cannot share one set of test images: an error says to
// choose with --plan and --split-seed.
func modelsSplit(paths []string) (*onnxgen.SplitRecord, error) {
	models, err := readModels(paths)
	if err != nil {
		return nil, err
	}
	var first *onnxgen.SplitRecord
	firstPath := ""
	for i, m := range models {
		rec, ok, err := m.info.Split()
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s: %w", paths[i], err)
		case !ok:
		case first == nil:
			first, firstPath = &rec, paths[i]
		case rec != *first:
			return nil, usagef("%s was trained with --plan %s --split-seed %d, %s with --plan %s --split-seed %d: bench them on one split with --plan and --split-seed, or apart",
				firstPath, first.Plan, first.Seed, paths[i], rec.Plan, rec.Seed)
		}
	}
	return first, nil
}

func pureGoText(p bench.PureGo) string {
	switch {
	case p.MaxAbsDiff != nil:
		s := fmt.Sprintf("%.1e", *p.MaxAbsDiff)
		if !p.Agree {
			s += fmt.Sprintf(" (over %g)", bench.Tolerance)
		}
		if p.Rewritten > 0 {
			s += " (--pure-go form)"
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
		source := accuracyLegend(rs)
		fmt.Fprintf(out, "\nlatency: batch 1, %d runs after a warm-up, in %d rounds of every model in turn, %s on %s; accuracy: %s; * Pareto front of (parameters, p50 latency) against accuracy\n",
			rs[0].LatencyMs.Runs, min(bench.LatencyRounds, rs[0].LatencyMs.Runs), threads, rs[0].Device, source)
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
		if r.PureGo.UnsupportedOp != "" && r.Quantization == nil {
			fmt.Fprintln(out, `pure Go: "nasctl export MODEL.onnx --pure-go --out OUT.onnx" writes a float model in operators onnx-go runs`+
				` (slower on ONNX Runtime: docs/edge.md, "Cell networks in onnx-go")`)
			break
		}
	}
	for _, r := range rs {
		if r.PureGo.Rewritten > 0 {
			fmt.Fprintln(out, `pure Go: a "--pure-go form" was compared as "nasctl export MODEL.onnx --pure-go" writes it for onnx-go`+
				` (unequal pads as borders, grouped convolutions and average poolings as plain convolutions); the model itself keeps the operators ONNX Runtime runs fastest`)
			break
		}
	}
	for _, r := range rs {
		if l := r.PureGo.LatencyMs; l != nil {
			fmt.Fprintf(out, "pure Go: onnx-go's batch-1 p50 over %d runs, in this process on one goroutine\n", l.Runs)
			break
		}
	}
}

// quantizeForBench quantizes the float models of opts (as export --int8
// does, calibrated on the training images of data) into dir and returns
// the files written, also those written before an error.
func quantizeForBench(ctx context.Context, opts benchModelsOptions, data *bench.TestData, dir string, errOut io.Writer) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Calibrated on bench's own split (the run's or the flags'), as it measures.
	k := newCalibrator(calibrationOptions{Dir: data.Dir, Images: opts.Images, SkipBad: data.SkipBad,
		SplitBy: splitChoice{Plan: data.PlanName, Seed: data.Seed, PlanSet: true, SeedSet: true},
		Threads: opts.Measure.Session.IntraOpThreads}, errOut)
	var out []string
	seen := map[string]bool{}
	models, err := readModels(opts.Models)
	if err != nil {
		return nil, err
	}
	paired := map[string]bool{} // float models whose int8 model is given
	for _, m := range models {
		if m.settings != nil {
			paired[m.settings.Source] = true
		}
	}
	for i, path := range opts.Models {
		b := models[i].b
		if models[i].settings != nil || paired[quantize.SHA256(b)] {
			continue // quantized already, or given with its int8 model
		}
		if models[i].info.Meta[onnxgen.MetaPureGo] != "" {
			fmt.Fprintf(errOut, "note: %s is a pure-Go export (%s), which export --int8 refuses; measured in float32 only\n", path, onnxgen.MetaPureGo)
			continue
		}
		name := filepath.Base(path)
		for i := 2; seen[name]; i++ {
			name = fmt.Sprintf("%d-%s", i, filepath.Base(path))
		}
		seen[name] = true
		fmt.Fprintf(errOut, "quantizing %s on up to %d training images of %s\n", path, opts.Images, data.Dir)
		q, _, err := k.quantize(ctx, b, path, quantize.Options{})
		if errors.Is(err, quantize.ErrNothingToQuantize) {
			fmt.Fprintf(errOut, "note: %s has no layer to run in int8; measured in float32 only\n", path)
			continue
		}
		if err != nil {
			return out, err
		}
		dst := filepath.Join(dir, name)
		if err := atomicfile.Write(dst, q); err != nil {
			return out, err
		}
		out = append(out, dst)
	}
	return out, nil
}

// benchModel is a model file read, with its quantization settings (nil
// for a float model).
type benchModel struct {
	b        []byte
	info     *onnxgen.ModelInfo
	settings *quantize.Settings
}

func readModels(paths []string) ([]benchModel, error) {
	var out []benchModel
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		info, err := onnxgen.ReadModelInfo(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		s, err := quantize.ReadSettings(info)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, benchModel{b: b, info: info, settings: s})
	}
	return out, nil
}

// accuracyLegend says where the table's accuracies come from: the source of
// every model when they share one, else each source with its models, and
// the models without one (give --data to measure them).
func accuracyLegend(rs []*bench.Result) string {
	var order []string
	models := map[string][]string{}
	for _, r := range rs {
		src := cmp.Or(r.AccuracySource, "not measured (give --data)")
		if models[src] == nil {
			order = append(order, src)
		}
		models[src] = append(models[src], filepath.Base(r.Model))
	}
	if len(order) == 1 {
		return order[0]
	}
	parts := make([]string, len(order))
	for i, src := range order {
		parts[i] = fmt.Sprintf("%s for %s", src, strings.Join(models[src], ", "))
	}
	return strings.Join(parts, "; ")
}

// writeJSON writes v as indented JSON to path, atomically (writeOut).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeOut(path, append(b, '\n'))
}

// printQuantized prints float32 and int8 models side by side.
func printQuantized(out io.Writer, qs []*bench.Quantized) {
	if len(qs) == 0 {
		return
	}
	fmt.Fprintln(out, "\nfloat32 -> int8")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FLOAT32 -> INT8 MODEL\tFILE\tSIZE\tP50 ms\tP95 ms\tLATENCY\tIMG/S@B\tACCURACY\tCHANGE")
	for _, q := range qs {
		f, i := q.Float, q.Int8
		acc, change := "-", "-"
		if f.Accuracy != nil && i.Accuracy != nil {
			acc = fmt.Sprintf("%.4f -> %.4f", *f.Accuracy, *i.Accuracy)
		}
		if q.AccuracyChange != nil {
			change = fmt.Sprintf("%+.2f pt", *q.AccuracyChange)
		}
		// Both names: two int8 models of one float model are two rows.
		fmt.Fprintf(tw, "%s -> %s\t%s -> %s\t%.2fx\t%.3f -> %.3f\t%.3f -> %.3f\t%.2fx\t%.0f -> %.0f@%d\t%s\t%s\n", f.Model, i.Model,
			humanize.IBytes(uint64(f.FileBytes)), humanize.IBytes(uint64(i.FileBytes)), q.SizeRatio, f.LatencyMs.P50, i.LatencyMs.P50,
			f.LatencyMs.P95, i.LatencyMs.P95, q.LatencyRatio, f.Throughput, i.Throughput, i.ThroughputBatch, acc, change)
	}
	tw.Flush()
	fmt.Fprintf(out, "size and latency: int8 over float32; latency: median ratio of %d interleaved rounds of %d batch-1 runs each\n", qs[0].Rounds, qs[0].Runs)
}

// benchResultJSON is a model's result as bench --json prints it: an int8
// model compared with its float model (--int8) carries the comparison, which
// the text output prints as its own table.
type benchResultJSON struct {
	*bench.Result
	AgainstFloat *againstFloat `json:"against_float,omitempty"`
	// OverLatencyLimitMs is the run's latency limit (a constraint reward's
	// max_latency_ms) when the model's p50 exceeds it.
	OverLatencyLimitMs float64 `json:"over_latency_limit_ms,omitempty"`
}

// againstFloat is an int8 model's comparison with its float model
// (bench.Quantized, without the two results).
type againstFloat struct {
	FloatModel     string   `json:"float_model"`
	SizeRatio      float64  `json:"size_ratio"`
	LatencyRatio   float64  `json:"latency_ratio"`
	Rounds         int      `json:"rounds"`
	Runs           int      `json:"runs"`
	AccuracyChange *float64 `json:"accuracy_change_points,omitempty"`
}

// benchJSON returns the results with their int8 comparisons, and the
// run's latency limit where a model exceeds it.
func benchJSON(results []*bench.Result, pairs []*bench.Quantized, limit latencyLimit) []benchResultJSON {
	out := make([]benchResultJSON, len(results))
	for i, r := range results {
		out[i].Result = r
		if limit.over(r) {
			out[i].OverLatencyLimitMs = limit.Ms
		}
		for _, q := range pairs {
			if q.Int8 == r {
				out[i].AgainstFloat = &againstFloat{FloatModel: q.Float.Model, SizeRatio: q.SizeRatio, LatencyRatio: q.LatencyRatio,
					Rounds: q.Rounds, Runs: q.Runs, AccuracyChange: q.AccuracyChange}
			}
		}
	}
	return out
}

// warnUnfinished warns that the run in dir has not all its final models
// yet: a bench of those it has leaves out the others, the best among them
// perhaps, until it is measured again.
func warnUnfinished(dir string, errOut io.Writer) {
	rep, err := search.ReadReport(dir)
	if err != nil || !rep.FinalIncomplete() {
		return
	}
	state := "stopped: resume it, and bench it again once it is finished"
	if rep.Running {
		state = "under way: bench it again once it is finished"
	}
	fmt.Fprintf(errOut, "warning: %s has %d of its %d final models; its final phase is %s\n", dir, len(rep.Finals), rep.FinalsPlanned, state)
}

// latencyLimit is the batch-1 latency limit a run's constraint reward
// refused architectures by, and the threads its latencies were for; Ms 0:
// none (no run, or a reward without a hard limit).
type latencyLimit struct {
	Ms      float64
	Threads int
	Source  string // the run's latency source: predicted (a model or table) or measured
	// Timed: the search timed its final models after the final phase
	// (final_latency.json) and picked its best among those within the limit.
	Timed bool
}

// runLatencyLimit reads the latency limit of the run in dir ("" or a run
// without one: none).
func runLatencyLimit(dir string) latencyLimit {
	if dir == "" {
		return latencyLimit{}
	}
	cfg, err := search.ReadConfig(dir)
	if err != nil || cfg.Reward.Mode != search.RewardConstraint || cfg.Reward.MaxLatencyMs <= 0 {
		return latencyLimit{}
	}
	l := latencyLimit{Ms: cfg.Reward.MaxLatencyMs, Threads: cmp.Or(cfg.Reward.Threads, 1), Source: cmp.Or(cfg.Reward.Latency, search.LatencyPredicted)}
	if t, err := rundir.ReadFinalLatency(dir); err == nil && t != nil {
		l.Timed = true
	}
	if cfg.Reward.Table != "" {
		// The table's threads, on the machine it was measured on.
		l.Source, l.Threads = "table", 0
		if t, err := bench.ReadLatencyTable(filepath.Join(dir, search.FileLatencyTable)); err == nil {
			l.Threads = t.Threads
		}
	}
	return l
}

// over reports whether r is a float model of the run over its limit at
// p50 (an int8 model was not what the search's limit ranked).
func (l latencyLimit) over(r *bench.Result) bool {
	return l.Ms > 0 && r.Quantization == nil && r.LatencyMs.P50 > l.Ms
}

// overs returns the results over the limit, in their order.
func (l latencyLimit) overs(rs []*bench.Result) []*bench.Result {
	var out []*bench.Result
	for _, r := range rs {
		if l.over(r) {
			out = append(out, r)
		}
	}
	return out
}

// printOverLimit names the models whose measured p50 exceeds the run's
// latency limit: the search refused architectures by latencies it
// predicted (or timed beside trainings), which can be off by a quarter or
// more (docs/performance.md, "Latency model").
func printOverLimit(out io.Writer, rs []*bench.Result, limit latencyLimit, threads int) {
	var over []string
	for _, r := range limit.overs(rs) {
		over = append(over, fmt.Sprintf("%s (p50 %.4f ms)", r.Model, r.LatencyMs.P50))
	}
	if len(over) == 0 {
		return
	}
	fmt.Fprintf(out, "over the run's latency limit of %g ms: %s. ", limit.Ms, strings.Join(over, ", "))
	if limit.Source == "table" {
		fmt.Fprintf(out, "The search refused architectures by its latency table's predictions, at %d thread(s) on the machine the table was measured on: bench the winners there", limit.Threads)
	} else {
		fmt.Fprintf(out, "The search refused architectures by %s latencies at %d thread(s)", limit.Source, limit.Threads)
	}
	switch {
	case threads == 0:
		fmt.Fprint(out, "; this bench ran with one thread per core (--threads 0)")
	case threads != limit.Threads:
		fmt.Fprintf(out, "; this bench ran at --threads %d", threads)
	}
	if limit.Timed {
		fmt.Fprintf(out, "; the search timed its final models too, and picked %s among those within the limit (its report.md)", rundir.BestName)
	}
	if limit.Source == "table" {
		fmt.Fprintln(out, "; give the limit a margin")
		return
	}
	fmt.Fprintln(out, "; give the limit a margin, or search with --latency measured --workers 1")
}
