package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/internal/atomicfile"
	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
	"github.com/urfave/cli/v2"
)

// memoryFlag is --max-memory of the commands that train.
func memoryFlag() cli.Flag {
	return &cli.StringFlag{Name: "max-memory", Usage: `most memory one training may hold, e.g. 6GiB; trainings estimated above it are refused before anything is allocated (default: the memory the machine has available when training starts; "none": no limit)`}
}

// maxMemory parses --max-memory into runtime.Budget.MaxMemory's units:
// bytes, 0 for the available memory, -1 for no limit.
func maxMemory(c *cli.Context) (int64, error) {
	s := strings.TrimSpace(c.String("max-memory"))
	switch strings.ToLower(s) {
	case "":
		return 0, nil
	case "none":
		return -1, nil
	}
	n, err := humanize.ParseBytes(s)
	if err != nil || n == 0 || n > 1<<62 {
		return 0, usagef("--max-memory %q: give a size such as 6GiB or 800MB, or none", s)
	}
	return int64(n), nil
}

// skipBadFlag is --skip-bad of the commands that read image folders.
func skipBadFlag() cli.Flag {
	return &cli.BoolFlag{Name: "skip-bad", Usage: "leave out unreadable, empty or corrupt image files (they are listed) instead of failing on the first"}
}

// badFileHint is what an error about an unusable image adds, once.
const badFileHint = "add --skip-bad to skip such files"

// withBadFileHint adds badFileHint to an error that names an unusable image
// file, unless it says it already, or nothing is at the path at all (not
// even a dangling link): a mistyped path wants mending, not skipping.
func withBadFileHint(err error) error {
	var bad *dataset.BadFile
	if !errors.As(err, &bad) || strings.Contains(err.Error(), "--skip-bad") {
		return err
	}
	if _, lerr := os.Lstat(bad.Path); errors.Is(lerr, os.ErrNotExist) {
		return err
	}
	return fmt.Errorf("%w; %s", err, badFileHint)
}

// loadAsTrained is dataset.Load of dir for a command that measures a model
// trained on the images of data hash trained. When a bad file stops the
// load and --skip-bad was not given, the folder is read again without its
// bad files, and that is kept when the rest are the very images the model
// trained on: its search or training skipped the same files (--skip-bad,
// or the run's skip_bad). Otherwise the first error stands.
func loadAsTrained(dir string, lo dataset.LoadOptions, trained string, errOut io.Writer) (*dataset.Dataset, error) {
	d, _, err := dataset.Load(dir, lo)
	var bad *dataset.BadFile
	if err == nil || lo.SkipBad || trained == "" || !errors.As(err, &bad) {
		return d, err
	}
	var skipped []*dataset.BadFile
	lo.SkipBad, lo.Skipped = true, func(b []*dataset.BadFile) { skipped = b }
	if d, _, serr := dataset.Load(dir, lo); serr == nil && d.Hash == trained {
		listBad(errOut, fmt.Sprintf("note: %s without its %s, as the model's training read it (the other images are the ones it trained on: the same data hash)",
			dir, english.Plural(len(skipped), "bad file", "")), skipped)
		return d, nil
	}
	return nil, err
}

// reportSkipped lists the files --skip-bad left out.
func reportSkipped(w io.Writer, bad []*dataset.BadFile) {
	if len(bad) == 0 {
		return
	}
	listBad(w, fmt.Sprintf("skipped %s (--skip-bad)", english.Plural(len(bad), "bad file", "")), bad)
}

// listBad writes head and the bad files, one to a line.
func listBad(w io.Writer, head string, bad []*dataset.BadFile) {
	fmt.Fprintf(w, "%s:\n", head)
	for _, b := range bad {
		fmt.Fprintf(w, "  %v\n", b)
	}
}

// checkDataFolder returns a usage error when the image folder given with
// --flag is not a folder, before anything is loaded.
func checkDataFolder(flag, dir string) error {
	return checkFolderArg("--"+flag+" "+dir, dir)
}

// checkDataFlag is checkDataFolder for a search's --data, when given (a
// search may take its data from a config or from the run it resumes).
func checkDataFlag(c *cli.Context) error {
	if !c.IsSet("data") {
		return nil
	}
	return checkDataFolder("data", c.String("data"))
}

// checkFolderArg is checkDataFolder for an image folder given as an
// argument (given: how the user wrote it).
func checkFolderArg(given, dir string) error {
	const what = "give a folder of " + dataset.Layouts + " (nasctl dataset --help)"
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return usagef("%s: %v; %s", given, unwrapPath(err), what)
	case !fi.IsDir():
		return usagef("%s is a file; %s", given, what)
	}
	// A run's folder reads as classes named after its folders (models,
	// winners), and the advice to empty one would damage the run.
	if _, err := os.Stat(filepath.Join(dir, rundir.FileTrials)); err == nil {
		if cfg, err := search.ReadConfig(dir); err == nil && cfg.Data != "" {
			return usagef("%s is a search's run folder, not an image folder: its images are in %s (its %s's data)", given, cfg.Data, rundir.FileConfig)
		}
		return usagef("%s is a search's run folder, not an image folder; %s", given, what)
	}
	return nil
}

