package runtime

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/advancedclimatesystems/gonnx/onnx"
	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"
)

// How ONNX Runtime finds and runs its CUDA provider (docs/gpu.md has the
// facts and where they come from): the provider is a shared library beside
// libonnxruntime, libonnxruntime_providers_cuda.so, with
// libonnxruntime_providers_shared.so. A plug-in provider (it exports
// CreateEpFactories, as the 1.29 GPU build of "make setup-cuda" does) is
// registered with the environment and chosen per session by one of the
// devices it lists; an older provider (GetProvider only) is appended with
// the CUDA provider options.

const (
	cudaPlugin       = "libonnxruntime_providers_cuda.so"
	providersShared  = "libonnxruntime_providers_shared.so"
	cudaProviderName = "CUDAExecutionProvider"
	// cudaRegistration is the name nasctl registers the plug-in under.
	cudaRegistration = "nasctl-cuda"
	// cudnnLibrary is cuDNN 9, which ONNX Runtime's CUDA provider needs for
	// convolutions; the 1.29 plug-in loads it at run time, so it is not among
	// the plug-in's declared dependencies.
	cudnnLibrary = "libcudnn.so.9"
)

// Kinds of CUDA provider library (CUDAStatus.Kind).
const (
	PluginProvider = "plugin" // exports CreateEpFactories: registered, then selected by device
	BridgeProvider = "bridge" // exports GetProvider only: appended with the CUDA provider options
)

// DeviceError says why a device cannot run with the loaded ONNX Runtime
// library on this host, and what to do about it.
type DeviceError struct {
	Device  Device
	Library string   // the ONNX Runtime library loaded
	Missing []string // shared libraries the provider needs that do not load, by file name
	Problem string   // what is wrong
	Fix     string   // what to do
	Err     error    // ErrNoCUDA, ONNX Runtime's error, or nil
}

func (e *DeviceError) Error() string {
	msg := fmt.Sprintf("device %s: %s", e.Device, e.Problem)
	if e.Fix != "" {
		msg += "; " + e.Fix
	}
	return msg
}

func (e *DeviceError) Unwrap() error { return e.Err }

// LibraryStatus is one shared library the CUDA provider needs, by file name,
// and whether the dynamic loader loads it.
type LibraryStatus struct {
	Name     string `json:"name"`
	Provides string `json:"provides"`        // what installs it, for people
	Path     string `json:"path,omitempty"`  // the file the loader found
	Error    string `json:"error,omitempty"` // the loader's message when it does not load
}

// CUDAStatus is what nasctl found out about running on CUDA with the loaded
// library (see InspectCUDA).
type CUDAStatus struct {
	Library   string          `json:"library"`
	Provider  string          `json:"provider,omitempty"` // the CUDA provider beside the library; "" when absent
	Kind      string          `json:"kind,omitempty"`     // PluginProvider or BridgeProvider
	Shared    string          `json:"shared,omitempty"`   // libonnxruntime_providers_shared.so beside it
	Libraries []LibraryStatus `json:"libraries,omitempty"`
	// RegisterError is ONNX Runtime's answer when registering the plug-in
	// failed.
	RegisterError string     `json:"register_error,omitempty"`
	Devices       []EPDevice `json:"devices"` // the GPUs the CUDA provider lists
	// Problem says why CUDA cannot run, nil when these checks found nothing.
	Problem *DeviceError `json:"-"`
	// fromEnv: $ONNXRUNTIME_LIB chose Library (LibraryPath's source).
	fromEnv bool
}

// cuda is the CUDA provider's state for the loaded library, inspected on
// first use and cleared by Close (resetCUDA). Lock order: env.mu, then cuda.
var cuda struct {
	sync.Mutex
	inspected  bool
	status     CUDAStatus
	registered bool          // the plug-in is registered under cudaRegistration
	probed     map[int]error // CheckDevice's first convolution, per GPU
}

