package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/quantize"
	"github.com/nasctl/nasctl/search/rundir"
)

// writeModel exports arch with random weights to path, for the classes a
// and b unless others are given.
func writeModel(t *testing.T, path, arch string, in genotype.Input, classes ...string) {
	t.Helper()
	writeModelTrainedOn(t, path, arch, in, "", classes...)
}

// writeModelTrainedOn is writeModel for a model that records the data hash
// it was trained on (onnxgen.MetaDatasetHash).
func writeModelTrainedOn(t *testing.T, path, arch string, in genotype.Input, dataHash string, classes ...string) {
	t.Helper()
	if classes == nil {
		classes = []string{"a", "b"}
	}
	g, err := genotype.ParseGenotype(arch)
	if err != nil {
		t.Fatal(err)
	}
	net, err := g.Build(in, len(classes))
	if err != nil {
		t.Fatal(err)
	}
	w := onnxgen.Init(onnxgen.Params(net), rand.New(rand.NewPCG(7, 7)))
	b, err := onnxgen.Inference(net, w, onnxgen.Metadata{Arch: arch, Input: in, Classes: classes, DatasetHash: dataHash})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A run directory stands for its ranked winners (best.onnx is a copy of one
// of them); every float model is compared with onnx-go and timed there, a
// model with what onnx-go lacks in the form export --pure-go writes, which
// the table marks and explains once.
func TestBenchRunDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "winners"), 0o755); err != nil {
		t.Fatal(err)
	}
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	// 17 -> 'valid' 15 -> 'same' P(2,2) pads the end only, which onnx-go
	// miscomputes: compared in the --pure-go form.
	writeModel(t, filepath.Join(dir, "winners", "rank-01.onnx"), "C(4,3,1) - P(2,2) - SM()", genotype.Input{Height: 17, Width: 17, Channels: 1})
	// A cell network with an average pooling and a separable convolution:
	// onnx-go lacks AveragePool and groups.
	writeModel(t, filepath.Join(dir, "winners", "rank-02.onnx"), cellsWithGaps, in)
	writeModel(t, filepath.Join(dir, "winners", "best.onnx"), "C(4,3,1) - P(2,2) - GAP()", in)

	code, out, errOut := runCLI(t, "bench", dir, "--runs", "5", "--warmup", "1", "--batch", "4", "--threads", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rs []struct {
		Model  string `json:"model"`
		Params int64  `json:"params"`
		PureGo struct {
			MaxAbsDiff    *float64       `json:"max_abs_diff"`
			UnsupportedOp string         `json:"unsupported_op"`
			LatencyMs     *bench.Latency `json:"latency_ms"`
			Rewritten     int            `json:"rewritten"`
		} `json:"pure_go"`
	}
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rs) != 2 || filepath.Base(rs[0].Model) != "rank-01.onnx" || filepath.Base(rs[1].Model) != "rank-02.onnx" {
		t.Fatalf("models %+v", rs)
	}
	for i, rewritten := range []int{1, 2} { // rank-02: its AveragePool and its grouped Conv
		if p := rs[i].PureGo; p.MaxAbsDiff == nil || *p.MaxAbsDiff > bench.Tolerance || p.LatencyMs == nil || !(p.LatencyMs.P50 > 0) || p.Rewritten < rewritten || p.UnsupportedOp != "" {
			t.Errorf("%s pure Go %+v, want agreement in the --pure-go form", rs[i].Model, p)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bench", "bench.csv")); err != nil {
		t.Error(err)
	}

	// The table marks the comparisons of the --pure-go form, and explains
	// them once.
	code, out, errOut = runCLI(t, "bench", filepath.Join(dir, "winners", "rank-02.onnx"), filepath.Join(dir, "winners", "rank-02.onnx"),
		"--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--out", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Count(out, " (--pure-go form)") != 2 || strings.Count(out, `was compared as "nasctl export MODEL.onnx --pure-go" writes it`) != 1 {
		t.Errorf("table:\n%s", out)
	}

	// A run whose constraint reward had a latency limit: its winners over
	// it (measured) are named, in the table's notes and in the JSON.
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("kind: metaqnn\nreward:\n    mode: constraint\n    max_latency_ms: 0.0001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "bench", dir, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--out", t.TempDir())
	if code != 0 || !strings.Contains(out, "over the run's latency limit of 0.0001 ms: "+filepath.Join(dir, "winners", "rank-01.onnx")+" (p50 ") ||
		!strings.Contains(out, "The search refused architectures by predicted latencies at 1 thread(s); give the limit a margin") {
		t.Errorf("a run with a latency limit: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "bench", dir, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--out", t.TempDir(), "--json")
	if code != 0 || strings.Count(out, `"over_latency_limit_ms": 0.0001`) != 2 {
		t.Errorf("a run with a latency limit, --json: exit %d\n%s%s", code, out, errOut)
	}
	// A run that timed its finals itself picked its best by those timings.
	if err := os.WriteFile(filepath.Join(dir, rundir.FileFinalLatency), []byte(`{"threads": 1, "models": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "bench", dir, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--out", t.TempDir())
	if code != 0 || !strings.Contains(out, "; the search timed its final models too, and picked winners/best.onnx among those within the limit (its report.md); give the limit a margin") {
		t.Errorf("a run that timed its finals: exit %d\n%s%s", code, out, errOut)
	}

	// A throughput batch far beyond the machine's memory is refused before
	// anything runs (a billion 17x17 images is over a terabyte).
	code, _, errOut = runCLI(t, "bench", filepath.Join(dir, "winners", "rank-02.onnx"), "--runs", "3", "--warmup", "1", "--batch", "1000000000",
		"--threads", "1", "--out", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "throughput at batch 1000000000 needs at least") || !strings.Contains(errOut, "give a smaller --batch") {
		t.Errorf("--batch 1000000000: exit %d, %q", code, errOut)
	}
}

// cellsWithGaps is a cell network with operations onnx-go lacks.
const cellsWithGaps = "net(stem=4, filters=4, normal=1, reductions=0, style=nasnet) normal: b0 = add(avg_pool_3x3(h1), identity(h0)); b1 = add(sep_conv_3x3(b0), conv_3x3(h0)) | " +
	"reduction: b0 = add(conv_3x3(h1), identity(h0)); b1 = add(conv_3x3(b0), identity(h1))"

// A run directory's test images are split with the run's own plan and seed
// (config.yaml), unless --plan or --split-seed is given. 40 images: the
// nasnet-search plan keeps floor(0.2*40) = 8 and tests ceil(0.3*8) = 3 of
// them; metaqnn tests ceil(0.3*40) = 12. A model whose classes are not the
// data's is refused.
func TestBenchRunDirectorySplit(t *testing.T) {
	data := filepath.Join(t.TempDir(), "leaves")
	d := benchLeaves(t, data)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "winners"), 0o755); err != nil {
		t.Fatal(err)
	}
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	writeModel(t, filepath.Join(dir, "winners", "rank-01.onnx"), "C(4,3,1) - P(2,2) - GAP()", in, d.Classes...)
	config := "data: " + data + "\nsplit: nasnet-search\nsplit_seed: 7\n"
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{nil, "measured on 3 images"},
		{[]string{"--plan", "metaqnn"}, "measured on 12 images"},
	} {
		args := append([]string{"bench", dir, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--json", "--out", t.TempDir()}, tc.flags...)
		code, out, errOut := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", tc.flags, code, errOut)
		}
		var rs []struct {
			AccuracySource string `json:"accuracy_source"`
		}
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if len(rs) != 1 || rs[0].AccuracySource != tc.want {
			t.Errorf("%q: %+v, want accuracy %s", tc.flags, rs, tc.want)
		}
	}

	writeModel(t, filepath.Join(dir, "winners", "rank-01.onnx"), "C(4,3,1) - P(2,2) - GAP()", in)
	code, _, errOut := runCLI(t, "bench", dir, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--out", t.TempDir())
	if want := "has the classes " + strings.Join(d.Classes, ", ") + ", the model "; code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("other classes: exit %d, stderr %q; want an error with %q", code, errOut, want)
	}
}

// --warmup 0 would silently mean the default; it is refused, and the error
// names the flags that are wrong, with their values, and no others. So is
// a --data folder that does not exist, which would silently mean random
// images, and an --out that cannot be a folder.
func TestBenchWarmupZero(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	writeModel(t, path, "C(2,3,1) - SM()", genotype.Input{Height: 8, Width: 8, Channels: 1})
	code, _, errOut := runCLI(t, "bench", path, "--warmup", "0")
	if code != 2 || !strings.Contains(errOut, "--warmup 0: must be at least 1") || strings.Contains(errOut, "--runs") {
		t.Errorf("exit %d, stderr %q; want exit 2 naming --warmup 0 alone", code, errOut)
	}
	code, _, errOut = runCLI(t, "bench", path, "--warmup", "0", "--rounds", "-1")
	if code != 2 || !strings.Contains(errOut, "--warmup 0, --rounds -1: must be at least 1") {
		t.Errorf("two flags: exit %d, stderr %q", code, errOut)
	}
	// A file where --out's parent folder should be.
	sub := filepath.Join(path, "sub")
	code, _, errOut = runCLI(t, "bench", path, "--runs", "3", "--warmup", "1", "--batch", "2", "--out", sub)
	if code != 2 || !strings.Contains(errOut, "--out "+sub+": cannot make the folder") || !strings.Contains(errOut, "not a directory") {
		t.Errorf("--out under a file: exit %d, stderr %q; want exit 2 naming --out", code, errOut)
	}
	// The default folder beside the model cannot be made either: a usage
	// error too, which says to give --out.
	blocked := strings.TrimSuffix(path, filepath.Ext(path)) + "-bench"
	if err := os.WriteFile(blocked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "bench", path, "--runs", "3", "--warmup", "1", "--batch", "2")
	if code != 2 || !strings.Contains(errOut, "cannot make the folder "+blocked+" for the results") || !strings.Contains(errOut, "give one with --out") {
		t.Errorf("the default folder blocked: exit %d, stderr %q; want exit 2", code, errOut)
	}
	os.Remove(blocked)
	// A model without an accuracy, and no --data: the legend says so.
	code, out, errOut := runCLI(t, "bench", path, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--out", t.TempDir())
	if code != 0 || !strings.Contains(out, "; accuracy: not measured (give --data); ") {
		t.Errorf("a model without an accuracy: exit %d\n%s%s", code, out, errOut)
	}
	nope := filepath.Join(t.TempDir(), "nope")
	code, _, errOut = runCLI(t, "bench", path, "--data", nope)
	if code != 2 || !strings.Contains(errOut, "--data "+nope+": no such file or directory; give a folder of image files") {
		t.Errorf("missing --data: exit %d, stderr %q; want exit 2 naming --data", code, errOut)
	}
	code, _, errOut = runCLI(t, "bench", path, "--data", path)
	if code != 2 || !strings.Contains(errOut, "--data "+path+" is a file; give a folder of image files") {
		t.Errorf("a model as --data: exit %d, stderr %q; want exit 2 naming --data", code, errOut)
	}
}

// --int8 quantizes each float model on the data's training images, then
// shows both side by side (and writes the comparison to int8.json); it
// needs data to calibrate on.
func TestBenchInt8(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "leaves")
	d := benchLeaves(t, data)
	model := filepath.Join(dir, "m.onnx")
	// 4,833 parameters: enough weights that int8 makes the file smaller
	// whatever metadata the two carry.
	writeModel(t, model, "C(16,3,1) - P(2,2) - C(32,3,1) - GAP()", genotype.Input{Height: 16, Width: 16, Channels: 1}, d.Classes...)
	out := filepath.Join(dir, "bench")
	code, stdout, errOut := runCLI(t, "bench", model, "--data", data, "--int8", "--images", "8", "--rounds", "2", "--runs", "3", "--warmup", "1",
		"--batch", "2", "--threads", "1", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(stdout, "float32 -> int8") || !strings.Contains(stdout, model+" -> "+filepath.Join(out, "int8", "m.onnx")+" ") {
		t.Errorf("table:\n%s", stdout)
	}
	b, err := os.ReadFile(filepath.Join(out, "int8.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pairs []bench.Quantized
	if err := json.Unmarshal(b, &pairs); err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 1 || !(pairs[0].SizeRatio < 1) || !(pairs[0].LatencyRatio > 0) || pairs[0].Rounds != 2 || pairs[0].AccuracyChange == nil {
		t.Errorf("comparison %s", b)
	}

	if code, _, errOut := runCLI(t, "bench", model, "--int8", "--runs", "3", "--out", out); code != 2 || !strings.Contains(errOut, "--data DIR") {
		t.Errorf("without data: exit %d, stderr %q", code, errOut)
	}

	// A run directory's int8 winners (final.int8) are paired with its
	// float ones; --int8 does not quantize those again. The copies of the
	// best (best.onnx) are not measured twice.
	run := filepath.Join(dir, "run")
	for _, c := range []struct{ src, dst string }{{model, "winners/rank-01.onnx"}, {model, "winners/best.onnx"},
		{filepath.Join(out, "int8", "m.onnx"), "winners/int8/rank-01.onnx"}, {filepath.Join(out, "int8", "m.onnx"), "winners/int8/best.onnx"}} {
		src, dst := c.src, c.dst
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(run, dst)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(run, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, errOut = runCLI(t, "bench", run, "--data", data, "--int8", "--rounds", "1", "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1")
	if code != 0 || strings.Contains(errOut, "quantizing") || !strings.Contains(stdout, "float32 -> int8") ||
		!strings.Contains(stdout, filepath.Join(run, "winners", "int8", "rank-01.onnx")) {
		t.Errorf("run directory: exit %d\n%s%s", code, stdout, errOut)
	}
	// --json gives the comparison on the int8 model's object, naming its
	// float model; the float model's object has none.
	code, stdout, errOut = runCLI(t, "bench", run, "--data", data, "--int8", "--rounds", "1", "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--json")
	var results []struct {
		Model        string
		AgainstFloat *struct {
			FloatModel   string  `json:"float_model"`
			LatencyRatio float64 `json:"latency_ratio"`
			SizeRatio    float64 `json:"size_ratio"`
			Rounds       int
		} `json:"against_float"`
	}
	if err := json.Unmarshal([]byte(stdout), &results); code != 0 || err != nil || len(results) != 2 {
		t.Fatalf("--json: exit %d, %v\n%s%s", code, err, stdout, errOut)
	}
	for _, r := range results {
		isInt8 := strings.Contains(r.Model, filepath.Join("winners", "int8"))
		if isInt8 != (r.AgainstFloat != nil) ||
			isInt8 && (r.AgainstFloat.FloatModel != filepath.Join(run, "winners", "rank-01.onnx") || !(r.AgainstFloat.LatencyRatio > 0) || !(r.AgainstFloat.SizeRatio < 1) || r.AgainstFloat.Rounds != 1) {
			t.Errorf("--json: %s", stdout)
		}
	}
}

// Without --out, a bench of loose models writes beside the first model
// (MODEL-bench/), not into the working directory, and says where.
func TestBenchOutBesideModel(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.onnx")
	writeModel(t, model, "C(4,3,1) - GAP()", genotype.Input{Height: 8, Width: 8, Channels: 1})
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	_, statErr := os.Stat(filepath.Join(wd, "bench"))
	code, out, errOut := runCLI(t, "bench", model, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := filepath.Join(dir, "m-bench", "bench.csv")
	if _, err := os.Stat(want); err != nil || !strings.Contains(out, want) {
		t.Errorf("%s: %v; output:\n%s", want, err, out)
	}
	if _, err := os.Stat(filepath.Join(wd, "bench")); os.IsNotExist(statErr) && err == nil {
		t.Errorf("bench wrote into the working directory %s", wd)
	}
}

// A model saved from an interrupted training is named as such; others are
// not.
func TestBenchNotesInterruptedModel(t *testing.T) {
	dir := t.TempDir()
	whole, cut := filepath.Join(dir, "whole.onnx"), filepath.Join(dir, "cut.onnx")
	in := genotype.Input{Height: 8, Width: 8, Channels: 1}
	writeModel(t, whole, "C(4,3,1) - GAP()", in)
	b, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = quantize.SetMetadata(b, onnxgen.MetaInterrupted, "true"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cut, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "bench", whole, cut, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1")
	if code != 0 || !strings.Contains(errOut, "note: "+cut+" was saved from an interrupted training (nasctl.interrupted)") || strings.Contains(errOut, whole+" was saved") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// Ctrl-C during a bench of several models keeps the models measured before
// it: bench.csv lists them, and the exit is a failure.
func TestBenchInterruptKeepsMeasured(t *testing.T) {
	bin := buildNasctl(t)
	dir := t.TempDir()
	models := interruptibleModels(t, dir)
	out := filepath.Join(dir, "bench")
	// An earlier pair's comparison: this bench has none, so it goes.
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "int8.json"), []byte("[]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"bench", "--runs", "20", "--warmup", "1", "--batch", interruptibleBatch, "--threads", "1", "--out", out}, models...)...)
	said, err := interruptAt(t, cmd, "[2/3] ")
	b, rerr := os.ReadFile(filepath.Join(out, "bench.csv"))
	rows := strings.Split(strings.TrimSpace(string(b)), "\n")
	if err == nil || rerr != nil || len(rows) != 2 || !strings.HasPrefix(rows[1], models[0]+",") ||
		!strings.Contains(said, "interrupted: the one model measured before is in "+filepath.Join(out, "bench.csv")+" and the plots beside it") {
		t.Errorf("exit %v; bench.csv %q (%v)\n%s", err, b, rerr, said)
	}
	checkBenchFiles(t, out, false)
}

// interruptibleModels writes three models to dir for a bench to be
// interrupted at "[2/3] ": the second takes long at interruptibleBatch (a
// second or so on one thread), the others milliseconds. With three small
// models, the second was at times measured before the interrupt landed.
func interruptibleModels(t *testing.T, dir string) []string {
	t.Helper()
	var models []string
	for i, arch := range []string{"C(4,3,1) - GAP()", "C(32,3,1) - C(32,3,1) - GAP()", "C(4,3,1) - GAP()"} {
		m := filepath.Join(dir, fmt.Sprintf("m%d.onnx", i+1))
		side := 8
		if i == 1 {
			side = 32
		}
		writeModel(t, m, arch, genotype.Input{Height: side, Width: side, Channels: 1})
		models = append(models, m)
	}
	return models
}

// interruptibleBatch is the --batch at which interruptibleModels' second
// model takes long.
const interruptibleBatch = "512"

// Ctrl-C during a bench in a folder holding an earlier complete bench
// leaves that bench's files as they were and writes the models measured
// beside them, in interrupted/; the next complete bench replaces both.
func TestBenchInterruptKeepsEarlier(t *testing.T) {
	bin := buildNasctl(t)
	dir := t.TempDir()
	models := interruptibleModels(t, dir)
	out := filepath.Join(dir, "bench")
	args := slices.Clip(append([]string{"bench", "--runs", "3", "--warmup", "1", "--threads", "1", "--out", out}, models...))
	if code, _, errOut := runCLI(t, append(args, "--batch", "2")...); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	before := benchFolder(t, out)

	said, err := interruptAt(t, exec.Command(bin, append(args, "--batch", interruptibleBatch)...), "[2/3] ")
	partial := filepath.Join(out, benchPartialDir)
	if err == nil || !strings.Contains(said, "interrupted: the one model measured before is in "+filepath.Join(partial, "bench.csv")+
		" and the plots beside it; the earlier bench's results in "+out+" are kept as they were\n") {
		t.Errorf("exit %v\n%s", err, said)
	}
	after := benchFolder(t, out)
	for path, b := range before {
		if after[path] != b {
			t.Errorf("the earlier bench's %s changed", path)
		}
	}
	b, rerr := os.ReadFile(filepath.Join(partial, "bench.csv"))
	if rows := strings.Split(strings.TrimSpace(string(b)), "\n"); rerr != nil || len(rows) != 2 || !strings.HasPrefix(rows[1], models[0]+",") {
		t.Errorf("%s: %q (%v), want the first model's row", filepath.Join(partial, "bench.csv"), b, rerr)
	}
	checkBenchFiles(t, partial, false)

	if code, _, errOut := runCLI(t, append(args, "--batch", "2")...); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("%s after a complete bench: %v, want it removed", partial, err)
	}
}

// An interrupted --int8 bench in a folder holding an earlier complete one
// leaves that bench whole, int8 models included: its own go to
// interrupted/int8/, and to int8/ only when a bench completes. Its
// progress names them there, so a note says where they end up; stopped,
// it names those it leaves.
func TestBenchInterruptKeepsEarlierInt8(t *testing.T) {
	bin := buildNasctl(t)
	dir := t.TempDir()
	data, model, _ := int8Pair(t, dir)
	out := filepath.Join(dir, "bench")
	args := []string{"bench", model, "--data", data, "--int8", "--warmup", "1", "--batch", "2", "--threads", "1", "--rounds", "1", "--out", out}
	if code, _, errOut := runCLI(t, append(args, "--runs", "3", "--images", "8")...); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkBenchFiles(t, out, true)
	before := benchFolder(t, out)

	// Calibrated on fewer images, its int8 model differs from the earlier
	// one, which must stay. Interrupted while measuring the int8 model or,
	// if that was quick, in the comparison's rounds.
	said, err := interruptAt(t, exec.Command(bin, append(args, "--runs", "20000", "--images", "4")...), "[2/2] ")
	partial := filepath.Join(out, benchPartialDir)
	staged := "note: the int8 models are written to " + filepath.Join(partial, benchInt8Dir) + " while this bench runs (the earlier bench's results in " +
		out + " are kept until it completes), then moved to " + filepath.Join(out, benchInt8Dir) + "\n"
	if err == nil || !strings.Contains(said, staged) ||
		!strings.Contains(said, "the earlier bench's results in "+out+" are kept as they were; the int8 models quantized are in "+filepath.Join(partial, benchInt8Dir)+" (m.onnx)\n") {
		t.Errorf("exit %v\n%s", err, said)
	}
	after := benchFolder(t, out)
	for path, b := range before {
		if after[path] != b {
			t.Errorf("the earlier bench's %s changed", path)
		}
	}
	checkBenchFiles(t, partial, false)
	if _, err := os.Stat(filepath.Join(partial, benchInt8Dir, "m.onnx")); err != nil {
		t.Error(err)
	}

	if code, _, errOut := runCLI(t, append(args, "--runs", "3", "--images", "8")...); code != 0 || !strings.Contains(errOut, staged) {
		t.Fatalf("exit %d, want %q in: %s", code, staged, errOut)
	}
	checkBenchFiles(t, out, true)
	q := filepath.Join(out, benchInt8Dir, "m.onnx")
	if b, err := os.ReadFile(filepath.Join(out, "bench.csv")); err != nil || !strings.Contains(string(b), "\n"+q+",") {
		t.Errorf("bench.csv %q (%v), want a row of %s", b, err, q)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("%s after a complete bench: %v, want it removed", partial, err)
	}
}

// A folder without some of a model's classes is refused before any
// latency is timed, not after the rounds of every model: the data is
// checked against each model first.
func TestBenchChecksClassesFirst(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "ab")
	colourFolders(t, data, false)
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	ab, abc := filepath.Join(dir, "ab.onnx"), filepath.Join(dir, "abc.onnx")
	writeModel(t, ab, "C(4,3,1) - GAP()", in)
	writeModel(t, abc, "C(4,3,1) - GAP()", in, "a", "b", "c")
	code, _, errOut := runCLI(t, "bench", ab, abc, "--data", data, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1",
		"--out", filepath.Join(dir, "bench"))
	want := data + " has no images of " + abc + "'s classes c; bench on data with every class of the model (--data)"
	if code != 1 || !strings.Contains(errOut, want) || strings.Contains(errOut, "batch-1 latency") || strings.Contains(errOut, "[1/2]") {
		t.Errorf("exit %d, %q; want exit 1 and %q before any timing", code, errOut, want)
	}
}

// benchFolder is the files in dir and its subfolders, by path, with their
// contents.
func benchFolder(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		files[path] = string(b)
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: %d files (%v)", dir, len(files), err)
	}
	return files
}

// checkBenchFiles fails t unless dir holds bench.csv and the plots, and
// int8.json exactly when pairs.
func checkBenchFiles(t *testing.T, dir string, pairs bool) {
	t.Helper()
	for _, f := range append([]string{filepath.Join(dir, "bench.csv")}, bench.PlotFiles(dir)...) {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "int8.json")); (err == nil) != pairs {
		t.Errorf("int8.json: %v, want it there: %v", err, pairs)
	}
}

// int8Pair writes a float model for 16x16 leaves (generated into
// dir/leaves) and its int8 model (nasctl export --int8, calibrated on 8
// images); it returns the data and both paths.
func int8Pair(t *testing.T, dir string) (data, model, q string) {
	t.Helper()
	data = filepath.Join(dir, "leaves")
	d := benchLeaves(t, data)
	model, q = filepath.Join(dir, "m.onnx"), filepath.Join(dir, "m-int8.onnx")
	writeModelTrainedOn(t, model, "C(8,3,1) - P(2,2) - C(8,3,1) - GAP()", genotype.Input{Height: 16, Width: 16, Channels: 1}, d.Hash, d.Classes...)
	if code, _, errOut := runCLI(t, "export", model, "--int8", "--calibration", data, "--images", "8", "--out", q, "--threads", "1"); code != 0 {
		t.Fatalf("export --int8: exit %d: %s", code, errOut)
	}
	return data, model, q
}

// Ctrl-C during the float32-int8 rounds keeps the models, measured in
// full before them: bench.csv and the plots, and says so; no int8.json, as
// no comparison was finished.
func TestBenchInterruptDuringRounds(t *testing.T) {
	bin := buildNasctl(t)
	dir := t.TempDir()
	data, model, q := int8Pair(t, dir)
	out := filepath.Join(dir, "bench")
	cmd := exec.Command(bin, "bench", model, q, "--data", data, "--runs", "20000", "--rounds", "50", "--warmup", "1", "--batch", "2",
		"--threads", "1", "--out", out)
	said, err := interruptAt(t, cmd, "float32 against int8: ")
	b, rerr := os.ReadFile(filepath.Join(out, "bench.csv"))
	rows := strings.Split(strings.TrimSpace(string(b)), "\n")
	if err == nil || rerr != nil || len(rows) != 3 ||
		!strings.Contains(said, "interrupted: the 2 models measured are in "+filepath.Join(out, "bench.csv")+
			" and the plots beside it; the float32-int8 comparison was not finished") {
		t.Errorf("exit %v; bench.csv %q (%v)\n%s", err, b, rerr, said)
	}
	checkBenchFiles(t, out, false)
}

// Ctrl-C in the latency rounds, which come before any model is measured in
// full, says so, and leaves no results behind.
func TestBenchInterruptInLatencyRounds(t *testing.T) {
	bin := buildNasctl(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.onnx"), filepath.Join(dir, "b.onnx")
	in := genotype.Input{Height: 8, Width: 8, Channels: 1}
	writeModel(t, a, "C(4,3,1) - GAP()", in)
	writeModel(t, b, "C(8,3,1) - GAP()", in)
	out := filepath.Join(dir, "bench")
	cmd := exec.Command(bin, "bench", a, b, "--runs", "100000000", "--warmup", "1", "--batch", "2", "--threads", "1", "--out", out)
	said, err := interruptAt(t, cmd, "batch-1 latency of 2 models: 10 rounds")
	if _, serr := os.Stat(out); err == nil || !errors.Is(serr, os.ErrNotExist) ||
		!strings.Contains(said, "interrupted during the batch-1 latency rounds, before any model was measured in full") {
		t.Errorf("exit %v; %s: %v\n%s", err, out, serr, said)
	}
}

// The interleaved rounds, the longest part of a bench, say how far they
// are, one line a round under the pair's.
func TestBenchRoundsProgress(t *testing.T) {
	dir := t.TempDir()
	data, model, q := int8Pair(t, dir)
	code, _, errOut := runCLI(t, "bench", model, q, "--data", data, "--rounds", "2", "--runs", "3", "--warmup", "1", "--batch", "2",
		"--threads", "1", "--out", filepath.Join(dir, "bench"), "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	pair := strings.Index(errOut, "float32 against int8: ")
	first, second := strings.Index(errOut, "  [1/2] int8 over float32 latency "), strings.Index(errOut, "  [2/2] int8 over float32 latency ")
	if pair < 0 || !(pair < first && first < second) {
		t.Errorf("no progress of the rounds:\n%s", errOut)
	}
}

// A bench in a folder an earlier bench wrote to removes that bench's files
// it does not rewrite (an earlier pair's int8.json, an earlier --int8's
// models), and nothing else.
func TestBenchOutClearsEarlierRun(t *testing.T) {
	dir := t.TempDir()
	data, model, q := int8Pair(t, dir)
	out := filepath.Join(dir, "bench")
	flags := []string{"--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--rounds", "1", "--out", out}
	bench := func(args ...string) {
		t.Helper()
		if code, _, errOut := runCLI(t, append(append([]string{"bench"}, args...), flags...)...); code != 0 {
			t.Fatalf("bench %q: exit %d: %s", args, code, errOut)
		}
	}
	bench(model, q)
	checkBenchFiles(t, out, true)
	// Someone else's files in the folder.
	theirs := []string{filepath.Join(out, "notes.txt"), filepath.Join(out, "int8", "float.onnx")}
	if err := os.MkdirAll(filepath.Join(out, "int8"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(theirs[0], []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeModel(t, theirs[1], "C(2,3,1) - GAP()", genotype.Input{Height: 8, Width: 8, Channels: 1})

	bench(model)
	checkBenchFiles(t, out, false)

	bench(model, "--data", data, "--int8", "--images", "8")
	checkBenchFiles(t, out, true)
	if _, err := os.Stat(filepath.Join(out, "int8", "m.onnx")); err != nil {
		t.Fatal(err)
	}
	bench(model)
	checkBenchFiles(t, out, false)
	if _, err := os.Stat(filepath.Join(out, "int8", "m.onnx")); !os.IsNotExist(err) {
		t.Errorf("the earlier --int8's model: %v, want it removed", err)
	}
	for _, f := range theirs {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("someone else's file: %v", err)
		}
	}

	// Without anyone else's, the emptied int8/ goes too.
	if err := os.Remove(theirs[1]); err != nil {
		t.Fatal(err)
	}
	bench(model, "--data", data, "--int8", "--images", "8")
	bench(model)
	if _, err := os.Stat(filepath.Join(out, "int8")); !os.IsNotExist(err) {
		t.Errorf("int8/: %v, want it removed", err)
	}
}

// bench --data with other images than a model was trained on warns as
// eval does; a model on its own data, or one that records no data, does
// not.
func TestBenchWarnsOtherData(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "leaves")
	d := benchLeaves(t, data)
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	for _, tc := range []struct {
		hash string
		warn bool
	}{{"sha256:" + strings.Repeat("0", 64), true}, {d.Hash, false}, {"", false}} {
		model := filepath.Join(dir, "m.onnx")
		writeModelTrainedOn(t, model, "C(4,3,1) - GAP()", in, tc.hash, d.Classes...)
		code, _, errOut := runCLI(t, "bench", model, "--data", data, "--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1",
			"--out", filepath.Join(dir, "bench"))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		warned := strings.Contains(errOut, "was trained on other data")
		if want := "warning: " + model + " was trained on other data than " + data + " (data hash sha256:000000000000, not " + d.Hash[:19] + ")"; warned && !strings.Contains(errOut, want) {
			t.Errorf("trained on %q: the warning lacks %q:\n%s", tc.hash, want, errOut)
		}
		if warned != tc.warn {
			t.Errorf("trained on %q: warned %v, want %v:\n%s", tc.hash, warned, tc.warn, errOut)
		}
		if hint := `"nasctl eval MODEL --data ` + data + ` --split all" measures every image`; warned && !strings.Contains(errOut, hint) {
			t.Errorf("the warning does not name %s (bench has no --split):\n%s", hint, errOut)
		}
	}
}

// benchLeaves generates 40 leaves images of 16x16 at data and returns them
// loaded, for their classes and hash.
func benchLeaves(t *testing.T, data string) *dataset.Dataset {
	t.Helper()
	generateLeaves(t, data, 40, 16, 1)
	d, _, err := dataset.Load(data, dataset.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A run scored without training has no winners, and bench says so; a
// folder that is not a run says only what it lacks (the other reasons:
// TestRunFolderWithoutWinners).
func TestBenchRunWithoutWinners(t *testing.T) {
	runs := t.TempDir()
	if code, _, errOut := runCLI(t, "search", "nasnet", "--reward", "mock", "--episodes", "2", "--dir", runs, "--name", "m", "--quiet"); code != 0 {
		t.Fatalf("mock search: exit %d, %s", code, errOut)
	}
	mock := filepath.Join(runs, "m")
	plain := t.TempDir()
	for _, tc := range []struct{ dir, want string }{
		{mock, mock + " holds no .onnx models (nor winners/*.onnx): its trials are scored (mock), not trained: it has no models\n"},
		{plain, plain + " holds no .onnx models (nor winners/*.onnx)\n"},
	} {
		if code, _, errOut := runCLI(t, "bench", tc.dir); code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("bench %s: exit %d, %q; want exit 1 and %q", tc.dir, code, errOut, tc.want)
		}
	}
}

// A run that ranked by a latency table: its limit is the table's, at the
// table's threads on the machine it was measured on, and the note says to
// bench the winners there.
func TestRunLatencyLimitTable(t *testing.T) {
	dir := t.TempDir()
	tab := bench.NewLatencyTable(&bench.LatencyModel{Coefficients: make([]float64, len(bench.Features)), Threads: 4})
	tab.Space, tab.SpaceDigest, tab.Input, tab.Classes, tab.Runs = "cpu", "abc", "32x32x1", 2, 1
	if err := writeJSON(filepath.Join(dir, "latency_table.json"), tab); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("kind: metaqnn\nreward:\n    mode: constraint\n    max_latency_ms: 0.5\n    latency_table: robot.json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := runLatencyLimit(dir)
	if l != (latencyLimit{Ms: 0.5, Threads: 4, Source: "table"}) {
		t.Fatalf("limit %+v", l)
	}
	var out strings.Builder
	printOverLimit(&out, []*bench.Result{{Model: "m.onnx", LatencyMs: bench.Latency{P50: 0.7}}}, l, 0)
	if want := "over the run's latency limit of 0.5 ms: m.onnx (p50 0.7000 ms). The search refused architectures by its latency table's predictions, at 4 thread(s) on the machine the table was measured on: bench the winners there; this bench ran with one thread per core (--threads 0); give the limit a margin\n"; out.String() != want {
		t.Errorf("note %q\nwant %q", out.String(), want)
	}
}

// The legend names the accuracies' source once when every model shares
// it, else each source with its models.
func TestAccuracyLegend(t *testing.T) {
	meta := "metadata: test accuracy"
	for _, tc := range []struct {
		sources []string
		want    string
	}{
		{[]string{meta, meta}, meta},
		{[]string{"", ""}, "not measured (give --data)"},
		{[]string{"", meta, ""}, "not measured (give --data) for m0.onnx, m2.onnx; " + meta + " for m1.onnx"},
	} {
		var rs []*bench.Result
		for i, s := range tc.sources {
			rs = append(rs, &bench.Result{Model: filepath.Join("runs", fmt.Sprintf("m%d.onnx", i)), AccuracySource: s})
		}
		if got := accuracyLegend(rs); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.sources, got, tc.want)
		}
	}
}
