package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/quantize"
)

// colourFolders writes 20 images of 16x16 pixels for each of the classes a
// and b into dir (a/00.png ... b/19.png), in colour when rgb, else gray: a
// class-folder set for the models of writeModel.
func colourFolders(t *testing.T, dir string, rgb bool) {
	t.Helper()
	for c, class := range []string{"a", "b"} {
		for i := range 20 {
			var img image.Image
			if rgb {
				m := image.NewNRGBA(image.Rect(0, 0, 16, 16))
				for p := range 16 * 16 {
					m.Set(p%16, p/16, color.NRGBA{uint8(p + i), uint8(40 * c), uint8(3 * p), 255})
				}
				img = m
			} else {
				m := image.NewGray(image.Rect(0, 0, 16, 16))
				for p := range m.Pix {
					m.Pix[p] = uint8(p + i + 40*c)
				}
				img = m
			}
			writeDatasetPNG(t, filepath.Join(dir, class, fmt.Sprintf("%02d.png", i)), img)
		}
	}
}

// colourFixture writes a gray and a colour model for the classes a and b
// (16x16 input) and an RGB and a gray folder of those classes.
func colourFixture(t *testing.T) (grayModel, rgbModel, rgbData, grayData string) {
	t.Helper()
	dir := t.TempDir()
	grayModel, rgbModel = filepath.Join(dir, "gray.onnx"), filepath.Join(dir, "rgb.onnx")
	writeModel(t, grayModel, "C(8,3,1) - P(2,2) - C(8,3,1) - GAP()", genotype.Input{Height: 16, Width: 16, Channels: 1})
	writeModel(t, rgbModel, "C(8,3,1) - P(2,2) - C(8,3,1) - GAP()", genotype.Input{Height: 16, Width: 16, Channels: 3})
	rgbData, grayData = filepath.Join(dir, "rgb"), filepath.Join(dir, "gray")
	colourFolders(t, rgbData, true)
	colourFolders(t, grayData, false)
	return grayModel, rgbModel, rgbData, grayData
}

// eval says, as predict does, when the folder's images are of the other
// colour than the model's (colour read as gray, gray read as RGB): how
// many, and the first; once for the models of one input; nothing when the
// colours match.
func TestEvalColourNote(t *testing.T) {
	grayModel, rgbModel, rgbData, grayData := colourFixture(t)
	colour := "note: " + grayModel + " on all images of " + rgbData + ": 40 of the 40 images were in colour, read as gray for this gray model (" +
		filepath.Join(rgbData, "a", "00.png") + "): a model answers such images as confidently"
	gray := "note: " + rgbModel + " on all images of " + grayData + ": 40 of the 40 images were gray, read as RGB with three equal channels for this colour model (" +
		filepath.Join(grayData, "a", "00.png") + ")"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{grayModel, grayModel, "--data", rgbData}, colour},
		{[]string{rgbModel, "--data", grayData}, gray},
		{[]string{grayModel, "--data", grayData}, ""},
		{[]string{rgbModel, "--data", rgbData}, ""},
	} {
		code, _, errOut := runCLI(t, append([]string{"eval", "--split", "all"}, tc.args...)...)
		switch {
		case code != 0:
			t.Errorf("%q: exit %d: %s", tc.args, code, errOut)
		case tc.want == "" && strings.Contains(errOut, "note:"):
			t.Errorf("%q: colours that match get no note:\n%s", tc.args, errOut)
		case tc.want != "" && strings.Count(errOut, tc.want) != 1:
			t.Errorf("%q: want once %q in:\n%s", tc.args, tc.want, errOut)
		}
	}
}