// InspectCUDA inspects, once per loaded library, whether sessions can run on CUDA:
// whether a CUDA provider lies beside the library, whether each shared
// library it needs loads, and (for a plug-in) registers it and lists its
// GPUs. It needs Init.
func InspectCUDA() (CUDAStatus, error) {
	release, err := acquire()
	if err != nil {
		return CUDAStatus{}, err
	}
	defer release()
	cuda.Lock()
	defer cuda.Unlock()
	if !cuda.inspected {
		cuda.status = inspectCUDA(env.path, env.source == FromEnv)
		cuda.inspected = true
	}
	st := cuda.status
	st.Libraries, st.Devices = slices.Clone(st.Libraries), slices.Clone(st.Devices)
	return st, nil
}

// resetCUDA unregisters the plug-in and forgets the inspection, for Close
// (env.mu held for writing, no session open).
func resetCUDA() {
	cuda.Lock()
	defer cuda.Unlock()
	if cuda.registered {
		ort.UnregisterExecutionProviderLibrary(cudaRegistration)
	}
	cuda.inspected, cuda.status, cuda.registered, cuda.probed = false, CUDAStatus{}, false, nil
}

// inspectCUDA runs the checks of CUDA for the library at lib, which
// $ONNXRUNTIME_LIB chose when fromEnv (cuda held).
func inspectCUDA(lib string, fromEnv bool) CUDAStatus {
	st := CUDAStatus{Library: lib, fromEnv: fromEnv}
	dir := filepath.Dir(lib)
	plugin := filepath.Join(dir, cudaPlugin)
	if !isFile(plugin) {
		st.Problem = st.noCUDA(fmt.Sprintf("%s has no CUDA provider beside it (no %s in %s)", lib, cudaPlugin, dir))
		return st
	}
	st.Provider = plugin
	if p := filepath.Join(dir, providersShared); isFile(p) {
		st.Shared = p
	}
	needed, kind, err := readProvider(plugin)
	if err != nil {
		st.Problem = st.noCUDA(err.Error())
		return st
	}
	st.Kind = kind
	st.Libraries = checkLibraries(needed)
	if kind == PluginProvider {
		if err := ort.RegisterExecutionProviderLibrary(cudaRegistration, plugin); err != nil {
			st.RegisterError = ortMessage(err)
		} else {
			cuda.registered = true
			st.Devices, err = providerDevices(cudaProviderName)
			if err != nil {
				st.RegisterError = "listing its devices: " + ortMessage(err)
			}
		}
	}
	st.Problem = st.diagnose()
	return st
}

// diagnose returns the first thing that stops CUDA, in the order a person
// fixes them, or nil.
func (st *CUDAStatus) diagnose() *DeviceError {
	e := &DeviceError{Device: CUDA, Library: st.Library}
	if st.RegisterError != "" {
		e.Err = errors.New(st.RegisterError)
	}
	// What to install, one entry per package in the order first needed:
	// "CUDA 13's cuBLAS (libcublasLt.so.13, libcublas.so.13)".
	var packages []string
	files := map[string][]string{}
	for _, l := range st.Libraries {
		if l.Error != "" {
			e.Missing = append(e.Missing, l.Name)
			if files[l.Provides] == nil {
				packages = append(packages, l.Provides)
			}
			files[l.Provides] = append(files[l.Provides], l.Name)
		}
	}
	var what []string
	for _, p := range packages {
		what = append(what, p+" ("+strings.Join(files[p], ", ")+")")
	}
	switch {
	case len(e.Missing) > 0:
		e.Problem = fmt.Sprintf("the CUDA provider of %s cannot load: %s not found", st.Library, strings.Join(e.Missing, ", "))
		e.Fix = fmt.Sprintf("install %s, and put their folders on LD_LIBRARY_PATH if they are not in the system's "+
			`("nasctl doctor" shows what loads; docs/gpu.md lists the packages); or use --device cpu`, strings.Join(what, ", "))
	case st.Shared == "":
		e.Problem = fmt.Sprintf("%s is missing beside %s", providersShared, st.Library)
		e.Fix = `run "make setup-cuda", which installs the GPU build with both provider libraries; or use --device cpu`
	case st.RegisterError != "":
		e.Problem = fmt.Sprintf("ONNX Runtime could not load its CUDA provider %s: %s", st.Provider, st.RegisterError)
		e.Fix = cudaHint()
	case st.Kind == PluginProvider && len(st.Devices) == 0:
		e.Problem = "the CUDA provider loaded but lists no GPU (" + gpuSummary() + ")"
		e.Fix = "check that nvidia-smi shows the GPU and that its driver supports CUDA " + st.cudaMajor() + "; or use --device cpu"
	case st.Kind == BridgeProvider && !hasProvider(cudaProviderName):
		return st.noCUDA(fmt.Sprintf("%s was built without the CUDA provider", st.Library))
	default:
		return nil
	}
	return e
}

