package runtime

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// ortc.go calls the library's OrtApi table by slot, without its header. The
// slots, their number of parameters and the API version must be those of the
// C API header that the onnxruntime_go release in go.mod ships (the table
// only grows, so a slot never moves): the header's OrtApi members, counted
// in order, give each function's slot.
func TestAPISlotsMatchModuleHeader(t *testing.T) {
	header, err := os.ReadFile(filepath.Join(moduleHeaderDir(t), "onnxruntime_c_api.h"))
	if err != nil {
		t.Fatal(err)
	}
	members, version, err := ortAPIMembers(string(header))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("ortc.go")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`nasctl_api_version = (\d+)`).FindSubmatch(src); m == nil || string(m[1]) != version {
		t.Errorf("ortc.go asks for another API version than the header's, %s (%q)", version, m)
	}
	slots := regexp.MustCompile(`nasctl_slot_(\w+) = (\d+)`).FindAllSubmatch(src, -1)
	if len(slots) < 17 {
		t.Fatalf("%d slots found in ortc.go", len(slots))
	}
	for _, m := range slots {
		name, slot := string(m[1]), 0
		fmt.Sscan(string(m[2]), &slot)
		i := slices.IndexFunc(members, func(m apiMember) bool { return m.name == name })
		if i != slot {
			t.Errorf("%s: slot %d in ortc.go, %d in the header", name, slot, i)
		}
	}
	// Each call's parameters, as NASCTL_FN(name, ret, params...) casts the slot.
	calls := regexp.MustCompile(`NASCTL_FN\((\w+),\s*[^,()]+((?:,\s*[^,()]+)*)\)\(`).FindAllSubmatch(src, -1)
	if len(calls) < 17 {
		t.Fatalf("%d calls found in ortc.go", len(calls))
	}
	for _, m := range calls {
		name, params := string(m[1]), strings.Count(string(m[2]), ",")
		if strings.TrimSpace(strings.TrimPrefix(string(m[2]), ",")) == "void" {
			params = 0
		}
		if i := slices.IndexFunc(members, func(m apiMember) bool { return m.name == name }); i < 0 || members[i].params != params {
			t.Errorf("%s: called with %d parameters; the header has %+v", name, params, members[max(i, 0)])
		}
	}
}