// A model trained on the very images (the data hash it records) saw them
// read so: eval, bench and export --int8 leave the note out for it, and
// keep it for a model trained elsewhere.
func TestColourNoteLeftOutForItsOwnData(t *testing.T) {
	grayModel, _, rgbData, _ := colourFixture(t)
	own := filepath.Join(t.TempDir(), "own.onnx")
	if code, _, errOut := runCLI(t, "train", "--arch", "C(4,3,1) - GAP()", "--data", rgbData, "--input", "16x16x1", "--epochs", "1",
		"--threads", "1", "--out", own); code != 0 {
		t.Fatalf("train: exit %d: %s", code, errOut)
	}
	out := t.TempDir()
	for _, args := range [][]string{
		{"eval", own, "--data", rgbData},
		{"bench", own, "--data", rgbData, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--out", out},
		{"export", own, "--int8", "--calibration", rgbData, "--images", "8", "--threads", "1", "--out", filepath.Join(out, "q.onnx")},
	} {
		if code, _, errOut := runCLI(t, args...); code != 0 || strings.Contains(errOut, "read as gray") {
			t.Errorf("%s: exit %d, want no colour note for a model trained on these images:\n%s", args[0], code, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "eval", grayModel, "--data", rgbData); code != 0 || !strings.Contains(errOut, "read as gray") {
		t.Errorf("eval of a model trained elsewhere: exit %d, want the colour note:\n%s", code, errOut)
	}
	// bench of both, the model of these images first: the other, of the
	// same input, still gets the note.
	code, _, errOut := runCLI(t, "bench", own, grayModel, "--data", rgbData, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--out", t.TempDir())
	if code != 0 || strings.Count(errOut, "read as gray") != 1 || !strings.Contains(errOut, "note: "+grayModel+" on the test images of ") {
		t.Errorf("bench of both: exit %d, want the note once, for %s:\n%s", code, grayModel, errOut)
	}
}

// bench with --data says so too, once per model input, before it times
// anything.
func TestBenchColourNote(t *testing.T) {
	grayModel, _, rgbData, _ := colourFixture(t)
	out := filepath.Join(t.TempDir(), "bench")
	code, _, errOut := runCLI(t, "bench", grayModel, grayModel, "--data", rgbData, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--out", out)
	// Of the test split's 12 images (30% of 40), which bench measures.
	want := "note: " + grayModel + " on the test images of " + rgbData + ": 12 of the 12 images were in colour, read as gray for this gray model (" + rgbData
	if code != 0 || strings.Count(errOut, want) != 1 || strings.Index(errOut, want) > strings.Index(errOut, "batch-1 latency of") {
		t.Errorf("exit %d; want once %q before the latency rounds in:\n%s", code, want, errOut)
	}
}

// export --int8 says that its calibration images were converted: the int8
// model's activation ranges come from them. Its summary points at bench
// for the latency, which it does not measure.
func TestExportInt8ColourNote(t *testing.T) {
	grayModel, _, rgbData, _ := colourFixture(t)
	q := filepath.Join(t.TempDir(), "q.onnx")
	code, stdout, errOut := runCLI(t, "export", grayModel, "--int8", "--calibration", rgbData, "--images", "8", "--threads", "1", "--out", q)
	// Of the 8 images that calibrate (--images 8), not the folder's 40.
	want := "note: calibrating " + grayModel + " on " + rgbData + ": 8 of the 8 images were in colour, read as gray for this gray model (" + rgbData
	if code != 0 || strings.Count(errOut, want) != 1 || !strings.Contains(errOut, "): the int8 model's activation ranges come from these images as read") {
		t.Errorf("exit %d; want once %q in:\n%s", code, want, errOut)
	}
	if bench := "nasctl bench " + grayModel + " " + q + " --data " + rgbData + "\n"; !strings.Contains(stdout, bench) {
		t.Errorf("no %q in:\n%s", bench, stdout)
	}
}

// The colour note counts only the images used (a split, the calibration
// images) and names the first of them: images converted elsewhere in the
// folder are not measured.
func TestColourNoteCountsUsedImages(t *testing.T) {
	files := []string{"a/0.png", "a/1.png", "b/2.png", "b/3.png", "b/4.png"}
	for _, tc := range []struct {
		recoloured, used []int
		want             string
	}{
		{[]int{1, 3, 4}, []int{4, 0, 3}, "2 of the 3 images were in colour, read as gray for this gray model (" + filepath.Join("d", "b", "3.png") + ")"},
		{[]int{1}, []int{0, 2}, ""},
		{nil, []int{0, 1}, ""},
		{[]int{0}, []int{0}, "the image was in colour, read as gray for this gray model (" + filepath.Join("d", "a", "0.png") + ")"},
	} {
		if got := colourNote("d", files, tc.recoloured, 1, tc.used); got != tc.want {
			t.Errorf("recoloured %v, used %v: %q, want %q", tc.recoloured, tc.used, got, tc.want)
		}
	}
}

// eval --json says that a model was saved from an interrupted training, as
// bench --json does; stderr's note alone left a script to parse it.
func TestEvalJSONInterrupted(t *testing.T) {
	grayModel, _, _, grayData := colourFixture(t)
	b, err := os.ReadFile(grayModel)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = quantize.SetMetadata(b, onnxgen.MetaInterrupted, "true"); err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.onnx")
	if err := os.WriteFile(cut, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for model, want := range map[string]bool{grayModel: false, cut: true} {
		code, out, errOut := runCLI(t, "eval", model, "--data", grayData, "--split", "all", "--json")
		var rep struct {
			Interrupted *bool `json:"interrupted"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || (rep.Interrupted != nil && *rep.Interrupted) != want || !want && rep.Interrupted != nil {
			t.Errorf("%s: exit %d, %s%s; want interrupted %v", model, code, out, errOut, want)
		}
	}
}

// eval gives each class's recall beside the confusion matrix, and the
// lowest for each of several models: read off the confusion matrix that
// --json gives.
func TestEvalRecall(t *testing.T) {
	model, _, _, data := colourFixture(t)
	code, out, errOut := runCLI(t, "eval", model, "--data", data, "--split", "all", "--json")
	var rep struct {
		Classes   []string `json:"classes"`
		Confusion [][]int  `json:"confusion"`
		Balanced  float64  `json:"balanced_accuracy"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Confusion) != len(rep.Classes) || len(rep.Classes) < 2 {
		t.Fatalf("--json: exit %d, %s%s", code, out, errOut)
	}
	low, lowClass, mean := 2.0, "", 0.0
	var rows []string
	for i, row := range rep.Confusion {
		sum := 0
		for _, n := range row {
			sum += n
		}
		r := float64(row[i]) / float64(sum)
		if r < low {
			low, lowClass = r, rep.Classes[i]
		}
		rows = append(rows, fmt.Sprintf("%.4f (%d of %d)", r, row[i], sum))
		mean += r / float64(len(rep.Confusion))
	}
	if math.Abs(mean-rep.Balanced) > 1e-9 {
		t.Errorf("balanced accuracy %v, the mean of the recalls %v", rep.Balanced, mean)
	}
	code, out, errOut = runCLI(t, "eval", model, "--data", data, "--split", "all")
	if code != 0 || !strings.Contains(out, "recall") || !strings.Contains(out, fmt.Sprintf("balanced accuracy %.4f (the mean of the recalls", mean)) {
		t.Fatalf("text: exit %d, %s%s", code, out, errOut)
	}
	lines := strings.Split(out, "\n")
	for i, want := range rows {
		if !slices.ContainsFunc(lines, func(l string) bool {
			return strings.HasPrefix(strings.TrimSpace(l), rep.Classes[i]+" ") && strings.HasSuffix(l, want)
		}) {
			t.Errorf("class %s: no row ending in %q:\n%s", rep.Classes[i], want, out)
		}
	}
	code, out, errOut = runCLI(t, "eval", model, model, "--data", data, "--split", "all")
	if want := fmt.Sprintf("  %s %.4f", lowClass, low); code != 0 || !strings.Contains(out, "lowest recall") || strings.Count(out, want) != 2 {
		t.Errorf("two models: exit %d, want %q twice:\n%s%s", code, want, out, errOut)
	}
}