// noCUDA is the error for a library that cannot run CUDA at all. When
// $ONNXRUNTIME_LIB chose it, the variable is what stands in the way of the
// GPU build "make setup-cuda" installs, so the fix says so.
func (st *CUDAStatus) noCUDA(problem string) *DeviceError {
	fix := fmt.Sprintf(`run "make setup-cuda" in the nasctl repository (it installs the GPU build of ONNX Runtime %s in %s, `+
		"which --device cuda finds before the CPU library), or set %s to the libonnxruntime.so.1 of a GPU build "+
		"whose folder holds %s and %s; or use --device cpu", CUDAVersion, CUDACacheDir, LibraryEnv, cudaPlugin, providersShared)
	if buildArch != "amd64" {
		// "make setup-cuda" fetches the x86-64 build only (a Jetson's
		// ONNX Runtime comes with its own system image).
		fix = fmt.Sprintf("no GPU build of ONNX Runtime is provided for linux/%s: set %s to the libonnxruntime.so.1 of a GPU build for this board "+
			"whose folder holds %s and %s; or use --device cpu", buildArch, LibraryEnv, cudaPlugin, providersShared)
	} else if st.fromEnv {
		gpu := FindGPUBuild()
		if gpu == "" {
			gpu = fmt.Sprintf(`the one "make setup-cuda" installs in %s`, CUDACacheDir)
		}
		fix = fmt.Sprintf("$%s chooses this library; unset it so that --device cuda finds the GPU build (%s), "+
			"or set it to the libonnxruntime.so.1 of a GPU build whose folder holds %s and %s; or use --device cpu",
			LibraryEnv, gpu, cudaPlugin, providersShared)
	}
	return &DeviceError{Device: CUDA, Library: st.Library, Missing: []string{cudaPlugin}, Err: ErrNoCUDA, Problem: problem, Fix: fix}
}

func cudaHint() string {
	return "the CUDA provider needs an NVIDIA GPU, its driver, and the CUDA and cuDNN libraries its ONNX Runtime build was made for " +
		`(for the build of "make setup-cuda": CUDA 13, cuBLAS 13, cuDNN 9; see docs/gpu.md); or use --device cpu`
}

// hasProvider reports whether the library was built with the named provider.
func hasProvider(name string) bool {
	list, err := availableProviders()
	return err == nil && slices.Contains(list, name)
}

// providerDevices lists the devices of the named provider.
func providerDevices(name string) ([]EPDevice, error) {
	all, err := epDevices()
	if err != nil {
		return nil, err
	}
	var out []EPDevice
	for _, d := range all {
		if d.Provider == name {
			out = append(out, d)
		}
	}
	return out, nil
}

// toolchainLibraries are declared dependencies that every Linux system has;
// the others are what the CUDA provider needs installed.
var toolchainLibraries = []string{"libc.so", "libm.so", "libdl.so", "librt.so", "libpthread.so", "libstdc++.so", "libgcc_s.so", "ld-linux"}

