package main

import (
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
)

// A small table measured here (20 networks, 3 runs each) holds what it was
// measured for and on, every feature, and passes --check for its own space
// and input only.
func TestBenchLatencyTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host.json")
	start := time.Now().UTC().Add(-time.Second)
	code, out, errOut := runCLI(t, "bench", "latency-table", "--space", "cpu", "--networks", "20", "--runs", "3", "--out", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	tab, err := bench.ReadLatencyTable(path)
	if err != nil {
		t.Fatal(err)
	}
	cpu, _ := search.Preset("cpu")
	space, digest := search.LatencySpace(cpu.WithDefaults())
	m := tab.Machine
	if tab.Space != space || tab.SpaceDigest != digest || tab.Input != "32x32x1" || tab.Classes != 2 || tab.Threads != 1 || tab.Runs != 3 {
		t.Errorf("table for %s %s at %s, %d classes, %d threads, %d runs", tab.Space, tab.SpaceDigest, tab.Input, tab.Classes, tab.Threads, tab.Runs)
	}
	// The preset's 32x32 leaves the channels to the images; the table says
	// which it measured.
	if !strings.Contains(errOut, "note: the default input 32x32 leaves the channels to the images; measuring at 32x32x1 (gray): give --input 32x32x3 for RGB images") {
		t.Errorf("no note on the channels: %s", errOut)
	}
	if m.OS != goruntime.GOOS || m.Arch != goruntime.GOARCH || m.Cores != goruntime.NumCPU() || tab.ONNXRuntime != runtime.PinnedVersion {
		t.Errorf("machine %+v, ONNX Runtime %q", m, tab.ONNXRuntime)
	}
	if tab.Date.Before(start) || tab.Date.After(time.Now().UTC()) || tab.Fitted != 16 || tab.HeldOut != 4 || math.IsNaN(tab.MAPE) {
		t.Errorf("date %v (test started %v), fitted %d, held out %d, error %v%%", tab.Date, start, tab.Fitted, tab.HeldOut, tab.MAPE)
	}
	for _, f := range bench.Features {
		if !strings.Contains(out, f) {
			t.Errorf("the printed table lacks %q:\n%s", f, out)
		}
	}
	if code, _, errOut := runCLI(t, "bench", "latency-table", "--check", path, "--space", "cpu", "--input", "32x32x1"); code != 0 {
		t.Errorf("--check for its own space: exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{{"--input", "64x64x1"}, {"--space", "study"}} {
		code, _, errOut := runCLI(t, append([]string{"bench", "latency-table", "--check", path}, args...)...)
		if code != exitFailure || !strings.Contains(errOut, "the latency table does not fit the space and input given") {
			t.Errorf("--check %v: exit %d: %s", args, code, errOut)
		}
	}
	// A table whose model gives a feature a negative cost is read with the
	// warning its measurement printed; one without, without.
	negative := *tab
	negative.MsPerUnit = slices.Clone(tab.MsPerUnit)
	negative.MsPerUnit[len(negative.MsPerUnit)-1].Ms = -1
	bad := filepath.Join(t.TempDir(), "negative.json")
	if err := writeJSON(bad, &negative); err != nil {
		t.Fatal(err)
	}
	for file, warn := range map[string]bool{bad: true, path: tab.Model().Doubt() != ""} {
		code, _, errOut := runCLI(t, "bench", "latency-table", "--check", file)
		if code != 0 || strings.Contains(errOut, "a negative cost") != warn {
			t.Errorf("--check %s: exit %d, want a warning: %v: %s", file, code, warn, errOut)
		}
	}
	// Every layer free (a constant at most): every network alike.
	zeros := *tab
	zeros.MsPerUnit = slices.Clone(tab.MsPerUnit)
	for i := range zeros.MsPerUnit {
		zeros.MsPerUnit[i].Ms = 0
	}
	zeros.MsPerUnit[0].Ms = 0.05
	free := filepath.Join(t.TempDir(), "zeros.json")
	if err := writeJSON(free, &zeros); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "bench", "latency-table", "--check", free); code != 0 || !strings.Contains(errOut, "gives every feature a cost of 0 ms per unit: every network is predicted alike") {
		t.Errorf("--check of a table with every layer free: exit %d: %s", code, errOut)
	}
}

