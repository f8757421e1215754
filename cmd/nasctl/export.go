package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/internal/shell"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/quantize"
	"github.com/nasctl/nasctl/runtime"
	"github.com/urfave/cli/v2"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write an exported model anew: quantized to int8, or in this nasctl's float form",
		ArgsUsage: "MODEL.onnx",
		Description: `With --int8, quantizes a float32 model statically into the QDQ form that ONNX
Runtime's CPU provider runs on its int8 kernels: int8 weights with a scale per output
channel, uint8 activations (--activations int8 for int8) with a scale and zero point per
tensor calibrated on the first --images images of the training split of --calibration
(split by --plan and --split-seed, as training did), by the 99.999th percentile of
their values (--method minmax for the full range). The metadata is kept (architecture,
input, normalisation, classes, dataset hash) and the quantization settings are added.
When the folder has a test split, the float and int8 models' accuracies on it are
printed, and the int8 model's is written into its metadata. A folder without
classes calibrates too, since calibration needs images, not labels: a flat folder of
the device's own images with no LEAF_* or NO_* names (frame_0.png, ...), or a
single class folder. Its first --images images in name order calibrate, and no
accuracy is measured (measure the int8 model with nasctl eval on labelled images).
What was measured (size, latency, accuracy): docs/edge.md, "INT8".

With --pure-go, writes a float model in operators that the pure-Go runtime onnx-go
computes correctly, the same function in standard ONNX: depthwise convolutions as
plain ones with block-diagonal weights, average poolings as convolutions times a
constant map of 1/count, unequal pads (a 'same' pooling or strided convolution over
an odd size) as borders. onnx-go needs it for cell networks and for such pads; ONNX
Runtime runs the rewritten model more slowly, so exports keep the standard operators
(figures: docs/edge.md, "Exports that onnx-go runs"). nasctl bench compares a model
with onnx-go in this form when onnx-go cannot run it as it is.

Without --int8 or --pure-go, writes a layer-sequence model again with this nasctl's
compiler and the model's own weights and metadata: a model exported by an earlier
nasctl with its unequal pads written out as borders gets them back in its operators,
which ONNX Runtime runs faster (docs/edge.md).
Examples:
  nasctl export runs/leaves-cpu/winners/best.onnx --int8 --calibration data/leaves --out best-int8.onnx
  nasctl export runs/nasnet-cpu/winners/best.onnx --pure-go --out best-purego.onnx
  nasctl export old.onnx --out new.onnx`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "file to write (required)"},
			&cli.BoolFlag{Name: "int8", Usage: "quantize to int8 (needs --calibration)"},
			&cli.BoolFlag{Name: "pure-go", Usage: "write the float model in operators the pure-Go runtime onnx-go runs"},
			&cli.StringFlag{Name: "calibration", Usage: "image folder whose training images calibrate the activations (with --int8); or a folder of unlabelled images, flat or in folders none of which is one of the model's classes (by day, say)"},
			&cli.IntFlag{Name: "images", Value: 200, Usage: "calibration images: the first N of the training split (of a folder without classes: in name order)"},
			&cli.StringFlag{Name: "method", Value: quantize.Percentile.String(), Usage: "calibration method: percentile or minmax"},
			&cli.Float64Flag{Name: "percentile", Value: 99.999, Usage: "percentile kept by the percentile method"},
			&cli.StringFlag{Name: "activations", Value: quantize.Uint8.String(), Usage: "type of the quantized activations: uint8 or int8"},
			&cli.IntFlag{Name: "threads", Usage: "intra-op threads of ONNX Runtime for the calibration (0: one per core)"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as one JSON object"},
			skipBadFlag(),
		}, splitFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("export takes one model file (got %d arguments)", c.NArg())
			}
			opts := exportOptions{Model: c.Args().First(), Out: c.String("out"), Int8: c.Bool("int8"), JSON: c.Bool("json"),
				Calibration: calibrationOptions{Dir: c.String("calibration"), Images: c.Int("images"), Unlabelled: true, SkipBad: c.Bool("skip-bad"),
					Threads: c.Int("threads")}}
			if opts.Out == "" {
				return usagef("export needs --out FILE")
			}
			if err := checkModelPath(opts.Model); err != nil {
				return err
			}
			if err := checkWritable("out", opts.Out); err != nil {
				return err
			}
			if c.Bool("pure-go") && opts.Int8 {
				return usagef("--pure-go and --int8 exclude each other: onnx-go runs no quantized model")
			}
			if !opts.Int8 {
				for _, f := range []string{"calibration", "images", "method", "percentile", "activations", "plan", "split-seed", "skip-bad", "threads"} {
					if c.IsSet(f) {
						return usagef("--%s is for --int8; add --int8 to quantize", f)
					}
				}
				if c.Bool("pure-go") {
					if same(opts.Model, opts.Out) {
						return usagef("--out %s is the model itself: the pure-Go form would replace the standard one, which ONNX Runtime runs faster; give another file name", opts.Out)
					}
					return runPureGoExport(opts, c.App.Writer)
				}
				return runReexport(opts, c.App.Writer)
			}
			if err := int8Options(c, &opts); err != nil {
				return err
			}
			return runExportInt8(c.Context, opts, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// int8Options reads and checks the flags of export --int8 into opts.
func int8Options(c *cli.Context, opts *exportOptions) error {
	if same(opts.Model, opts.Out) {
		return usagef("--out %s is the model itself: quantizing in place would lose the float model; give another file name", opts.Out)
	}
	if opts.Calibration.Dir == "" {
		return usagef("--int8 needs --calibration DIR, an image folder of the model's classes (its training split calibrates) or of unlabelled images of the device")
	}
	if err := checkDataFolder("calibration", opts.Calibration.Dir); err != nil {
		return err
	}
	if opts.Calibration.Images < 1 {
		return usagef("--images %d: must be at least 1", opts.Calibration.Images)
	}
	if opts.Calibration.Threads < 0 {
		return usagef("--threads %d: must be 0 (one per core) or more", opts.Calibration.Threads)
	}
	var err error
	if opts.Calibration.SplitBy, err = splitChoiceOf(c); err != nil {
		return err
	}
	if opts.Quantize.Method, err = quantize.ParseMethod(c.String("method")); err != nil {
		return usagef("--method: %v", err)
	}
	if opts.Quantize.Activations, err = quantize.ParseActivations(c.String("activations")); err != nil {
		return usagef("--activations: %v", err)
	}
	if opts.Quantize.Method != quantize.Percentile && c.IsSet("percentile") {
		return usagef("--percentile is for --method %s; --method %s takes the full range", quantize.Percentile, opts.Quantize.Method)
	}
	opts.Quantize.Percentile = c.Float64("percentile")
	if p := opts.Quantize.Percentile; !(p > 50 && p <= 100) {
		return usagef("--percentile %g: must be over 50 and at most 100", p)
	}
	return nil
}

type exportOptions struct {
	Model, Out  string
	Int8, JSON  bool
	Calibration calibrationOptions
	Quantize    quantize.Options
}

// calibrationOptions say which images calibrate a quantization: the first
// Images of the training split of Dir.
type calibrationOptions struct {
	Dir    string
	Images int
	// Unlabelled also accepts a folder without classes (a flat folder of
	// images with no LEAF_* or NO_* names, or a single class folder):
	// its first Images in name order calibrate, and nothing is measured.
	// Export sets it; bench, which measures on the folder, does not.
	Unlabelled bool
	// SplitBy splits the folder for a model that records no split; its
	// flags given override the model's record.
	SplitBy splitChoice
	Threads int
	SkipBad bool
}

// exportReport is the JSON form of export --int8.
type exportReport struct {
	Model         string             `json:"model"`
	Out           string             `json:"out"`
	FloatBytes    int                `json:"float_bytes"`
	Int8Bytes     int                `json:"int8_bytes"`
	SizeRatio     float64            `json:"size_ratio"`
	TestImages    int                `json:"test_images,omitempty"`
	FloatAccuracy *float64           `json:"float_test_accuracy,omitempty"`
	Int8Accuracy  *float64           `json:"int8_test_accuracy,omitempty"`
	Settings      *quantize.Settings `json:"quantization"`
}

func runExportInt8(ctx context.Context, opts exportOptions, out, errOut io.Writer) error {
	b, err := os.ReadFile(opts.Model)
	if err != nil {
		return err
	}
	if err := runtime.Init(""); err != nil {
		return err
	}
	defer runtime.Close()
	q, rep, err := newCalibrator(opts.Calibration, errOut).quantize(ctx, b, opts.Model, opts.Quantize)
	if err != nil {
		return err
	}
	if err := writeOut(opts.Out, q); err != nil {
		return err
	}
	rep.Out = opts.Out
	if opts.JSON {
		return printJSON(out, rep)
	}
	s := rep.Settings
	fmt.Fprintf(out, "%s -> %s: %s -> %s (%.2fx); %s in int8 (weights %s; activations %s), %s calibrated by %s on %s\n",
		opts.Model, opts.Out, humanize.IBytes(uint64(rep.FloatBytes)), humanize.IBytes(uint64(rep.Int8Bytes)), rep.SizeRatio,
		english.Plural(s.Operators, "operator", ""), s.Weights, s.Activations, english.Plural(s.Tensors, "activation", ""), s.Calibration, english.Plural(s.Images, "image", ""))
	if rep.FloatAccuracy != nil {
		fmt.Fprintf(out, "test accuracy on %d images: float32 %.4f, int8 %.4f (%+.2f points)\n", rep.TestImages, *rep.FloatAccuracy, *rep.Int8Accuracy,
			100*(*rep.Int8Accuracy-*rep.FloatAccuracy))
	}
	// int8 buys size; at batch 1 the cell networks measured ran slower in
	// it (docs/edge.md): speed is the bench's to tell, on the device's CPU.
	data := ""
	if rep.TestImages > 0 {
		data = " --data " + shell.Quote(opts.Calibration.Dir)
	}
	fmt.Fprintf(out, "latency not measured: int8 is not always faster at batch 1 (docs/edge.md, \"INT8\"); compare the two on this machine with nasctl bench %s %s%s\n",
		shell.Quote(opts.Model), shell.Quote(opts.Out), data)
	return nil
}

// calibrator quantizes models with the calibration images of its options,
// loading the folder once per input shape.
type calibrator struct {
	opts   calibrationOptions
	errOut io.Writer
	loaded map[genotype.Input]*calibrationData
	noted  map[genotype.Input]bool // inputs whose calibration images' colour was noted
}

// noteColour says, once per input, how many of the calibration images
// (used, of m) were read in the other colour than their file's: an int8
// model's activation ranges are those of the images it was calibrated on,
// as read, so a gray camera's frames read as RGB, or the reverse,
// calibrate it for images the device will not send. A model trained on
// these very images (trained, the data hash it records) saw them read so.
func (k *calibrator) noteColour(path, trained string, in genotype.Input, m *dataset.Images, used []int) {
	if n := colourNote(m.Dir, m.Files, m.Recoloured, m.Channels, used); n != "" && !k.noted[in] && trained != m.Hash {
		k.noted[in] = true
		fmt.Fprintf(k.errOut, "note: calibrating %s on %s: %s: the int8 model's activation ranges come from these images as read; calibrate on images like the device's\n",
			path, k.opts.Dir, n)
	}
}

// calibrationData is the folder at one input shape: a labelled dataset
// (d), or images that calibrate without labels (images; why says why no
// accuracy is measured on them).
type calibrationData struct {
	d      *dataset.Dataset
	images *dataset.Images
	why    string
}

// load reads the folder at the input shape in, for a model of the classes
// classes trained on the images of data hash trained (loadAsTrained).
func (k *calibrator) load(in genotype.Input, trained string, classes []string) (*calibrationData, error) {
	c := k.opts
	lo := dataset.LoadOptions{Height: in.Height, Width: in.Width, Channels: in.Channels, OneClass: c.Unlabelled,
		SkipBad: c.SkipBad, Skipped: func(bad []*dataset.BadFile) { reportSkipped(k.errOut, bad) }}
	if c.Unlabelled && dataset.Unlabelled(c.Dir) {
		m, _, err := dataset.LoadUnlabelled(c.Dir, lo)
		if err != nil {
			return nil, err
		}
		return &calibrationData{images: m, why: "it has no classes (no sub-folders, no " + dataset.PrefixLeaf + "* or " + dataset.PrefixNoLeaf + "* names)"}, nil
	}
	d, err := loadAsTrained(c.Dir, lo, trained, k.errOut)
	if err != nil {
		return nil, err
	}
	var with []string // classes with images
	for i, n := range d.ClassCounts(nil) {
		if n > 0 {
			with = append(with, d.Classes[i])
		}
	}
	if c.Unlabelled && d.Layout == dataset.LayoutClassFolders && len(with) > 0 && !slices.ContainsFunc(with, func(c string) bool { return slices.Contains(classes, c) }) {
		// Folders of frames by day or session: none names a class. (Files
		// named by class, the study's layout, are labelled images: of other
		// classes than the model's, they are refused below.)
		return &calibrationData{images: d.Images(), why: fmt.Sprintf("none of its folders (%s) is a class of the model", strings.Join(with, ", "))}, nil
	}
	if len(with) > 1 {
		return &calibrationData{d: d}, nil
	}
	// One class calibrates as any images do; its accuracy would be that
	// class's recall, not the model's test accuracy.
	return &calibrationData{images: d.Images(), why: fmt.Sprintf("its images are of one class (%s)", with[0])}, nil
}

func newCalibrator(opts calibrationOptions, errOut io.Writer) *calibrator {
	return &calibrator{opts: opts, errOut: errOut, loaded: map[genotype.Input]*calibrationData{}, noted: map[genotype.Input]bool{}}
}

// split splits the folder d for the model at path: as its metadata records,
// unless the flags say otherwise (splitChoice.forModel).
func (k *calibrator) split(d *dataset.Dataset, info *onnxgen.ModelInfo, path string) (dataset.Split, onnxgen.SplitRecord, error) {
	c := k.opts
	rec, plan, err := c.SplitBy.forModel(info, info.Meta[onnxgen.MetaDatasetHash] == d.Hash, path, k.errOut)
	if err != nil {
		return dataset.Split{}, rec, err
	}
	s, err := d.Split(plan, rec.Seed)
	return s, rec, err
}

// quantize quantizes the float model b (read from path) with the
// calibration images, and measures both models on the test split of the
// folder when it is labelled and has one, writing the int8 model's
// accuracy into its metadata. runtime must be initialised.
func (k *calibrator) quantize(ctx context.Context, b []byte, path string, qo quantize.Options) ([]byte, *exportReport, error) {
	info, err := onnxgen.ReadModelInfo(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if s, err := quantize.ReadSettings(info); err != nil || s != nil {
		return nil, nil, fmt.Errorf("%s is quantized already; give its float model", path)
	}
	if info.Meta[onnxgen.MetaPureGo] != "" {
		// As --int8 --pure-go: its int8 model would be labelled pure-Go, and
		// its dense block-diagonal weights quantized as they are.
		return nil, nil, fmt.Errorf("%s is a pure-Go export (%s): onnx-go runs no quantized model; quantize the standard export it was written from instead",
			path, onnxgen.MetaPureGo)
	}
	in := info.Input
	if in.Height == 0 || len(info.Classes) < 2 {
		return nil, nil, fmt.Errorf("%s: not a nasctl model (its metadata lacks %s or %s)", path, onnxgen.MetaInput, onnxgen.MetaClasses)
	}
	data, ok := k.loaded[in]
	if !ok {
		if data, err = k.load(in, info.Meta[onnxgen.MetaDatasetHash], info.Classes); err != nil {
			return nil, nil, err
		}
		k.loaded[in] = data
	}
	rep := &exportReport{Model: path, FloatBytes: len(b)}
	var q []byte
	if data.images != nil {
		q, err = k.quantizeUnlabelled(ctx, b, path, in, data, qo)
	} else {
		q, err = k.quantizeLabelled(ctx, b, path, info, data.d, qo, rep)
	}
	if err != nil {
		return nil, nil, err
	}
	qi, err := onnxgen.ReadModelInfo(q)
	if err != nil {
		return nil, nil, err
	}
	if rep.Settings, err = quantize.ReadSettings(qi); err != nil {
		return nil, nil, err
	}
	rep.Int8Bytes, rep.SizeRatio = len(q), float64(len(q))/float64(len(b))
	return q, rep, nil
}

// quantizeLabelled is quantize on the labelled folder d: the first images
// of its training split calibrate, and its test split measures, into rep.
func (k *calibrator) quantizeLabelled(ctx context.Context, b []byte, path string, info *onnxgen.ModelInfo, d *dataset.Dataset, qo quantize.Options, rep *exportReport) ([]byte, error) {
	c, in := k.opts, info.Input
	labels, err := dataset.ModelLabels(c.Dir, d.Classes, d.Labels, path, info.Classes, "calibrate on images of the model's classes (--calibration)")
	if err != nil {
		return nil, err
	}
	if miss := dataset.MissingClasses(d.Classes, info.Classes); len(miss) > 0 {
		return nil, fmt.Errorf("%s has no images of %s's classes %s; calibrate on images of every class (--calibration)", c.Dir, path, strings.Join(miss, ", "))
	}
	split, splitRec, err := k.split(d, info, path)
	if err != nil {
		return nil, err
	}
	if h := info.Meta[onnxgen.MetaDatasetHash]; h != "" && h != d.Hash {
		fmt.Fprintf(k.errOut, "note: %s was trained on other data (%s) than %s (%s)\n", path, h, c.Dir, d.Hash)
	}
	train := split.Train
	if len(train) == 0 {
		return nil, fmt.Errorf("%s has no training images under the split plan; give another --plan", c.Dir)
	}
	if len(train) < c.Images {
		fmt.Fprintf(k.errOut, "note: %s has %d training images; calibrating on all of them (--images %d)\n", c.Dir, len(train), c.Images)
	}
	train = train[:min(c.Images, len(train))]
	k.noteColour(path, info.Meta[onnxgen.MetaDatasetHash], in, d.Images(), train)
	size := in.Channels * in.Height * in.Width
	pixels := make([]float32, 0, len(train)*size)
	for _, i := range train {
		pixels = append(pixels, d.Pixels[i*size:(i+1)*size]...)
	}
	qo.Images = len(train)
	qo.Data = fmt.Sprintf("%s (%s), the first %d training images", c.Dir, d.Hash, len(train))
	q, err := k.calibrate(ctx, b, path, in, pixels, qo)
	if err != nil {
		return nil, err
	}
	if len(split.Test) > 0 {
		session := runtime.SessionOptions{IntraOpThreads: c.Threads}
		test := runtime.Examples{Pixels: d.Pixels, Labels: labels, Indices: split.Test}
		fa, err := modelAccuracy(ctx, b, test, session)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		qa, err := modelAccuracy(ctx, q, test, session)
		if err != nil {
			return nil, fmt.Errorf("the int8 model of %s: %w", path, err)
		}
		// Both accuracies on the same images, and which images when they are
		// not of the training data: the pair reads as the int8 model's loss.
		meta := map[onnxgen.MetaKey]string{onnxgen.MetaTestAccuracy: strconv.FormatFloat(qa, 'f', 6, 64),
			quantize.MetaFloatTestAccuracy: strconv.FormatFloat(fa, 'f', 6, 64)}
		if info.Meta[onnxgen.MetaDatasetHash] != d.Hash {
			meta[onnxgen.MetaTestDatasetHash] = d.Hash
		}
		if recorded, ok, _ := info.Split(); ok && recorded != splitRec {
			meta[onnxgen.MetaTestSplit] = splitRec.String()
		}
		for _, key := range slices.Sorted(maps.Keys(meta)) {
			if q, err = quantize.SetMetadata(q, key, meta[key]); err != nil {
				return nil, err
			}
		}
		rep.TestImages, rep.FloatAccuracy, rep.Int8Accuracy = len(split.Test), &fa, &qa
	}
	return q, nil
}

// quantizeUnlabelled is quantize on images without labels: the first
// ones in name order calibrate, and nothing is measured, so the int8
// model's metadata has no accuracy of its own (quantize.Model moves the
// float model's to its float keys).
func (k *calibrator) quantizeUnlabelled(ctx context.Context, b []byte, path string, in genotype.Input, data *calibrationData, qo quantize.Options) ([]byte, error) {
	c, m := k.opts, data.images
	if c.SplitBy.given() {
		// A flag conflict, found only once the folder is read.
		return nil, usagef("%s: %s, so it is not split; --plan and --split-seed are for a labelled folder: leave them out", c.Dir, data.why)
	}
	n := min(c.Images, m.Len())
	if n < c.Images {
		fmt.Fprintf(k.errOut, "note: %s has %d images; calibrating on all of them (--images %d)\n", c.Dir, m.Len(), c.Images)
	}
	k.noteColour(path, "", in, m, seqInts(n)) // no labels: not the data of a training
	qo.Images = n
	qo.Data = fmt.Sprintf("%s (%s), the first %d of its %d images, unlabelled", c.Dir, m.Hash, n, m.Len())
	fmt.Fprintf(k.errOut, "note: %s: %s, so its first %d images calibrate without labels and the int8 model's accuracy is not measured; "+
		"measure it on labelled images with nasctl eval INT8_MODEL --data DIR\n", c.Dir, data.why, n)
	return k.calibrate(ctx, b, path, in, m.Pixels[:n*m.ImageSize()], qo)
}

// calibrate quantizes the float model b (read from path, of input in) on
// pixels, the calibration images one after the other.
func (k *calibrator) calibrate(ctx context.Context, b []byte, path string, in genotype.Input, pixels []float32, qo quantize.Options) ([]byte, error) {
	session := runtime.SessionOptions{IntraOpThreads: k.opts.Threads}
	q, err := quantize.Model(b, runtime.CalibrationRunner(ctx, pixels, [3]int{in.Channels, in.Height, in.Width}, session), qo)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return q, nil
}

// modelAccuracy is a model's accuracy on the examples.
func modelAccuracy(ctx context.Context, b []byte, ex runtime.Examples, session runtime.SessionOptions) (float64, error) {
	m, err := runtime.NewModel(b, session)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	ev, err := m.Evaluate(ctx, ex, 256)
	if err != nil {
		return 0, err
	}
	return ev.Accuracy, nil
}

// runReexport writes a layer-sequence model again with this nasctl's
// compiler, its weights and its metadata.
func runReexport(opts exportOptions, out io.Writer) error {
	b, info, err := readFloatModel(opts.Model, "export its float model again, then quantize that")
	if err != nil {
		return err
	}
	if info.Arch == nil || info.Input.Height == 0 || len(info.Classes) < 2 {
		return fmt.Errorf("%s: not a nasctl model (its metadata lacks the architecture, input or classes)", opts.Model)
	}
	if _, ok := info.Arch.(genotype.Arch); !ok {
		return fmt.Errorf("%s is a cell network: its export folded the batch normalisations into the weights, so it cannot be compiled again from the file; "+
			"export --int8 and --pure-go take it as it is, and a model compiled by this nasctl comes from training it again (nasctl train --arch)", opts.Model)
	}
	net, err := info.Arch.Build(info.Input, len(info.Classes))
	if err != nil {
		return fmt.Errorf("%s: metadata architecture: %w", opts.Model, err)
	}
	w, err := onnxgen.Weights(b, net)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.Model, err)
	}
	// The graph written is the standard one: a pure-Go form's mark goes.
	extra := maps.Clone(info.Meta)
	delete(extra, onnxgen.MetaPureGo)
	meta := onnxgen.Metadata{Arch: info.Meta[onnxgen.MetaArch], Input: info.Input, Normalization: info.Meta[onnxgen.MetaNormalization],
		Classes: info.Classes, DatasetHash: info.Meta[onnxgen.MetaDatasetHash], Extra: extra}
	nb, err := onnxgen.Inference(net, w, meta)
	if err != nil {
		return err
	}
	if err := writeOut(opts.Out, nb); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(out, floatExportReport{Model: opts.Model, Out: opts.Out, Form: "nasctl", InBytes: len(b), OutBytes: len(nb)})
	}
	fmt.Fprintf(out, "%s -> %s: %s written with this nasctl (%s -> %s)\n", opts.Model, opts.Out, info.Arch,
		humanize.IBytes(uint64(len(b))), humanize.IBytes(uint64(len(nb))))
	return nil
}