// readProvider returns the shared libraries the provider at path needs (its
// declared dependencies without the toolchain's, and cuDNN 9 when it does not
// declare a cuDNN) and its kind, from its ELF headers: nothing is loaded.
func readProvider(path string) (needed []string, kind string, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("reading the CUDA provider %s: %w", path, err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		return nil, "", fmt.Errorf("reading the dependencies of %s: %w", path, err)
	}
	cudnn := false
	for _, l := range libs {
		cudnn = cudnn || strings.HasPrefix(l, "libcudnn")
		if !slices.ContainsFunc(toolchainLibraries, func(p string) bool { return strings.HasPrefix(l, p) }) {
			needed = append(needed, l)
		}
	}
	if !cudnn {
		needed = append(needed, cudnnLibrary)
	}
	// In the order a person installs them: the driver, the CUDA runtime,
	// its libraries, cuDNN.
	rank := func(name string) int {
		for i, p := range []string{"libcuda.", "libcudart.", "libcublas", "libcu", "libcudnn."} {
			if strings.HasPrefix(name, p) {
				return i
			}
		}
		return 5
	}
	slices.SortStableFunc(needed, func(a, b string) int { return rank(a) - rank(b) })
	syms, err := f.DynamicSymbols()
	if err != nil {
		return nil, "", fmt.Errorf("reading the symbols of %s: %w", path, err)
	}
	exports := map[string]bool{}
	for _, s := range syms {
		if s.Section != elf.SHN_UNDEF {
			exports[s.Name] = true
		}
	}
	switch {
	case exports["CreateEpFactories"]:
		return needed, PluginProvider, nil
	case exports["GetProvider"]:
		return needed, BridgeProvider, nil
	}
	return nil, "", fmt.Errorf("%s exports neither CreateEpFactories nor GetProvider: it is not an ONNX Runtime provider", path)
}

// checkLibraries asks the dynamic loader for each library by name.
func checkLibraries(names []string) []LibraryStatus {
	var out []LibraryStatus
	cudaMajor := ""
	for _, n := range names {
		if v, ok := strings.CutPrefix(n, "libcudart.so."); ok {
			cudaMajor = v
		}
	}
	for _, n := range names {
		st := LibraryStatus{Name: n, Provides: libraryProvides(n, cudaMajor)}
		if path, err := loadable(n); err != nil {
			st.Error = err.Error()
		} else {
			st.Path = path
		}
		out = append(out, st)
	}
	return out
}

// libraryProvides names what installs a CUDA library, for people.
func libraryProvides(name, cudaMajor string) string {
	cudaOf := "CUDA's "
	if cudaMajor != "" {
		cudaOf = "CUDA " + cudaMajor + "'s "
	}
	base, version, _ := strings.Cut(name, ".so")
	version = strings.TrimPrefix(version, ".")
	switch base {
	case "libcuda":
		return "the NVIDIA driver"
	case "libcudart":
		return cudaOf + "runtime"
	case "libcublas", "libcublasLt":
		return cudaOf + "cuBLAS"
	case "libcurand":
		return cudaOf + "cuRAND"
	case "libcufft":
		return cudaOf + "cuFFT"
	case "libnvrtc":
		return cudaOf + "NVRTC"
	case "libcudnn":
		return "cuDNN " + version
	}
	return name
}

// cudaMajor is the CUDA major version the provider was built for, from its
// runtime library's name ("13" for libcudart.so.13), or "".
func (st *CUDAStatus) cudaMajor() string {
	for _, l := range st.Libraries {
		if v, ok := strings.CutPrefix(l.Name, "libcudart.so."); ok {
			return v
		}
	}
	return ""
}

// GPU is one GPU as the NVIDIA driver shows it (nvidia-smi).
type GPU struct {
	Index  int    `json:"index"`
	Name   string `json:"name"`
	Driver string `json:"driver"`
	Memory string `json:"memory"`
}

// ErrNoDriver is returned by GPUs when nvidia-smi, which comes with the
// NVIDIA driver, is not on PATH.
var ErrNoDriver = errors.New("nvidia-smi not found: no NVIDIA driver on this host (or nvidia-smi is not on PATH)")

// GPUs lists the GPUs the NVIDIA driver shows, through nvidia-smi.
func GPUs() ([]GPU, error) {
	bin, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return nil, ErrNoDriver
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--query-gpu=index,name,driver_version,memory.total", "--format=csv,noheader").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("nvidia-smi: %w", err)
	}
	var gpus []GPU
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		if len(f) != 4 {
			continue
		}
		i, _ := strconv.Atoi(strings.TrimSpace(f[0]))
		gpus = append(gpus, GPU{Index: i, Name: strings.TrimSpace(f[1]), Driver: strings.TrimSpace(f[2]), Memory: strings.TrimSpace(f[3])})
	}
	return gpus, nil
}

