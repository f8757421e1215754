package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
)

// train, eval and predict as processes, as a user runs them: train writes a
// model and prints its test accuracy, eval measures the same accuracy on the
// same split, predict's probabilities are those of the model run here
// through package runtime, and mistakes exit 1 or 2 with a message.
func TestTrainEvalPredictProcesses(t *testing.T) {
	bin := buildNasctl(t)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "leaves")
	generateLeaves(t, data, 200, 16, 3)
	model := filepath.Join(tmp, "m.onnx")
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return runBin(t, bin, args...)
	}
	code, out, errOut := run("train", "--arch", "C(4,3,1) - P(2,2) - SM()", "--data", data, "--input", "16x16x1", "--epochs", "3", "--out", model)
	if code != 0 {
		t.Fatalf("train: exit %d\n%s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`test accuracy ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("train printed no test accuracy:\n%s", out)
	}
	trained, _ := strconv.ParseFloat(m[1], 64)

	code, out, errOut = run("eval", model, "--data", data, "--json")
	var ev struct {
		Split    string  `json:"split"`
		N        int     `json:"n"`
		Accuracy float64 `json:"accuracy"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &ev) != nil || ev.Split != "test" || ev.N != 60 || math.Abs(ev.Accuracy-trained) > 1e-4 {
		t.Errorf("eval: exit %d, %+v; train printed test accuracy %v\n%s", code, ev, trained, errOut)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("eval --json of one model: %q, want one line as for several", out)
	}

	checkEvalSeveral(t, run, tmp, data, model, ev.Accuracy)
	checkEvalErrors(t, run, data, model, ev.N, ev.Accuracy)

	images := []string{filepath.Join(data, "LEAF_0001.png"), filepath.Join(data, "NO_0002.png")}
	code, out, errOut = run(append([]string{"predict", model, "--json"}, images...)...)
	if code != 0 {
		t.Fatalf("predict: exit %d: %s", code, errOut)
	}
	if err := runtime.Init(""); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(model)
	rm, err := runtime.NewModel(b, runtime.SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(images) {
		t.Fatalf("predict printed %d lines for %d images:\n%s", len(lines), len(images), out)
	}
	for i, line := range lines {
		var p struct {
			Image         string             `json:"image"`
			Class         string             `json:"class"`
			Probabilities map[string]float64 `json:"probabilities"`
		}
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		px, err := dataset.ReadImage(images[i], 16, 16, 1)
		if err != nil {
			t.Fatal(err)
		}
		want, err := rm.Predict(context.Background(), px, 1)
		if err != nil {
			t.Fatal(err)
		}
		best := "no_leaf"
		if want[1] > want[0] {
			best = "leaf"
		}
		if p.Image != images[i] || p.Class != best || math.Abs(p.Probabilities["no_leaf"]-float64(want[0])) > 1e-6 ||
			math.Abs(p.Probabilities["leaf"]-float64(want[1])) > 1e-6 {
			t.Errorf("predict %s: %+v, the model gives %v", images[i], p, want)
		}
		if !strings.Contains(line, `"probabilities":{"no_leaf":`) { // the model's order, not the names sorted
			t.Errorf("predict %s: probabilities not in the model's class order (no_leaf, leaf): %s", images[i], line)
		}
	}

	// A command line of over 100 KB, as a shell's glob over a few thousand
	// photos gives: ONNX Runtime's telemetry used to crash on it
	// (docs/limits.md, "A long command line"). The variable that turns it
	// off is not inherited from this process, whose runtime.Init set it.
	long := []string{"predict", model}
	for len(strings.Join(long, " ")) < 100_000 {
		long = append(long, images...)
	}
	cmd := exec.Command(bin, long...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "ORT_DISABLE_TELEMETRY=") })
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if got := strings.Count(stdout.String(), "\n"); err != nil || got != len(long)-2 {
		t.Errorf("predict with %d images: %v, %d lines\n%s", len(long)-2, err, got, stderr.String()[:min(stderr.Len(), 500)])
	}

	two := filepath.Join(tmp, "two") // a folder too small for a test split
	if err := os.Mkdir(two, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, img := range images {
		b, err := os.ReadFile(img)
		if err == nil {
			err = os.WriteFile(filepath.Join(two, filepath.Base(img)), b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// The same images as class folders, whose classes sort the other way
	// (leaf, no_leaf): labels are matched by name.
	folders := filepath.Join(tmp, "folders")
	entries, _ := os.ReadDir(data)
	for _, e := range entries {
		class := map[bool]string{true: "leaf", false: "no_leaf"}[strings.HasPrefix(e.Name(), "LEAF_")]
		os.MkdirAll(filepath.Join(folders, class), 0o755)
		if err := os.Link(filepath.Join(data, e.Name()), filepath.Join(folders, class, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	var all [2]struct {
		Classes  []string `json:"classes"`
		N        int      `json:"n"`
		Accuracy float64  `json:"accuracy"`
	}
	for i, d := range []string{data, folders} {
		code, out, errOut = run("eval", model, "--data", d, "--split", "all", "--json")
		if code != 0 || json.Unmarshal([]byte(out), &all[i]) != nil {
			t.Fatalf("eval --data %s: exit %d, %q%q", d, code, out, errOut)
		}
	}
	if all[0].N != 200 || all[1].N != all[0].N || all[1].Accuracy != all[0].Accuracy || !slices.Equal(all[1].Classes, all[0].Classes) {
		t.Errorf("eval of the leaves layout %+v, of class folders %+v; want the same", all[0], all[1])
	}

	// A folder stands for its images, in name order.
	code, out, errOut = run("predict", model, two)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], filepath.Join(two, "LEAF_0001.png")+"\t") ||
		!strings.HasPrefix(lines[1], filepath.Join(two, "NO_0002.png")+"\t") {
		t.Errorf("predict on a folder: exit %d, %q%q", code, out, errOut)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"eval", filepath.Join(tmp, "missing.onnx"), "--data", data}, 2, "missing.onnx: no such file; give an exported model (.onnx)"},
		{[]string{"bench", filepath.Join(tmp, "missing.onnx")}, 2, "missing.onnx: no such file or folder; give exported models"},
		{[]string{"export", filepath.Join(tmp, "missing.onnx"), "--out", filepath.Join(tmp, "x.onnx")}, 2, "missing.onnx: no such file; give an exported model (.onnx)"},
		{[]string{"predict", filepath.Join(tmp, "missing.onnx"), filepath.Join(tmp, "x.png")}, 2, "missing.onnx: no such file; give an exported model (.onnx)"},
		{[]string{"eval", model, "--data", data, "--split", "bogus"}, 2, "valid: train, val, test, all"},
		{[]string{"eval", model, "--data", data, "--batch", "0"}, 2, "--batch 0: must be at least 1"},
		{[]string{"eval", model, "--data", two, "--split", "train"}, 1, "the train split of " + two + " has no images (2 in the folder)"},
		{[]string{"predict", model}, 2, "at least one image"},
		{[]string{"predict", model, filepath.Join(tmp, "none.png")}, 1, "none.png"},
		{[]string{"predict", model, t.TempDir()}, 1, "holds no image files"},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", filepath.Join(tmp, "nodata")}, 2, "--data " + filepath.Join(tmp, "nodata") + ": no such file or directory; give a folder of image files"},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", model}, 2, "--data " + model + " is a file; give a folder of image files"},
		{[]string{"eval", model, "--data", filepath.Join(tmp, "nodata")}, 2, "--data " + filepath.Join(tmp, "nodata") + ": no such file or directory"},
		{[]string{"train", "--arch", "X(1)", "--data", data}, 2, "--arch"},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", data, "--input", "16x16x2"}, 2, "--input 16x16x2: images are read with 1 channel"},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", data, "--recipe", "fast"}, 2, "valid: default, study"},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", data, "--augment", "rotate"}, 2, "--augment: unknown augmentation"},
	} {
		code, out, errOut := run(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q%q; want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
	// A training that diverges fails with --json too, whose report says why.
	code, out, errOut = run("train", "--arch", "C(4,3,1) - SM()", "--data", data, "--input", "16x16x1", "--epochs", "1", "--lr", "1e30", "--json", "--out", filepath.Join(tmp, "d.onnx"))
	var rep struct{ Status, Reason string }
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.Status != "diverged" || rep.Reason == "" || !strings.Contains(errOut, "diverged") {
		t.Errorf("train --lr 1e30 --json: exit %d, %q%q; want exit 1, a report of status diverged", code, out, errOut)
	}
}

// checkEvalSeveral: eval of two models of different input sizes gives each
// the accuracy it gets alone, as one JSON line each, and a table with their
// mean; --split all counts every image of the folder.
func checkEvalSeveral(t *testing.T, run func(...string) (int, string, string), tmp, data, model string, alone float64) {
	t.Helper()
	other := filepath.Join(tmp, "m12.onnx")
	if code, out, errOut := run("train", "--arch", "C(4,3,1) - SM()", "--data", data, "--input", "12x12x1", "--epochs", "1", "--out", other); code != 0 {
		t.Fatalf("train: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := run("eval", other, "--data", data, "--json")
	var ev struct {
		Model    string  `json:"model"`
		N        int     `json:"n"`
		Accuracy float64 `json:"accuracy"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &ev) != nil {
		t.Fatalf("eval %s: exit %d\n%s%s", other, code, out, errOut)
	}
	want := map[string]float64{model: alone, other: ev.Accuracy}
	for _, split := range []string{"test", "all"} {
		code, out, errOut = run("eval", model, other, "--data", data, "--split", split, "--json")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 2 {
			t.Fatalf("eval of two models, --split %s: exit %d, %d lines\n%s%s", split, code, len(lines), out, errOut)
		}
		// All of the images the models trained on counts their training
		// images: said once, and each model named.
		if warned := strings.Count(errOut, "--split all counts the images it trained on"); warned != map[string]int{"test": 0, "all": 1}[split] {
			t.Errorf("--split %s: %d warnings about training images:\n%s", split, warned, errOut)
		}
		if named := strings.Contains(errOut, "warning: "+other+" too was trained on "+data+", as warned above"); named != (split == "all") {
			t.Errorf("--split %s: the second model named %v:\n%s", split, named, errOut)
		}
		for _, line := range lines {
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			wantN := map[string]int{"test": 60, "all": 200}[split]
			if ev.N != wantN || (split == "test" && math.Abs(ev.Accuracy-want[ev.Model]) > 1e-9) {
				t.Errorf("--split %s: %+v; want %d images and, on the test split, accuracy %v", split, ev, wantN, want[ev.Model])
			}
		}
	}
	code, out, _ = run("eval", model, other, "--data", data)
	mean := fmt.Sprintf("mean accuracy %.4f", (want[model]+want[other])/2)
	if code != 0 || !strings.Contains(out, mean) || !strings.Contains(out, "m12.onnx") || !strings.HasPrefix(out, "2 models on the test split of "+data+"\n") {
		t.Errorf("eval table: exit %d, want %q and both models:\n%s", code, mean, out)
	}
	if code, out, _ = run("eval", model, other, "--data", data, "--split", "all"); code != 0 || !strings.HasPrefix(out, "2 models on all images of "+data+"\n") {
		t.Errorf("eval table of all images: exit %d:\n%s", code, out)
	}
	checkEvalOtherData(t, run, tmp, model, other)
	missing := filepath.Join(tmp, "missing.onnx")
	if code, out, errOut = run("eval", model, missing, "--data", data); code != 2 || out != "" || !strings.Contains(errOut, missing) {
		t.Errorf("eval with a missing second model: exit %d, %q%q; want exit 2 before any output", code, out, errOut)
	}
	if code, _, errOut = run("eval", "--data", data); code != 2 || !strings.Contains(errOut, "one or more model files") {
		t.Errorf("eval without a model: exit %d, %q", code, errOut)
	}
}

// checkEvalOtherData: on the test split of a third folder, models trained
// on two other folders get one warning each, naming the folder measured,
// with the advice once per folder of origin, and are all measured; the
// whole folder gets no warning.
func checkEvalOtherData(t *testing.T, run func(...string) (int, string, string), tmp, model, other string) {
	t.Helper()
	folders := map[string]string{}
	for i, name := range []string{"leaves2", "leaves3"} {
		folders[name] = filepath.Join(tmp, name)
		generateLeaves(t, folders[name], 100, 16, 4+i)
	}
	third := filepath.Join(tmp, "m2.onnx")
	if code, out, errOut := run("train", "--arch", "C(4,3,1) - SM()", "--data", folders["leaves2"], "--input", "16x16x1", "--epochs", "1", "--out", third); code != 0 {
		t.Fatalf("train: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := run("eval", model, other, third, "--data", folders["leaves3"], "--json")
	warnings := strings.Count(errOut, "warning:")
	for _, m := range []string{model, third} {
		if !strings.Contains(errOut, "warning: "+m+" was trained on other data than "+folders["leaves3"]+" (data hash sha256:") {
			warnings = -1
		}
	}
	if !strings.Contains(errOut, "warning: "+other+" too was trained on other data than "+folders["leaves3"]+" (data hash sha256:") {
		warnings = -1 // trained where model was: named, the advice not repeated
	}
	if code != 0 || warnings != 3 || strings.Count(errOut, "test split may hold images it trained on") != 2 || strings.Count(out, `"n":30,`) != 3 {
		t.Errorf("eval on a third folder's test split: exit %d, want 3 models measured and one warning each, the advice for %s and %s:\n%s%s", code, model, third, out, errOut)
	}
	if code, out, errOut = run("eval", model, other, "--data", folders["leaves2"], "--split", "all", "--json"); code != 0 || errOut != "" || strings.Count(out, `"n":100,`) != 2 {
		t.Errorf("eval on all of other data: exit %d, want 2 models measured and no warning:\n%s%s", code, out, errOut)
	}
}

// Ctrl-C during train --json: the best finished epoch is saved, and stdout
// still gets its one JSON object, saying "interrupted" and why, where the
// model is, and the epochs it had; it exits 130, as stopped by Ctrl-C.
func TestTrainInterruptedJSON(t *testing.T) {
	bin := buildNasctl(t)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "leaves")
	generateLeaves(t, data, 200, 16, 3)
	model := filepath.Join(tmp, "m.onnx")
	cmd := exec.Command(bin, "train", "--arch", "C(4,3,1) - P(2,2) - SM()", "--data", data, "--input", "16x16x1",
		"--epochs", "1000", "--patience", "1000", "--constant-lr", "--out", model, "--json") // --constant-lr: no restart at chance
	var stdout strings.Builder
	cmd.Stdout = &stdout
	said, err := interruptAt(t, cmd, "epoch  2 ")
	var rep struct {
		Status  string            `json:"status"`
		Reason  string            `json:"reason"`
		Model   string            `json:"model"`
		Epochs  int               `json:"epochs"`
		History []json.RawMessage `json:"history"`
		Test    json.RawMessage   `json:"test_accuracy"`
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 || json.Unmarshal([]byte(stdout.String()), &rep) != nil || rep.Status != "interrupted" || rep.Model != model ||
		rep.Epochs < 2 || len(rep.History) != rep.Epochs || string(rep.Test) != "null" { // not tested: null, not 0
		t.Fatalf("exit %v, stdout %q\n%s", err, stdout.String(), said)
	}
	// In a person's words, not Go's "context canceled".
	if want := "interrupted (Ctrl-C); the best finished epoch was saved to " + model; rep.Reason != want {
		t.Errorf("reason %q, want %q", rep.Reason, want)
	}
	if _, err := os.Stat(model); err != nil {
		t.Errorf("the best epoch's model: %v", err)
	}
	// The epochs finished out of the 1000 planned, not "epoch 2 of 2".
	if want := fmt.Sprintf("; %d of 1000 epochs finished) is saved in %s", rep.Epochs, model); !strings.Contains(said, want) {
		t.Errorf("standard error does not say %q:\n%s", want, said)
	}
}

// interruptAt runs cmd, sends it Ctrl-C when a line of its standard error
// begins with prefix, and returns everything it said there and how it
// ended.
func interruptAt(t *testing.T, cmd *exec.Cmd, prefix string) (string, error) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var said strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		said.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), prefix) {
			cmd.Process.Signal(os.Interrupt)
		}
	}
	return said.String(), cmd.Wait()
}

