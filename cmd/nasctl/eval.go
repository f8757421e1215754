package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
	"github.com/urfave/cli/v2"
)

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:      "eval",
		Usage:     "measure exported models' accuracy on an image folder",
		ArgsUsage: "MODEL.onnx [MODEL.onnx...]",
		Description: `Reads the images of --data at each model's input size, splits them as training did
(the split the model records; --plan and --split-seed for a model that records none, or
to override it) and prints the accuracy, the confusion matrix, each class's recall
(its images answered right) and their mean, the balanced accuracy (what --metric
balanced_accuracy of train and search ranks by), on the chosen split. With several models the images are read
once per input size and a table gives each model's accuracy, its lowest class recall (on
imbalanced classes a high accuracy can hide a class missed) and their mean accuracy;
--json then prints one object per model, one per line.
Examples:
  nasctl eval model.onnx --data data/leaves --split test
  nasctl eval runs/leaves/winners/rank-*.onnx --data data/leaves-new --split all
  nasctl eval runs/leaves/winners/best.onnx --data data/leaves --errors   (the test images it gets wrong)`,
		Flags: append(append([]cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "image folder (required)"},
			&cli.StringFlag{Name: "split", Value: "test", Usage: "which images: train, val, test or all (all: a folder the models never saw)"},
			&cli.IntFlag{Name: "batch", Value: 128, Usage: "images per inference batch"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON lines: one object per model, one line each (interrupted: true for a model saved from a training cut short)"},
			&cli.BoolFlag{Name: "errors", Usage: "list the images each model predicts wrong: file, class, predicted class and its probability (errors in --json; one model without --json)"},
			skipBadFlag(),
		}, deviceFlags()...), splitFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("eval takes one or more model files")
			}
			opts := evalOptions{Models: c.Args().Slice(), Data: c.String("data"), Split: c.String("split"), Batch: c.Int("batch"),
				JSON: c.Bool("json"), SkipBad: c.Bool("skip-bad"), Errors: c.Bool("errors")}
			if opts.Data == "" {
				return usagef("eval needs --data")
			}
			if opts.Errors && !opts.JSON && len(opts.Models) > 1 {
				return usagef("--errors lists the mistakes of one model: give one model, or add --json for one object per model")
			}
			if err := checkDataFolder("data", opts.Data); err != nil {
				return err
			}
			if opts.Batch < 1 {
				return usagef("--batch %d: must be at least 1", opts.Batch)
			}
			switch opts.Split {
			case "train", "val", "test", "all":
			default:
				return usagef("--split %q: valid: train, val, test, all", opts.Split)
			}
			var err error
			if opts.SplitBy, err = splitChoiceOf(c); err != nil {
				return err
			}
			if opts.Session.Device, err = parseDevice(c); err != nil {
				return err
			}
			opts.Session.IntraOpThreads = c.Int("threads")
			return runEval(c.Context, opts, c.App.Writer, c.App.ErrWriter)
		},
	}
}

type evalOptions struct {
	Models      []string
	Data, Split string
	// SplitBy splits models that record no split; its flags given
	// override the split a model records.
	SplitBy               splitChoice
	Batch                 int
	JSON, SkipBad, Errors bool
	Session               runtime.SessionOptions
}

type evalReport struct {
	Model   string   `json:"model"`
	Arch    string   `json:"arch,omitempty"`
	Split   string   `json:"split"`
	Plan    string   `json:"plan"`
	Seed    uint64   `json:"split_seed"`
	Classes []string `json:"classes"`
	// Interrupted: the model was saved from a training cut short (as in
	// bench's JSON).
	Interrupted bool `json:"interrupted,omitempty"`
	runtime.Evaluation
	// BalancedAccuracy is the mean recall of the classes with images here
	// (what --metric balanced_accuracy ranks by).
	BalancedAccuracy float64 `json:"balanced_accuracy"`
	// Errors are the images predicted wrong, with --errors (none: an
	// empty list; without the flag, left out).
	Errors *[]evalMistake `json:"errors,omitempty"`
}

// evalMistake is an image a model predicted wrong (--errors).
type evalMistake struct {
	File        string  `json:"file"`
	Class       string  `json:"class"`
	Predicted   string  `json:"predicted"`
	Probability float64 `json:"probability"`
}

