package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/runtime"
)

// ONNX Runtime loads one library per process, so the tests that load the
// GPU build of "make setup-cuda" run nasctl in a child process: this test
// binary again, as nasctl (asMainEnv set), with the arguments after it.
const asMainEnv = "NASCTL_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
	}
	// The tests kill nasctl mid-write, which leaves its half-written temporary
	// files in the temporary folder: one of the tests' own, removed at the end.
	tmp, err := os.MkdirTemp("", "nasctl-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", tmp)
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// nasctlChild runs nasctl args in a child process whose $ONNXRUNTIME_LIB is
// lib ("": unset), and returns its exit code, stdout and stderr.
func nasctlChild(t *testing.T, lib string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, runtime.LibraryEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, asMainEnv+"=1")
	if lib != "" {
		cmd.Env = append(cmd.Env, runtime.LibraryEnv+"="+lib)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// gpuBuild is the GPU build of "make setup-cuda", which CI installs.
func gpuBuild(t *testing.T) string {
	t.Helper()
	p := runtime.FindGPUBuild()
	if p == "" {
		t.Fatalf("no GPU build in %s: run \"make setup-cuda\" (make test does)", runtime.CUDACacheDir)
	}
	return p
}

// cpuBuild is the CPU library of "make setup".
func cpuBuild(t *testing.T) string {
	t.Helper()
	p, err := runtime.FindLibrary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The missing libraries of the GPU build's CUDA provider on a machine without
// CUDA, such as this project's and CI's.
var cudaMissing = []string{"libcuda.so.1", "libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13", "libcurand.so.10", "libcudnn.so.9"}

// The GPU build loads through onnxruntime_go (version 1.29.0), is found for
// --device cuda without $ONNXRUNTIME_LIB, and has its CUDA provider beside
// it as a plug-in: ONNX Runtime's registration of it (onnxruntime_go's
// RegisterExecutionProviderLibrary) gets as far as the provider's own
// dependencies, and doctor names each one that is missing.
func TestDoctorGPUBuild(t *testing.T) {
	lib := gpuBuild(t)
	code, out, errOut := nasctlChild(t, "", "doctor", "--device", "cuda", "--json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("exit %d, %v: %s %s", code, err, out, errOut)
	}
	if rep.Library.Path != lib || rep.Library.Version != runtime.CUDAVersion || rep.Library.FoundVia != runtime.CUDACacheDir {
		t.Errorf("library %+v; want %s, version %s, found via %s", rep.Library, lib, runtime.CUDAVersion, runtime.CUDACacheDir)
	}
	c := rep.CUDA
	if c.Kind != runtime.PluginProvider || filepath.Base(c.Provider) != "libonnxruntime_providers_cuda.so" || c.Shared == "" {
		t.Errorf("CUDA provider %q (%s), shared %q; want the plug-in beside %s", c.Provider, c.Kind, c.Shared, lib)
	}
	if !strings.Contains(c.RegisterError, "libonnxruntime_providers_cuda.so") || !strings.Contains(c.RegisterError, "libcublasLt.so.13") {
		t.Errorf("ONNX Runtime's registration error %q does not show it loading the plug-in", c.RegisterError)
	}
	var missing []string
	for _, l := range c.Libraries {
		if l.Error != "" {
			missing = append(missing, l.Name)
		}
	}
	if !slices.Equal(missing, cudaMissing) {
		t.Errorf("missing %v; want %v", missing, cudaMissing)
	}
	if code != 1 || rep.DeviceError == "" || !strings.Contains(errOut, "libcudnn.so.9") {
		t.Errorf("exit %d, device error %q, stderr %q; want exit 1 naming the missing libraries", code, rep.DeviceError, errOut)
	}
	if !slices.Equal(rep.Providers, []string{"CPUExecutionProvider"}) || rep.CPU.NCHWcBlock == 0 {
		t.Errorf("providers %v, NCHWc block %d", rep.Providers, rep.CPU.NCHWcBlock)
	}
}

// The GPU build given by $ONNXRUNTIME_LIB, run from a folder with no GPU
// build above it: doctor says that the library in use is one, not that
// none is installed.
func TestDoctorGPUBuildInUse(t *testing.T) {
	lib := gpuBuild(t)
	cmd := exec.Command(os.Args[0], "doctor")
	cmd.Dir = t.TempDir()
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, runtime.LibraryEnv+"=") }),
		asMainEnv+"=1", runtime.LibraryEnv+"="+lib)
	out, _ := cmd.Output()
	if !regexp.MustCompile(`\n  GPU build +the library in use \(its CUDA provider is beside it; --device cuda uses it\)\n`).Match(out) {
		t.Errorf("doctor with the GPU build in $%s:\n%s", runtime.LibraryEnv, out)
	}
}