// A resume with more trials sets the finished run's winners aside at once;
// stopped before its new final phase, the run says where the earlier
// plan's best model now is.
func TestStoppedExtensionNamesEarlierBest(t *testing.T) {
	bin := buildNasctl(t)
	dir, _ := tinySearch(t, "x", "--trials", "2", "--top-k", "1", "--skip-final=false")
	run := filepath.Join(dir, "x")
	said, err := interruptAt(t, exec.Command(bin, "search", "metaqnn", "--resume", run, "--trials", "400", "--threads", "1"), "[4/400]")
	best := filepath.Join(run, "earlier", "trials-2", rundir.BestName)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 ||
		!strings.Contains(said, "Until a final phase writes a new best, the best model of the run's earlier plan is "+best+"\n") {
		t.Fatalf("exit %v:\n%s", err, said)
	}
	if _, err := os.Stat(best); err != nil {
		t.Error(err)
	}
	// Extended again before a final phase: the plan of 400 had no best,
	// and the one of 2 is still named.
	said, err = interruptAt(t, exec.Command(bin, "search", "metaqnn", "--resume", run, "--trials", "800", "--threads", "1"), "[8/800]")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 ||
		!strings.Contains(said, "Until a final phase writes a new best, the best model of the run's earlier plan is "+best+"\n") {
		t.Fatalf("second extension: exit %v:\n%s", err, said)
	}
}