// evaluator measures models on one folder, reading its images once per
// input size for every model of that size.
type evaluator struct {
	opts   evalOptions
	errOut io.Writer
	loaded map[genotype.Input]evalData
	warned map[string]bool         // data hashes already warned of
	noted  map[genotype.Input]bool // inputs whose images' colour was noted
	// otherDataHint is the command that measures every image, in the
	// warning about other data; empty: eval's --split all.
	otherDataHint string
}

// interruptedNote says that the model at path was saved from a training cut
// short (Ctrl-C in nasctl train or a final phase), which a file's name does
// not show.
func interruptedNote(errOut io.Writer, path string, interrupted bool) {
	if interrupted {
		fmt.Fprintf(errOut, "note: %s was saved from an interrupted training (%s): it holds the best epoch finished before the interrupt\n", path, onnxgen.MetaInterrupted)
	}
}

// evalData is a folder's images at one input size.
type evalData struct {
	d *dataset.Dataset
}

func runEval(ctx context.Context, opts evalOptions, out, errOut io.Writer) error {
	for _, path := range opts.Models { // a mistyped name fails before minutes of work
		if err := checkModelPath(path); err != nil {
			return err
		}
	}
	if err := runtime.InitDevice(opts.Session.Device, opts.Session.DeviceID); err != nil {
		return err
	}
	defer runtime.Close()
	e := &evaluator{opts: opts, errOut: errOut, loaded: map[genotype.Input]evalData{}, warned: map[string]bool{}, noted: map[genotype.Input]bool{}}
	enc := json.NewEncoder(out)
	if len(opts.Models) == 1 {
		rep, err := e.one(ctx, opts.Models[0])
		if err != nil {
			return err
		}
		if opts.JSON {
			return enc.Encode(rep) // one line, as for several models
		}
		return printEvaluation(out, opts, *rep)
	}
	// Several models: a row (or a JSON line) per model as it is measured, so
	// a long list shows progress and a failure keeps what came before it.
	width := len("model")
	for _, m := range opts.Models {
		width = max(width, len(m))
	}
	sum := 0.0
	for i, path := range opts.Models {
		rep, err := e.one(ctx, path)
		if err != nil {
			return err
		}
		if i == 0 && !opts.JSON {
			// After the first model: the data's notes and errors come
			// before the table, not inside it.
			which := "the " + opts.Split + " split"
			if opts.Split == "all" {
				which = "all images"
			}
			fmt.Fprintf(out, "%d models on %s of %s\n\n%-*s  accuracy  correct  images  %-*s  architecture\n",
				len(opts.Models), which, opts.Data, width, "model", lowestWidth(rep.Classes), "lowest recall")
		}
		sum += rep.Accuracy
		if opts.JSON {
			err = enc.Encode(rep)
		} else {
			low, _ := rundir.LowestRecall(rundir.ByClass(rep.Classes, rep.Confusion))
			_, err = fmt.Fprintf(out, "%-*s  %8.4f  %7d  %6d  %-*s  %s\n", width, path, rep.Accuracy, rep.Correct, rep.N, lowestWidth(rep.Classes), lowestCell(low), rep.Arch)
		}
		if err != nil {
			return err
		}
	}
	if opts.JSON {
		return nil
	}
	_, err := fmt.Fprintf(out, "\nmean accuracy %.4f\n", sum/float64(len(opts.Models)))
	return err
}