// doctor on the CPU library, in this process: the report's parts are there.
func TestDoctorCPUBuild(t *testing.T) {
	code, out, errOut := runCLI(t, "doctor", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Library.Version == "" || !slices.Contains(rep.Providers, "CPUExecutionProvider") || rep.Device != "cpu" || rep.DeviceError != "" {
		t.Errorf("report %+v", rep)
	}
	if len(rep.Devices) == 0 || rep.Devices[0].Kind != "cpu" || rep.CPU.Logical < 1 || rep.CPU.GOMAXPROCS < 1 {
		t.Errorf("devices %+v, cpu %+v", rep.Devices, rep.CPU)
	}
	if os.Getenv(runtime.LibraryEnv) == "" && !strings.Contains(rep.CUDAProblem, "make setup-cuda") {
		t.Errorf("the CPU build's CUDA problem %q does not say how to get a GPU build", rep.CUDAProblem)
	}
	code, out, _ = runCLI(t, "doctor")
	for _, want := range []string{"ONNX Runtime", "built with", "CUDA provider", "NCHWc block", "threads", "device cpu"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d, text lacks %q:\n%s", code, want, out)
		}
	}
}

// The same training on the GPU build's CPU provider and on the CPU build
// (ONNX Runtime 1.29.0 and 1.30.0): same seed, one thread, the losses of
// every epoch and the weights agree to 1e-5 (absolute). Each side runs in
// its own process.
func TestGPUBuildTrainsAsCPUBuild(t *testing.T) {
	gpu, cpu := gpuBuild(t), cpuBuild(t)
	dir := t.TempDir()
	var checks [2]trainCheck
	for i, lib := range []string{cpu, gpu} {
		file := filepath.Join(dir, []string{"cpu-build.json", "gpu-build.json"}[i])
		code, out, errOut := nasctlChild(t, lib, "doctor", "train", "--threads", "1", "--out", file)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", lib, code, errOut)
		}
		t.Log(strings.TrimSpace(out))
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &checks[i]); err != nil {
			t.Fatal(err)
		}
	}
	if checks[0].Version == checks[1].Version {
		t.Fatalf("both sides ran ONNX Runtime %s", checks[0].Version)
	}
	ag, err := compareChecks(checks[0], checks[1])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("largest differences: loss %.3g, weight %.3g over %d weights; GPU build's CPU provider at %.2fx the CPU build's speed",
		ag.Loss, ag.Weight, ag.Weights, ag.SpeedUp)
	const tol = 1e-5
	if ag.Loss > tol || ag.Weight > tol || ag.Weights == 0 {
		t.Errorf("the GPU build's CPU provider differs from the CPU build: loss %.3g, weight %.3g (tolerance %g)", ag.Loss, ag.Weight, tol)
	}
	code, out, errOut := runCLI(t, "doctor", "compare", filepath.Join(dir, "cpu-build.json"), filepath.Join(dir, "gpu-build.json"))
	if code != 0 || !strings.Contains(out, "agreement: yes") {
		t.Errorf("doctor compare: exit %d: %s%s", code, out, errOut)
	}
}

// --device cuda on this machine (no GPU, no CUDA) stops before any training:
// with the GPU build, naming every missing library; with the CPU build
// chosen by $ONNXRUNTIME_LIB, saying to unset it. A search makes no run
// directory.
func TestDeviceCUDAStopsBeforeTraining(t *testing.T) {
	gpuBuild(t)
	data := filepath.Join(t.TempDir(), "leaves")
	generateLeaves(t, data, 40, 16, 1)
	model := filepath.Join(t.TempDir(), "m.onnx")
	train := []string{"train", "--arch", "C(4,3,1) - SM()", "--data", data, "--epochs", "1", "--device", "cuda", "--out", model}
	code, _, errOut := nasctlChild(t, "", train...)
	if code != 1 || strings.Contains(errOut, "epoch") {
		t.Errorf("train --device cuda: exit %d: %s", code, errOut)
	}
	for _, want := range append(slices.Clone(cudaMissing), "not found", "the NVIDIA driver", "cuDNN 9", "--device cpu") {
		if !strings.Contains(errOut, want) {
			t.Errorf("the error lacks %q: %s", want, errOut)
		}
	}
	if _, err := os.Stat(model); err == nil {
		t.Errorf("a model was written")
	}
	// $ONNXRUNTIME_LIB chooses the CPU build here, and is what keeps the GPU
	// build from being used.
	code, _, errOut = nasctlChild(t, cpuBuild(t), train...)
	if code != 1 || !strings.Contains(errOut, "$ONNXRUNTIME_LIB chooses this library; unset it so that --device cuda finds the GPU build") || !strings.Contains(errOut, "has no CUDA provider") {
		t.Errorf("train --device cuda on the CPU build: exit %d: %s", code, errOut)
	}
	runs := t.TempDir()
	code, _, errOut = nasctlChild(t, "", "search", "metaqnn", "--preset", "cpu", "--data", data, "--name", "x", "--dir", runs, "--device", "cuda")
	entries, _ := os.ReadDir(runs)
	if code != 1 || !strings.Contains(errOut, "libcudart.so.13") || len(entries) != 0 {
		t.Errorf("search --device cuda: exit %d, %d entries in the runs folder: %s", code, len(entries), errOut)
	}
}

// Without a library, doctor --json still prints a report, which says why
// and what it could learn of the machine; the exit is a failure.
func TestDoctorNoLibraryJSON(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "libonnxruntime.so")
	code, out, errOut := nasctlChild(t, missing, "doctor", "--json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); code != 1 || err != nil || !strings.Contains(rep.LibraryError, missing+": no such file") ||
		rep.CPU.Logical < 1 || rep.Device != "cpu" || !strings.Contains(errOut, missing) {
		t.Errorf("exit %d, report %+v (%v)\n%s", code, rep, err, errOut)
	}
}
