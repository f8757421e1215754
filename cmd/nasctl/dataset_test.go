package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/dataset"
)

// runDataset runs nasctl with args and returns its exit code, stdout and stderr.
func runDataset(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"nasctl"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// datasetHash loads the images of dir and returns their content hash (every
// file's SHA-256 and name) and count.
func datasetHash(t *testing.T, dir string) (string, int) {
	t.Helper()
	d, _, err := dataset.Load(dir, dataset.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Hash, d.Len()
}

func TestDatasetGenerateTwiceIdentical(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	code, out, errOut := runDataset(t, "dataset", "generate", "--out", a, "--count", "150", "--seed", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !regexp.MustCompile(`^wrote 150 images \(64x64, seed 1\) to .*: \d+ leaf \(\d+\.\d%\), \d+ no_leaf; \d+\.\d MB in \d+\.\d\d s\n$`).MatchString(out) {
		t.Errorf("summary line: %q", out)
	}
	if errOut != "" {
		t.Errorf("stderr not quiet when it is not a terminal: %q", errOut)
	}
	if code, _, errOut := runDataset(t, "dataset", "generate", "--count=150", "--out", b); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	ha, na := datasetHash(t, a)
	hb, nb := datasetHash(t, b)
	if na != 150 || nb != 150 || ha != hb {
		t.Fatalf("%d images (%s) and %d (%s): want the same 150 from two runs with seed 1", na, ha, nb, hb)
	}

	// A second run into the same folder is refused (exit 1) unless --force.
	code, _, errOut = runDataset(t, "dataset", "generate", "--out", a, "--count", "20")
	if code != 1 || !strings.Contains(errOut, "already holds a leaves dataset (150 LEAF_/NO_ images); add --force") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	if code, _, errOut := runDataset(t, "dataset", "generate", "--out", a, "--count", "20", "--force", "--rotate", "--size", "32"); code != 0 {
		t.Fatalf("--force: exit %d: %s", code, errOut)
	}
	if _, n := datasetHash(t, a); n != 20 {
		t.Errorf("%d images after --force, want 20", n)
	}
}

// TestDatasetStudyDataset checks the figures the issue asks for on the study's
// 4,000 images: about half are leaf images (the binomial bound of the dataset
// package's TestLeafShare: 2000 +- 158) and the MetaQNN split is 2240/560/1200.
func TestDatasetStudyDataset(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 4,000 files")
	}
	dir := t.TempDir()
	if code, _, errOut := runDataset(t, "dataset", "generate", "--out", dir, "--seed", "1"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, out, errOut := runDataset(t, "dataset", "info", dir, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var info datasetInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if info.Images != 4000 || info.Height != 64 || info.Width != 64 || info.Channels != 1 || info.Layout != "prefix" {
		t.Errorf("info %+v", info)
	}
	if leaf := info.Classes[1]; leaf.Name != "leaf" || leaf.Images < 2000-158 || leaf.Images > 2000+158 {
		t.Errorf("leaf class %+v", leaf)
	}
	if s := info.Split; s.Train != 2240 || s.Val != 560 || s.Test != 1200 {
		t.Errorf("split %+v", s)
	}
}

func TestDatasetInfo(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runDataset(t, "dataset", "generate", "--out", dir, "--count", "200", "--seed", "3"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// Flags after the folder, JSON: the counts add up per class and per split.
	// MetaQNN on 200 images: test ceil(0.3*200) = 60, train floor(0.8*140) = 112, val 28.
	code, out, errOut := runDataset(t, "dataset", "info", dir, "--json", "--seed", "5")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var info datasetInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var images, train, val, test int
	for _, c := range info.Classes {
		images += c.Images
		train += c.Train
		val += c.Val
		test += c.Test
		if c.Train+c.Val+c.Test != c.Images {
			t.Errorf("class %s: %d+%d+%d != %d", c.Name, c.Train, c.Val, c.Test, c.Images)
		}
	}
	if images != 200 || train != 112 || val != 28 || test != 60 || info.Split.Train != 112 || info.Split.Seed != 5 {
		t.Errorf("totals %d %d/%d/%d, split %+v", images, train, val, test, info.Split)
	}
	if !strings.HasPrefix(info.Hash, "sha256:") || len(info.Skipped) != 0 {
		t.Errorf("hash %q, skipped %v", info.Hash, info.Skipped)
	}

	// Text form, NASNet search plan: keep 40, test 12, train floor(0.89*28) = 24, val 4.
	code, out, _ = runDataset(t, "dataset", "info", "--plan", "nasnet-search", dir)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !regexp.MustCompile(`total\s+200\s+24\s+4\s+12\s`).MatchString(out) {
		t.Errorf("no total line 200 / 24 / 4 / 12:\n%s", out)
	}
	for _, want := range []string{"(the leaves layout: LEAF_* and NO_* names)\n200 images, 64x64, 1 channel (gray)", "no_leaf", "leaf",
		"split nasnet-search, seed 1: keep 20%, test 30%, validation 11% of the rest"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "skipped") { // nothing is, without --skip-bad
		t.Errorf("output names skipped files:\n%s", out)
	}
	// A file that is not an image is named as it is left out.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, _ = runDataset(t, "dataset", "info", dir); code != 0 || !strings.Contains(out, "1 file without an image extension ignored: notes.txt\n") {
		t.Errorf("a text file: exit %d:\n%s", code, out)
	}
}

func TestDatasetInfoClassFoldersRGB(t *testing.T) {
	dir := t.TempDir()
	for i, class := range []string{"red", "blue"} {
		img := image.NewRGBA(image.Rect(0, 0, 20, 10))
		for p := 0; p < len(img.Pix); p += 4 {
			img.Pix[p+2*i], img.Pix[p+3] = 255, 255
		}
		writeDatasetPNG(t, filepath.Join(dir, class, "a.png"), img)
		writeDatasetPNG(t, filepath.Join(dir, class, "b.png"), img)
	}
	code, out, errOut := runDataset(t, "dataset", "info", dir, "--size", "8x16", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var info datasetInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if info.Layout != "class-folders" || info.Channels != 3 || info.Height != 8 || info.Width != 16 ||
		len(info.Classes) != 2 || info.Classes[0].Name != "blue" || info.Classes[1].Images != 2 {
		t.Errorf("info %+v", info)
	}
	// --channels 1 forces gray.
	code, out, _ = runDataset(t, "dataset", "info", dir, "--size", "8", "--channels", "1")
	if code != 0 || !strings.Contains(out, "4 images, 8x8, 1 channel (gray)") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func writeDatasetPNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDatasetInfoBadFiles(t *testing.T) {
	dir := t.TempDir()
	gray := image.NewGray(image.Rect(0, 0, 4, 4))
	gray.SetGray(0, 0, color.Gray{Y: 9})
	writeDatasetPNG(t, filepath.Join(dir, "LEAF_0000.png"), gray)
	writeDatasetPNG(t, filepath.Join(dir, "NO_0000.png"), gray)
	if err := os.WriteFile(filepath.Join(dir, "NO_0001.png"), []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runDataset(t, "dataset", "info", dir)
	if code != 1 || !strings.Contains(errOut, filepath.Join(dir, "NO_0001.png")+": not a decodable image") ||
		!strings.Contains(errOut, "add --skip-bad") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	code, out, errOut := runDataset(t, "dataset", "info", "--skip-bad", dir)
	if code != 0 || !strings.Contains(out, "2 images, 4x4") || !strings.Contains(out, "1 file skipped\n  "+filepath.Join(dir, "NO_0001.png")) {
		t.Errorf("exit %d: %s\n%s", code, errOut, out)
	}
}

func TestDatasetErrors(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"dataset", "generate"}, 2, "out: missing"},
		{[]string{"dataset", "generate", "--out", empty, "extra"}, 2, "takes no arguments"},
		{[]string{"dataset", "generate", "--out", empty, "--count", "0", "--size", "8"}, 2,
			"count: must be at least 1, got 0\nsize: must be in [16, 1024] pixels, got 8"},
		// A count below 1 is said once, nothing more about it.
		{[]string{"dataset", "generate", "--out", empty, "--count", "0"}, 2, "nasctl: count: must be at least 1, got 0\nRun "},
		{[]string{"dataset", "generate", "--out", empty, "--count", "-5"}, 2, "nasctl: count: must be at least 1, got -5\nRun "},
		{[]string{"dataset", "generate", "--out", empty, "--count", "1"}, 2,
			"count: with seed 1, the class drawn for each of the 1 image(s) would be the same, and a classifier needs both; give a larger count or another seed"},
		{[]string{"dataset", "generate", "--out", empty, "--seed", "-1"}, 2, "--seed -1: want a whole number, 0 or more\n"},
		{[]string{"dataset", "generate", "--nope"}, 2, "unknown flag --nope"},
		{[]string{"dataset", "generate", "--out", "x", "--count", "x"}, 2, "--count x: want a whole number\n"},
		{[]string{"dataset", "generate", "--out"}, 2, "flag needs an argument: --out"},
		{[]string{"dataset", "generate", "--out", "x", "--count", "for -x"}, 2, "--count for -x: want a whole number\n"},
		{[]string{"dataset", "generate", "--out", "x", "--rotate=maybe"}, 2, "--rotate maybe: want true or false\n"},
		{[]string{"help", "nosuch"}, 2, "No help topic for 'nosuch'"},
		{[]string{"dataset", "info"}, 2, "takes one folder argument"},
		{[]string{"dataset", "info", empty, empty}, 2, "takes one folder argument (got 2"},
		{[]string{"dataset", "info", empty, "--plan", "nope"}, 2, "valid: metaqnn, metaqnn-stratified, nasnet, nasnet-search, nasnet-search-stratified, nasnet-stratified"},
		{[]string{"dataset", "info", empty, "--size", "64x"}, 2, "--size"},
		{[]string{"dataset", "info", empty, "--channels", "2"}, 2, "--channels 2"},
		{[]string{"dataset", "frob"}, 2, `unknown command "dataset frob"`},
		{[]string{"dataset", "info", empty}, 1, "is empty; expected image files named LEAF_* and NO_*"},
		{[]string{"dataset", "info", filepath.Join(empty, "missing")}, 2, filepath.Join(empty, "missing") + ": no such file or directory; give a folder of image files"},
		{[]string{"dataset", "info", filepath.Join(empty, "missing"), "--json"}, 2, "no such file or directory"},
	}
	for _, tc := range tests {
		code, out, errOut := runDataset(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
		if out != "" {
			t.Errorf("%v: stdout %q, want nothing", tc.args, out)
		}
	}
}

func TestDatasetHelp(t *testing.T) {
	for _, args := range [][]string{{"dataset", "--help"}, {"dataset", "generate", "--help"}, {"dataset", "info", "--help"}, {"dataset"}} {
		code, out, _ := runDataset(t, args...)
		if code != 0 || !strings.Contains(out, "USAGE") || !strings.Contains(out, "DESCRIPTION") {
			t.Errorf("%v: exit %d:\n%s", args, code, out)
		}
	}
	_, out, _ := runDataset(t, "dataset", "generate", "--help")
	for _, flag := range []string{"--out", "--count", "--size", "--seed", "--rotate", "--force"} {
		if !strings.Contains(out, flag) {
			t.Errorf("generate help lacks %s", flag)
		}
	}
}

// dataset info on images of two sizes names its own flag for the size, and
// gives sizes height first, as the flag takes them.
func TestDatasetInfoMixedSizes(t *testing.T) {
	dir := t.TempDir()
	writeDatasetPNG(t, filepath.Join(dir, "a", "0.png"), image.NewGray(image.Rect(0, 0, 20, 10)))
	writeDatasetPNG(t, filepath.Join(dir, "b", "0.png"), image.NewGray(image.Rect(0, 0, 8, 8)))
	code, _, errOut := runDataset(t, "dataset", "info", dir)
	if code != 1 || !strings.Contains(errOut, "is 10 high and 20 wide (HxW 10x20)") || !strings.Contains(errOut, "give --size HEIGHTxWIDTH (or N for a square)") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	// At one size given, the image of another shape is stretched, and
	// dataset info and train say so; a shift of half the images' side is
	// refused before training as a usage error (exit 2), the images' size
	// known only once read.
	want := "warning: 1 of the 2 images is stretched to 8 high and 8 wide from another shape (first: " + filepath.Join(dir, "a", "0.png") + ", 10 high and 20 wide)"
	if code, out, errOut := runDataset(t, "dataset", "info", dir, "--size", "8"); code != 0 || !strings.Contains(out, want) {
		t.Errorf("dataset info --size 8: exit %d: %s%s; want %q", code, out, errOut, want)
	}
	for i := 1; i < 6; i++ { // enough images for a split
		writeDatasetPNG(t, filepath.Join(dir, "a", fmt.Sprintf("%d.png", i)), image.NewGray(image.Rect(0, 0, 8, 8)))
		writeDatasetPNG(t, filepath.Join(dir, "b", fmt.Sprintf("%d.png", i)), image.NewGray(image.Rect(0, 0, 8, 8)))
	}
	model := filepath.Join(t.TempDir(), "m.onnx")
	if code, _, errOut := runDataset(t, "train", "--arch", "SM()", "--data", dir, "--input", "8x8", "--epochs", "1", "--threads", "1", "--out", model); code != 0 ||
		!strings.Contains(errOut, strings.Replace(want, "2 images", "12 images", 1)) {
		t.Errorf("train --input 8x8: exit %d: %s", code, errOut)
	}
	code, _, errOut = runDataset(t, "train", "--arch", "SM()", "--data", dir, "--input", "8x8", "--augment", "shift:4", "--epochs", "1", "--threads", "1", "--out", model)
	if code != 2 || !strings.Contains(errOut, "nasctl: --augment: augmentation shift:4: a shift of 4 pixels would move images of 8x8 by half their size or more; give at most shift:3") ||
		strings.Contains(errOut, "epoch") {
		t.Errorf("train --augment shift:4 on 8x8 images: exit %d: %s", code, errOut)
	}
}

// A class too small for every set is named by dataset info and train; a
// folder too small to train on is refused before any training.
func TestSmallClasses(t *testing.T) {
	dir := t.TempDir()
	img := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range 10 {
		writeDatasetPNG(t, filepath.Join(dir, "a", fmt.Sprintf("%d.png", i)), img)
		writeDatasetPNG(t, filepath.Join(dir, "b", fmt.Sprintf("%d.png", i)), img)
	}
	writeDatasetPNG(t, filepath.Join(dir, "rare", "0.png"), img)
	code, out, _ := runDataset(t, "dataset", "info", dir)
	if code != 0 || !strings.Contains(out, `warning: class "rare" has no`) {
		t.Errorf("dataset info: exit %d:\n%s", code, out)
	}
	code, _, errOut := runDataset(t, "train", "--arch", "SM()", "--data", dir, "--epochs", "1", "--threads", "1", "--out", filepath.Join(t.TempDir(), "m.onnx"))
	if code != 0 || !strings.Contains(errOut, `warning: class "rare" has no`) {
		t.Errorf("train: exit %d:\n%s", code, errOut)
	}
	tiny := t.TempDir()
	writeDatasetPNG(t, filepath.Join(tiny, "a", "0.png"), img)
	writeDatasetPNG(t, filepath.Join(tiny, "b", "0.png"), img)
	code, _, errOut = runDataset(t, "train", "--arch", "SM()", "--data", tiny, "--epochs", "1", "--out", filepath.Join(t.TempDir(), "m.onnx"))
	if code != 1 || !strings.Contains(errOut, "its 2 images leave 0 for training and 1 for validation under the split plan metaqnn; a classifier needs more images") {
		t.Errorf("train on 2 images: exit %d: %s", code, errOut)
	}
}

// A count whose default split leaves a class without training images is
// refused, naming the next count that works; the counts come from
// dataset.Options.TrainingGap, which the dataset package checks against
// the folders Generate writes. With seed 1, 5 images hold 2 leaf images,
// which the metaqnn split (2 test, 2 training, 1 validation image) leaves
// out of training; 6 is the first count whose split trains on both.
func TestDatasetGenerateRefusesTrainingGap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	code, _, errOut := runDataset(t, "dataset", "generate", "--out", dir, "--count", "3")
	want := "count: with seed 1, the split that train and search make of 3 images by default (--plan metaqnn --split-seed 1) " +
		`would leave class "leaf" without training images, and a search could not learn it; give --count 6, the smallest count above 3 that works with seed 1`
	if code != 2 || !strings.Contains(errOut, want) {
		t.Errorf("--count 3: exit %d, %q; want exit 2 and %q", code, errOut, want)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("--count 3 refused, yet %s: %v", dir, err)
	}
	if code, _, errOut := runDataset(t, "dataset", "generate", "--out", dir, "--count", "5"); code != 2 || !strings.Contains(errOut, "give --count 6,") {
		t.Errorf("--count 5: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runDataset(t, "dataset", "generate", "--out", dir, "--count", "6"); code != 0 {
		t.Fatalf("--count 6: exit %d, %s", code, errOut)
	}
	code, out, errOut := runDataset(t, "dataset", "info", dir, "--json")
	var info datasetInfo
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
		t.Fatalf("info: exit %d: %s%s", code, out, errOut)
	}
	for _, c := range info.Classes {
		if c.Train == 0 {
			t.Errorf("6 images: class %q has no training image: %+v", c.Name, info)
		}
	}
}

// A generation stopped by Ctrl-C says how far it got, removes what it
// wrote (a first few images would pass for a whole dataset), and the same
// command then runs again without --force.
func TestDatasetGenerateInterrupted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "big")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := datasetGenerateOptions{Out: dir, Options: dataset.Options{Count: 300, Seed: 1, Size: 16, Workers: 2, Progress: func(done, _ int) {
		if done == 10 {
			cancel()
		}
	}}}
	var out, errOut bytes.Buffer
	err := runDatasetGenerate(ctx, opts, &out, &errOut)
	said := regexp.MustCompile(`^stopped after writing (\d+) of 300 images; they were removed, and ` + regexp.QuoteMeta(dir) +
		` holds no partial dataset: run the same command again to generate all 300\n$`)
	if !errors.Is(err, context.Canceled) || !said.MatchString(errOut.String()) || out.Len() > 0 {
		t.Errorf("err %v, stdout %q, stderr %q; want context.Canceled and %s", err, out.String(), errOut.String(), said)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("%s after the interrupt: %d files (%v), want none", dir, len(entries), err)
	}
	if code, _, errOut := runDataset(t, "dataset", "generate", "--out", dir, "--count", "20", "--size", "16"); code != 0 {
		t.Errorf("generate again without --force: exit %d, %s", code, errOut)
	}
}