// --check says nothing of channels unless it checks against an input that
// leaves them open, and then says it checks; a table that does not fit is
// described by the flags given, not by a search. The table is written
// here (all coefficients 0) for the cpu space at 32x32x1.
func TestBenchLatencyTableCheckWords(t *testing.T) {
	cpu, err := search.Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	tab := bench.NewLatencyTable(&bench.LatencyModel{Coefficients: make([]float64, len(bench.Features)), Threads: 1})
	tab.Space, tab.SpaceDigest = search.LatencySpace(cpu.WithDefaults())
	tab.Input, tab.Classes, tab.Runs = "32x32x1", 2, 3
	path := filepath.Join(t.TempDir(), "lt.json")
	if err := writeJSON(path, tab); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args      []string
		code      int
		want, not string
	}{
		{nil, 0, "", "note:"},
		{[]string{"--input", "32x32x1"}, 0, "", "note:"},
		{[]string{"--space", "cpu"}, 0, "note: the default input 32x32 leaves the channels to the images; checking the table against 32x32x1 (gray)", "measuring"},
		{[]string{"--input", "64x64x1"}, exitFailure, "it was measured at input 32x32x1, the input given is 64x64x1", "this search"},
		{[]string{"--input", "64x64"}, exitFailure, "note: --input 64x64 leaves the channels to the images; checking the table against 64x64x1", "this search"},
	} {
		code, _, errOut := runCLI(t, append([]string{"bench", "latency-table", "--check", path}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, tc.not) {
			t.Errorf("--check %v: exit %d: %s; want exit %d, %q and no %q", tc.args, code, errOut, tc.code, tc.want, tc.not)
		}
	}
}

// Bad flags are usage errors that say what to do; nothing is measured.
func TestBenchLatencyTableUsage(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "problem.yaml")
	if err := os.WriteFile(cfg, []byte("problem:\n  name: mock\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "needs --out FILE"},
		{[]string{"--out", "a.json", "--check", "b.json"}, "give one of them"},
		{[]string{"--out", "a.json", "--networks", "5"}, "measure at least 20 networks"},
		{[]string{"--out", "a.json", "--threads", "0"}, "need at least 2 classes, 1 run and 1 thread"},
		{[]string{"--out", "a.json", "--space", "huge"}, `--space: unknown search space "huge"`},
		{[]string{"--out", "a.json", "--space", "cpu", "--config", cfg}, "leave out --space"},
		{[]string{"--out", "a.json", "--config", cfg}, "its networks are never run"},
		{[]string{"--out", "a.json", "--input", "32"}, "--input: "},
		{[]string{"--out", t.TempDir()}, "is a folder; give a file name"}, // before any measuring
	} {
		code, _, errOut := runCLI(t, append([]string{"bench", "latency-table"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d: %s; want usage error %q", tc.args, code, errOut, tc.want)
		}
	}
}

// search --latency-table refuses a file that is no table before making the
// run directory, and cannot change a resumed run.
func TestSearchLatencyTableFlag(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "robot.json")
	if err := os.WriteFile(bad, []byte(`{"coefficients": [1, 2]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := filepath.Join(dir, "runs")
	code, _, errOut := runCLI(t, "search", "metaqnn", "--data", dir, "--reward", "mnasnet", "--target-ms", "1",
		"--latency-table", bad, "--dir", runs, "--name", "r")
	if code != exitUsage || !strings.Contains(errOut, "--latency-table: latency table "+bad+" is not a table written by nasctl bench latency-table") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(runs); !os.IsNotExist(err) {
		t.Errorf("the run directory was made: %v", err)
	}
	code, _, errOut = runCLI(t, "search", "metaqnn", "--resume", filepath.Join(runs, "r"), "--latency-table", bad)
	if code != exitUsage || !strings.Contains(errOut, "--latency-table cannot change a resumed run") {
		t.Errorf("with --resume: exit %d: %s", code, errOut)
	}
}
