package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/internal/progress"
	"github.com/urfave/cli/v2"
)

func datasetCommand() *cli.Command {
	return &cli.Command{
		Name:  "dataset",
		Usage: "generate the study's leaves dataset or inspect an image folder",
		Description: `An image folder has one of two layouts, detected automatically:
  the leaves layout   LEAF_*.png (class "leaf") and NO_*.png (class "no_leaf") side by side,
                      as "nasctl dataset generate" writes them;
  class folders       one sub-folder per class (e.g. DIR/cat/*.jpg, DIR/dog/*.jpg); the class
                      names sorted give the labels 0, 1, ...
PNG, JPEG, GIF, BMP, TIFF and WebP files are read; other files are ignored. nasctl
makes its own splits: a folder split beforehand (train/CLASS/..., test/CLASS/...)
is refused, with what to give instead.`,
		Subcommands: []*cli.Command{datasetGenerateCommand(), datasetInfoCommand()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unknown command \"dataset %s\" (valid: generate, info)", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
	}
}

func datasetGenerateCommand() *cli.Command {
	return &cli.Command{
		Name:      "generate",
		Usage:     "write the synthetic leaves dataset of the founding study as grayscale PNG files",
		ArgsUsage: " ",
		Description: `Writes --count images LEAF_0000.png, ... and NO_0000.png, ... into --out: a noisy light
background with small discs, plus 1-3 dark leaves (ellipse with veins) in about half of the
images, or 0-3 distractor shapes (circle, rectangle, line) in the others. The same --seed
gives the same files byte for byte. A folder that already holds LEAF_/NO_ images is refused
unless --force is given, which deletes them first; one that holds other images or folders
is refused, --force or not. A generation stopped before its end
(Ctrl-C, a full disk) removes the images it wrote, so that no command later takes the
first few for a whole dataset; run it again to start over. A count so small that the
split train and search make would leave a class without training images is refused.
Example: nasctl dataset generate --out data/leaves --seed 1`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "folder to write the images into (created if missing; required)"},
			&cli.IntFlag{Name: "count", Value: dataset.DefaultCount, Usage: "number of images"},
			&cli.IntFlag{Name: "size", Value: dataset.DefaultSize, Usage: fmt.Sprintf("width and height in pixels, %d-%d; shapes scale with it", dataset.MinSize, dataset.MaxSize)},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed; the same seed gives the same dataset"},
			&cli.BoolFlag{Name: "rotate", Usage: "turn each leaf by a random angle (the study's leaves are axis-aligned)"},
			&cli.BoolFlag{Name: "force", Usage: "replace the LEAF_/NO_ images already in --out"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c, "give the folder with --out"); err != nil {
				return err
			}
			opts := datasetGenerateOptions{
				Out: c.String("out"),
				Options: dataset.Options{
					Count: c.Int("count"), Size: c.Int("size"), Seed: c.Uint64("seed"),
					Rotate: c.Bool("rotate"), Force: c.Bool("force"),
					Progress: progress.Counter(c.App.ErrWriter, "writing %d/%d files"),
				},
			}
			var problems []error
			if opts.Out == "" {
				problems = append(problems, errors.New("out: missing; give the folder to write the images into with --out DIR"))
			}
			check := opts.Options
			if check.Count < 1 { // zero would mean the default to the library
				problems = append(problems, fmt.Errorf("count: must be at least 1, got %d", check.Count))
				check.Count = dataset.DefaultCount // the other fields are still checked, and nothing more of the count
			}
			if err := check.Validate(); err != nil {
				problems = append(problems, err)
			} else if check.Count == opts.Count {
				if err := checkTrainingSplit(opts.Options); err != nil {
					problems = append(problems, err)
				}
			}
			if len(problems) > 0 {
				return usagef("%v", errors.Join(problems...))
			}
			return runDatasetGenerate(c.Context, opts, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// defaultSplits are the splits the commands that train make of a folder
// unless told otherwise: train's and search metaqnn's, and search
// nasnet's, all with split seed 1.
var defaultSplits = []string{"metaqnn", "nasnet"}

// checkTrainingSplit refuses a count whose images a default split would
// leave without training images of a class: a search on them runs, and
// reports a validation and test accuracy of a class it never saw. The
// error gives the smallest larger count that works with the seed.
func checkTrainingSplit(o dataset.Options) error {
	gap := func(o dataset.Options) (class, plan string) {
		for _, name := range defaultSplits {
			p, _ := dataset.ParseSplitPlan(name)
			if c, _ := o.TrainingGap(p, 1); c != "" {
				return c, name
			}
		}
		return "", ""
	}
	class, plan := gap(o)
	if class == "" {
		return nil
	}
	larger := o
	for larger.Count++; ; larger.Count++ {
		if c, _ := gap(larger); c == "" && larger.Validate() == nil {
			break
		}
	}
	return fmt.Errorf("count: with seed %d, the split that train and search make of %d images by default (--plan %s --split-seed 1) "+
		"would leave class %q without training images, and a search could not learn it; give --count %d, the smallest count above %d that works with seed %d",
		o.Seed, o.Count, plan, class, larger.Count, o.Count, o.Seed)
}

type datasetGenerateOptions struct {
	Out string
	dataset.Options
}

func runDatasetGenerate(ctx context.Context, opts datasetGenerateOptions, out, errOut io.Writer) error {
	start := time.Now()
	rep, err := dataset.Generate(ctx, opts.Out, opts.Options)
	if errors.Is(err, dataset.ErrDatasetExists) {
		return fmt.Errorf("%w; add --force to replace it", err)
	}
	var stopped *dataset.IncompleteError
	if errors.As(err, &stopped) {
		return incompleteDataset(stopped, errOut)
	}
	if err != nil {
		return err
	}
	size := opts.Size
	size = cmp.Or(size, dataset.DefaultSize)
	rotated := ""
	if opts.Rotate {
		rotated = ", rotated leaves"
	}
	fmt.Fprintf(out, "wrote %d images (%dx%d, seed %d%s) to %s: %d leaf (%.1f%%), %d no_leaf; %.1f MB in %.2f s\n",
		rep.Count, size, size, opts.Seed, rotated, opts.Out,
		rep.Leaf, 100*float64(rep.Leaf)/float64(rep.Count), rep.Count-rep.Leaf,
		float64(rep.Bytes)/1e6, time.Since(start).Seconds())
	return nil
}

// incompleteDataset says what a generation that stopped before its end
// left in its folder, and what to run next. An interrupt is said on errOut,
// as main reports a cancelled command by its exit code and one word.
func incompleteDataset(e *dataset.IncompleteError, errOut io.Writer) error {
	what := fmt.Sprintf("stopped after writing %s of %s images", humanize.Comma(int64(e.Written)), humanize.Comma(int64(e.Count)))
	next := fmt.Sprintf("they were removed, and %s holds no partial dataset: run the same command again to generate all %s", e.Dir, humanize.Comma(int64(e.Count)))
	if e.Kept > 0 {
		next = fmt.Sprintf("removing them failed (%v): %s holds %s of them, a partial dataset that reads as a whole one; run the same command again with --force to replace it",
			e.RemoveErr, e.Dir, humanize.Comma(int64(e.Kept)))
	}
	if errors.Is(e.Err, context.Canceled) {
		fmt.Fprintf(errOut, "%s; %s\n", what, next)
		return e.Err
	}
	return fmt.Errorf("%v: %s; %s", e.Err, what, next)
}

func datasetInfoCommand() *cli.Command {
	plans := strings.Join(dataset.SplitPlanNames(), ", ")
	return &cli.Command{
		Name:      "info",
		Usage:     "count the images of a folder per class and per split",
		ArgsUsage: "DIR",
		Description: `Reads every image of DIR (see "nasctl dataset --help" for the layouts) and prints the
image count and size, the channels, the content hash, the images per class, and the images
per class in the training, validation and test sets of a split plan:
  metaqnn        the study's MetaQNN split: 30% test, validation = 20% of the rest
  nasnet         the study's NASNet retraining: 30% test, validation = 11% of the rest
  nasnet-search  the study's NASNet search: keep 20%, then 30% test, validation = 11% of the rest
Each plan has a stratified form, NAME-stratified (metaqnn-stratified, ...): every class is
split apart by the same shares, so that a small class keeps images in every set; the
study's plans shuffle all images together, and a small class may then miss a set, which
is warned of. The split shuffles with --seed. A file that cannot be read fails the command unless
--skip-bad is given; skipped files are listed.
Example: nasctl dataset info data/leaves --json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "plan", Value: "metaqnn", Usage: "split plan: " + plans},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the split's shuffle"},
			&cli.StringFlag{Name: "size", Usage: "resize every image to N (square) or HEIGHTxWIDTH pixels (default: the images' own size, which must then be the same for all)"},
			&cli.IntFlag{Name: "channels", Usage: "1 (gray) or 3 (RGB); 0 picks 1 when every image is gray"},
			skipBadFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object instead of text"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("dataset info takes one folder argument (got %d arguments)", c.NArg())
			}
			if err := checkFolderArg(c.Args().First(), c.Args().First()); err != nil {
				return err
			}
			opts := datasetInfoOptions{
				Dir: c.Args().First(), PlanName: c.String("plan"), Seed: c.Uint64("seed"), JSON: c.Bool("json"),
				Load: dataset.LoadOptions{
					Channels: c.Int("channels"), SkipBad: c.Bool("skip-bad"),
					Progress: progress.Counter(c.App.ErrWriter, "reading %d/%d files"),
				},
			}
			var err error
			if opts.Plan, err = dataset.ParseSplitPlan(opts.PlanName); err != nil {
				return usagef("--plan: %v", err)
			}
			if s := c.String("size"); s != "" {
				if opts.Load.Height, opts.Load.Width, err = parseDatasetSize(s); err != nil {
					return usagef("--size: %v", err)
				}
			}
			if ch := opts.Load.Channels; ch != 0 && ch != 1 && ch != 3 {
				return usagef("--channels %d: must be 1, 3 or 0 (automatic)", ch)
			}
			return runDatasetInfo(c.Context, opts, c.App.Writer)
		},
	}
}

type datasetInfoOptions struct {
	Dir      string
	PlanName string
	Plan     dataset.SplitPlan
	Seed     uint64
	JSON     bool
	Load     dataset.LoadOptions
}

// datasetInfo is the JSON form of dataset info.
type datasetInfo struct {
	Dir      string             `json:"dir"`
	Layout   string             `json:"layout"`
	Images   int                `json:"images"`
	Height   int                `json:"height"`
	Width    int                `json:"width"`
	Channels int                `json:"channels"`
	Hash     string             `json:"hash"`
	Classes  []datasetInfoClass `json:"classes"`
	Split    datasetInfoSplit   `json:"split"`
	Skipped  []datasetInfoBad   `json:"skipped"`
	Ignored  int                `json:"ignored"` // files without an image extension
	// IgnoredFiles names the first of them, relative to the folder.
	IgnoredFiles []string `json:"ignored_files,omitempty"`
	// Warnings name the classes the split leaves out of a set, and copies
	// of an image in another class or set (dataset.CopyWarnings).
	Warnings []string `json:"warnings"`
}

type datasetInfoClass struct {
	Label  int    `json:"label"`
	Name   string `json:"name"`
	Images int    `json:"images"`
	Train  int    `json:"train"`
	Val    int    `json:"val"`
	Test   int    `json:"test"`
}

type datasetInfoSplit struct {
	Plan      string  `json:"plan"`
	Seed      uint64  `json:"seed"`
	Fraction  float64 `json:"fraction"`
	TestShare float64 `json:"test_share"`
	ValShare  float64 `json:"val_share"`
	Train     int     `json:"train"`
	Val       int     `json:"val"`
	Test      int     `json:"test"`
}

type datasetInfoBad struct {
	File  string `json:"file"`
	Error string `json:"error"`
}

func runDatasetInfo(_ context.Context, opts datasetInfoOptions, out io.Writer) error {
	d, rep, err := dataset.Load(opts.Dir, opts.Load)
	if err != nil {
		return withSizeAdvice(err, "give --size HEIGHTxWIDTH (or N for a square) to resize every image to it")
	}
	split, err := d.Split(opts.Plan, opts.Seed)
	if err != nil {
		return err
	}
	info := datasetInfo{
		Dir: d.Dir, Layout: d.Layout.String(), Images: d.Len(), Height: d.Height, Width: d.Width,
		Channels: d.Channels, Hash: d.Hash, Skipped: []datasetInfoBad{}, Ignored: rep.Ignored, IgnoredFiles: rep.IgnoredFiles, Warnings: append([]string{}, d.SplitWarnings(split, opts.PlanName, false)...),
		Split: datasetInfoSplit{
			Plan: opts.PlanName, Seed: opts.Seed, Fraction: opts.Plan.Fraction,
			TestShare: opts.Plan.TestShare, ValShare: opts.Plan.ValShare,
			Train: len(split.Train), Val: len(split.Val), Test: len(split.Test),
		},
	}
	all, train, val, test := d.ClassCounts(nil), d.ClassCounts(split.Train), d.ClassCounts(split.Val), d.ClassCounts(split.Test)
	for i, name := range d.Classes {
		info.Classes = append(info.Classes, datasetInfoClass{Label: i, Name: name, Images: all[i], Train: train[i], Val: val[i], Test: test[i]})
	}
	for _, b := range rep.Skipped {
		info.Skipped = append(info.Skipped, datasetInfoBad{File: b.Path, Error: b.Err.Error()})
	}
	if opts.JSON {
		return printJSON(out, info)
	}
	printDatasetInfo(out, info)
	return nil
}

func printDatasetInfo(out io.Writer, r datasetInfo) {
	channels := "1 channel (gray)"
	if r.Channels == 3 {
		channels = "3 channels (RGB)"
	}
	layout := r.Layout + " layout"
	if r.Layout == dataset.LayoutPrefix.String() { // "prefix" in JSON, for scripts
		layout = "the leaves layout: LEAF_* and NO_* names"
	}
	fmt.Fprintf(out, "%s (%s)\n%d images, %dx%d, %s\n%s\n\n", r.Dir, layout, r.Images, r.Height, r.Width, channels, r.Hash)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "label\tclass\timages\tshare\ttrain\tval\ttest\t")
	for _, c := range r.Classes {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%.1f%%\t%d\t%d\t%d\t\n", c.Label, c.Name, c.Images, 100*float64(c.Images)/float64(r.Images), c.Train, c.Val, c.Test)
	}
	s := r.Split
	fmt.Fprintf(tw, "\ttotal\t%d\t\t%d\t%d\t%d\t\n", r.Images, s.Train, s.Val, s.Test)
	tw.Flush()
	fmt.Fprintf(out, "\nsplit %s, seed %d: keep %g%%, test %g%%, validation %g%% of the rest\n",
		s.Plan, s.Seed, 100*s.Fraction, 100*s.TestShare, 100*s.ValShare)
	switch {
	case r.Ignored == 1:
		fmt.Fprintf(out, "1 file without an image extension ignored: %s\n", r.IgnoredFiles[0])
	case r.Ignored > len(r.IgnoredFiles):
		fmt.Fprintf(out, "%d files without an image extension ignored, among them %s\n", r.Ignored, strings.Join(r.IgnoredFiles, ", "))
	case r.Ignored > 1:
		fmt.Fprintf(out, "%d files without an image extension ignored: %s\n", r.Ignored, english.WordSeries(r.IgnoredFiles, "and"))
	}
	if len(r.Skipped) > 0 { // only --skip-bad skips
		fmt.Fprintf(out, "%s skipped\n", plural(len(r.Skipped), "file"))
	}
	for _, b := range r.Skipped {
		fmt.Fprintf(out, "  %s: %s\n", b.File, b.Error)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
}

// parseDatasetSize reads "N" (N x N) or "HEIGHTxWIDTH", the order of --input.
func parseDatasetSize(s string) (height, width int, err error) {
	hs, ws, found := strings.Cut(s, "x")
	if !found {
		ws = hs
	}
	height, err1 := strconv.Atoi(hs)
	width, err2 := strconv.Atoi(ws)
	if err1 != nil || err2 != nil || height < 1 || width < 1 {
		return 0, 0, fmt.Errorf("%q: want N or HEIGHTxWIDTH with positive integers, e.g. 64 or 64x48", s)
	}
	return height, width, nil
}

// plural is "1 file" or "N files".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
