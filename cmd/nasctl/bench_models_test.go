package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// writeModel exports arch with random weights to path.
func writeModel(t *testing.T, path, arch string, in genotype.Input) {
	t.Helper()
	net, err := genotype.MustParse(arch).Build(in, 2)
	if err != nil {
		t.Fatal(err)
	}
	w := onnxgen.Init(onnxgen.Params(net), rand.New(rand.NewPCG(7, 7)))
	b, err := onnxgen.Inference(net, w, onnxgen.Metadata{Arch: arch, Input: in, Classes: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A run directory stands for its ranked winners (best.onnx is a copy of one
// of them); a model onnx-go cannot run is reported by operator and does not
// fail the command, a model it runs is compared.
func TestBenchRunDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "winners"), 0o755); err != nil {
		t.Fatal(err)
	}
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	writeModel(t, filepath.Join(dir, "winners", "rank-01.onnx"), "C(4,3,1) - P(2,2) - GAP()", in)
	// 17 -> 'valid' 15 -> 'same' P(2,2) pads the end only: onnx-go lacks it.
	writeModel(t, filepath.Join(dir, "winners", "rank-02.onnx"), "C(4,3,1) - P(2,2) - SM()", genotype.Input{Height: 17, Width: 17, Channels: 1})
	writeModel(t, filepath.Join(dir, "winners", "best.onnx"), "C(4,3,1) - P(2,2) - GAP()", in)

	code, out, errOut := runCLI(t, "bench", dir, "--runs", "5", "--warmup", "1", "--batch", "4", "--threads", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rs []struct {
		Model  string `json:"model"`
		Params int64  `json:"params"`
		PureGo struct {
			MaxAbsDiff    *float64 `json:"max_abs_diff"`
			UnsupportedOp string   `json:"unsupported_op"`
		} `json:"pure_go"`
	}
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rs) != 2 || filepath.Base(rs[0].Model) != "rank-01.onnx" || filepath.Base(rs[1].Model) != "rank-02.onnx" {
		t.Fatalf("models %+v", rs)
	}
	if d := rs[0].PureGo.MaxAbsDiff; d == nil || *d > 1e-4 {
		t.Errorf("rank-01 pure Go %+v", rs[0].PureGo)
	}
	if !strings.HasPrefix(rs[1].PureGo.UnsupportedOp, "MaxPool with asymmetric pads") {
		t.Errorf("rank-02 pure Go %+v", rs[1].PureGo)
	}
	if _, err := os.Stat(filepath.Join(dir, "bench", "bench.csv")); err != nil {
		t.Error(err)
	}

	// The table names the missing operator in short and explains it once.
	code, out, errOut = runCLI(t, "bench", filepath.Join(dir, "winners", "rank-02.onnx"), "--runs", "3", "--warmup", "1",
		"--batch", "2", "--threads", "1", "--out", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "lacks MaxPool with asymmetric pads  ") || strings.Count(out, "gorgonia, which reads") != 1 {
		t.Errorf("table:\n%s", out)
	}
}
