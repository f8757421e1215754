package main

import (
	"encoding/json"
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
	code, out, errOut := runCLI(t, "bench", "train-step", "--arch", "C(2,3,1) - SM()", "--input", "8x8",
		"--batch", "4", "--steps", "2", "--threads", "1", "--peak-gflops", "50")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"training step", "images/s", "GFLOP/s", "of the peak (50.0 GFLOP/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchTrainStepUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "train-step"}, "needs --arch"},
		{[]string{"bench", "train-step", "--arch", "C(2,3,1)"}, "--arch"},
		{[]string{"bench", "train-step", "--arch", "SM()", "--batch", "0"}, "--batch"},
		{[]string{"bench", "train-step", "--arch", "SM()", "--warmup", "0"}, "--warmup"},
		{[]string{"bench", "train-step", "--arch", "SM()", "--input", "x"}, "--input"},
		{[]string{"bench", "train-step", "--arch", "C(2,9,1) - SM()", "--input", "4x4"}, "at input 4x4x1"},
		{[]string{"bench", "train-step", "--arch", "SM()", "extra"}, "takes no arguments"},
		{[]string{"bench", "train-step", "--arch", "SM()", "--profile", filepath.Join(t.TempDir(), "missing", "p")}, "does not exist; create it"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
