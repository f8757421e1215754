package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/internal/buildinfo"
	"github.com/nasctl/nasctl/quantize"
	"github.com/nasctl/nasctl/search/rundir"
)

// On 400 leaves images of 16x16 (seed 1: 224 train, 56 validation images,
// 2 steps an epoch at the default batch of 128) this network stays at chance
// with the default recipe: every first epoch restarts at 0.4 times the rate,
// 5 times, and the last attempt's 3 epochs end at 0.4821, below the majority
// share 0.5357 (measured with one thread, the seed fixed). train keeps the
// model but says that it is a constant predictor, what to try, and which
// epoch of which attempt it kept.
func TestTrainAtChance(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "leaves")
	generateLeaves(t, data, 400, 16, 1)
	args := []string{"train", "--arch", "C(8,3,1) - P(2,2) - C(16,3,1) - P(2,2) - SM()", "--data", data, "--epochs", "3",
		"--threads", "1", "--out", filepath.Join(dir, "m.onnx")}
	code, out, errOut := runCLI(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct { // the keys of train --json
		Status                     string
		AtChance                   bool `json:"at_chance"`
		Warning                    string
		Restarts, Attempts, Epochs int
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.AtChance || rep.Status != "ok" || rep.Restarts != 5 || rep.Attempts != 6 || rep.Epochs != 8 ||
		!strings.Contains(rep.Warning, "--constant-lr") || !strings.Contains(rep.Warning, "a smaller --batch (224 training images make 2 steps") {
		t.Errorf("at chance, 6 attempts, 8 epochs and a warning expected: %+v", rep)
	}
	if !strings.Contains(errOut, "warning: the model is at chance") {
		t.Errorf("no warning on stderr:\n%s", errOut)
	}
	code, out, errOut = runCLI(t, args...)
	if code != 0 || !strings.Contains(out, "of the last attempt; 8 epochs in all over 6 attempts: 5 restarts at chance), at chance: no better than a constant predictor") ||
		!strings.Contains(errOut, "warning: the model is at chance") {
		t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// dataset's error about images of different sizes names --input, the flag
// of train and search that sets the size.
func TestMixedSizesNameInput(t *testing.T) {
	dir := t.TempDir()
	data, other := filepath.Join(dir, "mixed"), filepath.Join(dir, "other")
	generateLeaves(t, data, 20, 16, 1)
	generateLeaves(t, other, 20, 20, 2) // for one image of 20x20
	b, err := os.ReadFile(filepath.Join(other, "LEAF_0000.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "LEAF_0999.png"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	noInput := filepath.Join(dir, "no-input.yaml")
	if err := os.WriteFile(noInput, []byte("input: \"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"train", "--arch", "C(4,3,1) - SM()", "--data", data, "--out", filepath.Join(dir, "m.onnx")},
		{"search", "metaqnn", "--data", data, "--config", noInput, "--dir", dir, "--trials", "1"},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != 1 || !strings.Contains(errOut, "(HxW 20x20) but") || !strings.Contains(errOut, "give --input HxW to resize every image") {
			t.Errorf("%s: exit %d, %q; want exit 1 naming --input", args[0], code, errOut)
		}
	}
}

// An input size without channels, the cpu presets' too, keeps the images'
// colour: a folder of red and green squares loads as RGB. Channels given
// choose gray.
func TestInputKeepsColour(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "colours")
	writeColours(t, data)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--arch", "SM()", "--input", "8x8", "--epochs", "1", "--out", filepath.Join(dir, "m.onnx")}, "test images of 8x8x3; 2 classes (green, red)"},
		{[]string{"train", "--arch", "SM()", "--input", "8x8x1", "--epochs", "1", "--out", filepath.Join(dir, "g.onnx")}, "test images of 8x8x1"},
		{[]string{"search", "metaqnn", "--preset", "cpu", "--trials", "1", "--epochs", "1", "--skip-final", "--dir", dir, "--name", "p"}, "input 32x32x3, 2 classes (green, red),"},
		{[]string{"search", "nasnet", "--preset", "cpu", "--episodes", "1", "--epochs", "1", "--skip-final", "--dir", dir, "--name", "n"}, "input 32x32x3, 2 classes (green, red),"},
	} {
		code, _, errOut := runCLI(t, append(c.args, "--data", data, "--threads", "1")...)
		if code != 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, want %q in:\n%s", strings.Join(c.args, " "), code, c.want, errOut)
		}
	}
}

// The start lines name the classes, the first eight of more.
func TestClassList(t *testing.T) {
	names := func(n int) []string {
		var c []string
		for i := range n {
			c = append(c, fmt.Sprint("c", i))
		}
		return c
	}
	for n, want := range map[int]string{
		2: "2 classes (c0, c1)",
		8: "8 classes (c0, c1, c2, c3, c4, c5, c6, c7)",
		9: "9 classes (c0, c1, c2, c3, c4, c5, c6, c7, ...)",
	} {
		if got := classList(names(n)); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
}

// train --json and the model's metadata record how the model was trained
// (--quiet: without a line per epoch), and arch inspect reads a model file: its layers at its own input and its
// metadata, the training record as an object.
func TestArchInspectModel(t *testing.T) {
	dir := t.TempDir()
	data, model := filepath.Join(dir, "leaves"), filepath.Join(dir, "m.onnx")
	generateLeaves(t, data, 200, 16, 2)
	code, out, errOut := runCLI(t, "train", "--arch", "C(4,3,1) - P(2,2) - SM()", "--data", data, "--epochs", "2", "--recipe", "study",
		"--augment", "flips,shift:2", "--seed", "5", "--threads", "1", "--out", model, "--json", "--quiet")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, errOut)
	}
	if regexp.MustCompile(`(?m)^(epoch|training) `).MatchString(errOut) {
		t.Errorf("train --quiet printed its progress:\n%s", errOut)
	}
	var rep struct {
		Training json.RawMessage `json:"training"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	want := `{"epochs":2,"batch_size":128,"lr":0.001,"optimizer":"adam(beta1 0.5, beta2 0.999, eps 1e-07)",` +
		`"schedule":"x0.2 every 5 epochs; up to 5 restarts at chance, lr x0.4","patience":6,"monitor":"val_accuracy",` +
		`"weights":"glorot","centre":false,"augment":"flips,shift:2","seed":"5"}`
	compact := func(raw json.RawMessage) string { // printJSON indents
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return err.Error()
		}
		return b.String()
	}
	if got := compact(rep.Training); got != want {
		t.Errorf("train --json training:\n got %s\nwant %s", got, want)
	}

	code, out, errOut = runCLI(t, "arch", "inspect", model, "--json")
	if code != 0 {
		t.Fatalf("arch inspect: exit %d: %s", code, errOut)
	}
	var r struct {
		Arch, Input string
		Params      int64
		Model       string
		Producer    string
		Metadata    map[string]json.RawMessage
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	// 4 filters of 3x3 + bias: 40; 7x7x4 = 196 inputs of one sigmoid unit: 197.
	// The model names the build that wrote it: this test binary's.
	producer := "nasctl " + buildinfo.Version()
	if r.Arch != "C(4,3,1) - P(2,2) - SM()" || r.Input != "16x16x1" || r.Params != 237 || r.Model != model || r.Producer != producer ||
		compact(r.Metadata["nasctl.training"]) != want || compact(r.Metadata["nasctl.seed"]) != `"5"` ||
		compact(r.Metadata["nasctl.classes"]) != `["no_leaf","leaf"]` {
		t.Errorf("arch inspect --json of the model: %+v", r)
	}
	code, out, _ = runCLI(t, "arch", "inspect", model)
	if code != 0 || !strings.Contains(out, "input 16x16x1, 2 classes") || !strings.Contains(out, model+" was written by "+producer+"; ONNX opset 17, input x float32[N,1,16,16], output probabilities float32[N,2]; its metadata:") ||
		!strings.Contains(out, "  nasctl.training: "+want+"\n") || !strings.Contains(out, "  nasctl.classes: [\"no_leaf\",\"leaf\"]\n") {
		t.Errorf("arch inspect of the model: exit %d:\n%s", code, out)
	}

	notModel := filepath.Join(dir, "x.onnx")
	if err := os.WriteFile(notModel, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{model, "--input", "9x9x1"}, 2, "--input and --classes are for an architecture; a model has its own"},
		{[]string{filepath.Join(dir, "none.onnx")}, 2, "none.onnx: no such file; give an exported model (.onnx)"},
		{[]string{notModel}, 1, "not an ONNX model"},
	} {
		code, _, errOut := runCLI(t, append([]string{"arch", "inspect"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("arch inspect %v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, errOut)
		}
	}
}

// A run whose config says HxW was searched with one channel when HxW meant
// that; resumed on RGB images, it keeps the channels it searched with
// (data.json) instead of mixing gray and colour trials.
func TestResumeKeepsChannels(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "colours")
	writeColours(t, data)
	args := []string{"search", "metaqnn", "--preset", "cpu", "--data", data, "--input", "8x8x1", "--trials", "2", "--epochs", "1", "--skip-final",
		"--threads", "1", "--dir", dir, "--name", "old"}
	if code, _, errOut := runCLI(t, args...); code != 0 {
		t.Fatalf("search: exit %d: %s", code, errOut)
	}
	run := filepath.Join(dir, "old")
	cfg := filepath.Join(run, "config.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(b), "input: 8x8x1\n", "input: 8x8\n", 1)
	if old == string(b) {
		t.Fatalf("no input line in:\n%s", b)
	}
	if err := os.WriteFile(cfg, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	// A run of a nasctl that wrote "8x8" had no copy of its config.yaml.
	if err := os.Remove(filepath.Join(run, rundir.FileConfigWritten)); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "search", "metaqnn", "--resume", run, "--trials", "3", "--threads", "1")
	if code != 0 || !strings.Contains(errOut, "input 8x8x1,") {
		t.Errorf("resume: exit %d: %s", code, errOut)
	}
}

// writeColours writes a folder of two classes, ten 12x12 squares each of
// red and of green.
func writeColours(t *testing.T, data string) {
	t.Helper()
	for i := range 10 {
		for class, c := range map[string]color.RGBA{"green": {0, 150, 0, 255}, "red": {255, 0, 0, 255}} {
			img := image.NewRGBA(image.Rect(0, 0, 12, 12))
			for p := range 12 * 12 {
				img.SetRGBA(p%12, p/12, c)
			}
			writeDatasetPNG(t, filepath.Join(data, class, fmt.Sprintf("%02d.png", i)), img)
		}
	}
}

// --average reaches the training: the model's training record names it,
// and a value out of range is refused with the range.
func TestTrainAverage(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "leaves")
	generateLeaves(t, data, 100, 16, 1)
	model := filepath.Join(dir, "m.onnx")
	code, _, errOut := runCLI(t, "train", "--arch", "C(4,3,1) - P(2,2) - SM()", "--data", data, "--epochs", "2", "--threads", "1", "--average", "2", "--out", model)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, out, errOut := runCLI(t, "arch", "inspect", "--json", model)
	if code != 0 || !strings.Contains(out, `"average_epochs": 2`) {
		t.Errorf("arch inspect: exit %d, no average_epochs 2 in the training record:\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "train", "--arch", "C(4,3,1) - SM()", "--data", data, "--average", "-1")
	if code != 2 || !strings.Contains(errOut, "--average -1: a time constant in epochs, from 0 (off) to 1000") {
		t.Errorf("--average -1: exit %d, %q", code, errOut)
	}
}

// --optimizer sgd with --momentum trains with SGD, as a cell search does,
// and the model's training record says so; --patience 0 is recorded as -1,
// which train takes back.
func TestTrainOptimizerAndPatience(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "leaves")
	generateLeaves(t, data, 100, 16, 1)
	for _, tc := range []struct {
		args []string
		want []string // in arch inspect --json's output
	}{
		{[]string{"--optimizer", "sgd", "--momentum", "0.5", "--lr", "0.05", "--patience", "0"}, []string{`"optimizer": "sgd(momentum 0.5)"`, `"patience": -1`}},
		{[]string{"--patience", "-1"}, []string{`"optimizer": "adam(beta1 0.5, beta2 0.999, eps 1e-07)"`, `"patience": -1`}},
	} {
		model := filepath.Join(dir, "m.onnx")
		args := append([]string{"train", "--arch", "C(4,3,1) - P(2,2) - SM()", "--data", data, "--epochs", "2", "--threads", "1", "--out", model}, tc.args...)
		if code, _, errOut := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, errOut)
		}
		_, out, _ := runCLI(t, "arch", "inspect", "--json", model)
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: no %s in the training record:\n%s", tc.args, w, out)
			}
		}
	}
}

// tinySearch runs a one-trial MetaQNN search called name, with the extra
// flags, on a folder of coloured squares in a new folder; it returns the
// folder of runs and the images'.
func tinySearch(t *testing.T, name string, extra ...string) (dir, data string) {
	t.Helper()
	dir = t.TempDir()
	data = filepath.Join(dir, "colours")
	writeColours(t, data)
	args := append([]string{"search", "metaqnn", "--preset", "cpu", "--trials", "1", "--epochs", "1", "--skip-final", "--dir", dir, "--name", name,
		"--data", data, "--threads", "1"}, extra...)
	if code, _, errOut := runCLI(t, args...); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	return dir, data
}

// search takes the split plan and its seed as train and eval do: the run
// records them, and an unknown plan is refused with the plans' names.
func TestSearchPlanFlag(t *testing.T) {
	dir, data := tinySearch(t, "p", "--plan", "metaqnn-stratified", "--split-seed", "7")
	cfg, err := os.ReadFile(filepath.Join(dir, "p", "config.yaml"))
	if err != nil || !strings.Contains(string(cfg), "split: metaqnn-stratified\n") || !strings.Contains(string(cfg), "split_seed: 7\n") {
		t.Errorf("config.yaml: %v\n%s", err, cfg)
	}
	code, _, errOut := runCLI(t, "search", "metaqnn", "--preset", "cpu", "--data", data, "--dir", dir, "--name", "q", "--plan", "stratified")
	if code != 2 || !strings.Contains(errOut, `--plan "stratified": give one of metaqnn, metaqnn-stratified`) {
		t.Errorf("an unknown plan: exit %d: %s", code, errOut)
	}
}

// runs show ends with what nasctl bench measured of the run's winners, when
// it has, in text and in --json, and names those over the run's latency
// limit.
func TestRunsShowBench(t *testing.T) {
	dir, _ := tinySearch(t, "r", "--reward", "constraint", "--max-latency-ms", "5")
	run := filepath.Join(dir, "r")
	if _, out, _ := runCLI(t, "runs", "show", run); strings.Contains(out, "Measured by nasctl bench") {
		t.Errorf("a run bench has not measured:\n%s", out)
	}
	acc := 0.95
	if err := os.MkdirAll(filepath.Join(run, "bench"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := bench.WriteCSV(filepath.Join(run, "bench", "bench.csv"), []*bench.Result{
		{Model: "winners/rank-01.onnx", Params: 1234, LatencyMs: bench.Latency{P50: 6.5, P95: 7}, Accuracy: &acc, Pareto: true},
		{Model: "winners/rank-02.onnx", Params: 99, LatencyMs: bench.Latency{P50: 0.5, P95: 0.6}},
	}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "runs", "show", run)
	if code != 0 || !strings.Contains(out, "## Measured by nasctl bench") || !strings.Contains(out, "winners/rank-01.onnx  1,234   6.5000  7.0000  0.9500    *") ||
		!strings.Contains(out, "Over the run's latency limit of 5 ms: winners/rank-01.onnx (nasctl bench RUN says why).") {
		t.Errorf("runs show: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "runs", "show", run, "--json")
	var shown struct {
		Bench []bench.Result `json:"bench"`
	}
	if err := json.Unmarshal([]byte(out), &shown); code != 0 || err != nil || len(shown.Bench) != 2 || shown.Bench[0].LatencyMs.P50 != 6.5 {
		t.Errorf("runs show --json: exit %d, %v: %+v", code, err, shown.Bench)
	}

	// Results of other files than the run's winners now (a bench taken
	// before the final phase was finished, say) are marked stale; of the
	// same files, not. (The run skipped its final phase: its winners are
	// made up here, as files.)
	var rs, older []*bench.Result
	for _, w := range []string{"rank-01.onnx", "rank-02.onnx"} {
		if err := os.WriteFile(filepath.Join(run, rundir.DirWinners, w), []byte(w), 0o644); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, &bench.Result{Model: filepath.Join(run, rundir.DirWinners, w), SHA256: quantize.SHA256([]byte(w))})
		older = append(older, &bench.Result{Model: filepath.Join(run, rundir.DirWinners, w), SHA256: quantize.SHA256([]byte("before " + w))})
	}
	for _, tc := range []struct {
		rs   []*bench.Result
		want string
	}{
		{older, "Note: the run's rank-01.onnx and rank-02.onnx are not measured by this bench (retrained or added since): measure the winners again with nasctl bench " + run},
		{rs, ""},
		// A bench.csv of nasctl before its sha256 column: by the names.
		{[]*bench.Result{{Model: filepath.Join(run, rundir.DirWinners, "rank-01.onnx")}}, "Note: the run's rank-02.onnx is not measured by this bench"},
	} {
		if err := bench.WriteCSV(filepath.Join(run, "bench", "bench.csv"), tc.rs); err != nil {
			t.Fatal(err)
		}
		_, out, _ = runCLI(t, "runs", "show", run)
		if !strings.Contains(out, "## Measured by nasctl bench") || tc.want == "" && strings.Contains(out, "not measured by this bench") || tc.want != "" && !strings.Contains(out, tc.want) {
			t.Errorf("want %q in\n%s", tc.want, out)
		}
	}
}

// bench of a run whose final phase is unfinished warns that it measures
// only the models there are (the best among them perhaps missing).
func TestBenchUnfinishedRun(t *testing.T) {
	dir, _ := tinySearch(t, "u", "--trials", "2", "--top-k", "2", "--skip-final=false")
	run := filepath.Join(dir, "u")
	final := filepath.Join(run, rundir.FileFinal)
	b, err := os.ReadFile(final)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d finals, want 2", len(lines))
	}
	if err := os.WriteFile(final, []byte(lines[0]), 0o644); err != nil { // as a stop after the first leaves it
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "bench", run, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--out", t.TempDir())
	if want := "warning: " + run + " has 1 of its 2 final models; its final phase is stopped: resume it, and bench it again once it is finished"; code != 0 || !strings.Contains(errOut, want) {
		t.Errorf("bench of an unfinished run: exit %d, no %q in\n%s", code, want, errOut)
	}
}