// one measures the model at path, reading the data at its input size unless
// an earlier model of the same size already did.
func (e *evaluator) one(ctx context.Context, path string) (*evalReport, error) {
	opts := e.opts
	m, err := runtime.LoadModel(path, opts.Session)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer m.Close()
	in := m.Info.Input
	data, ok := e.loaded[in]
	if !ok {
		// A single class is enough to measure on every image (a field
		// check of one class); a split of it would be a split of nothing.
		d, err := loadAsTrained(opts.Data, dataset.LoadOptions{Height: in.Height, Width: in.Width, Channels: in.Channels,
			SkipBad: opts.SkipBad, OneClass: opts.Split == "all", Skipped: func(bad []*dataset.BadFile) { reportSkipped(e.errOut, bad) }},
			m.Info.Meta[onnxgen.MetaDatasetHash], e.errOut)
		if errors.Is(err, dataset.ErrOneClass) {
			return nil, fmt.Errorf("%w; to measure a model on every image of one class, give --split all", err)
		}
		if err != nil {
			return nil, err
		}
		data = evalData{d}
		e.loaded[in] = data
	}
	labels, err := dataset.ModelLabels(opts.Data, data.d.Classes, data.d.Labels, path, m.Info.Classes, "evaluate on data with the model's classes")
	if err != nil {
		return nil, err
	}
	if miss := dataset.MissingClasses(data.d.Classes, m.Info.Classes); len(miss) > 0 {
		fmt.Fprintf(e.errOut, "note: %s has no images of %s's classes %s; the accuracy covers the others\n", opts.Data, path, strings.Join(miss, ", "))
	}
	interruptedNote(e.errOut, path, m.Info.Interrupted())
	sameData := m.Info.Meta[onnxgen.MetaDatasetHash] == data.d.Hash
	e.warnOtherData(path, m.Info.Meta[onnxgen.MetaDatasetHash], data.d.Hash)
	rec, plan, err := opts.SplitBy.forModel(m.Info, sameData && opts.Split != "all", path, e.errOut)
	if err != nil {
		return nil, err
	}
	idx := seqInts(data.d.Len())
	if opts.Split != "all" {
		split, err := data.d.Split(plan, rec.Seed)
		if err != nil {
			return nil, err
		}
		idx = map[string][]int{"train": split.Train, "val": split.Val, "test": split.Test}[opts.Split]
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("the %s split of %s has no images (%d in the folder); evaluate on --split all, or on a larger folder", opts.Split, opts.Data, data.d.Len())
	}
	// Once per input: the later models of this size read the same images.
	// A model trained on these very images saw them read so.
	if n := colourNote(data.d.Dir, data.d.Files, data.d.Recoloured, data.d.Channels, idx); n != "" && !e.noted[in] && !sameData {
		e.noted[in] = true
		which := "the " + opts.Split + " images"
		if opts.Split == "all" {
			which = "all images"
		}
		fmt.Fprintf(e.errOut, "note: %s on %s of %s: %s: %s\n", path, which, opts.Data, n, answersAlike)
	}
	ev, err := m.Evaluate(ctx, runtime.Examples{Pixels: data.d.Pixels, Labels: labels, Indices: idx}, opts.Batch)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rep := &evalReport{Model: path, Arch: m.Info.Meta[onnxgen.MetaArch], Split: opts.Split, Plan: rec.Plan, Seed: rec.Seed,
		Classes: m.Info.Classes, Interrupted: m.Info.Interrupted(), Evaluation: *ev, BalancedAccuracy: ev.Score(runtime.MetricBalanced)}
	if opts.Errors {
		list := []evalMistake{}
		for _, mk := range ev.Mistakes {
			list = append(list, evalMistake{File: filepath.Join(data.d.Dir, filepath.FromSlash(data.d.Files[mk.Image])),
				Class: m.Info.Classes[mk.Label], Predicted: m.Info.Classes[mk.Predicted], Probability: float64(mk.Probability)})
		}
		rep.Errors = &list
	}
	return rep, nil
}

// warnOtherData warns when a model's test split may hold its training
// images: a split of other data than it trained on (a whole folder of
// other data is what --split all is for), or --split all of the very
// images it trained on. Every such model is named; the advice comes once
// per data hash, and later models trained on the same data refer to it.
func (e *evaluator) warnOtherData(path, trained, data string) {
	opts := e.opts
	if trained == "" {
		return
	}
	switch {
	case trained != data && opts.Split != "all" && e.warned[trained]:
		fmt.Fprintf(e.errOut, "warning: %s too was trained on other data than %s (data hash %s), as warned above\n", path, opts.Data, shortHash(trained))
	case trained != data && opts.Split != "all":
		fmt.Fprintf(e.errOut, "warning: %s was trained on other data than %s (data hash %s, not %s): "+
			"if the two share images, its %s split may hold images it trained on; %s measures every image\n",
			path, opts.Data, shortHash(trained), shortHash(data), opts.Split, cmp.Or(e.otherDataHint, "--split all"))
	case trained == data && opts.Split == "all" && e.warned[trained]:
		fmt.Fprintf(e.errOut, "warning: %s too was trained on %s, as warned above\n", path, opts.Data)
	case trained == data && opts.Split == "all":
		fmt.Fprintf(e.errOut, "warning: %s was trained on %s (data hash %s): --split all counts the images it trained on; --split test gives its held-out accuracy\n",
			path, opts.Data, shortHash(trained))
	}
	e.warned[trained] = true
}

