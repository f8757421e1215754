package cluster

import (
	"bytes"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
)

// A job of every genotype kind, with every TrainConfig field the wire
// carries set away from its zero value, comes back from its bytes as it
// went; its key does not change from one encoding to the next.
func TestJobRoundTrip(t *testing.T) {
	arch, err := genotype.Parse("C(16,3,1) - P(2,2) - FC(32) - SM()")
	if err != nil {
		t.Fatal(err)
	}
	cells, err := genotype.ParseCellPair("normal: b0 = add(sep_conv_3x3(h0), identity(h1)) | reduction: b0 = concat(max_pool_3x3(h0), avg_pool_3x3(h1))")
	if err != nil {
		t.Fatal(err)
	}
	net, err := genotype.ParseCellNet("net(stem=16, filters=16, normal=1, reductions=1, style=study) " + cells.String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := runtime.TrainConfig{Epochs: 7, BatchSize: 24, LR: 3e-3, Optimizer: onnxgen.SGD{Momentum: 0.9, Nesterov: true}, Patience: -1, Monitor: runtime.MonitorValLoss, Metric: runtime.MetricBalanced, Sampling: runtime.SamplingBalanced,
		Schedule: runtime.LRSchedule{Constant: true, RestartFactor: 0.5, MaxRestarts: 2, DecayEvery: 3, DecayFactor: 0.1, ChanceMargin: 0.02},
		Seed:     1<<63 + 5, Device: runtime.CUDA, Threads: 3, Budget: runtime.Budget{MaxActivationBytes: 1 << 30, MaxMACs: 4e6}, StopBelow: []float64{0, 0, 0.75},
		WeightInit: onnxgen.InitHe, Centre: true, Augment: runtime.Augment{Flip: runtime.FlipBoth, Shift: 2, Brightness: 0.2, Contrast: 0.1}, Average: 2.5}
	data := DataSpec{Hash: "sha256:ab", Input: "32x32x1", Split: "metaqnn", SplitSeed: 1, Fraction: 0.5}
	for _, g := range []genotype.Genotype{arch, net, cells} {
		in := search.Job{Trial: 12, Genotype: g, Actions: []int{1, 0, 4}, Config: cfg, Full: true}
		w, err := jobOf("run-1", data, in, &tensors{Object: "init/x", Sizes: []int{3}})
		if err != nil {
			t.Fatal(err)
		}
		b, key := w.encode()
		if b2, key2 := w.encode(); !bytes.Equal(b, b2) || key != key2 {
			t.Fatal("two encodings of one job differ")
		}
		back, key3, err := decodeJob(b)
		if err != nil || key3 != key {
			t.Fatalf("decode: %v (key %s, want %s)", err, key3, key)
		}
		out, err := back.searchJob([][]float32{{1, 2, 3}})
		if err != nil {
			t.Fatal(err)
		}
		if out.Genotype.Key() != g.Key() || reflect.TypeOf(out.Genotype) != reflect.TypeOf(g) {
			t.Errorf("genotype %v came back as %v", g, out.Genotype)
		}
		out.Genotype, in.Genotype = nil, nil
		in.Config.Init = [][]float32{{1, 2, 3}}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("job came back changed:\n%+v\n%+v", in, out)
		}
		if back.Data != data || back.Run != "run-1" || back.Init.Object != "init/x" {
			t.Errorf("data %+v, run %q, init %+v", back.Data, back.Run, back.Init)
		}
	}
}

// Every field of runtime.TrainConfig is either carried by the wire form or
// left to the worker on purpose (trainConfigFields): a field added to
// TrainConfig fails here until the wire form says what becomes of it.
func TestWireCoversTrainConfig(t *testing.T) {
	var fields []string
	for f := range reflect.TypeFor[runtime.TrainConfig]().Fields() {
		fields = append(fields, f.Name)
	}
	slices.Sort(fields)
	if !slices.Equal(fields, trainConfigFields) {
		t.Errorf("runtime.TrainConfig has %v; the wire form knows %v", fields, trainConfigFields)
	}
	var job []string
	for f := range reflect.TypeFor[search.Job]().Fields() {
		job = append(job, f.Name)
	}
	if want := []string{"Trial", "Genotype", "Actions", "Config", "Full"}; !slices.Equal(job, want) {
		t.Errorf("search.Job has %v; the wire form carries %v", job, want)
	}
}

// Jobs of another format, unknown kinds and optimizers are refused with
// errors that say what is known.
func TestWireRefusals(t *testing.T) {
	if _, _, err := decodeJob([]byte(`{"v":99}`)); err == nil {
		t.Error("a job of format 99 was read")
	}
	if _, err := parseGenotype("blocks", "x"); err == nil || !bytes.Contains([]byte(err.Error()), []byte("valid: layers, cellnet, cells")) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := (&optimizer{Name: "rmsprop"}).optimizer(); err == nil {
		t.Error("an unknown optimizer was read")
	}
}

// Weights come back bit for bit, NaN and negative zero included; a byte
// count that does not match the sizes is an error.
func FuzzTensors(f *testing.F) {
	f.Add([]byte{0, 0, 0x80, 0x7f, 0, 0, 0, 0x80, 1, 2, 3, 4}, uint8(2))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, raw []byte, split uint8) {
		raw = raw[:len(raw)/4*4]
		n := len(raw) / 4
		cut := 0
		if n > 0 {
			cut = int(split) % (n + 1)
		}
		ts, err := decodeTensors(raw, []int{cut, n - cut})
		if err != nil {
			t.Fatal(err)
		}
		back, sizes := encodeTensors(ts)
		if !bytes.Equal(back, raw) || !slices.Equal(sizes, []int{cut, n - cut}) {
			t.Fatalf("round trip changed %x to %x", raw, back)
		}
		if _, err := decodeTensors(append(raw, 0), sizes); err == nil {
			t.Fatal("one byte too many was read")
		}
	})
}

func TestTensorsKeepBits(t *testing.T) {
	in := [][]float32{{float32(math.Copysign(0, -1)), float32(math.NaN()), math.MaxFloat32}, {}, {1e-45}}
	b, sizes := encodeTensors(in)
	out, err := decodeTensors(b, sizes)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		for j := range in[i] {
			if math.Float32bits(in[i][j]) != math.Float32bits(out[i][j]) {
				t.Errorf("[%d][%d]: %v came back as %v", i, j, in[i][j], out[i][j])
			}
		}
	}
}

// A job out of deliveries takes a note's words only when the last
// delivery left it: a note of an earlier one (a worker that handed it
// back, before one that was killed) would name the wrong worker and cause.
func TestExhaustedReason(t *testing.T) {
	last := noteOf(&delivery{n: 3}, "worker gpu-2: out of memory")
	earlier := noteOf(&delivery{n: 2}, "worker w1: handed back as the worker stopped (a second Ctrl-C)")
	generic := "failed on all 3 deliveries; no worker finished it: workers killed, stopped answering, or handed it back (a worker's second Ctrl-C)"
	for _, tc := range []struct {
		note []byte
		want string
	}{
		{nil, generic},
		{last, "failed on all 3 deliveries; the last on worker gpu-2: out of memory"},
		{earlier, generic + "; delivery 2 of them left a note: worker w1: handed back as the worker stopped (a second Ctrl-C)"},
	} {
		if got := exhaustedReason(3, tc.note); got != tc.want {
			t.Errorf("note %q:\n got %q\nwant %q", tc.note, got, tc.want)
		}
	}
}
