package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/dustin/go-humanize"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/quantize"
	"github.com/nasctl/nasctl/runtime"
)

// Options configure Measure. Zero fields take the defaults in their comments.
type Options struct {
	Runs   int // timed batch-1 runs of each model; zero: 200
	Warmup int // untimed batch-1 runs of each model first; zero: 20
	// Rounds is the number of rounds MeasureAll times the batch-1 latency
	// in: each round runs every model in turn, its share of Runs (zero:
	// LatencyRounds; at most Runs; see interleavedLatency).
	Rounds    int
	Batch     int // images per throughput run; zero: 64
	BatchRuns int // timed throughput runs; zero: 10
	// Session selects the device and the intra-op threads.
	Session runtime.SessionOptions
	// Test, when set and not empty, are labelled real images at the models'
	// input size: the pure-Go comparison runs on the first of them and the
	// accuracy is measured on all. Nil: deterministic random images, and the
	// accuracy comes from the model's metadata.
	Test *runtime.Examples
	// Compare is the number of images run through both runtimes; zero: 16.
	Compare int
	// PureGoRuns is the number of timed batch-1 runs of the pure-Go
	// runtime, which is one to two orders of magnitude slower; zero: 50.
	PureGoRuns int
}

// LatencyRounds is the default of Options.Rounds.
const LatencyRounds = 10

func (o Options) withDefaults() Options {
	o.Runs = cmp.Or(o.Runs, 200)
	o.Warmup = cmp.Or(o.Warmup, 20)
	o.Rounds = min(cmp.Or(o.Rounds, LatencyRounds), o.Runs)
	o.Batch = cmp.Or(o.Batch, 64)
	o.BatchRuns = cmp.Or(o.BatchRuns, 10)
	o.Compare = cmp.Or(o.Compare, 16)
	o.PureGoRuns = cmp.Or(o.PureGoRuns, 50)
	return o
}

// Result is the measurement of one exported model.
type Result struct {
	Model               string  `json:"model"`
	Arch                string  `json:"arch,omitempty"`
	Input               string  `json:"input"`
	Params              int64   `json:"params"`
	MACs                int64   `json:"macs"`
	FileBytes           int64   `json:"file_bytes"`
	PeakActivationBytes int64   `json:"peak_activation_bytes"`
	LatencyMs           Latency `json:"latency_ms"` // batch 1
	ThroughputBatch     int     `json:"throughput_batch"`
	Throughput          float64 `json:"throughput_images_per_second"`
	// Accuracy, when known, and where it comes from: measured on the images
	// given, or the model's metadata (test accuracy, else validation).
	Accuracy       *float64 `json:"accuracy,omitempty"`
	AccuracySource string   `json:"accuracy_source,omitempty"`
	PureGo         PureGo   `json:"pure_go"`
	Pareto         bool     `json:"pareto"`
	Threads        int      `json:"threads"`
	Device         string   `json:"device"`
	// SHA256 is the model file's (hex); Quantization, for a model that
	// package quantize wrote, its settings (which name its float model's
	// SHA-256).
	SHA256       string             `json:"sha256"`
	Quantization *quantize.Settings `json:"quantization,omitempty"`
	// Interrupted: the model was saved from a training cut short
	// (onnxgen.ModelInfo.Interrupted).
	Interrupted bool `json:"interrupted,omitempty"`
}