// forModel returns the split to measure a model on, and its plan: the one
// its metadata records, unless --plan or --split-seed is given; the
// flags' for a model that records none. Flags that override the record on
// the data the model trained on (warn) get a warning: that split's test
// images may be ones it trained on.
func (s splitChoice) forModel(info *onnxgen.ModelInfo, warn bool, path string, errOut io.Writer) (onnxgen.SplitRecord, dataset.SplitPlan, error) {
	rec, ok, err := info.Split()
	if err != nil {
		return rec, dataset.SplitPlan{}, fmt.Errorf("%s: %w", path, err)
	}
	recorded := rec
	if !ok || s.PlanSet {
		rec.Plan = s.Plan
	}
	if !ok || s.SeedSet {
		rec.Seed = s.Seed
	}
	p, err := dataset.ParseSplitPlan(rec.Plan)
	if err != nil {
		return rec, p, fmt.Errorf("%s records the split plan %q, which this nasctl does not know: %w; give --plan", path, rec.Plan, err)
	}
	if ok && warn && rec != recorded {
		fmt.Fprintf(errOut, "warning: %s was trained with --plan %s --split-seed %d; with --plan %s --split-seed %d its held-out images may include ones it trained on (leave both out to use its own)\n",
			path, recorded.Plan, recorded.Seed, rec.Plan, rec.Seed)
	}
	return rec, p, nil
}

// recallCell is a class's recall with its counts: "0.0182 (1 of 55)", or
// "-" for a class without images here.
func recallCell(c rundir.ClassRecall) string {
	if c.Images == 0 {
		return "-"
	}
	return fmt.Sprintf("%.4f (%d of %d)", c.Recall(), c.Right, c.Images)
}

// lowestCell names the class of the lowest recall with it: "cube 0.0182".
func lowestCell(c rundir.ClassRecall) string {
	if c.Images == 0 {
		return "-"
	}
	return fmt.Sprintf("%s %.4f", c.Class, c.Recall())
}

// lowestWidth is the width of the lowest-recall column for classes.
func lowestWidth(classes []string) int {
	w := len("lowest recall")
	for _, c := range classes {
		w = max(w, len(c)+len(" 0.0000"))
	}
	return w
}