// moduleHeaderDir is the folder of the onnxruntime_go release in go.mod,
// which holds its C API header.
func moduleHeaderDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/yalue/onnxruntime_go").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// The C compiler checks what counting cannot: ortc.go's calls, compiled
// against the header of the onnxruntime_go release in go.mod, must have
// the type of the table's function in their slot (return type, parameter
// types and order), and its constants the header's values. A C file of
// static assertions is made from ortc.go's text and compiled, not run.
func TestAPICallsCompileAgainstModuleHeader(t *testing.T) {
	src, err := os.ReadFile("ortc.go")
	if err != nil {
		t.Fatal(err)
	}
	var c strings.Builder
	c.WriteString("#include <stddef.h>\n#include \"onnxruntime_c_api.h\"\n")
	assert := func(cond, what string) { fmt.Fprintf(&c, "_Static_assert(%s, %q);\n", cond, what) }
	for name, header := range map[string]string{"api_version": "ORT_API_VERSION", "log_error": "ORT_LOGGING_LEVEL_ERROR",
		"hw_cpu": "OrtHardwareDeviceType_CPU", "hw_gpu": "OrtHardwareDeviceType_GPU", "hw_npu": "OrtHardwareDeviceType_NPU"} {
		m := regexp.MustCompile(`nasctl_` + name + ` = (\d+)`).FindSubmatch(src)
		if m == nil {
			t.Fatalf("no nasctl_%s in ortc.go", name)
		}
		assert(fmt.Sprintf("%s == %s", header, m[1]), "nasctl_"+name+" is "+header)
	}
	slots := regexp.MustCompile(`nasctl_slot_(\w+) = (\d+)`).FindAllSubmatch(src, -1)
	for _, m := range slots {
		assert(fmt.Sprintf("offsetof(OrtApi, %s) / sizeof(void *) == %s", m[1], m[2]), fmt.Sprintf("%s is in slot %s", m[1], m[2]))
	}
	calls := regexp.MustCompile(`NASCTL_FN\((\w+),\s*([^,()]+?)\s*((?:,\s*[^,()]+)*)\)\(`).FindAllSubmatch(src, -1)
	if len(slots) < 17 || len(calls) < 17 {
		t.Fatalf("%d slots and %d calls found in ortc.go", len(slots), len(calls))
	}
	for _, m := range calls {
		params := strings.TrimPrefix(strings.Join(strings.Fields(string(m[3])), " "), ", ")
		assert(fmt.Sprintf("__builtin_types_compatible_p(__typeof__(((OrtApi *)0)->%s), %s (*)(%s))", m[1], m[2], params),
			fmt.Sprintf("%s is %s (*)(%s)", m[1], m[2], params))
	}
	file := filepath.Join(t.TempDir(), "ortc_check.c")
	if err := os.WriteFile(file, []byte(c.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cc := cmp.Or(os.Getenv("CC"), "gcc")
	if out, err := exec.Command(cc, "-fsyntax-only", "-std=gnu11", "-I", moduleHeaderDir(t), file).CombinedOutput(); err != nil {
		t.Errorf("%s against the module's header: %v\n%s\n%s", cc, err, out, c.String())
	}
}

// apiMember is a function of the OrtApi table: its name and number of
// parameters.
type apiMember struct {
	name   string
	params int
}

// ortAPIMembers lists the members of struct OrtApi in a C API header, in
// order, and the header's ORT_API_VERSION. Members are written as
// ORT_API2_STATUS(Name, params...), ORT_API_T(ret, Name, params...),
// ORT_CLASS_RELEASE(X) (ReleaseX, one parameter) or
// ret(ORT_API_CALL* Name)(params...).
func ortAPIMembers(header string) ([]apiMember, string, error) {
	version := regexp.MustCompile(`#define ORT_API_VERSION (\d+)`).FindStringSubmatch(header)
	if version == nil {
		return nil, "", errors.New("no ORT_API_VERSION")
	}
	header = regexp.MustCompile(`(?s)/\*.*?\*/|//[^\n]*`).ReplaceAllString(header, "")
	_, body, ok := strings.Cut(header, "struct OrtApi {")
	if !ok {
		return nil, "", errors.New("no struct OrtApi")
	}
	var members []apiMember
	var cur strings.Builder
	depth := 0
	pointer := regexp.MustCompile(`\(\s*ORT_API_CALL\s*\*\s*(\w+)\s*\)\s*\(`)
	for _, c := range body {
		switch {
		case c == '}' && depth == 0:
			return members, version[1], nil
		case c == '(' || c == '{':
			depth++
		case c == ')' || c == '}':
			depth--
		}
		if c != ';' || depth != 0 {
			cur.WriteRune(c)
			continue
		}
		m := strings.Join(strings.Fields(cur.String()), " ")
		cur.Reset()
		switch {
		case strings.HasPrefix(m, "ORT_API2_STATUS("):
			a := topLevel(m[len("ORT_API2_STATUS("):])
			members = append(members, apiMember{strings.TrimSpace(a[0]), countParams(a[1:])})
		case strings.HasPrefix(m, "ORT_API_T("):
			a := topLevel(m[len("ORT_API_T("):])
			members = append(members, apiMember{strings.TrimSpace(a[1]), countParams(a[2:])})
		case strings.HasPrefix(m, "ORT_CLASS_RELEASE("):
			members = append(members, apiMember{"Release" + strings.TrimSpace(topLevel(m[len("ORT_CLASS_RELEASE("):])[0]), 1})
		default:
			p := pointer.FindStringSubmatchIndex(m)
			if p == nil {
				return nil, "", fmt.Errorf("OrtApi member %d not understood: %s", len(members), m)
			}
			members = append(members, apiMember{m[p[2]:p[3]], countParams(topLevel(m[p[1]:]))})
		}
	}
	return nil, "", errors.New("struct OrtApi does not end")
}

// topLevel splits s, which follows an opening parenthesis, at its commas
// up to the matching closing one, leaving nested parentheses whole.
func topLevel(s string) []string {
	var parts []string
	depth, from := 0, 0
	for i, c := range s {
		switch {
		case c == '(':
			depth++
		case c == ')' && depth == 0:
			return append(parts, s[from:i])
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			parts, from = append(parts, s[from:i]), i+1
		}
	}
	return append(parts, s[from:])
}

// countParams counts a declaration's parameters: none for "()" or "(void)".
func countParams(parts []string) int {
	if len(parts) == 0 || len(parts) == 1 && (strings.TrimSpace(parts[0]) == "void" || strings.TrimSpace(parts[0]) == "") {
		return 0
	}
	return len(parts)
}

// TestV2AppendOnCPUDevice runs the path that selects a plug-in provider,
// with the one device every library lists, the CPU: the session options'
// native pointer (read from onnxruntime_go's unexported field), GetEpDevices
// and SessionOptionsAppendExecutionProvider_V2. A 3x3 convolution of ones
// over a 4x4 image of ones gives 9 everywhere.
func TestV2AppendOnCPUDevice(t *testing.T) {
	initRuntime(t)
	so, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer so.Destroy()
	if found, err := appendEP(so, "CUDAExecutionProvider", 0); err != nil || found != 0 {
		t.Errorf("the CPU library lists %d CUDA devices (%v); want none", found, err)
	}
	if found, err := appendEP(so, "CPUExecutionProvider", 1); err != nil || found != 1 {
		t.Errorf("CPU device 1: found %d (%v); want 1 device, nothing appended", found, err)
	}
	if found, err := appendEP(so, "CPUExecutionProvider", 0); err != nil || found != 1 {
		t.Fatalf("appending the CPU device: found %d, %v", found, err)
	}
	model, err := probeModel()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{"x", "w"}, []string{"y"}, so)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	x, _ := ort.NewTensor(ort.NewShape(1, 1, 4, 4), slices.Repeat([]float32{1}, 16))
	defer x.Destroy()
	w, _ := ort.NewTensor(ort.NewShape(1, 1, 3, 3), slices.Repeat([]float32{1}, 9))
	defer w.Destroy()
	y, _ := ort.NewEmptyTensor[float32](ort.NewShape(1, 1, 2, 2))
	defer y.Destroy()
	if err := s.Run([]ort.Value{x, w}, []ort.Value{y}); err != nil {
		t.Fatal(err)
	}
	if got := y.GetData(); !slices.Equal(got, []float32{9, 9, 9, 9}) {
		t.Errorf("y = %v; want 9 9 9 9", got)
	}
}

// Profiling goes through ortc.go's EnableProfiling on the session options.
func TestProfilingWritesProfile(t *testing.T) {
	initRuntime(t)
	prefix := filepath.Join(t.TempDir(), "prof")
	runDense(t, SessionOptions{ProfilePrefix: prefix})
	files, _ := filepath.Glob(prefix + "*.json")
	if len(files) != 1 {
		t.Errorf("profile files %v; want one %s*.json", files, prefix)
	}
}

// With the CPU build, CUDA stops at the check with ErrNoCUDA and says how to
// get a GPU build; CPU is ready.
func TestCheckDeviceOnCPUBuild(t *testing.T) {
	initRuntime(t)
	if err := CheckDevice(CPU, 0); err != nil {
		t.Errorf("CheckDevice(cpu): %v", err)
	}
	if os.Getenv(LibraryEnv) != "" {
		t.Logf("%s is set: the CPU build's answer is not checked", LibraryEnv)
		return
	}
	err := CheckDevice(CUDA, 0)
	var de *DeviceError
	if !errors.As(err, &de) || !errors.Is(err, ErrNoCUDA) {
		t.Fatalf("CheckDevice(cuda) = %v; want a *DeviceError wrapping ErrNoCUDA", err)
	}
	for _, want := range []string{"make setup-cuda", LibraryEnv, cudaPlugin, "--device cpu"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	st, err := InspectCUDA()
	if err != nil || st.Provider != "" || st.Problem == nil {
		t.Errorf("InspectCUDA = %+v, %v; want no provider and a problem", st, err)
	}
	if providers, _ := Providers(); !slices.Contains(providers, "CPUExecutionProvider") {
		t.Errorf("providers %v lack the CPU's", providers)
	}
}

// readProvider reads the CUDA plug-in of "make setup-cuda" without loading
// it: a plug-in, needing CUDA 13 and cuDNN 9, the driver first.
func TestReadProviderOfGPUBuild(t *testing.T) {
	lib := FindGPUBuild()
	if lib == "" {
		t.Fatalf("no GPU build in %s: run \"make setup-cuda\" (make test does)", CUDACacheDir)
	}
	needed, kind, err := readProvider(filepath.Join(filepath.Dir(lib), cudaPlugin))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"libcuda.so.1", "libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13", "libcurand.so.10", cudnnLibrary}
	if kind != PluginProvider || !slices.Equal(needed, want) {
		t.Errorf("readProvider = %v, %s; want %v, %s", needed, kind, want, PluginProvider)
	}
	if _, _, err := readProvider(lib); err == nil {
		t.Errorf("libonnxruntime itself was taken for a provider")
	}
}

func TestLibraryProvides(t *testing.T) {
	for name, want := range map[string]string{
		"libcuda.so.1":      "the NVIDIA driver",
		"libcudart.so.13":   "CUDA 13's runtime",
		"libcublasLt.so.13": "CUDA 13's cuBLAS",
		"libcurand.so.10":   "CUDA 13's cuRAND",
		"libcudnn.so.9":     "cuDNN 9",
		"libfoo.so.2":       "libfoo.so.2",
	} {
		if got := libraryProvides(name, "13"); got != want {
			t.Errorf("libraryProvides(%s) = %q; want %q", name, got, want)
		}
	}
	if got := libraryProvides("libcublas.so.12", ""); got != "CUDA's cuBLAS" {
		t.Errorf("without a CUDA version: %q", got)
	}
}

// loadable finds the C library by name and names a missing one.
func TestLoadable(t *testing.T) {
	initRuntime(t)
	if path, err := loadable("libc.so.6"); err != nil || path == "" {
		t.Errorf("libc.so.6: %q, %v", path, err)
	}
	if _, err := loadable("libnasctl-missing.so.7"); err == nil || !strings.Contains(err.Error(), "libnasctl-missing.so.7") {
		t.Errorf("a missing library: %v", err)
	}
}

// For CUDA the lookup tries the GPU build's cache first; for the CPU it
// never looks there.
func TestLookupForCUDA(t *testing.T) {
	repo := t.TempDir()
	cpu := touch(t, filepath.Join(repo, CacheDir, "libonnxruntime.so.1"))
	gpu := touch(t, filepath.Join(repo, CUDACacheDir, "libonnxruntime.so.1"))
	l := lookup{getenv: fakeEnv(nil), wd: filepath.Join(repo, "cmd")}
	if p, src, err := l.find(); p != cpu || src != FromCache || err != nil {
		t.Errorf("cpu: %s, %s, %v; want %s", p, src, err, cpu)
	}
	if p, src, err := l.forDevice(CUDA).find(); p != gpu || src != FromCUDACache || err != nil {
		t.Errorf("cuda: %s, %s, %v; want %s", p, src, err, gpu)
	}
	os.Remove(gpu)
	if p, src, _ := l.forDevice(CUDA).find(); p != cpu || src != FromCache {
		t.Errorf("cuda without a GPU build: %s, %s; want the CPU library %s", p, src, cpu)
	}
	env := fakeEnv(map[string]string{LibraryEnv: cpu})
	if p, src, _ := (lookup{getenv: env, wd: repo}).forDevice(CUDA).find(); p != cpu || src != FromEnv {
		t.Errorf("$%s comes first for cuda too: %s, %s", LibraryEnv, p, src)
	}
	// A lookup for CUDA that fails names the GPU build's set-up and folder;
	// one for the CPU, the CPU library's.
	missing := fakeEnv(map[string]string{LibraryEnv: filepath.Join(repo, "nonexistent.so")})
	for d, want := range map[Device]string{CUDA: `unset it to use the one "make setup-cuda" installs in ` + CUDACacheDir, CPU: `unset it to use the one "make setup" installs in ` + CacheDir} {
		if _, _, err := (lookup{getenv: missing, wd: repo}).forDevice(d).find(); err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("%s, $%s missing: %v; want it to end %q", d, LibraryEnv, err, want)
		}
	}
}

