package benchplot

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"gonum.org/v1/plot/cmpimg"

	"github.com/nasctl/nasctl/controller"
)

var regen = flag.Bool("regen-golden", false, "rewrite the golden images in testdata")

// synthetic is a fixed benchmark result: two agents, three seeds, budget 40,
// curves from closed forms so the figure never changes.
func synthetic() *controller.BenchmarkResult {
	res := &controller.BenchmarkResult{Optimum: 10, Budget: 40}
	for a, name := range []string{"random", "reinforce"} {
		runs := controller.AgentRuns{Agent: name}
		for s := range 3 {
			curve := make([]float64, 40)
			for q := range curve {
				curve[q] = 10 - 8/float64(q+1+a*q+s)
			}
			runs.Best = append(runs.Best, curve)
		}
		res.Agents = append(res.Agents, runs)
	}
	return res
}

// The regret figure matches the golden images: PNG pixel by pixel with
// cmpimg.EqualApprox at delta 0.01 (its normalized per-pixel colour
// distance, to absorb rasterization differences between platforms), SVG
// byte for byte. Regenerate them with go test -regen-golden.
func TestRegretGolden(t *testing.T) {
	p, err := Regret(synthetic(), "synthetic benchmark", "points")
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"png", "svg"} {
		var buf bytes.Buffer
		if err := Write(p, &buf, format); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "regret_golden."+format)
		if *regen {
			if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -regen-golden to create it)", err)
		}
		ok, err := cmpimg.EqualApprox(format, buf.Bytes(), want, 0.01)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Errorf("%s differs from %s; inspect it and rerun with -regen-golden if the change is intended", format, golden)
		}
	}
}

func TestSave(t *testing.T) {
	p, err := Regret(synthetic(), "t", "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths, err := Save(p, dir, "regret")
	if err != nil || len(paths) != 2 {
		t.Fatalf("Save: %v %v", paths, err)
	}
	for _, path := range paths {
		if st, err := os.Stat(path); err != nil || st.Size() < 1000 {
			t.Errorf("%s: %v", path, err)
		}
	}
}
