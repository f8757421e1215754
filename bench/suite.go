package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/internal/atomicfile"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
)

// TestData is where MeasureAll takes real images from: the test split of an
// image folder, split as in training.
type TestData struct {
	Dir      string
	Plan     dataset.SplitPlan
	PlanName string // Plan's name, for messages
	Seed     uint64
	// SkipBad leaves out unreadable files (dataset.LoadOptions.SkipBad),
	// passing them to Skipped when set.
	SkipBad bool
	Skipped func([]*dataset.BadFile)
	// Trained, when set, is called for each model measured with the data
	// hash it records (onnxgen.MetaDatasetHash; "" for none) and the hash
	// of Dir's images: the caller can say when a model is measured on data
	// it was not trained on.
	Trained func(model, trainedHash, dataHash string)
	// Loaded, when set, is called for each model measured, with the data
	// hash it records, the images as read at its input (the whole folder,
	// read once per input shape) and the test split's indices, which are
	// measured: the caller can say what reading changed of them.
	Loaded func(model, trainedHash string, in genotype.Input, d *dataset.Dataset, test []int)
}

// Progress is told of MeasureAll's stages, for a caller to show how far it
// is; a nil Progress or field is not called.
type Progress struct {
	// Rounds is called before the batch-1 latency rounds (once the data
	// is checked against every model), with their number.
	Rounds func(rounds int)
	// Model is called before model i, at path, is measured in full.
	Model func(i int, path string)
}

// MeasureAll measures the models at paths and marks the Pareto front.
// With data, each model's accuracy and the pure-Go comparison use the test
// images of data at the model's input (each input loaded once; the data's
// classes must be the model's); without, opts.Test's images if set, else
// random images and the accuracy in the models' metadata.
//
// It loads every model and checks the data against each first (a folder
// without a model's classes fails before minutes of timing), times their
// batch-1 latencies together in interleaved rounds (interleavedLatency),
// then measures the rest model by model, telling progress, if set. On an
// error it returns it with the results of the models measured before.
func MeasureAll(ctx context.Context, paths []string, opts Options, data *TestData, progress *Progress) ([]*Result, error) {
	opts = opts.withDefaults()
	progress = cmp.Or(progress, &Progress{})
	files := make([][]byte, len(paths))
	models := make([]*runtime.Model, len(paths))
	defer func() {
		for _, m := range models {
			if m != nil {
				m.Close()
			}
		}
	}()
	for i, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if models[i], err = runtime.NewModel(b, opts.Session); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		files[i] = b
	}
	tests := make([]*runtime.Examples, len(paths))
	if data != nil {
		loaded := map[genotype.Input]testImages{}
		for i, path := range paths {
			test, err := testSplit(data, path, models[i].Info, loaded)
			if err != nil {
				return nil, err
			}
			tests[i] = &test
		}
	}
	if progress.Rounds != nil {
		progress.Rounds(opts.Rounds)
	}
	latency, err := timeModels(ctx, models, paths, opts)
	if err != nil {
		return nil, err
	}
	var results []*Result
	for i, path := range paths {
		if progress.Model != nil {
			progress.Model(i, path)
		}
		mo := opts
		if tests[i] != nil {
			mo.Test = tests[i]
		}
		r, err := measure(ctx, path, files[i], models[i], mo)
		// Its throughput batch and memory go before the next model is
		// measured (and checked against the memory available).
		models[i].Close()
		models[i] = nil
		if err != nil {
			MarkPareto(results)
			return results, err // the models measured before, for an interrupted bench to keep
		}
		r.LatencyMs = latency[i]
		results = append(results, r)
	}
	MarkPareto(results)
	return results, nil
}

// TimeLatencies times the batch-1 latency of the models at paths together,
// in opts.Rounds rounds (interleavedLatency), and nothing else: what a
// search measures of its final models. runtime must be initialised.
func TimeLatencies(ctx context.Context, paths []string, opts Options) ([]Latency, error) {
	opts = opts.withDefaults()
	models := make([]*runtime.Model, 0, len(paths))
	defer func() {
		for _, m := range models {
			m.Close()
		}
	}()
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		m, err := runtime.NewModel(b, opts.Session)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		models = append(models, m)
	}
	return timeModels(ctx, models, paths, opts)
}

// timeModels times the batch-1 latency of models together, with
// interleavedLatency; names name them in errors.
func timeModels(ctx context.Context, models []*runtime.Model, names []string, opts Options) ([]Latency, error) {
	return interleavedLatency(len(models), opts, func(i, runs, warmup int) ([]float64, error) {
		t, err := models[i].MeasureLatency(ctx, runtime.LatencyConfig{Batch: 1, Runs: runs, Warmup: warmup})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", names[i], err)
		}
		return t.Samples, nil
	})
}

