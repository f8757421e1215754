package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
	"github.com/urfave/cli/v2"
)

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:      "eval",
		Usage:     "measure an exported model's accuracy on an image folder",
		ArgsUsage: "MODEL.onnx",
		Description: `Reads the images of --data at the model's input size, splits them as training did
(--plan and --split-seed must match those of training) and prints the accuracy and the
confusion matrix of the chosen split.
Example: nasctl eval model.onnx --data data/leaves --split test`,
		Flags: append(append([]cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "image folder (required)"},
			&cli.StringFlag{Name: "split", Value: "test", Usage: "which images: train, val, test or all"},
			&cli.IntFlag{Name: "batch", Value: 128, Usage: "images per inference batch"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as one JSON object"},
			skipBadFlag(),
		}, deviceFlags()...), splitFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("eval takes one model file (got %d arguments)", c.NArg())
			}
			opts := evalOptions{Model: c.Args().First(), Data: c.String("data"), Split: c.String("split"), Batch: c.Int("batch"),
				SplitSeed: c.Uint64("split-seed"), JSON: c.Bool("json"), SkipBad: c.Bool("skip-bad")}
			if opts.Data == "" {
				return usagef("eval needs --data")
			}
			switch opts.Split {
			case "train", "val", "test", "all":
			default:
				return usagef("--split %q: valid: train, val, test, all", opts.Split)
			}
			var err error
			if opts.Plan, err = dataset.ParseSplitPlan(c.String("plan")); err != nil {
				return usagef("--plan: %v", err)
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
	Model, Data, Split string
	Plan               dataset.SplitPlan
	SplitSeed          uint64
	Batch              int
	JSON, SkipBad      bool
	Session            runtime.SessionOptions
}

type evalReport struct {
	Model   string   `json:"model"`
	Arch    string   `json:"arch,omitempty"`
	Split   string   `json:"split"`
	Classes []string `json:"classes"`
	runtime.Evaluation
}

func runEval(ctx context.Context, opts evalOptions, out, errOut io.Writer) error {
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
	d, split, err := dataset.LoadSplit(opts.Data, dataset.LoadOptions{Height: in.Height, Width: in.Width, Channels: in.Channels,
		SkipBad: opts.SkipBad, Skipped: func(bad []*dataset.BadFile) { reportSkipped(errOut, bad) }}, opts.Plan, opts.SplitSeed)
	if err != nil {
		return err
	}
	if err := dataset.CheckClasses(opts.Data, d.Classes, opts.Model, m.Info.Classes, "evaluate on data with the model's classes"); err != nil {
		return err
	}
	if h := m.Info.Meta[onnxgen.MetaDatasetHash]; h != "" && h != d.Hash {
		fmt.Fprintf(errOut, "warning: the model was trained on other data (%s); split membership may differ\n", h)
	}
	idx := map[string][]int{"train": split.Train, "val": split.Val, "test": split.Test}[opts.Split]
	if opts.Split == "all" {
		idx = seqInts(d.Len())
	}
	ev, err := m.Evaluate(ctx, runtime.Examples{Pixels: d.Pixels, Labels: d.Labels, Indices: idx}, opts.Batch)
	if err != nil {
		return err
	}
	rep := evalReport{Model: opts.Model, Arch: m.Info.Meta[onnxgen.MetaArch], Split: opts.Split, Classes: m.Info.Classes, Evaluation: *ev}
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(out, "%s on the %s split of %s: accuracy %.4f (%d of %d)\n\nconfusion (rows: true class, columns: predicted)\n",
		opts.Model, opts.Split, opts.Data, ev.Accuracy, ev.Correct, ev.N)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t")
	for _, c := range m.Info.Classes {
		fmt.Fprintf(tw, "%s\t", c)
	}
	fmt.Fprintln(tw)
	for i, row := range ev.Confusion {
		fmt.Fprintf(tw, "%s\t", m.Info.Classes[i])
		for _, n := range row {
			fmt.Fprintf(tw, "%d\t", n)
		}
		fmt.Fprintln(tw)
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
		ArgsUsage: "MODEL.onnx IMAGE...",
		Description: `Prints the predicted class and its probability for every image, resized and converted
to the model's input as in training.
Example: nasctl predict model.onnx photo1.png photo2.jpg`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per image"},
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

type prediction struct {
	Image         string             `json:"image"`
	Class         string             `json:"class"`
	Probability   float32            `json:"probability"`
	Probabilities map[string]float32 `json:"probabilities"`
}

type predictOptions struct {
	Model         string
	Images        []string
	JSON, SkipBad bool
	Session       runtime.SessionOptions
}

func runPredict(ctx context.Context, opts predictOptions, out, errOut io.Writer) error {
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
	var pixels []float32
	var images []string
	var bad []*dataset.BadFile
	for _, path := range opts.Images {
		px, err := dataset.ReadImage(path, in.Width, in.Height, in.Channels)
		var bf *dataset.BadFile
		if opts.SkipBad && errors.As(err, &bf) {
			bad = append(bad, bf)
			continue
		}
		if err != nil {
			return err
		}
		pixels, images = append(pixels, px...), append(images, path)
	}
	reportSkipped(errOut, bad)
	if len(images) == 0 {
		return fmt.Errorf("none of the %d images could be read", len(opts.Images))
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
		pr := prediction{Image: path, Class: m.Info.Classes[best], Probability: p[best], Probabilities: map[string]float32{}}
		for j, c := range m.Info.Classes {
			pr.Probabilities[c] = p[j]
		}
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