// printEvaluation prints one model's accuracy and confusion matrix, with
// each class's recall.
func printEvaluation(out io.Writer, opts evalOptions, rep evalReport) error {
	split := fmt.Sprintf("the %s split (plan %s, seed %d)", opts.Split, rep.Plan, rep.Seed)
	if opts.Split == "all" {
		split = "all images"
	}
	fmt.Fprintf(out, "%s on %s of %s: accuracy %.4f (%d of %d)\n\nconfusion (rows: true class, columns: predicted)\n",
		rep.Model, split, opts.Data, rep.Accuracy, rep.Correct, rep.N)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t")
	for _, c := range rep.Classes {
		fmt.Fprintf(tw, "%s\t", c)
	}
	fmt.Fprintln(tw, "recall\t")
	byClass := rundir.ByClass(rep.Classes, rep.Confusion)
	for i, row := range rep.Confusion {
		fmt.Fprintf(tw, "%s\t", rep.Classes[i])
		for _, n := range row {
			fmt.Fprintf(tw, "%d\t", n)
		}
		fmt.Fprintf(tw, "%s\t\n", recallCell(byClass[i]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "balanced accuracy %.4f (the mean of the recalls of the classes with images here)\n", rep.BalancedAccuracy)
	if rep.Errors == nil {
		return nil
	}
	fmt.Fprintf(out, "\n%s predicted wrong\n", plural(len(*rep.Errors), "image"))
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	if len(*rep.Errors) > 0 {
		fmt.Fprintln(tw, "file\tclass\tpredicted\tprobability")
	}
	for _, mk := range *rep.Errors {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.4f\n", mk.File, mk.Class, mk.Predicted, mk.Probability)
	}
	return tw.Flush()
}

func seqInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func predictCommand() *cli.Command {
	return &cli.Command{
		Name:      "predict",
		Usage:     "classify image files with an exported model",
		ArgsUsage: "MODEL.onnx IMAGE|FOLDER...",
		Description: `Prints the predicted class and its probability for every image, resized and converted
to the model's input as in training. A folder stands for the image files in it and in
its subfolders, in name order. Notes on stderr count the images that reading changed
beyond the resize, and name the first: stretched from another shape, enlarged more than
twice, colour read as gray (or gray as RGB), transparency read as over black.
Example: nasctl predict model.onnx photo1.png photo2.jpg photos/`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per line and image: image, class, probability, and probabilities by class name in the model's class order (label 0 first)"},
			&cli.BoolFlag{Name: "skip-bad", Usage: "leave out unreadable or corrupt images (they are listed) instead of failing on the first"},
		}, deviceFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return usagef("predict takes a model file and at least one image (got %d arguments)", c.NArg())
			}
			d, err := parseDevice(c)
			if err != nil {
				return err
			}
			opts := predictOptions{Model: c.Args().First(), Images: c.Args().Tail(), JSON: c.Bool("json"), SkipBad: c.Bool("skip-bad"),
				Session: runtime.SessionOptions{Device: d, IntraOpThreads: c.Int("threads")}}
			return runPredict(c.Context, opts, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// expandFolders replaces each folder among paths by the image files in it.
func expandFolders(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			out = append(out, p) // a file, or an error that reading it reports
			continue
		}
		files, err := dataset.ImageFiles(p)
		if err != nil {
			return nil, err
		}
		out = append(out, files...)
	}
	return out, nil
}

type prediction struct {
	Image         string     `json:"image"`
	Class         string     `json:"class"`
	Probability   float32    `json:"probability"`
	Probabilities classProbs `json:"probabilities"`
}

// classProbs are a prediction's probabilities by class name, written as a
// JSON object in the model's class order (label 0 first) rather than a
// map's sorted keys, so that its values read in order are the model's
// output row.
type classProbs struct {
	classes []string
	p       []float32
}

func (c classProbs) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, name := range c.classes {
		k, err := json.Marshal(name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(c.p[i])
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

type predictOptions struct {
	Model         string
	Images        []string
	JSON, SkipBad bool
	Session       runtime.SessionOptions
}

func runPredict(ctx context.Context, opts predictOptions, out, errOut io.Writer) error {
	if err := checkModelPath(opts.Model); err != nil {
		return err
	}
	if isImageFile(opts.Model) { // the arguments swapped: the model would fail as "invalid wire-format data"
		return usagef("%s is an image: predict takes the model first, then the images (nasctl predict MODEL.onnx %s ...)", opts.Model, opts.Model)
	}
	if err := runtime.InitDevice(opts.Session.Device, opts.Session.DeviceID); err != nil {
		return err
	}
	defer runtime.Close()
	m, err := runtime.LoadModel(opts.Model, opts.Session)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.Model, err)
	}
	defer m.Close()
	in := m.Info.Input
	paths, err := expandFolders(opts.Images)
	if err != nil {
		return err
	}
	var pixels []float32
	var images []string
	var facts []dataset.ImageFacts
	var bad []*dataset.BadFile
	for _, path := range paths {
		px, f, err := dataset.ReadImageFacts(path, in.Width, in.Height, in.Channels)
		var bf *dataset.BadFile
		if opts.SkipBad && errors.As(err, &bf) {
			bad = append(bad, bf)
			continue
		}
		if err != nil {
			return err
		}
		pixels, images, facts = append(pixels, px...), append(images, path), append(facts, f)
	}
	reportSkipped(errOut, bad)
	for _, n := range inputNotes(images, facts, in) {
		fmt.Fprintf(errOut, "note: %s\n", n)
	}
	if len(images) == 0 {
		return fmt.Errorf("none of the %d images could be read", len(paths))
	}
	probs, err := m.Predict(ctx, pixels, 64)
	if err != nil {
		return err
	}
	k := len(m.Info.Classes)
	enc := json.NewEncoder(out)
	for i, path := range images {
		p := probs[i*k : (i+1)*k]
		best := 0
		for j := range p {
			if p[j] > p[best] {
				best = j
			}
		}
		pr := prediction{Image: path, Class: m.Info.Classes[best], Probability: p[best], Probabilities: classProbs{m.Info.Classes, p}}
		if opts.JSON {
			if err := enc.Encode(pr); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(out, "%s\t%s\t%.4f\n", path, pr.Class, pr.Probability)
	}
	return nil
}

// isImageFile reports whether the file at path decodes as an image in one
// of the formats nasctl reads (an ONNX model never does).
func isImageFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	_, _, err = image.DecodeConfig(f)
	return err == nil
}

// shortHash keeps a data hash ("sha256:" and 64 hex digits) short enough
// for a message: its first 12 digits.
func shortHash(h string) string { return h[:min(len(h), len("sha256:")+12)] }

// inputNotes says what reading images changed of them beyond the expected
// resize: a camera pipeline that feeds a model other images than it
// trained on (another aspect, colour for a gray model, transparency) still
// gets confident answers, so the changes are named, with a first example.
func inputNotes(images []string, facts []dataset.ImageFacts, in genotype.Input) []string {
	type note struct {
		n     int
		first string
	}
	var stretched, enlarged, colour, gray, alpha note
	add := func(nt *note, example string) {
		if nt.n++; nt.n == 1 {
			nt.first = example
		}
	}
	for i, f := range facts {
		size := fmt.Sprintf("%s, %d high and %d wide", images[i], f.Size.Y, f.Size.X) // not "HxW": image tools write width first
		if dataset.Stretched(f.Size, in.Width, in.Height) {
			add(&stretched, size)
		}
		if 2*f.Size.X < in.Width || 2*f.Size.Y < in.Height {
			add(&enlarged, size)
		}
		if in.Channels == 1 && !f.Gray {
			add(&colour, images[i])
		}
		if in.Channels == 3 && f.Gray {
			add(&gray, images[i])
		}
		if f.Alpha {
			add(&alpha, images[i])
		}
	}
	var out []string
	for _, c := range []struct {
		nt   note
		what string
	}{
		{stretched, fmt.Sprintf("stretched to the model's %d high and %d wide from another shape", in.Height, in.Width)},
		{enlarged, fmt.Sprintf("enlarged more than twice to the model's %d high and %d wide", in.Height, in.Width)},
		{colour, colourRead(1)},
		{gray, colourRead(3)},
		{alpha, "partly transparent, read as over black"},
	} {
		if c.nt.n > 0 {
			out = append(out, imagesWere(c.nt.n, len(facts), c.what, c.nt.first)+": "+answersAlike)
		}
	}
	return out
}

// answersAlike ends a note on images that reading changed: why it matters.
const answersAlike = "a model answers such images as confidently as the ones it trained on; check that they are what it should see"

// imagesWere says that n of total images were what, with the first of
// them as an example.
func imagesWere(n, total int, what, first string) string {
	which := fmt.Sprintf("%d of the %d images were", n, total)
	switch {
	case total == 1:
		which = "the image was"
	case n == 1:
		which = fmt.Sprintf("1 of the %d images was", total)
	}
	return fmt.Sprintf("%s %s (%s)", which, what, first)
}

// colourRead is what reading does to an image of the other colour for a
// model of channels: colour read as gray, or gray as RGB.
func colourRead(channels int) string {
	if channels == 1 {
		return "in colour, read as gray for this gray model"
	}
	return "gray, read as RGB with three equal channels for this colour model"
}

// colourNote is predict's note on colour (inputNotes) for the images used
// (indices into files, the images' names in dir) of a folder read for a
// model of channels: how many of them were read in the other colour
// (recoloured, dataset.Dataset.Recoloured, in order), with the first; ""
// when none was. eval, bench and export --int8 would otherwise measure or
// calibrate on converted images without a word, and a wrong-colour camera
// feed look like a bad model.
func colourNote(dir string, files []string, recoloured []int, channels int, used []int) string {
	n, first := 0, -1
	for _, i := range used {
		if _, found := slices.BinarySearch(recoloured, i); found {
			if n++; first < 0 || i < first {
				first = i
			}
		}
	}
	if n == 0 {
		return ""
	}
	return imagesWere(n, len(used), colourRead(channels), filepath.Join(dir, filepath.FromSlash(files[first])))
}
