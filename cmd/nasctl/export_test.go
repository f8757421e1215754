package main

import (
	"encoding/json"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/quantize"
	"google.golang.org/protobuf/proto"
)

// trainedModel generates 1,000 leaves images of 32x32 (seed 3) and trains
// a small network on them for 10 epochs (seed 1, one thread): a model that
// has learnt something, 0.83 test accuracy on this machine.
func trainedModel(t *testing.T) (model, data string) {
	t.Helper()
	dir := t.TempDir()
	data, model = filepath.Join(dir, "leaves"), filepath.Join(dir, "model.onnx")
	generateLeaves(t, data, 1000, 32, 3)
	if code, _, errOut := runCLI(t, "train", "--arch", "C(8,3,1) - P(2,2) - C(16,3,1) - FC(16) - SM()", "--data", data, "--epochs", "10",
		"--recipe", "study", "--constant-lr", "--lr", "0.003", "--threads", "1", "--out", model); code != 0 {
		t.Fatalf("train: exit %d: %s", code, errOut)
	}
	return model, data
}

// export --int8 quantizes a trained model: its test accuracy stays within
// 2 points (6 of the 300 test images) of the float model's, which is over
// the 0.75 floor of this seed; the file is under a third of the float
// one's; the metadata keeps the float model's and adds the settings and
// the int8 model's measured accuracy.
func TestExportInt8(t *testing.T) {
	model, data := trainedModel(t)
	out := filepath.Join(t.TempDir(), "int8.onnx")
	code, stdout, errOut := runCLI(t, "export", model, "--int8", "--calibration", data, "--images", "100", "--out", out, "--threads", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep exportReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if rep.FloatAccuracy == nil || rep.Int8Accuracy == nil || *rep.FloatAccuracy < 0.75 || *rep.Int8Accuracy < *rep.FloatAccuracy-0.02 || rep.TestImages != 300 {
		t.Errorf("accuracies %v and %v on %d images", rep.FloatAccuracy, rep.Int8Accuracy, rep.TestImages)
	} else {
		t.Logf("test accuracy: float %.4f, int8 %.4f", *rep.FloatAccuracy, *rep.Int8Accuracy)
	}
	if !(rep.SizeRatio < 1.0/3) || rep.Settings == nil || rep.Settings.Images != 100 || rep.Settings.Calibration != "percentile 99.999" ||
		rep.Settings.Activations != "uint8, asymmetric, per tensor" {
		t.Errorf("size ratio %.3f, settings %+v", rep.SizeRatio, rep.Settings)
	}
	fb, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	qb, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := onnxgen.ReadModelInfo(fb)
	if err != nil {
		t.Fatal(err)
	}
	qi, err := onnxgen.ReadModelInfo(qb)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []onnxgen.MetaKey{onnxgen.MetaArch, onnxgen.MetaInput, onnxgen.MetaNormalization, onnxgen.MetaClasses, onnxgen.MetaDatasetHash, onnxgen.MetaSeed} {
		if qi.Meta[k] != fi.Meta[k] || fi.Meta[k] == "" {
			t.Errorf("metadata %s: %q, float model %q", k, qi.Meta[k], fi.Meta[k])
		}
	}
	if qi.Meta[quantize.MetaFloatTestAccuracy] != fi.Meta[onnxgen.MetaTestAccuracy] {
		t.Errorf("float accuracy %q, float model's %q", qi.Meta[quantize.MetaFloatTestAccuracy], fi.Meta[onnxgen.MetaTestAccuracy])
	}
	if acc, err := strconv.ParseFloat(qi.Meta[onnxgen.MetaTestAccuracy], 64); err != nil || acc != *rep.Int8Accuracy {
		t.Errorf("int8 accuracy in the metadata %q, measured %v", qi.Meta[onnxgen.MetaTestAccuracy], *rep.Int8Accuracy)
	}
	if s, err := quantize.ReadSettings(qi); err != nil || s == nil || s.Source != quantize.SHA256(fb) {
		t.Errorf("settings %+v (%v)", s, err)
	}

	// The table form says the same in words.
	code, stdout, errOut = runCLI(t, "export", model, "--int8", "--calibration", data, "--images", "50", "--method", "minmax", "--out", out)
	if code != 0 || !strings.Contains(stdout, "calibrated by minmax on 50 images") || !strings.Contains(stdout, "test accuracy on 300 images") {
		t.Errorf("exit %d: %s%s", code, stdout, errOut)
	}
}

// Mistakes are refused with what to do: usage errors (exit 2) for flags,
// failures (exit 1) for data or models that do not fit.
func TestExportErrors(t *testing.T) {
	dir := t.TempDir()
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	model := filepath.Join(dir, "m.onnx")
	writeModel(t, model, "C(4,3,1) - P(2,2) - GAP()", in)
	data := filepath.Join(dir, "leaves")
	generateLeaves(t, data, 40, 16, 1)
	d, _, err := dataset.Load(data, dataset.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "q.onnx")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"export", model}, 2, "--out"},
		{[]string{"export", model, "--int8", "--out", out}, 2, "--calibration DIR"},
		{[]string{"export", model, "--int8", "--calibration", filepath.Join(dir, "nope"), "--out", out}, 2, "--calibration " + filepath.Join(dir, "nope") + ": no such file or directory; give a folder of image files"},
		{[]string{"export", model, "--calibration", data, "--out", out}, 2, "add --int8"},
		{[]string{"export", model, "--plan", "nasnet", "--out", out}, 2, "--plan is for --int8"},
		{[]string{"export", model, "--threads", "2", "--out", out}, 2, "--threads is for --int8"},
		{[]string{"export", model, "--int8", "--calibration", data, "--images", "0", "--out", out}, 2, "--images 0: must be at least 1\n"},
		{[]string{"export", model, "--int8", "--calibration", data, "--threads", "-1", "--out", out}, 2, "--threads -1: must be 0 (one per core) or more\n"},
		{[]string{"export", model, "--int8", "--calibration", data, "--percentile", "40", "--out", out}, 2, "--percentile 40"},
		{[]string{"export", model, "--int8", "--calibration", data, "--method", "entropy", "--out", out}, 2, "valid: percentile, minmax"},
		{[]string{"export", model, "--int8", "--calibration", data, "--method", "minmax", "--percentile", "99", "--out", out}, 2, "--percentile is for --method percentile"},
		{[]string{"export", model, "--int8", "--calibration", data, "--out", out}, 1, "has the classes " + strings.Join(d.Classes, ", ")},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d naming %q", tc.args[1:], code, errOut, tc.code, tc.want)
		}
	}

	// A quantized model is neither quantized again nor re-exported.
	writeModel(t, model, "C(4,3,1) - P(2,2) - GAP()", in, d.Classes...)
	if code, _, errOut := runCLI(t, "export", model, "--int8", "--calibration", data, "--out", out); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{{"export", out, "--int8", "--calibration", data, "--out", filepath.Join(dir, "qq.onnx")}, {"export", out, "--out", filepath.Join(dir, "f.onnx")}} {
		if code, _, errOut := runCLI(t, args...); code != 1 || !strings.Contains(errOut, "quantized") {
			t.Errorf("%q: exit %d, stderr %q; want a refusal of a quantized model", args, code, errOut)
		}
	}
	// A cell network's export folds its batch normalisations: it is not
	// re-exported from its weights.
	cells := filepath.Join(dir, "cells.onnx")
	writeModel(t, cells, cellsWithGaps, in)
	if code, _, errOut := runCLI(t, "export", cells, "--out", filepath.Join(dir, "c2.onnx")); code != 1 || !strings.Contains(errOut, "nasctl train --arch") {
		t.Errorf("cell network: exit %d, stderr %q", code, errOut)
	}
}

