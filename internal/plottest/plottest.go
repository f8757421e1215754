// Package plottest checks figures against golden images for the tests of
// the packages that draw with gonum/plot.
package plottest

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/cmpimg"

	"github.com/nasctl/nasctl/internal/figure"
)

var regen = flag.Bool("regen-golden", false, "rewrite the golden images in testdata")

// Golden draws p with figure.Render, at the one size the product saves
// every figure at, as PNG and SVG and compares them with
// testdata/<name>_golden.{png,svg}: PNG with cmpimg.EqualApprox at delta 0.01
// (its normalized per-pixel colour distance, which absorbs rasterization
// differences between platforms), SVG by the same function (byte for byte).
// With -regen-golden it rewrites the golden files instead.
func Golden(t *testing.T, p *plot.Plot, name string) {
	t.Helper()
	for _, format := range figure.Formats() {
		b, err := figure.Render(p, format)
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", name+"_golden."+format)
		if *regen {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -regen-golden to create it)", err)
		}
		ok, err := cmpimg.EqualApprox(format, b, want, 0.01)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			got, err := keep(name+"."+format, b)
			if err != nil {
				t.Errorf("%s differs from %s, and the figure drawn could not be kept: %v", format, golden, err)
				continue
			}
			t.Errorf("%s differs from %s (got: %s); inspect it and rerun with -regen-golden if the change is intended", format, golden, got)
		}
	}
}

// keep writes a figure that differs from its golden file where it outlives
// the test (t.TempDir is deleted when the test ends): the folder
// $NASCTL_GOLDEN_FAILURES, else nasctl-golden-failures in the system's
// temporary folder, and returns its path.
func keep(name string, b []byte) (string, error) {
	dir := os.Getenv("NASCTL_GOLDEN_FAILURES")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "nasctl-golden-failures")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, b, 0o644)
}