// Measure loads and measures the model at path (MeasureAll of one model,
// without data). runtime must be initialised.
func Measure(ctx context.Context, path string, opts Options) (*Result, error) {
	rs, err := MeasureAll(ctx, []string{path}, opts, nil, nil)
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// measure measures the model m (b its file's bytes, read from path), all
// but its batch-1 latency, which interleavedLatency takes for every model
// of a bench together.
func measure(ctx context.Context, path string, b []byte, m *runtime.Model, opts Options) (*Result, error) {
	info := m.Info
	in := info.Input
	size := in.Channels * in.Height * in.Width
	r := &Result{Model: path, Input: in.String(), FileBytes: int64(len(b)), Params: info.Weights,
		Threads: opts.Session.IntraOpThreads, Device: opts.Session.Device.String(), SHA256: quantize.SHA256(b), Interrupted: info.Interrupted()}
	var err error
	if r.Quantization, err = quantize.ReadSettings(info); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if info.Arch != nil {
		r.Arch = info.Arch.String()
		net, err := info.Arch.Build(in, len(info.Classes))
		if err != nil {
			return nil, fmt.Errorf("%s: metadata architecture: %w", path, err)
		}
		r.Params, r.MACs, r.PeakActivationBytes = net.Params(), net.MACs(), net.PeakActivationBytes()
	}
	// A throughput batch that cannot fit is refused before it is measured,
	// not met by an allocation error of ONNX Runtime
	// (docs/limits.md, "Benchmark batches").
	need, avail := int64(opts.Batch)*(4*int64(size)+r.PeakActivationBytes), runtime.AvailableMemory()
	if avail > 0 && need > avail {
		return nil, fmt.Errorf("%s: throughput at batch %d needs at least %s (its images and its largest layer's input and output, times the batch): more than the %s this machine has available; give a smaller --batch",
			path, opts.Batch, humanize.IBytes(uint64(need)), humanize.IBytes(uint64(avail)))
	}
	// Throughput at a larger batch, through m's session and batch tensors.
	thr, err := m.MeasureLatency(ctx, runtime.LatencyConfig{Batch: opts.Batch, Runs: opts.BatchRuns, Warmup: 1})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.ThroughputBatch = opts.Batch
	r.Throughput = imagesPerSecond(opts.Batch, thr.Median)

	// The pure-Go runtime on the same images: the first test images, else
	// random ones.
	test := opts.Test != nil && opts.Test.Len() > 0
	var images []float32
	if test {
		if len(opts.Test.Pixels)%size != 0 {
			return nil, fmt.Errorf("%s: the test images are not whole images of %s", path, in)
		}
		for _, i := range opts.Test.Indices[:min(opts.Compare, opts.Test.Len())] {
			images = append(images, opts.Test.Pixels[i*size:(i+1)*size]...)
		}
	} else {
		rng := rand.New(rand.NewPCG(1, 2))
		images = make([]float32, opts.Compare*size)
		for i := range images {
			images[i] = rng.Float32()
		}
	}
	n := len(images) / size
	want, err := m.Predict(ctx, images, n)
	if err != nil {
		return nil, err
	}
	r.PureGo = comparePureGo(b, in, images, n, want, opts.PureGoRuns)

	// Accuracy: measured on labelled images, else from the metadata.
	if test {
		ev, err := m.Evaluate(ctx, *opts.Test, 256)
		if err != nil {
			return nil, err
		}
		r.Accuracy, r.AccuracySource = &ev.Accuracy, fmt.Sprintf("measured on %d images", ev.N)
	} else {
		val := "metadata: validation accuracy"
		var rec runtime.TrainRecord
		if json.Unmarshal([]byte(info.Meta[onnxgen.MetaTraining]), &rec) == nil && rec.Metric == runtime.MetricBalanced.String() {
			val = "metadata: validation balanced accuracy" // not comparable with others' accuracies
		}
		for _, k := range []struct {
			key    onnxgen.MetaKey
			source string
		}{
			{onnxgen.MetaTestAccuracy, "metadata: test accuracy"}, {onnxgen.MetaValAccuracy, val},
		} {
			if v, err := strconv.ParseFloat(info.Meta[k.key], 64); err == nil {
				r.Accuracy, r.AccuracySource = &v, k.source
				break
			}
		}
	}
	return r, nil
}

// MarkPareto sets Pareto on the results no other result dominates in
// (parameters, p50 latency, accuracy); results without an accuracy are left
// out of the comparison.
func MarkPareto(rs []*Result) {
	var pts []Point
	var idx []int
	for i, r := range rs {
		if r.Accuracy != nil {
			pts = append(pts, Point{Params: r.Params, LatencyMs: r.LatencyMs.P50, Accuracy: *r.Accuracy})
			idx = append(idx, i)
		}
	}
	for j, on := range ParetoFront(pts) {
		rs[idx[j]].Pareto = on
	}
}

// imagesPerSecond is the throughput of batches of n images that take ms
// milliseconds each.
func imagesPerSecond(n int, ms float64) float64 { return float64(n) * 1000 / ms }
