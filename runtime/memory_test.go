package runtime

import (
	"bufio"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// The estimate of C(4,3,1) - P(2,2) - SM() on 16x16x1 at batch 8, counted by
// hand: 237 parameters (36 + 4 for the convolution, 196 + 1 for the
// classifier), 4 bytes each, twice as weights, once as gradients, twice
// more as Adam's moments (once as SGD's velocity); activations per image:
// the image (256), the convolution's output (14x14x4 = 784), the pooling's
// (7x7x4 = 196), the dropout's after it (196) and the logit (1), times 8
// images; the largest intermediate: the convolution's windows, 1 channel x
// 9 x 196 positions x 8 images.
func TestEstimateTraining(t *testing.T) {
	net, err := genotype.MustParse("C(4,3,1) - P(2,2) - SM()").Build(genotype.Input{Height: 16, Width: 16, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	const params = 237
	want := TrainingMemory{Weights: 2 * 4 * params, Gradients: 4 * params, Optimizer: 2 * 4 * params, Update: 3 * 3 * 4 * params,
		Activations: 8 * 4 * (256 + 784 + 196 + 196 + 1), Largest: 8 * 4 * 9 * 196}
	if got := EstimateTraining(net, 8, nil); got != want {
		t.Errorf("Adam: %+v, want %+v", got, want)
	}
	want.Optimizer, want.Update = 4*params, 3*2*4*params
	if got := EstimateTraining(net, 8, onnxgen.SGD{Momentum: 0.9}); got != want || got.Total() != 2*948+948+948+6*948+45856+56448 {
		t.Errorf("SGD: %+v (total %d), want %+v", got, got.Total(), want)
	}
	// A network far too large for any machine is counted without overflow.
	huge, err := genotype.MustParse("FC(1000000) - FC(1000000) - SM()").Build(genotype.Input{Height: 64, Width: 64, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if m := EstimateTraining(huge, 128, nil); m.Weights < 8*1_000_000_000_000 || m.Total() < m.Weights {
		t.Errorf("huge network: %+v", m)
	}
}

func TestMemAvailable(t *testing.T) {
	meminfo := "MemTotal:       24634748 kB\nMemFree:         1234567 kB\nMemAvailable:   20000000 kB\nBuffers: 1 kB\n"
	if got := memAvailable(bufio.NewScanner(strings.NewReader(meminfo))); got != 20000000*1024 {
		t.Errorf("MemAvailable: %d", got)
	}
	if got := memAvailable(bufio.NewScanner(strings.NewReader("MemTotal: 1 kB\n"))); got != 0 {
		t.Errorf("no MemAvailable: %d", got)
	}
	if AvailableMemory() <= 0 {
		t.Error("this Linux machine's /proc/meminfo gave no available memory")
	}
}

// A training over its memory limit is refused before anything is built,
// with the estimate and the limit in the reason; one within it, or with no
// limit, is not.
func TestCheckMemory(t *testing.T) {
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	net, err := genotype.MustParse("C(4,3,1) - P(2,2) - SM()").Build(in, 2)
	if err != nil {
		t.Fatal(err)
	}
	total := EstimateTraining(net, 8, nil).Total() // 116,520 bytes (TestEstimateTraining)
	if why := (Budget{MaxMemory: total}).CheckMemory(net, 8, nil); why != "" {
		t.Errorf("at its estimate: refused (%s)", why)
	}
	why := Budget{MaxMemory: total - 1}.CheckMemory(net, 8, nil)
	for _, want := range []string{"batch 8", "113 KiB", "the limit of 113 KiB", "--max-memory"} {
		if !strings.Contains(why, want) {
			t.Errorf("one byte over: reason %q lacks %q", why, want)
		}
	}
	huge, err := genotype.MustParse("FC(1000000) - FC(1000000) - SM()").Build(genotype.Input{Height: 64, Width: 64, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if why := (Budget{}).CheckMemory(huge, 128, nil); !strings.Contains(why, "available") || !strings.Contains(why, "TiB") {
		t.Errorf("huge network against the available memory: %q", why)
	}
	if why := (Budget{MaxMemory: -1}).CheckMemory(huge, 128, nil); why != "" {
		t.Errorf("no limit: %q", why)
	}
	// Train refuses it as over the budget, before any session (no ONNX
	// Runtime is needed to reach this answer).
	res, err := Train(t.Context(), huge, Examples{}, Examples{}, TrainConfig{})
	if err != nil || res.Status != StatusRefused || !strings.Contains(res.Reason, "--max-memory") {
		t.Fatalf("Train: %+v, %v", res, err)
	}
}