// A second Ctrl-C (the context cancelled) abandons the trials in flight,
// and the stop message says so.
func TestSecondInterruptSaysAbandoned(t *testing.T) {
	dir, data := tinySearch(t, "first")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	errOut := &lineWatch{prefix: "[2/400]", seen: cancel}
	code := run(ctx, []string{"nasctl", "search", "metaqnn", "--preset", "cpu", "--trials", "400", "--epochs", "1", "--dir", dir, "--name", "x",
		"--data", data, "--threads", "1"}, &out, errOut)
	if said := errOut.String(); code != 130 ||
		!strings.Contains(said, "; every finished trial is saved; what was in flight was abandoned, and the resume trains it again. Resume with:") {
		t.Errorf("exit %d:\n%s", code, said)
	}
}

// lineWatch is a standard error that calls seen once a line begins with
// prefix.
type lineWatch struct {
	bytes.Buffer
	prefix string
	seen   func()
}

func (w *lineWatch) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if strings.Contains("\n"+w.Buffer.String(), "\n"+w.prefix) {
		w.seen()
	}
	return n, err
}

// checkEvalErrors checks eval --errors of model, whose test split has n
// images at accuracy acc: as many images listed as it gets wrong, and
// predict answers each with the class and probability listed. Several
// models without --json are refused.
func checkEvalErrors(t *testing.T, run func(...string) (int, string, string), data, model string, n int, acc float64) {
	t.Helper()
	code, out, errOut := run("eval", model, "--data", data, "--errors", "--json")
	var ev struct {
		Errors []struct {
			File, Class, Predicted string
			Probability            float64
		} `json:"errors"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &ev) != nil {
		t.Fatalf("eval --errors --json: exit %d\n%s%s", code, out, errOut)
	}
	if wrong := int(math.Round(float64(n) * (1 - acc))); len(ev.Errors) != wrong || wrong == 0 {
		t.Fatalf("%d images listed, %d of %d wrong:\n%s", len(ev.Errors), wrong, n, out)
	}
	for _, e := range ev.Errors {
		code, out, _ := run("predict", model, e.File)
		want := fmt.Sprintf("%s\t%s\t%.4f\n", e.File, e.Predicted, e.Probability)
		if code != 0 || out != want || e.Class == e.Predicted {
			t.Errorf("listed %+v; predict says %q", e, out)
		}
	}
	code, out, _ = run("eval", model, "--data", data, "--errors")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("\n%s predicted wrong\nfile", plural(len(ev.Errors), "image"))) || !strings.Contains(out, ev.Errors[0].File+"  ") {
		t.Errorf("eval --errors: exit %d\n%s", code, out)
	}
	if code, _, errOut := run("eval", model, model, "--data", data, "--errors"); code != 2 || !strings.Contains(errOut, "--errors lists the mistakes of one model") {
		t.Errorf("eval --errors of two models: exit %d: %s", code, errOut)
	}
}
