package onnxgen

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/genotype"
)

// python returns the first of Debian's Python (which "make test" gives
// python3-onnx) and the python3 on PATH that imports onnx, as
// scripts/setup-test-deps.sh looks for it; the first that exists otherwise,
// whose error then says what is missing.
func python() string {
	var found []string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil {
			found = append(found, path)
			if exec.Command(path, "-c", "import onnx").Run() == nil {
				return path
			}
		}
	}
	if len(found) > 0 {
		return found[0]
	}
	return "python3"
}

// The graphs pass the ONNX reference checker with full_check (shape and type
// inference included), as a portable model must; python3-onnx is the
// reference (Debian's 1.12).
func TestONNXChecker(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, tc := range []struct {
		arch    string
		in      genotype.Input
		classes int
	}{
		{"C(8,5,1) - P(3,2) - C(16,3,1) - P(2,2) - FC(32) - SM()", genotype.Input{Height: 32, Width: 32, Channels: 1}, 2},
		{"P(2,3) - C(4,3,1) - C(6,1,1) - GAP()", genotype.Input{Height: 17, Width: 15, Channels: 3}, 5},
		// Blocked convolutions (first and inner), the gradient's patches and
		// the direct 1x1 product in the compiler's own choice.
		{"C(8,3,1) - P(2,2) - C(16,3,1) - P(2,2) - C(8,1,1) - C(4,3,1) - SM()", genotype.Input{Height: 31, Width: 29, Channels: 1}, 2},
	} {
		n, err := genotype.MustParse(tc.arch).Build(tc.in, tc.classes)
		if err != nil {
			t.Fatal(err)
		}
		tg, err := Training(n, TrainOptions{Formulas: Formulas{Pool: PoolScatter}})
		if err != nil {
			t.Fatal(err)
		}
		tu, err := Training(n, TrainOptions{Optimizer: SGD{Momentum: 0.9}, Formulas: Formulas{ConvWeight: ConvWeightDilated, Pool: PoolPatches}, Gradients: true})
		if err != nil {
			t.Fatal(err)
		}
		ta, err := Training(n, TrainOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := Evaluation(n)
		if err != nil {
			t.Fatal(err)
		}
		inf, err := Inference(n, Init(Params(n), rand.New(rand.NewPCG(1, 1))), Metadata{Arch: tc.arch, Input: tc.in, Classes: strings.Split("abcde"[:tc.classes], "")})
		if err != nil {
			t.Fatal(err)
		}
		for kind, b := range map[string][]byte{"train": tg.Model, "train-sgd": tu.Model, "train-auto": ta.Model, "eval": ev.Model, "inference": inf} {
			f := filepath.Join(dir, kind+"-"+string(rune('0'+i))+".onnx")
			if err := os.WriteFile(f, b, 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
	}
	script := `import sys, onnx
for f in sys.argv[1:]:
    m = onnx.load(f)
    onnx.checker.check_model(m, full_check=True)
    print("ok", f)
`
	out, err := exec.Command(python(), append([]string{"-c", script}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx checker (python3-onnx; \"make test\" installs it): %v\n%s", err, out)
	}
	if got := strings.Count(string(out), "ok "); got != len(files) {
		t.Errorf("checker passed %d of %d models:\n%s", got, len(files), out)
	}
}
