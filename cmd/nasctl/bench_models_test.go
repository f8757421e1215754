package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// writeModel exports arch with random weights to path, for the classes a
// and b unless others are given.
func writeModel(t *testing.T, path, arch string, in genotype.Input, classes ...string) {
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
	b, err := onnxgen.Inference(net, w, onnxgen.Metadata{Arch: arch, Input: in, Classes: classes})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A run directory stands for its ranked winners (best.onnx is a copy of one
// of them); a model onnx-go cannot run is reported by operator and does not
// fail the command, a model it runs is compared and timed.
func TestBenchRunDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "winners"), 0o755); err != nil {
		t.Fatal(err)
	}
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	// 17 -> 'valid' 15 -> 'same' P(2,2) pads the end only: written out,
	// onnx-go runs it.
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
		} `json:"pure_go"`
	}
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rs) != 2 || filepath.Base(rs[0].Model) != "rank-01.onnx" || filepath.Base(rs[1].Model) != "rank-02.onnx" {
		t.Fatalf("models %+v", rs)
	}
	if d, l := rs[0].PureGo.MaxAbsDiff, rs[0].PureGo.LatencyMs; d == nil || *d > bench.Tolerance || l == nil || !(l.P50 > 0) {
		t.Errorf("rank-01 pure Go %+v", rs[0].PureGo)
	}
	if op := rs[1].PureGo.UnsupportedOp; !strings.HasPrefix(op, "AveragePool; ") || !strings.Contains(op, "Conv with groups") {
		t.Errorf("rank-02 pure Go %+v", rs[1].PureGo)
	}
	if _, err := os.Stat(filepath.Join(dir, "bench", "bench.csv")); err != nil {
		t.Error(err)
	}

	// The table names the missing operators in short and explains each
	// once.
	code, out, errOut = runCLI(t, "bench", filepath.Join(dir, "winners", "rank-02.onnx"), filepath.Join(dir, "winners", "rank-02.onnx"),
		"--runs", "3", "--warmup", "1", "--batch", "2", "--threads", "1", "--out", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "lacks AveragePool, ") || strings.Count(out, "ignores the group attribute") != 1 {
		t.Errorf("table:\n%s", out)
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
	generateLeaves(t, data, 40, 16, 1)
	d, _, err := dataset.Load(data, dataset.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
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

// --warmup 0 would silently mean the default; it is refused. So is a --data
// folder that does not exist, which would silently mean random images.
func TestBenchWarmupZero(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.onnx")
	writeModel(t, path, "C(2,3,1) - SM()", genotype.Input{Height: 8, Width: 8, Channels: 1})
	code, _, errOut := runCLI(t, "bench", path, "--warmup", "0")
	if code != 2 || !strings.Contains(errOut, "--warmup") {
		t.Errorf("exit %d, stderr %q; want exit 2 naming --warmup", code, errOut)
	}
	code, _, errOut = runCLI(t, "bench", path, "--data", filepath.Join(t.TempDir(), "nope"))
	if code != 2 || !strings.Contains(errOut, "--data: stat ") || !strings.Contains(errOut, "nope: no such file or directory") {
		t.Errorf("missing --data: exit %d, stderr %q; want exit 2 naming --data", code, errOut)
	}
}

// --int8 quantizes each float model on the data's training images, then
// shows both side by side (and writes the comparison to int8.json); it
// needs data to calibrate on.
func TestBenchInt8(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "leaves")
	generateLeaves(t, data, 40, 16, 1)
	d, _, err := dataset.Load(data, dataset.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
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
	// float ones; --int8 does not quantize those again.
	run := filepath.Join(dir, "run")
	for src, dst := range map[string]string{model: "winners/rank-01.onnx", filepath.Join(out, "int8", "m.onnx"): "winners/int8/rank-01.onnx"} {
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

// Ctrl-C during a bench of several models keeps the models measured before
// it: bench.csv lists them, and the exit is a failure.
func TestBenchInterruptKeepsMeasured(t *testing.T) {
	bin := buildNasctl(t)
	dir := t.TempDir()
	var models []string
	for i := range 3 {
		m := filepath.Join(dir, fmt.Sprintf("m%d.onnx", i+1))
		writeModel(t, m, "C(4,3,1) - GAP()", genotype.Input{Height: 8, Width: 8, Channels: 1})
		models = append(models, m)
	}
	out := filepath.Join(dir, "bench")
	cmd := exec.Command(bin, append([]string{"bench", "--runs", "20000", "--warmup", "1", "--batch", "2", "--threads", "1", "--out", out}, models...)...)
	said, err := interruptAt(t, cmd, "[2/3] ")
	b, rerr := os.ReadFile(filepath.Join(out, "bench.csv"))
	rows := strings.Split(strings.TrimSpace(string(b)), "\n")
	if err == nil || rerr != nil || len(rows) != 2 || !strings.HasPrefix(rows[1], models[0]+",") ||
		!strings.Contains(said, "interrupted: the 1 models measured before are in "+filepath.Join(out, "bench.csv")) {
		t.Errorf("exit %v; bench.csv %q (%v)\n%s", err, b, rerr, said)
	}
}