// When $ONNXRUNTIME_LIB chose a library without CUDA, the fix is to unset it
// (or point it to a GPU build), not to install the GPU build that is there.
func TestNoCUDAFixNamesTheVariable(t *testing.T) {
	lib := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if fix := (&CUDAStatus{Library: lib}).noCUDA("none").Fix; !strings.HasPrefix(fix, `run "make setup-cuda"`) {
		t.Errorf("without %s: %q", LibraryEnv, fix)
	}
	fix := (&CUDAStatus{Library: lib, fromEnv: true}).noCUDA("none").Fix
	for _, want := range []string{"$" + LibraryEnv + " chooses this library; unset it so that --device cuda finds the GPU build", cudaPlugin, "--device cpu"} {
		if !strings.Contains(fix, want) {
			t.Errorf("with %s: %q lacks %q", LibraryEnv, fix, want)
		}
	}
	// On an arm64 board "make setup-cuda", which fetches the x86-64
	// build, is no way out.
	defer func(a string) { buildArch = a }(buildArch)
	buildArch = "arm64"
	fix = (&CUDAStatus{Library: lib}).noCUDA("none").Fix
	if !strings.HasPrefix(fix, "no GPU build of ONNX Runtime is provided for linux/arm64: set "+LibraryEnv) || strings.Contains(fix, "make setup-cuda") {
		t.Errorf("on arm64: %q", fix)
	}
}
