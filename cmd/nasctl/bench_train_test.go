package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A tiny step, timed for real: the JSON has the documented fields, positive
// and consistent (images per second = batch / time; the share is the rate
// over the given peak).
func TestBenchTrainStepJSON(t *testing.T) {
	code, out, errOut := runCLI(t, "bench", "train-step", "--arch", "C(4,3,1) - P(2,2) - SM()", "--input", "12x12x1",
		"--batch", "8", "--steps", "3", "--warmup", "1", "--threads", "1", "--peak-gflops", "100", "--inference", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r struct {
		MsPerStep       float64 `json:"ms_per_step"`
		ImagesPerSecond float64 `json:"images_per_second"`
		GFLOPs          float64 `json:"gflops"`
		PeakGFLOPs      float64 `json:"peak_gflops"`
		PeakShare       float64 `json:"peak_share"`
		Samples         []float64
		Params          int64 `json:"params"`
		Inference       *struct {
			Ms float64 `json:"ms"`
		} `json:"inference"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.MsPerStep <= 0 || r.Params != 4*9+4+4*5*5+1 || r.PeakGFLOPs != 100 || r.Inference == nil || r.Inference.Ms <= 0 {
		t.Fatalf("report %+v", r)
	}
	if d := r.ImagesPerSecond - 8/(r.MsPerStep/1000); d*d > 1e-6 {
		t.Errorf("images per second %v, want %v", r.ImagesPerSecond, 8/(r.MsPerStep/1000))
	}
	if d := r.PeakShare - r.GFLOPs/100; d*d > 1e-12 {
		t.Errorf("peak share %v, want %v", r.PeakShare, r.GFLOPs/100)
	}
}

func TestBenchTrainStepText(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "step")
	code, out, errOut := runCLI(t, "bench", "train-step", "--arch", "C(2,3,1) - SM()", "--input", "8x8",
		"--batch", "4", "--steps", "2", "--threads", "1", "--peak-gflops", "50", "--profile", prefix)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"training step", "images/s", "GFLOP/s", "of the peak (50.0 GFLOP/s", "profile of the training session: " + prefix + "_"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The file named is the profile ONNX Runtime wrote: a JSON trace.
	_, path, _ := strings.Cut(out, "profile of the training session: ")
	var trace []json.RawMessage
	if b, err := os.ReadFile(strings.TrimSpace(path)); err != nil || json.Unmarshal(b, &trace) != nil || len(trace) == 0 {
		t.Errorf("profile %q: %v, %d events", strings.TrimSpace(path), err, len(trace))
	}
}

func TestBenchTrainStepUsageErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "afile")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "train-step"}, "needs --arch"},
		{[]string{"bench", "train-step", "--arch", "C(2,3,1)"}, "--arch"},
		// Each names the flag at fault alone.
		{[]string{"bench", "train-step", "--arch", "SM()", "--batch", "0"}, "nasctl: --batch 0: must be at least 1\n"},
		{[]string{"bench", "train-step", "--arch", "SM()", "--steps", "0"}, "nasctl: --steps 0: must be at least 1\n"},
		{[]string{"bench", "train-step", "--arch", "SM()", "--warmup", "0"}, "nasctl: --warmup 0: must be at least 1\n"},
		{[]string{"bench", "train-step", "--arch", "SM()", "--classes", "1"}, "nasctl: --classes 1: must be at least 2\n"},
		{[]string{"bench", "train-step", "--arch", "SM()", "--threads", "-1"}, "nasctl: --threads -1: must be 0 (one per core) or more\n"},
		{[]string{"bench", "train-step", "--arch", "SM()", "--peak-gflops", "-1"}, "nasctl: --peak-gflops -1: must be 0 (measure it) or more\n"},
		{[]string{"bench", "train-step", "--arch", "SM()", "--input", "x"}, "--input"},
		{[]string{"bench", "train-step", "--arch", "C(2,9,1) - SM()", "--input", "4x4"}, "at input 4x4x1"},
		{[]string{"bench", "train-step", "--arch", "SM()", "extra"}, "takes no arguments"},
		{[]string{"bench", "train-step", "--arch", "SM()", "--profile", filepath.Join(t.TempDir(), "missing", "p")}, "does not exist; create it"},
		{[]string{"bench", "train-step", "--arch", "SM()", "--profile", filepath.Join(file, "p")}, file + " is not a folder"},
		// A folder that takes no file (ONNX Runtime would write nothing, and say nothing).
		{[]string{"bench", "train-step", "--arch", "SM()", "--profile", "/proc/prof"}, "--profile /proc/prof: cannot write in /proc"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