// floatExportReport is the JSON form of export without --int8: the form
// written (nasctl: this nasctl's compiler; pure-go: for onnx-go) and, for
// pure-go, the operators rewritten.
type floatExportReport struct {
	Model     string `json:"model"`
	Out       string `json:"out"`
	Form      string `json:"form"`
	Rewritten int    `json:"rewritten"`
	InBytes   int    `json:"in_bytes"`
	OutBytes  int    `json:"out_bytes"`
}

// same reports whether paths a and b name one file (b may not exist yet).
func same(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

// runPureGoExport writes the float model in the operators onnx-go runs
// (onnxgen.PureGo).
func runPureGoExport(opts exportOptions, out io.Writer) error {
	b, _, err := readFloatModel(opts.Model, "onnx-go runs no quantized model; give its float model")
	if err != nil {
		return err
	}
	pg, n, err := onnxgen.PureGo(b)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.Model, err)
	}
	if err := writeOut(opts.Out, pg); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(out, floatExportReport{Model: opts.Model, Out: opts.Out, Form: "pure-go", Rewritten: n, InBytes: len(b), OutBytes: len(pg)})
	}
	fmt.Fprintf(out, "%s -> %s: %s rewritten for onnx-go (%s -> %s)\n", opts.Model, opts.Out, english.Plural(n, "operator", ""),
		humanize.IBytes(uint64(len(b))), humanize.IBytes(uint64(len(pg))))
	return nil
}

// readFloatModel reads the model at path and its metadata, refusing a
// quantized one with what to do (todo).
func readFloatModel(path, todo string) ([]byte, *onnxgen.ModelInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	info, err := onnxgen.ReadModelInfo(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if s, err := quantize.ReadSettings(info); err != nil || s != nil {
		return nil, nil, fmt.Errorf("%s is quantized; %s", path, todo)
	}
	return b, info, nil
}