// checkWritable returns a usage error when a file cannot be written at
// path, found by creating and removing a scratch file beside it, so that a
// long command fails before its work rather than after. A folder of path
// that is not there yet is checked at the nearest one that is.
func checkWritable(flag, path string) error {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return usagef("--%s %s is a folder; give a file name", flag, path)
	}
	// A folder that is not there yet is made when the file is written
	// (writeOut); until then, the nearest one that is must take it.
	for {
		fi, err := os.Stat(dir)
		if err == nil && !fi.IsDir() {
			return usagef("--%s %s: %s is a file, not a folder; choose another path", flag, path, dir)
		}
		if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	if err := canWriteIn(dir); err != nil {
		return usagef("--%s %s: cannot write in %s (%v); choose another path", flag, path, dir, err)
	}
	return nil
}

// writeOut writes data to path atomically, making its folder first when
// there is none (checkWritable let it through), as a search makes runs/.
func writeOut(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, unwrapPath(err)) // as atomicfile.Write says it
	}
	return atomicfile.Write(path, data)
}

// checkPrefixFolder returns a usage error when files whose path starts
// with prefix (a folder and the start of a name, as --profile takes)
// cannot be written: ONNX Runtime, which writes them, says nothing when it
// cannot.
func checkPrefixFolder(flag, prefix string) error {
	dir := filepath.Dir(prefix)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return usagef("--%s %s: the folder %s does not exist; create it or give another prefix", flag, prefix, dir)
	case err != nil:
		return usagef("--%s %s: %v; give another prefix", flag, prefix, err)
	case !fi.IsDir():
		return usagef("--%s %s: %s is not a folder; give a prefix in a folder, such as prof/step", flag, prefix, dir)
	}
	if err := canWriteIn(dir); err != nil {
		return usagef("--%s %s: cannot write in %s (%v); give a prefix in a folder you can write to", flag, prefix, dir, err)
	}
	return nil
}

// canWriteIn creates and removes a scratch file in dir, the one sure test
// that a file can be written there.
func canWriteIn(dir string) error {
	f, err := os.CreateTemp(dir, ".nasctl-write-check-*")
	if err != nil {
		return unwrapPath(err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// unwrapPath drops a *PathError's operation and path, which name the
// scratch file rather than the user's.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// saveOrRescue writes data to path atomically; if that fails, it writes it
// to the temporary folder instead and returns an error that says where, so
// that finished work is not lost.
func saveOrRescue(path string, data []byte) error {
	err := writeOut(path, data)
	if err == nil {
		return nil
	}
	rescue, err2 := rundir.Rescue(filepath.Base(path), data)
	if err2 != nil {
		return fmt.Errorf("%w; saving it to the temporary folder (%s) failed too: %v", err, os.TempDir(), err2)
	}
	return fmt.Errorf("%w; the model is saved in %s instead", err, rescue)
}

// withInputFlag names --input in dataset's error about images of different
// sizes, for the commands whose flag for the size is --input.
func withInputFlag(err error) error {
	return withSizeAdvice(err, "give --input HxW to resize every image to it, keeping their colour (e.g. --input 32x32), or HxWxC to choose gray (32x32x1) or RGB (32x32x3)")
}

// withSizeAdvice replaces the advice of dataset's error about images of
// different sizes with the command's own (which flag to give).
func withSizeAdvice(err error, advice string) error {
	var mixed *dataset.MixedSizesError
	if !errors.As(err, &mixed) {
		return err
	}
	return &rewordedError{msg: strings.Replace(err.Error(), mixed.Error(), mixed.Fact()+"; "+advice, 1), err: err}
}

// rewordedError is err with another message; errors.Is and errors.As still
// see err.
type rewordedError struct {
	msg string
	err error
}

func (e *rewordedError) Error() string { return e.msg }
func (e *rewordedError) Unwrap() error { return e.err }

// imageInput parses the --input of a command that reads images: HxWxC,
// with 1 channel (grayscale) or 3 (RGB), or HxW to keep the images' colour.
func imageInput(s string) (genotype.Input, error) {
	in, err := genotype.ParseImageSize(s)
	if err != nil {
		return in, usagef("--input: %v", err)
	}
	if ch := in.Channels; ch != 0 && ch != 1 && ch != 3 {
		return in, usagef("--input %s: images are read with 1 channel (grayscale) or 3 (RGB), not %d", s, ch)
	}
	return in, nil
}