// gpuSummary says in a few words which GPUs the driver shows.
func gpuSummary() string {
	gpus, err := GPUs()
	switch {
	case err != nil:
		return err.Error()
	case len(gpus) == 0:
		return "nvidia-smi shows no GPU"
	}
	var names []string
	for _, g := range gpus {
		names = append(names, fmt.Sprintf("%d: %s, driver %s", g.Index, g.Name, g.Driver))
	}
	return "nvidia-smi shows " + strings.Join(names, "; ")
}

// CheckDevice returns nil when sessions can run on device d (GPU id for
// CUDA) with the loaded library, and otherwise a *DeviceError that names
// what is missing and what to do. For CUDA it runs InspectCUDA's checks, then a
// first convolution on the GPU (once per GPU), so that a search or a
// training stops here rather than in its first trial. It needs Init.
func CheckDevice(d Device, id int) error {
	if !d.valid() {
		return fmt.Errorf("check device: invalid device %d", int(d))
	}
	if d == CPU {
		if p, _ := LibraryPath(); p == "" {
			return ErrNotInitialized
		}
		return nil
	}
	st, err := InspectCUDA()
	if err != nil {
		return err
	}
	if st.Problem != nil {
		return st.Problem
	}
	if st.Kind == PluginProvider && (id < 0 || id >= len(st.Devices)) {
		return &DeviceError{Device: CUDA, Library: st.Library,
			Problem: fmt.Sprintf("GPU %d asked for, but the CUDA provider lists %d (%s)", id, len(st.Devices), gpuSummary()),
			Fix:     fmt.Sprintf("choose a GPU from 0 to %d", len(st.Devices)-1)}
	}
	return probeCUDA(st.Library, id)
}

// probeCUDA runs one small convolution on GPU id, once per GPU and library.
func probeCUDA(lib string, id int) error {
	cuda.Lock()
	err, done := cuda.probed[id]
	cuda.Unlock()
	if done {
		return err
	}
	if err = runProbe(id); err != nil {
		err = &DeviceError{Device: CUDA, Library: lib, Err: err,
			Problem: fmt.Sprintf("a first convolution on GPU %d failed: %s", id, ortMessage(err)), Fix: cudaHint()}
	}
	cuda.Lock()
	if cuda.probed == nil {
		cuda.probed = map[int]error{}
	}
	cuda.probed[id] = err
	cuda.Unlock()
	return err
}

// runProbe runs a 3x3 convolution of a 4x4 image on GPU id: it needs the
// provider, cuDNN and the GPU to work together.
func runProbe(id int) error {
	model, err := probeModel()
	if err != nil {
		return err
	}
	s, err := NewSession(model, []string{"x", "w"}, []string{"y"}, SessionOptions{Device: CUDA, DeviceID: id})
	if err != nil {
		return err
	}
	defer s.Close()
	var tensors []*Tensor[float32]
	defer func() {
		for _, t := range tensors {
			t.Close()
		}
	}()
	for _, shape := range [][]int64{{1, 1, 4, 4}, {1, 1, 3, 3}, {1, 1, 2, 2}} {
		t, err := NewZeroTensor[float32](shape...)
		if err != nil {
			return err
		}
		tensors = append(tensors, t)
	}
	return s.Run([]Value{tensors[0], tensors[1]}, []Value{tensors[2]})
}

// probeModel is the graph of runProbe: y = Conv(x, w), x 1x1x4x4, w 1x1x3x3.
func probeModel() ([]byte, error) {
	g := &onnx.GraphProto{
		Name:   "nasctl_cuda_probe",
		Node:   []*onnx.NodeProto{{Name: "conv", OpType: "Conv", Input: []string{"x", "w"}, Output: []string{"y"}}},
		Input:  []*onnx.ValueInfoProto{floatInfo("x", 1, 1, 4, 4), floatInfo("w", 1, 1, 3, 3)},
		Output: []*onnx.ValueInfoProto{floatInfo("y", 1, 1, 2, 2)},
	}
	return proto.Marshal(&onnx.ModelProto{IrVersion: 8, Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{{Version: 17}}})
}