// Without --int8, a model that this nasctl wrote comes back byte for byte:
// the compiler is deterministic and the weights and metadata are the
// model's own.
func TestReexport(t *testing.T) {
	dir := t.TempDir()
	in := genotype.Input{Height: 17, Width: 17, Channels: 1}
	model, again := filepath.Join(dir, "m.onnx"), filepath.Join(dir, "again.onnx")
	writeModel(t, model, "C(4,3,1) - P(2,2) - SM()", in)
	if code, stdout, errOut := runCLI(t, "export", model, "--out", again); code != 0 || !strings.Contains(stdout, "written with this nasctl") {
		t.Fatalf("exit %d: %s%s", code, stdout, errOut)
	}
	a, _ := os.ReadFile(model)
	b, _ := os.ReadFile(again)
	if string(a) != string(b) {
		t.Errorf("re-export differs: %d and %d bytes", len(a), len(b))
	}
}

// --pure-go rewrites a cell network with an average pooling and a
// separable convolution into operators onnx-go runs: bench compares the
// model itself in that form, and the rewritten one as it is, alike. It
// refuses --int8 and quantized models.
func TestExportPureGo(t *testing.T) {
	dir := t.TempDir()
	in := genotype.Input{Height: 17, Width: 17, Channels: 1}
	model, pg := filepath.Join(dir, "cells.onnx"), filepath.Join(dir, "purego.onnx")
	writeModel(t, model, cellsWithGaps, in)
	code, stdout, errOut := runCLI(t, "export", model, "--pure-go", "--out", pg)
	if code != 0 || !strings.Contains(stdout, "operators rewritten for onnx-go") {
		t.Fatalf("exit %d: %s%s", code, stdout, errOut)
	}
	code, stdout, errOut = runCLI(t, "bench", model, pg, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--json")
	if code != 0 {
		t.Fatalf("bench: exit %d: %s", code, errOut)
	}
	var rs []bench.Result
	if err := json.Unmarshal([]byte(stdout), &rs); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].PureGo.Rewritten == 0 || !rs[0].PureGo.Agree || rs[1].PureGo.Rewritten != 0 || rs[1].PureGo.MaxAbsDiff == nil || !rs[1].PureGo.Agree ||
		*rs[0].PureGo.MaxAbsDiff != *rs[1].PureGo.MaxAbsDiff {
		t.Errorf("pure Go: export %+v, rewritten %+v", rs[0].PureGo, rs[1].PureGo)
	}
	// A plain export of a cell network says what does take it.
	if code, _, errOut := runCLI(t, "export", model, "--out", filepath.Join(dir, "again.onnx")); code != 1 ||
		!strings.Contains(errOut, "cannot be compiled again from the file; export --int8 and --pure-go take it as it is") {
		t.Errorf("plain export of a cell network: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "export", model, "--pure-go", "--int8", "--out", pg); code != 2 || !strings.Contains(errOut, "exclude each other") {
		t.Errorf("--pure-go --int8: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "export", model, "--pure-go", "--calibration", dir, "--out", pg); code != 2 || !strings.Contains(errOut, "--calibration is for --int8") {
		t.Errorf("--pure-go --calibration: exit %d, %q", code, errOut)
	}
	// --json reports the form written, whatever it is.
	code, stdout, errOut = runCLI(t, "export", model, "--pure-go", "--out", pg, "--json")
	var rep floatExportReport
	if err := json.Unmarshal([]byte(stdout), &rep); code != 0 || err != nil || rep.Form != "pure-go" || rep.Rewritten == 0 || rep.Out != pg || rep.OutBytes <= 0 {
		t.Errorf("--pure-go --json: exit %d, %+v (%v)\n%s%s", code, rep, err, stdout, errOut)
	}
	// Quantizing a model onto itself would lose the float model; its
	// pure-Go form would replace the standard one.
	if code, _, errOut := runCLI(t, "export", model, "--int8", "--calibration", dir, "--out", filepath.Join(dir, ".", "cells.onnx")); code != 2 || !strings.Contains(errOut, "is the model itself") {
		t.Errorf("--int8 --out MODEL: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "export", model, "--pure-go", "--out", filepath.Join(dir, ".", "cells.onnx")); code != 2 || !strings.Contains(errOut, "is the model itself") {
		t.Errorf("--pure-go --out MODEL: exit %d, %q", code, errOut)
	}
	// A layer-sequence model exported again from its pure-Go form is the
	// standard one, and loses the pure-Go mark (which export --int8 refuses).
	seq, seqPG, back := filepath.Join(dir, "seq.onnx"), filepath.Join(dir, "seq-pg.onnx"), filepath.Join(dir, "seq-back.onnx")
	writeModel(t, seq, "C(4,1,1) - P(3,3) - SM()", genotype.Input{Height: 32, Width: 32, Channels: 1}) // a pool with a border to write out
	for _, args := range [][]string{{"export", seq, "--pure-go", "--out", seqPG}, {"export", seqPG, "--out", back}} {
		if code, _, errOut := runCLI(t, args...); code != 0 {
			t.Fatalf("%q: exit %d, %s", args, code, errOut)
		}
	}
	for path, want := range map[string]bool{seqPG: true, back: false} {
		b, _ := os.ReadFile(path)
		info, err := onnxgen.ReadModelInfo(b)
		if err != nil || (info.Meta[onnxgen.MetaPureGo] != "") != want {
			t.Errorf("%s: pure-Go mark %q, want one: %v (%v)", path, info.Meta[onnxgen.MetaPureGo], want, err)
		}
	}
}

// A pure-Go export is refused by export --int8, as --int8 --pure-go is:
// its int8 model would keep the pure-Go label that onnx-go cannot honour.
// bench --int8 measures it in float32 only.
func TestInt8RefusesPureGo(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "leaves")
	d := benchLeaves(t, data)
	model, pg := filepath.Join(dir, "cells.onnx"), filepath.Join(dir, "purego.onnx")
	writeModel(t, model, cellsWithGaps, genotype.Input{Height: 16, Width: 16, Channels: 1}, d.Classes...)
	if code, _, errOut := runCLI(t, "export", model, "--pure-go", "--out", pg); code != 0 {
		t.Fatalf("--pure-go: exit %d: %s", code, errOut)
	}
	q := filepath.Join(dir, "q.onnx")
	code, _, errOut := runCLI(t, "export", pg, "--int8", "--calibration", data, "--images", "8", "--out", q)
	want := pg + " is a pure-Go export (nasctl.pure_go): onnx-go runs no quantized model; quantize the standard export it was written from instead"
	if _, err := os.Stat(q); code != 1 || !strings.Contains(errOut, want) || err == nil {
		t.Errorf("export --int8 of a pure-Go export: exit %d, %q (written: %v); want exit 1 and %q", code, errOut, err == nil, want)
	}
	code, _, errOut = runCLI(t, "bench", pg, "--int8", "--data", data, "--images", "8", "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--rounds", "1",
		"--out", filepath.Join(dir, "bench"))
	if want := "note: " + pg + " is a pure-Go export (nasctl.pure_go), which export --int8 refuses; measured in float32 only"; code != 0 || !strings.Contains(errOut, want) {
		t.Errorf("bench --int8 of a pure-Go export: exit %d, %q; want %q", code, errOut, want)
	}
}

// A model records the split it trained on, and eval and export --int8 split
// by it unless told otherwise: measured with the default seed instead, its
// "test" images would include training images. Measured on other data,
// the int8 model's float and int8 accuracies are on the same images, and
// the metadata says which.
func TestModelSplitRecorded(t *testing.T) {
	dir := t.TempDir()
	data, other, model := filepath.Join(dir, "leaves"), filepath.Join(dir, "other"), filepath.Join(dir, "m.onnx")
	generateLeaves(t, data, 400, 16, 1)
	generateLeaves(t, other, 400, 16, 2)
	if code, _, errOut := runCLI(t, "train", "--arch", "C(4,3,1) - P(2,2) - SM()", "--data", data, "--epochs", "2", "--split-seed", "7",
		"--threads", "1", "--out", model); code != 0 {
		t.Fatalf("train: exit %d: %s", code, errOut)
	}
	fb, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := onnxgen.ReadModelInfo(fb)
	if err != nil {
		t.Fatal(err)
	}
	if rec, ok, err := fi.Split(); !ok || err != nil || rec != (onnxgen.SplitRecord{Plan: "metaqnn", Seed: 7}) {
		t.Fatalf("split record %+v, %v, %v: %s", rec, ok, err, fi.Meta[onnxgen.MetaSplit])
	}
	evalJSON := func(args ...string) (evalReport, string) {
		t.Helper()
		code, out, errOut := runCLI(t, append([]string{"eval", model, "--data", data, "--json", "--threads", "1"}, args...)...)
		var rep evalReport
		if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
			t.Fatalf("eval %v: exit %d: %s%s", args, code, out, errOut)
		}
		return rep, errOut
	}
	own, errOut := evalJSON()
	if own.Seed != 7 || own.Plan != "metaqnn" || strconv.FormatFloat(own.Accuracy, 'f', 6, 64) != fi.Meta[onnxgen.MetaTestAccuracy] || errOut != "" {
		t.Errorf("eval without split flags: %+v (the model's test accuracy %s); stderr %q", own, fi.Meta[onnxgen.MetaTestAccuracy], errOut)
	}
	if rep, errOut := evalJSON("--split-seed", "1"); rep.Seed != 1 || !strings.Contains(errOut, "was trained with --plan metaqnn --split-seed 7; with --plan metaqnn --split-seed 1") {
		t.Errorf("eval --split-seed 1: %+v; stderr %q", rep, errOut)
	}

	out := filepath.Join(dir, "q.onnx")
	code, stdout, errOut := runCLI(t, "export", model, "--int8", "--calibration", data, "--out", out, "--threads", "1", "--json")
	var rep exportReport
	if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil || rep.FloatAccuracy == nil || *rep.FloatAccuracy != own.Accuracy {
		t.Errorf("export --int8 on the training data: exit %d, %s%s; want the float accuracy %v of the model's own split", code, stdout, errOut, own.Accuracy)
	}
	// Told to use another split, it says which in the int8 model.
	code, _, errOut = runCLI(t, "export", model, "--int8", "--calibration", data, "--split-seed", "1", "--out", out, "--threads", "1")
	if qb, err := os.ReadFile(out); code != 0 || err != nil || !strings.Contains(errOut, "was trained with --plan metaqnn --split-seed 7") {
		t.Errorf("export --int8 --split-seed 1: exit %d, %v: %s", code, err, errOut)
	} else if qi, err := onnxgen.ReadModelInfo(qb); err != nil || qi.Meta[onnxgen.MetaTestSplit] != `{"plan":"metaqnn","seed":1}` {
		t.Errorf("test split %q (%v)", qi.Meta[onnxgen.MetaTestSplit], err)
	}
	code, stdout, errOut = runCLI(t, "export", model, "--int8", "--calibration", other, "--out", out, "--threads", "1", "--json")
	rep = exportReport{}
	if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil || rep.FloatAccuracy == nil {
		t.Fatalf("export --int8 on other data: exit %d: %s%s", code, stdout, errOut)
	}
	qb, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	qi, err := onnxgen.ReadModelInfo(qb)
	if err != nil {
		t.Fatal(err)
	}
	if got := qi.Meta[quantize.MetaFloatTestAccuracy]; got != strconv.FormatFloat(*rep.FloatAccuracy, 'f', 6, 64) ||
		!strings.HasPrefix(qi.Meta[onnxgen.MetaTestDatasetHash], "sha256:") || qi.Meta[onnxgen.MetaTestDatasetHash] == fi.Meta[onnxgen.MetaDatasetHash] {
		t.Errorf("on other data: float accuracy %q (measured %v), test data %q (training data %q)", got, *rep.FloatAccuracy,
			qi.Meta[onnxgen.MetaTestDatasetHash], fi.Meta[onnxgen.MetaDatasetHash])
	}
}

// Field data may hold only some of a model's classes: eval measures those
// and says which are missing; calibration and bench's comparison need every
// class.
func TestSomeOfTheClasses(t *testing.T) {
	dir := t.TempDir()
	all, some, one, model := filepath.Join(dir, "all"), filepath.Join(dir, "some"), filepath.Join(dir, "one"), filepath.Join(dir, "m.onnx")
	for i := range 12 {
		for class, v := range map[string]uint8{"dark": 20, "mid": 120, "light": 230} {
			img := image.NewGray(image.Rect(0, 0, 8, 8))
			for p := range img.Pix {
				img.Pix[p] = v
			}
			writeDatasetPNG(t, filepath.Join(all, class, fmt.Sprintf("%02d.png", i)), img)
			if class != "mid" {
				writeDatasetPNG(t, filepath.Join(some, class, fmt.Sprintf("%02d.png", i)), img)
			}
			if class == "dark" {
				writeDatasetPNG(t, filepath.Join(one, class, fmt.Sprintf("%02d.png", i)), img)
			}
		}
	}
	if code, _, errOut := runCLI(t, "train", "--arch", "SM()", "--data", all, "--epochs", "1", "--threads", "1", "--out", model); code != 0 {
		t.Fatalf("train: exit %d: %s", code, errOut)
	}
	code, out, errOut := runCLI(t, "eval", model, "--data", some, "--split", "all", "--json")
	var rep evalReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.N != 24 || len(rep.Confusion) != 3 ||
		!strings.Contains(errOut, "has no images of "+model+"'s classes mid; the accuracy covers the others") {
		t.Errorf("eval on two of three classes: exit %d: %s%s", code, out, errOut)
	}
	// One class: a field check of it, on every image; a split of it is
	// refused with what to give, before any table is begun.
	code, out, errOut = runCLI(t, "eval", model, model, "--data", one, "--split", "all")
	if code != 0 || strings.Count(out, "accuracy  correct") != 1 || strings.Count(out, "      12  ") != 2 ||
		!strings.Contains(errOut, "has no images of "+model+"'s classes light, mid") {
		t.Errorf("eval on one class: exit %d: %s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "eval", model, model, "--data", one)
	if code != 1 || out != "" || !strings.Contains(errOut, "a classifier needs images of at least two classes; ") || !strings.Contains(errOut, "give --split all") {
		t.Errorf("eval of a split of one class: exit %d: %q %s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "export", model, "--int8", "--calibration", some, "--out", filepath.Join(dir, "q.onnx"))
	if code != 1 || !strings.Contains(errOut, "has no images of "+model+"'s classes mid; calibrate on images of every class") {
		t.Errorf("export --int8 on two of three classes: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "bench", model, "--data", some, "--runs", "3", "--warmup", "1", "--batch", "2", "--out", filepath.Join(dir, "b"))
	if code != 1 || !strings.Contains(errOut, "has no images of "+model+"'s classes mid; bench on data with every class of the model") {
		t.Errorf("bench on two of three classes: exit %d: %s", code, errOut)
	}
}

// bench --data of a model file measures it on the split it records, as
// eval does, and refuses data without some of its classes.
func TestBenchFollowsModelSplit(t *testing.T) {
	dir := t.TempDir()
	data, model := filepath.Join(dir, "leaves"), filepath.Join(dir, "m.onnx")
	generateLeaves(t, data, 400, 16, 1)
	if code, _, errOut := runCLI(t, "train", "--arch", "C(4,3,1) - P(2,2) - SM()", "--data", data, "--epochs", "2", "--split-seed", "7",
		"--threads", "1", "--out", model); code != 0 {
		t.Fatalf("train: exit %d: %s", code, errOut)
	}
	code, out, errOut := runCLI(t, "eval", model, "--data", data, "--json")
	var ev evalReport
	if code != 0 || json.Unmarshal([]byte(out), &ev) != nil {
		t.Fatalf("eval: exit %d: %s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "bench", model, "--data", data, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1",
		"--out", filepath.Join(dir, "bench"), "--json")
	var rs []bench.Result
	if code != 0 || json.Unmarshal([]byte(out), &rs) != nil || len(rs) != 1 || rs[0].Accuracy == nil || *rs[0].Accuracy != ev.Accuracy {
		t.Errorf("bench: exit %d, %s%s; want the accuracy %v of eval on the model's split", code, out, errOut, ev.Accuracy)
	}
}

// predict names what reading the images changed beyond the resize, with
// an example: another shape (stretched), a much smaller image (enlarged),
// colour for a gray model, transparency. An image like the model's input
// gets no note.
func TestPredictInputNotes(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.onnx")
	writeModelTrainedOn(t, model, "C(4,3,1) - GAP()", genotype.Input{Height: 16, Width: 16, Channels: 1}, "")
	plain := image.NewGray(image.Rect(0, 0, 16, 16))
	wide := image.NewNRGBA(image.Rect(0, 0, 32, 20))
	for i := range wide.Pix {
		wide.Pix[i] = uint8(i) // colour, and alpha below 255 in places
	}
	tiny := image.NewGray(image.Rect(0, 0, 1, 1))
	for name, img := range map[string]image.Image{"plain.png": plain, "wide.png": wide, "tiny.png": tiny} {
		writeDatasetPNG(t, filepath.Join(dir, "in", name), img)
	}
	code, _, errOut := runCLI(t, "predict", model, filepath.Join(dir, "in", "plain.png"))
	if code != 0 || strings.Contains(errOut, "note:") {
		t.Errorf("an image like the input: exit %d, %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "predict", model, filepath.Join(dir, "in"))
	wideName := filepath.Join(dir, "in", "wide.png")
	for _, want := range []string{
		"note: 1 of the 3 images was stretched to the model's 16 high and 16 wide from another shape (" + wideName + ", 20 high and 32 wide)",
		"note: 1 of the 3 images was enlarged more than twice to the model's 16 high and 16 wide (" + filepath.Join(dir, "in", "tiny.png") + ", 1 high and 1 wide)",
		"note: 1 of the 3 images was in colour, read as gray for this gray model (" + wideName + ")",
		"note: 1 of the 3 images was partly transparent, read as over black (" + wideName + ")",
	} {
		if code != 0 || !strings.Contains(errOut, want) {
			t.Errorf("exit %d; no %q in:\n%s", code, want, errOut)
		}
	}
}

// predict with its arguments swapped (an image where the model goes) says
// that the model comes first, not that the image is no ONNX model.
func TestPredictModelFirst(t *testing.T) {
	dir := t.TempDir()
	model, photo := filepath.Join(dir, "m.onnx"), filepath.Join(dir, "photo.png")
	writeModelTrainedOn(t, model, "C(4,3,1) - GAP()", genotype.Input{Height: 16, Width: 16, Channels: 1}, "")
	writeDatasetPNG(t, photo, image.NewGray(image.Rect(0, 0, 16, 16)))
	code, out, errOut := runCLI(t, "predict", photo, model)
	want := photo + " is an image: predict takes the model first, then the images (nasctl predict MODEL.onnx " + photo + " ...)"
	if code != exitUsage || out != "" || !strings.Contains(errOut, want) {
		t.Errorf("exit %d, %q %q; want exit 2 and %q", code, out, errOut, want)
	}
	if code, _, errOut := runCLI(t, "predict", model, photo); code != 0 {
		t.Errorf("the right order: exit %d, %s", code, errOut)
	}
}

// A robot's own camera frames, a flat folder without classes, calibrate
// as they are: the int8 model is written and runs, its quantization record
// names the images as unlabelled, and it claims no accuracy, which is left
// to nasctl eval on labelled images. Calibration takes no labels, so the
// frames give the same int8 graph as the labelled folder whose training
// split they are copies of (both calibrate on all of those images; the
// percentile's histogram does not depend on their order).
func TestExportInt8Unlabelled(t *testing.T) {
	dir := t.TempDir()
	leaves, field, model := filepath.Join(dir, "leaves"), filepath.Join(dir, "field"), filepath.Join(dir, "m.onnx")
	generateLeaves(t, leaves, 40, 16, 1)
	if code, _, errOut := runCLI(t, "train", "--arch", "C(4,3,1) - P(2,2) - C(8,3,1) - FC(8) - SM()", "--data", leaves, "--epochs", "1",
		"--threads", "1", "--out", model); code != 0 {
		t.Fatalf("train: exit %d: %s", code, errOut)
	}
	d, _, err := dataset.Load(leaves, dataset.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	split, err := d.Split(dataset.SplitMetaQNN, 1) // train's default plan and seed
	if err != nil {
		t.Fatal(err)
	}
	for i, j := range split.Train {
		b, err := os.ReadFile(filepath.Join(leaves, d.Files[j]))
		if err != nil {
			t.Fatal(err)
		}
		writeBytes(t, filepath.Join(field, fmt.Sprintf("frame_%d.png", i)), b)
	}
	frames := len(split.Train)

	out := filepath.Join(dir, "field-int8.onnx")
	code, stdout, errOut := runCLI(t, "export", model, "--int8", "--calibration", field, "--images", "1000", "--out", out, "--threads", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := fmt.Sprintf("note: %s: it has no classes (no sub-folders, no LEAF_* or NO_* names), so its first %d images calibrate without labels "+
		"and the int8 model's accuracy is not measured; measure it on labelled images with nasctl eval", field, frames)
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr %q; want %q", errOut, want)
	}
	var rep exportReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.FloatAccuracy != nil || rep.Int8Accuracy != nil || rep.TestImages != 0 {
		t.Errorf("report %s (%v): want no accuracies", stdout, err)
	}
	m, _, err := dataset.LoadUnlabelled(field, dataset.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fi, qi := readInfo(t, model), readInfo(t, out)
	s, err := quantize.ReadSettings(qi)
	if wantData := fmt.Sprintf("%s (%s), the first %d of its %d images, unlabelled", field, m.Hash, frames, frames); err != nil || s == nil ||
		s.Images != frames || s.Data != wantData {
		t.Errorf("settings %+v (%v); want %d images, data %q", s, err, frames, wantData)
	}
	for _, k := range []onnxgen.MetaKey{onnxgen.MetaTestAccuracy, onnxgen.MetaTestDatasetHash, onnxgen.MetaTestSplit} {
		if v, ok := qi.Meta[k]; ok {
			t.Errorf("metadata %s = %q; the int8 model was not measured", k, v)
		}
	}
	if fa := fi.Meta[onnxgen.MetaTestAccuracy]; fa == "" || qi.Meta[quantize.MetaFloatTestAccuracy] != fa {
		t.Errorf("float accuracy %q, float model's %q", qi.Meta[quantize.MetaFloatTestAccuracy], fa)
	}
	// The model runs: eval measures it, as the note says.
	if code, _, errOut := runCLI(t, "eval", out, "--data", leaves); code != 0 {
		t.Errorf("eval of the int8 model: exit %d: %s", code, errOut)
	}

	labelled := filepath.Join(dir, "leaves-int8.onnx")
	if code, _, errOut := runCLI(t, "export", model, "--int8", "--calibration", leaves, "--images", "1000", "--out", labelled, "--threads", "1"); code != 0 ||
		!strings.Contains(errOut, fmt.Sprintf("has %d training images; calibrating on all of them", frames)) {
		t.Fatalf("labelled: exit %d: %s", code, errOut)
	}
	if a, b := readGraph(t, out), readGraph(t, labelled); len(a.GetInitializer()) == 0 || !proto.Equal(a, b) {
		t.Error("the frames and their labelled folder calibrate different int8 graphs")
	}
}

// A single class folder calibrates like unlabelled images; an empty
// folder, one without images, an unreadable frame (unless skipped) and a
// split of a folder without classes are refused with what was found.
func TestExportInt8UnlabelledErrors(t *testing.T) {
	dir := t.TempDir()
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	leaves, model, out := filepath.Join(dir, "leaves"), filepath.Join(dir, "m.onnx"), filepath.Join(dir, "q.onnx")
	generateLeaves(t, leaves, 20, 16, 1)
	d, _, err := dataset.Load(leaves, dataset.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeModel(t, model, "C(4,3,1) - P(2,2) - GAP()", in, d.Classes...)
	one, field, empty, text := filepath.Join(dir, "one"), filepath.Join(dir, "field"), filepath.Join(dir, "empty"), filepath.Join(dir, "text")
	for i, f := range d.Files {
		b, err := os.ReadFile(filepath.Join(leaves, f))
		if err != nil {
			t.Fatal(err)
		}
		if d.Labels[i] == 1 {
			writeBytes(t, filepath.Join(one, "leaf", f), b)
		}
		writeBytes(t, filepath.Join(field, fmt.Sprintf("frame_%d.png", i)), b)
		writeBytes(t, filepath.Join(dir, "days", fmt.Sprintf("2026-12-0%d", 6+i%2), fmt.Sprintf("frame_%d.png", i)), b)
	}
	writeBytes(t, filepath.Join(field, "frame_99.png"), []byte("cut off"))
	writeBytes(t, filepath.Join(text, "notes.txt"), []byte("camera 2"))
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}

	// Frames in folders by day: none is a class of the model, so they
	// calibrate without labels; fewer than --images, and it says so.
	code, _, errOut := runCLI(t, "export", model, "--int8", "--calibration", filepath.Join(dir, "days"), "--out", out)
	if code != 0 || !strings.Contains(errOut, "none of its folders (2026-12-06, 2026-12-07) is a class of the model, so its first 20 images calibrate without labels") ||
		!strings.Contains(errOut, "has 20 images; calibrating on all of them (--images 200)") {
		t.Errorf("frames in folders by day: exit %d: %s", code, errOut)
	}
	// One folder of frames that is no class: said so, not taken for a class.
	for i := range 3 {
		b, err := os.ReadFile(filepath.Join(dir, "days", "2026-12-06", fmt.Sprintf("frame_%d.png", 2*i)))
		if err != nil {
			t.Fatal(err)
		}
		writeBytes(t, filepath.Join(dir, "oneday", "2026-12-06", fmt.Sprintf("frame_%d.png", i)), b)
	}
	code, _, errOut = runCLI(t, "export", model, "--int8", "--calibration", filepath.Join(dir, "oneday"), "--out", out)
	if code != 0 || !strings.Contains(errOut, "none of its folders (2026-12-06) is a class of the model, so its first 3 images calibrate without labels") {
		t.Errorf("one folder of frames: exit %d: %s", code, errOut)
	}
	// More frames than --images: the first of them, and no note of too few.
	code, _, errOut = runCLI(t, "export", model, "--int8", "--calibration", filepath.Join(dir, "days"), "--images", "5", "--out", out)
	if code != 0 || strings.Contains(errOut, "calibrating on all of them") || !strings.Contains(errOut, "its first 5 images calibrate") {
		t.Errorf("frames in folders by day, --images 5: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "export", model, "--int8", "--calibration", one, "--out", out)
	if code != 0 || !strings.Contains(errOut, "its images are of one class (leaf), so its first") {
		t.Errorf("one class: exit %d: %s", code, errOut)
	} else if qi := readInfo(t, out); qi.Meta[onnxgen.MetaTestAccuracy] != "" || qi.Meta[onnxgen.MetaTestDatasetHash] != "" {
		t.Errorf("one class: test accuracy %q, test data %q", qi.Meta[onnxgen.MetaTestAccuracy], qi.Meta[onnxgen.MetaTestDatasetHash])
	} else if s, err := quantize.ReadSettings(qi); err != nil || s == nil || !strings.HasSuffix(s.Data, ", unlabelled") {
		t.Errorf("one class: calibration data %+v (%v), want images calibrating without labels", s, err)
	}
	code, _, errOut = runCLI(t, "export", model, "--int8", "--calibration", field, "--skip-bad", "--out", out)
	if code != 0 || !strings.Contains(errOut, "skipped 1 bad file (--skip-bad):\n  "+filepath.Join(field, "frame_99.png")) ||
		!strings.Contains(errOut, fmt.Sprintf("its first %d images calibrate", d.Len())) {
		t.Errorf("--skip-bad: exit %d: %s", code, errOut)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--calibration", empty}, 1, empty + " is empty"},
		{[]string{"--calibration", text}, 1, text + " holds no image files"},
		{[]string{"--calibration", field}, 1, filepath.Join(field, "frame_99.png") + ": not a decodable image"},
		// A flag conflict, though found only once the folder is read.
		{[]string{"--calibration", field, "--skip-bad", "--plan", "nasnet"}, 2, "--plan and --split-seed are for a labelled folder: leave them out"},
	} {
		code, _, errOut := runCLI(t, append([]string{"export", model, "--int8", "--out", out}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

// writeBytes writes b into path, making its folder.
func writeBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readInfo(t *testing.T, path string) *onnxgen.ModelInfo {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := onnxgen.ReadModelInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// readGraph is a model's graph: its operators and weights, without the
// metadata.
func readGraph(t *testing.T, path string) *onnx.GraphProto {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m onnx.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m.GetGraph()
}
