package runtime

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// TestMain closes the environment after all tests; Close refuses while a
// session or tensor is open, so a leak in any test fails the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := Close(); err != nil {
		fmt.Fprintln(os.Stderr, "leak:", err)
		code = 1
	}
	os.Exit(code)
}

// initRuntime initialises the environment or fails the test with the lookup
// or load error. These tests never skip: CI runs them after "make setup".
func initRuntime(t *testing.T) {
	t.Helper()
	if err := Init(""); err != nil {
		t.Fatalf("runtime.Init: %v", err)
	}
}

// --- a few helpers to write small ONNX graphs with the onnx protobuf types ---

func valueInfo(name string, elem onnx.TensorProto_DataType, dims ...int64) *onnx.ValueInfoProto {
	shape := &onnx.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{
			Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d},
		})
	}
	return &onnx.ValueInfoProto{
		Name: name,
		Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
			TensorType: &onnx.TypeProto_Tensor{ElemType: int32(elem), Shape: shape},
		}},
	}
}

func node(op string, in, out []string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
	return &onnx.NodeProto{OpType: op, Name: op + "_" + out[0], Input: in, Output: out, Attribute: attrs}
}

func intAttr(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
}

// model serializes a graph as an opset-17 model (IR version 8, the one that
// goes with opset 17).
func model(t *testing.T, g *onnx.GraphProto) []byte {
	t.Helper()
	m := &onnx.ModelProto{
		IrVersion:    8,
		ProducerName: "nasctl runtime test",
		OpsetImport:  []*onnx.OperatorSetIdProto{{Domain: "", Version: 17}},
		Graph:        g,
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// denseModel is y = Relu(MatMul(x, W) * scale + b), k = ArgMax(y, axis 1).
// W and scale are inputs (as parameters and the learning rate will be in
// training graphs), b is an initializer, scale has shape [1] (no 0-d tensors),
// and k is an int64 output.
func denseModel(t *testing.T, b []float32) []byte {
	f32, i64 := onnx.TensorProto_FLOAT, onnx.TensorProto_INT64
	return model(t, &onnx.GraphProto{
		Name: "dense",
		Node: []*onnx.NodeProto{
			node("MatMul", []string{"x", "W"}, []string{"xw"}),
			node("Mul", []string{"xw", "scale"}, []string{"s"}),
			node("Add", []string{"s", "b"}, []string{"z"}),
			node("Relu", []string{"z"}, []string{"y"}),
			node("ArgMax", []string{"y"}, []string{"k"}, intAttr("axis", 1), intAttr("keepdims", 0)),
		},
		Initializer: []*onnx.TensorProto{{Name: "b", Dims: []int64{2}, DataType: int32(f32), FloatData: b}},
		Input:       []*onnx.ValueInfoProto{valueInfo("x", f32, 2, 3), valueInfo("W", f32, 3, 2), valueInfo("scale", f32, 1)},
		Output:      []*onnx.ValueInfoProto{valueInfo("y", f32, 2, 2), valueInfo("k", i64, 2)},
	})
}

// The dense model's numbers, worked by hand. Every value is a small dyadic
// fraction, exact in float32 whatever the summation order, so outputs are
// compared exactly.
//
//	x = [[1, 2, 3], [-1, 1, 0]]   W = [[1, -1], [0, 2], [1, 0]]
//	xW    = [[1+0+3, -1+4+0], [-1+0+0, 1+2+0]] = [[4, 3], [-1, 3]]
//	*0.5  = [[2, 1.5], [-0.5, 1.5]]
//	+b    = [[2.25, 0.5], [-0.25, 0.5]]        with b = [0.25, -1]
//	Relu  = [[2.25, 0.5], [0, 0.5]]
//	ArgMax over each row = [0, 1]
var (
	denseX     = []float32{1, 2, 3, -1, 1, 0}
	denseW     = []float32{1, -1, 0, 2, 1, 0}
	denseScale = float32(0.5)
	denseB     = []float32{0.25, -1}
	denseY     = []float32{2.25, 0.5, 0, 0.5}
	denseK     = []int64{0, 1}
)

// runDense runs the dense model with opts and returns y and k.
func runDense(t *testing.T, opts SessionOptions) ([]float32, []int64) {
	t.Helper()
	s, err := NewSession(denseModel(t, denseB), []string{"x", "W", "scale"}, []string{"y", "k"}, opts)
	if err != nil {
		t.Fatalf("NewSession(%+v): %v", opts, err)
	}
	defer s.Close()
	x := mustTensor(t, []int64{2, 3}, append([]float32(nil), denseX...))
	defer x.Close()
	w := mustTensor(t, []int64{3, 2}, append([]float32(nil), denseW...))
	defer w.Close()
	scale, err := NewScalar(denseScale)
	if err != nil {
		t.Fatal(err)
	}
	defer scale.Close()
	y, err := NewZeroTensor[float32](2, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	k, err := NewZeroTensor[int64](2)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if err := s.Run([]Value{x, w, scale}, []Value{y, k}); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), y.Data()...), append([]int64(nil), k.Data()...)
}

func mustTensor[T Element](t *testing.T, shape []int64, data []T) *Tensor[T] {
	t.Helper()
	tt, err := NewTensor(shape, data)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

func TestVersion(t *testing.T) {
	initRuntime(t)
	path, src := LibraryPath()
	v := Version()
	t.Logf("ONNX Runtime %s from %s (found via %s)", v, path, src)
	// "make setup" installs the pinned version; a library chosen through
	// $ONNXRUNTIME_LIB (a GPU build, another machine) may be another one.
	if os.Getenv(LibraryEnv) == "" && v != PinnedVersion {
		t.Errorf("version %q; want %q as installed by make setup", v, PinnedVersion)
	}
	if !strings.HasPrefix(v, "1.") {
		t.Errorf("version %q is not ONNX Runtime 1.x", v)
	}
}

func TestInitIsIdempotent(t *testing.T) {
	initRuntime(t)
	path, _ := LibraryPath()
	if err := Init(""); err != nil {
		t.Errorf("second Init(\"\"): %v", err)
	}
	if err := Init(path); err != nil {
		t.Errorf("Init with the loaded path: %v", err)
	}
	if err := Init("/elsewhere/libonnxruntime.so.1"); err == nil || !strings.Contains(err.Error(), "already initialised") {
		t.Errorf("Init with another library: %v; want an error", err)
	}
}

func TestDenseGraph(t *testing.T) {
	initRuntime(t)
	y, k := runDense(t, SessionOptions{})
	if !reflect.DeepEqual(y, denseY) || !reflect.DeepEqual(k, denseK) {
		t.Fatalf("y = %v, k = %v; want %v, %v (worked by hand, exact)", y, k, denseY, denseK)
	}
}

// TestDenseGraphAllSettings: every optimisation level and a few thread counts
// give the same exact answer.
func TestDenseGraphAllSettings(t *testing.T) {
	initRuntime(t)
	for _, g := range optOrder {
		for _, threads := range []int{0, 1, 2} {
			opts := SessionOptions{Optimization: g, IntraOpThreads: threads}
			y, k := runDense(t, opts)
			if !reflect.DeepEqual(y, denseY) || !reflect.DeepEqual(k, denseK) {
				t.Errorf("%+v: y = %v, k = %v; want %v, %v", opts, y, k, denseY, denseK)
			}
		}
	}
}

// TestPingPong runs a step graph the way the training loop will: parameters
// and a step counter go in, their updates come out into a second,
// pre-allocated set, and the two sets swap roles every step.
// The update w' = w - lr*w with lr = 0.5 halves w exactly, so after n steps
// w = w0 / 2^n exactly and the step counter is n.
func TestPingPong(t *testing.T) {
	initRuntime(t)
	f32, i64 := onnx.TensorProto_FLOAT, onnx.TensorProto_INT64
	m := model(t, &onnx.GraphProto{
		Name: "step",
		Node: []*onnx.NodeProto{
			node("Mul", []string{"lr", "w"}, []string{"g"}),
			node("Sub", []string{"w", "g"}, []string{"w_out"}),
			node("Add", []string{"step", "one"}, []string{"step_out"}),
		},
		Initializer: []*onnx.TensorProto{{Name: "one", Dims: []int64{1}, DataType: int32(i64), Int64Data: []int64{1}}},
		Input:       []*onnx.ValueInfoProto{valueInfo("w", f32, 4), valueInfo("step", i64, 1), valueInfo("lr", f32, 1)},
		Output:      []*onnx.ValueInfoProto{valueInfo("w_out", f32, 4), valueInfo("step_out", i64, 1)},
	})
	s, err := NewSession(m, []string{"w", "step", "lr"}, []string{"w_out", "step_out"}, SessionOptions{Optimization: OptExtended, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	w0 := []float32{8, -4, 1, 0.5}
	type set struct {
		w    *Tensor[float32]
		step *Tensor[int64]
	}
	var sets [2]set
	for i := range sets {
		sets[i].w = mustTensor(t, []int64{4}, append([]float32(nil), w0...))
		defer sets[i].w.Close()
		sets[i].step = mustTensor(t, []int64{1}, []int64{0})
		defer sets[i].step.Close()
	}
	lr, err := NewScalar[float32](0.5)
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()

	const steps = 7
	for n := 0; n < steps; n++ {
		in, out := sets[n%2], sets[(n+1)%2]
		if err := s.Run([]Value{in.w, in.step, lr}, []Value{out.w, out.step}); err != nil {
			t.Fatalf("step %d: %v", n, err)
		}
	}
	final := sets[steps%2]
	want := make([]float32, len(w0))
	for i, v := range w0 {
		want[i] = v / (1 << steps)
	}
	if got := final.w.Data(); !reflect.DeepEqual(got, want) {
		t.Errorf("w after %d steps = %v; want %v", steps, got, want)
	}
	if got := final.step.Data()[0]; got != steps {
		t.Errorf("step counter = %d; want %d", got, steps)
	}
}

// TestCUDAOnCPUBuild asks for CUDA. With the CPU-only library of "make setup"
// the error must say that the library has no CUDA provider and how to get one.
// With a GPU build in $ONNXRUNTIME_LIB on a GPU machine the session works and
// must give the CPU's answer.
func TestCUDAOnCPUBuild(t *testing.T) {
	initRuntime(t)
	s, err := NewSession(denseModel(t, denseB), []string{"x", "W", "scale"}, []string{"y", "k"}, SessionOptions{Device: CUDA})
	if err == nil {
		s.Close()
	}
	if err == nil {
		t.Logf("this library has a working CUDA provider; checking its result")
		y, k := runDense(t, SessionOptions{Device: CUDA})
		if !reflect.DeepEqual(y, denseY) || !reflect.DeepEqual(k, denseK) {
			t.Fatalf("CUDA: y = %v, k = %v; want %v, %v", y, k, denseY, denseK)
		}
		return
	}
	t.Logf("error as a user sees it: %v", err)
	if os.Getenv(LibraryEnv) == "" && !errors.Is(err, ErrNoCUDA) {
		t.Errorf("error %v does not wrap ErrNoCUDA; the pinned library is CPU-only", err)
	}
	msg := err.Error()
	for _, want := range []string{"device cuda", LibraryEnv, "GPU build", cudaPlugin} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestRunErrors(t *testing.T) {
	initRuntime(t)
	s, err := NewSession(denseModel(t, denseB), []string{"x", "W", "scale"}, []string{"y", "k"}, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x, _ := NewZeroTensor[float32](2, 3)
	defer x.Close()
	w, _ := NewZeroTensor[float32](3, 2)
	defer w.Close()
	scale, _ := NewScalar[float32](1)
	defer scale.Close()
	y, _ := NewZeroTensor[float32](2, 2)
	defer y.Close()
	k, _ := NewZeroTensor[int64](2)
	defer k.Close()
	closed, _ := NewZeroTensor[int64](2)
	closed.Close()
	wrongShape, _ := NewZeroTensor[float32](3, 3)
	defer wrongShape.Close()

	for _, tc := range []struct {
		name    string
		in, out []Value
		want    string
	}{
		{"too few inputs", []Value{x, w}, []Value{y, k}, "2 inputs given, the session has 3 (x, W, scale)"},
		{"nil output", []Value{x, w, scale}, []Value{y, nil}, "output 1 (k) is nil or closed"},
		{"closed output", []Value{x, w, scale}, []Value{y, closed}, "output 1 (k) is nil or closed"},
		{"wrong shape", []Value{wrongShape, w, scale}, []Value{y, k}, "run:"},
	} {
		err := s.Run(tc.in, tc.out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v; want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestTensorErrors(t *testing.T) {
	initRuntime(t)
	if _, err := NewTensor([]int64{}, []float32{1}); err == nil || !strings.Contains(err.Error(), "give scalars shape [1]") {
		t.Errorf("0-d tensor: %v", err)
	}
	if _, err := NewTensor([]int64{2, 0}, []float32{}); err == nil || !strings.Contains(err.Error(), "dimension 1 is 0") {
		t.Errorf("zero dimension: %v", err)
	}
	if _, err := NewTensor([]int64{2, 2}, []float32{1, 2, 3}); err == nil || !strings.Contains(err.Error(), "needs 4 elements, got 3") {
		t.Errorf("short data: %v", err)
	}
	// The tensor uses the caller's slice in place.
	data := []int64{1, 2, 3}
	tt := mustTensor(t, []int64{3}, data)
	data[1] = 20
	if tt.Data()[1] != 20 {
		t.Errorf("tensor does not share the caller's slice")
	}
	if err := tt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tt.Close(); err != nil || tt.Data() != nil {
		t.Errorf("second Close: %v, data %v", err, tt.Data())
	}
}

// TestCloseRefusesWhileOpen: Close must not unload the library while a tensor
// still points into it. (It does not actually close the environment, which
// the remaining tests share; TestMain does that at the end.)
func TestCloseRefusesWhileOpen(t *testing.T) {
	initRuntime(t)
	tt, err := NewScalar[float32](1)
	if err != nil {
		t.Fatal(err)
	}
	defer tt.Close()
	if err := Close(); err == nil || !strings.Contains(err.Error(), "still open") {
		t.Fatalf("Close with an open tensor: %v; want a refusal", err)
	}
	if v := Version(); v == "" {
		t.Fatal("the refused Close tore the environment down")
	}
}

func TestNewSessionErrors(t *testing.T) {
	initRuntime(t)
	if _, err := NewSession(nil, nil, nil, SessionOptions{IntraOpThreads: -1}); err == nil ||
		!strings.Contains(err.Error(), "model: empty") || !strings.Contains(err.Error(), "inputs:") ||
		!strings.Contains(err.Error(), "IntraOpThreads:") {
		t.Errorf("got %v; want every problem listed", err)
	}
	if _, err := NewSession([]byte("not onnx"), []string{"x"}, []string{"y"}, SessionOptions{}); err == nil {
		t.Error("garbage model accepted")
	}
	// Names are checked by ONNX Runtime when the session runs, not when it is
	// created (checking earlier would cost a second session creation).
	s, err := NewSession(denseModel(t, denseB), []string{"nope", "W", "scale"}, []string{"y", "k"}, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := make([]Value, 3)
	for i, shape := range [][]int64{{2, 3}, {3, 2}, {1}} {
		v, _ := NewZeroTensor[float32](shape...)
		defer v.Close()
		in[i] = v
	}
	y, _ := NewZeroTensor[float32](2, 2)
	defer y.Close()
	k, _ := NewZeroTensor[int64](2)
	defer k.Close()
	if err := s.Run(in, []Value{y, k}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("run with an unknown input name: %v; want an error naming it", err)
	}
}

// TestCloseAndReinit: after Close nothing can be created, and Init loads the
// library again (Close really unloads it: dlclose).
func TestCloseAndReinit(t *testing.T) {
	initRuntime(t)
	if err := Close(); err != nil {
		t.Fatal(err)
	}
	if p, _ := LibraryPath(); p != "" || Version() != "" {
		t.Errorf("after Close: library %q, version %q; want both empty", p, Version())
	}
	if _, err := NewScalar[float32](1); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("NewScalar after Close: %v; want ErrNotInitialized", err)
	}
	if _, err := NewSession(denseModel(t, denseB), []string{"x"}, []string{"y"}, SessionOptions{}); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("NewSession after Close: %v; want ErrNotInitialized", err)
	}
	if err := Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	initRuntime(t)
	if y, k := runDense(t, SessionOptions{}); !reflect.DeepEqual(y, denseY) || !reflect.DeepEqual(k, denseK) {
		t.Errorf("after re-Init: y = %v, k = %v", y, k)
	}
}

// TestInitErrors: a set but wrong $ONNXRUNTIME_LIB and a file that is not a
// library both fail Init with the path named, and leave it retryable.
func TestInitErrors(t *testing.T) {
	initRuntime(t)
	if err := Close(); err != nil {
		t.Fatal(err)
	}
	t.Setenv(LibraryEnv, "/nonexistent")
	err := Init("")
	var nf *LibraryNotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "ONNXRUNTIME_LIB=/nonexistent: no such file") {
		t.Errorf("Init with ONNXRUNTIME_LIB=/nonexistent: %v", err)
	}

	junk := touch(t, t.TempDir()+"/libonnxruntime.so.1")
	err = Init(junk)
	if err == nil || !strings.Contains(err.Error(), "loading ONNX Runtime from "+junk) {
		t.Errorf("Init with a file that is not a library: %v", err)
	}
	t.Logf("error as a user sees it: %v", err)

	// A library for another processor is named as such before it is
	// loaded (env_machine_test.go has the header).
	other := elf.EM_AARCH64
	if elfMachines[goruntime.GOARCH] == elf.EM_AARCH64 {
		other = elf.EM_X86_64
	}
	foreign := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.WriteFile(foreign, elfHeader(other), 0o644); err != nil {
		t.Fatal(err)
	}
	if err = Init(foreign); err == nil || !strings.Contains(err.Error(), "is a library for "+machineName(other)) {
		t.Errorf("Init with a library for %v: %v", other, err)
	}

	os.Unsetenv(LibraryEnv) // t.Setenv restores it afterwards
	initRuntime(t)
}

// NoSpin reaches ONNX Runtime as the session setting that stops idle
// intra-op threads from spinning; without it, the setting is left alone.
func TestNoSpinOption(t *testing.T) {
	initRuntime(t)
	for _, noSpin := range []bool{false, true} {
		so, err := ortOptions(SessionOptions{IntraOpThreads: 2, NoSpin: noSpin}, CUDAStatus{})
		if err != nil {
			t.Fatal(err)
		}
		has, err := so.HasSessionConfigEntry("session.intra_op.allow_spinning")
		v := ""
		if err == nil && has {
			v, err = so.GetSessionConfigEntry("session.intra_op.allow_spinning")
		}
		so.Destroy()
		if err != nil || has != noSpin || (noSpin && v != "0") {
			t.Errorf("NoSpin %v: entry present %v, value %q, %v", noSpin, has, v, err)
		}
	}
}
