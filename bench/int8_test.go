package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/quantize"
	"github.com/nasctl/nasctl/runtime"
)

// quantized exports arch with random weights, quantizes it on 64 random
// images (pixels uniform in [0, 1], as the images nasctl feeds) and writes
// both models; it returns their paths.
func quantized(t *testing.T, arch string, in genotype.Input) (floatPath, int8Path string) {
	t.Helper()
	path, _ := export(t, arch, in, nil)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 5))
	pixels := make([]float32, 64*in.Channels*in.Height*in.Width)
	for i := range pixels {
		pixels[i] = r.Float32()
	}
	q, err := quantize.Model(b, runtime.CalibrationRunner(context.Background(), pixels, [3]int{in.Channels, in.Height, in.Width},
		runtime.SessionOptions{IntraOpThreads: 1}), quantize.Options{Images: 64})
	if err != nil {
		t.Fatal(err)
	}
	int8Path = filepath.Join(t.TempDir(), "int8.onnx")
	if err := os.WriteFile(int8Path, q, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, int8Path
}

// The quantized model runs on ONNX Runtime's int8 kernels (its profile
// names QLinearConv and QGemm: the pairs were fused, not computed in
// float), passes the ONNX checker with full_check, and stays close to the
// float model: on 256 random images the class probabilities differ by
// 0.0010 at most here, from 8-bit steps in four layers, and by 0.0094 when
// each channel's weights were quantized with their neighbour's scale; the
// bound of 0.004 tells the two apart and leaves room for other CPUs'
// requantization.
func TestQuantizedModel(t *testing.T) {
	if err := runtime.Init(""); err != nil {
		t.Fatal(err)
	}
	in := genotype.Input{Height: 17, Width: 17, Channels: 1}
	fp, qp := quantized(t, "C(8,3,1) - P(2,2) - C(16,3,1) - FC(16) - SM()", in)
	q, err := os.ReadFile(qp)
	if err != nil {
		t.Fatal(err)
	}

	prefix := filepath.Join(t.TempDir(), "profile")
	m, err := runtime.NewModel(q, runtime.SessionOptions{IntraOpThreads: 1, ProfilePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(6, 6))
	px := make([]float32, 256*17*17)
	for i := range px {
		px[i] = r.Float32()
	}
	got, err := m.Predict(context.Background(), px, 64)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	ops := profiledOps(t, prefix)
	for _, op := range []string{"QLinearConv", "QGemm"} {
		if !ops[op] {
			t.Errorf("ONNX Runtime ran no %s (it ran %v): the pairs were not fused", op, ops)
		}
	}

	f, err := runtime.LoadModel(fp, runtime.SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := f.Predict(context.Background(), px, 64)
	if err != nil {
		t.Fatal(err)
	}
	d := 0.0
	for i := range want {
		d = max(d, math.Abs(float64(got[i]-want[i])))
	}
	if d > 0.004 {
		t.Errorf("int8 and float probabilities differ by up to %g", d)
	}
	t.Logf("int8 and float probabilities differ by up to %.4f on 256 random images", d)

	out, err := exec.Command(python(), "-c", "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)", qp).CombinedOutput()
	if err != nil {
		t.Errorf("ONNX checker: %v\n%s", err, out)
	}
}

// profiledOps reads the operator types of the profile a session wrote to
// prefix*.json.
func profiledOps(t *testing.T, prefix string) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob(prefix + "*.json")
	if len(files) == 0 {
		t.Fatalf("no profile %s*.json", prefix)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var events []struct {
		Cat  string `json:"cat"`
		Args struct {
			OpName string `json:"op_name"`
		} `json:"args"`
	}
	if err := json.Unmarshal(b, &events); err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for _, e := range events {
		if e.Cat == "Node" && e.Args.OpName != "" {
			ops[e.Args.OpName] = true
		}
	}
	return ops
}

// python returns Debian's Python, which has python3-onnx ("make test"
// installs it), or the first python3 on PATH.
func python() string {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}

// Pairs matches an int8 model to its float model by the SHA-256 its
// settings record, and CompareQuantized measures them side by side: the
// size ratio from the files, a positive latency ratio from interleaved
// rounds, and no accuracy change when the accuracies are metadata.
func TestPairs(t *testing.T) {
	if err := runtime.Init(""); err != nil {
		t.Fatal(err)
	}
	in := genotype.Input{Height: 12, Width: 12, Channels: 1}
	fp, qp := quantized(t, "C(4,3,1) - C(8,3,1) - GAP()", in)
	other, _ := export(t, "C(4,3,1) - GAP()", in, nil)
	opts := Options{Runs: 5, Warmup: 1, Batch: 2, BatchRuns: 1, PureGoRuns: 1, Session: runtime.SessionOptions{IntraOpThreads: 1}}
	var rs []*Result
	for _, p := range []string{qp, other, fp} {
		r, err := Measure(context.Background(), p, opts)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	if rs[0].Quantization == nil || rs[2].Quantization != nil || !strings.Contains(rs[0].PureGo.UnsupportedOp, "QuantizeLinear") {
		t.Fatalf("quantization settings: %+v %+v; pure Go %+v", rs[0].Quantization, rs[2].Quantization, rs[0].PureGo)
	}
	pairs := Pairs(rs)
	if len(pairs) != 1 || pairs[0][0] != rs[2] || pairs[0][1] != rs[0] {
		t.Fatalf("pairs %v", pairs)
	}
	var said []int
	c, err := CompareQuantized(context.Background(), pairs[0], 3, 5, opts.Session, func(round, rounds int, ratio float64) {
		if rounds != 3 || !(ratio > 0) {
			t.Errorf("progress: round %d of %d, ratio %v", round, rounds, ratio)
		}
		said = append(said, round)
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(said) != "[1 2 3]" {
		t.Errorf("progress after rounds %v, want [1 2 3]", said)
	}
	if c.SizeRatio != float64(rs[0].FileBytes)/float64(rs[2].FileBytes) || !(c.LatencyRatio > 0) || c.Rounds != 3 || c.AccuracyChange != nil {
		t.Errorf("comparison %+v", c)
	}
}