// interleavedLatency times the batch-1 latency of n models in opts.Rounds
// rounds, through run(i, runs, warmup), which returns the timed runs of
// model i in milliseconds. Each round runs every model in turn: a few
// untimed runs (opts.Warmup in the first round), then its share of
// opts.Runs timed runs. Timed in one stretch after another, two copies of
// one model at the two ends of a list differed by up to 1.78 times on a
// loaded machine; in rounds, by at most 1.044 (docs/performance.md,
// "Latency in rounds").
func interleavedLatency(n int, opts Options, run func(i, runs, warmup int) ([]float64, error)) ([]Latency, error) {
	samples := make([][]float64, n)
	for round := range opts.Rounds {
		runs := opts.Runs / opts.Rounds
		if round < opts.Runs%opts.Rounds {
			runs++
		}
		warmup := roundWarmup
		if round == 0 {
			warmup = opts.Warmup
		}
		for i := range n {
			s, err := run(i, runs, warmup)
			if err != nil {
				return nil, err
			}
			samples[i] = append(samples[i], s...)
		}
	}
	latency := make([]Latency, n)
	for i, s := range samples {
		latency[i] = Summarize(s)
	}
	return latency, nil
}

// roundWarmup is the untimed runs of a model at the start of each round
// after the first: the model before it has just had the caches.
const roundWarmup = 2

// testImages is the test split of a TestData at one input shape.
type testImages struct {
	runtime.Examples
	classes []string
	hash    string // dataset.Dataset.Hash
	d       *dataset.Dataset
}

// testSplit returns the test images of data at the input of the model at
// path (whose metadata is info), loading them once per input shape.
func testSplit(data *TestData, path string, info *onnxgen.ModelInfo, loaded map[genotype.Input]testImages) (runtime.Examples, error) {
	test, ok := loaded[info.Input]
	if !ok {
		in := info.Input
		d, split, err := dataset.LoadSplit(data.Dir, dataset.LoadOptions{Height: in.Height, Width: in.Width, Channels: in.Channels,
			SkipBad: data.SkipBad, Skipped: data.Skipped}, data.Plan, data.Seed)
		if err != nil {
			return runtime.Examples{}, err
		}
		test = testImages{runtime.Examples{Pixels: d.Pixels, Labels: d.Labels, Indices: split.Test}, d.Classes, d.Hash, d}
		loaded[in] = test
	}
	if data.Loaded != nil {
		data.Loaded(path, info.Meta[onnxgen.MetaDatasetHash], info.Input, test.d, test.Indices)
	}
	labels, err := dataset.ModelLabels(data.Dir, test.classes, test.Labels, path, info.Classes, "bench on data with the model's classes (--data)")
	if err != nil {
		return runtime.Examples{}, err
	}
	if miss := dataset.MissingClasses(test.classes, info.Classes); len(miss) > 0 {
		// The accuracies compared would leave those classes out.
		return runtime.Examples{}, fmt.Errorf("%s has no images of %s's classes %s; bench on data with every class of the model (--data)",
			data.Dir, path, strings.Join(miss, ", "))
	}
	if data.Trained != nil {
		data.Trained(path, info.Meta[onnxgen.MetaDatasetHash], test.hash)
	}
	ex := test.Examples
	ex.Labels = labels
	return ex, nil
}

// WriteCSV writes the results to path, atomically.
func WriteCSV(path string, rs []*Result) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"model", "arch", "params", "macs", "file_bytes", "peak_activation_bytes", "p50_ms", "p95_ms", "p99_ms", "mean_ms",
		"throughput_images_per_second", "throughput_batch", "accuracy", "accuracy_source", "pure_go_max_abs_diff", "pure_go_unsupported_op", "pareto",
		"pure_go_p50_ms", "pure_go_p95_ms", "pure_go_rewritten", "sha256"})
	for _, r := range rs {
		acc, diff, goP50, goP95 := "", "", "", ""
		if r.Accuracy != nil {
			acc = strconv.FormatFloat(*r.Accuracy, 'f', 6, 64)
		}
		if r.PureGo.MaxAbsDiff != nil {
			diff = strconv.FormatFloat(*r.PureGo.MaxAbsDiff, 'g', 4, 64)
		}
		f := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
		if l := r.PureGo.LatencyMs; l != nil {
			goP50, goP95 = f(l.P50), f(l.P95)
		}
		w.Write([]string{r.Model, r.Arch, strconv.FormatInt(r.Params, 10), strconv.FormatInt(r.MACs, 10), strconv.FormatInt(r.FileBytes, 10),
			strconv.FormatInt(r.PeakActivationBytes, 10), f(r.LatencyMs.P50), f(r.LatencyMs.P95), f(r.LatencyMs.P99), f(r.LatencyMs.Mean),
			f(r.Throughput), strconv.Itoa(r.ThroughputBatch), acc, r.AccuracySource, diff, r.PureGo.UnsupportedOp, strconv.FormatBool(r.Pareto), goP50, goP95,
			strconv.Itoa(r.PureGo.Rewritten), r.SHA256})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return atomicfile.Write(path, buf.Bytes())
}
