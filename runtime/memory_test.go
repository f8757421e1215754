package runtime

import (
	"bufio"
	"context"
	"errors"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// The estimate of C(4,3,1) - P(2,2) - SM() on 16x16x1 at batch 8, counted by
// hand: 237 parameters (36 + 4 for the convolution, 196 + 1 for the
// classifier), 4 bytes each (948 bytes), twice as weights, once as
// gradients; Adam's two moments in two sets, as the trainer keeps them
// (runtime/train.go, trainer.slots), four times more (SGD's velocity in two
// sets, twice); the update's three copies of the parameters, gradients and
// moments, nine times (SGD's, six); activations per image: the image (256),
// the convolution's output (14x14x4 = 784), the pooling's (7x7x4 = 196), the
// dropout's after it (196) and the logit (1), times 8 images; the largest
// intermediate: the convolution's windows, 1 channel x 9 x 196 positions x
// 8 images. Totals: Adam 1,896 + 948 + 3,792 + 8,532 + 45,856 + 56,448 =
// 117,472 bytes; SGD 1,896 + 948 + 1,896 + 5,688 + 45,856 + 56,448 =
// 112,732.
func TestEstimateTraining(t *testing.T) {
	net, err := genotype.MustParse("C(4,3,1) - P(2,2) - SM()").Build(genotype.Input{Height: 16, Width: 16, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	const params = 237
	want := TrainingMemory{Weights: 2 * 4 * params, Gradients: 4 * params, Optimizer: 2 * 2 * 4 * params, Update: 3 * 3 * 4 * params,
		Activations: 8 * 4 * (256 + 784 + 196 + 196 + 1), Largest: 8 * 4 * 9 * 196}
	if got := EstimateTraining(net, 8, nil); got != want || got.Total() != 117_472 {
		t.Errorf("Adam: %+v (total %d), want %+v (total 117472)", got, got.Total(), want)
	}
	want.Optimizer, want.Update = 2*4*params, 3*2*4*params
	if got := EstimateTraining(net, 8, onnxgen.SGD{Momentum: 0.9}); got != want || got.Total() != 112_732 {
		t.Errorf("SGD: %+v (total %d), want %+v (total 112732)", got, got.Total(), want)
	}
	// A network far too large for any machine is counted without overflow.
	huge, err := genotype.MustParse("FC(1000000) - FC(1000000) - SM()").Build(genotype.Input{Height: 64, Width: 64, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if m := EstimateTraining(huge, 128, nil); m.Weights < 8*1_000_000_000_000 || m.Optimizer < 16*1_000_000_000_000 || m.Total() < m.Weights {
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
	total := EstimateTraining(net, 8, nil).Total() // 117,472 bytes (TestEstimateTraining)
	if why := (Budget{MaxMemory: total}).CheckMemory(net, 8, nil); why != "" {
		t.Errorf("at its estimate: refused (%s)", why)
	}
	why := Budget{MaxMemory: total - 1}.CheckMemory(net, 8, nil)
	// 117,472 bytes are 114.7 KiB, which humanize rounds to 115 KiB.
	for _, want := range []string{"batch 8", "115 KiB", "the limit of 115 KiB", "--max-memory"} {
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

// waiting is the number of trainings g keeps waiting for memory.
func (g *memoryGate) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// waitFor polls cond until it holds; the deadline only turns a hang into a
// failure, it does not time anything.
func waitFor(t *testing.T, what string, cond func() bool) {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("still waiting for %s after 30 s", what)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// The gate in units of memory, with a fake machine of 15 available at first:
// two needs of 10 (after the margin) do not fit together, so the second
// waits until the first leaves; cancelling ends a wait with ctx.Err(); a
// need that fits beside the others, or asks for no guard, enters at once; a
// later one waits behind an earlier one even when it would fit (first come
// first); the base is measured again once nothing is in flight, and memory
// other processes took since counts against it.
func TestMemoryGate(t *testing.T) {
	var avail atomic.Int64
	avail.Store(15)
	g := newMemoryGate(avail.Load)
	ctx := t.Context()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	// tryNow admits need at once or returns nil: a cancelled context ends
	// any wait before it starts.
	tryNow := func(need int64) func() {
		release, waited, err := g.acquire(cancelled, Budget{}, need)
		if (err != nil) != waited || err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("need %d: waited %v, err %v", need, waited, err)
		}
		return release
	}
	first := tryNow(10)
	if first == nil || g.base != 15 {
		t.Fatalf("alone: not admitted, or base %d", g.base)
	}
	type admission struct {
		release func()
		waited  bool
		err     error
	}
	second := make(chan admission)
	go func() {
		r, w, err := g.acquire(ctx, Budget{}, 10)
		second <- admission{r, w, err}
	}()
	waitFor(t, "the second training to wait", func() bool { return g.waiting() == 1 })
	if r := tryNow(1); r != nil {
		t.Error("a need of 1 passed the training waiting before it")
	}
	if r := tryNow(100); r != nil {
		t.Error("a need of 100 entered beside 10 of 15")
	}
	if r, waited, err := g.acquire(ctx, Budget{MaxMemory: -1}, 100); err != nil || waited {
		t.Errorf("no guard: waited %v, err %v", waited, err)
	} else {
		r()
	}
	select {
	case a := <-second:
		t.Fatalf("the second training did not wait for the first: %+v", a)
	default:
	}
	first()
	first() // a release counts once
	a := <-second
	if a.err != nil || !a.waited {
		t.Fatalf("second after the first left: waited %v, err %v", a.waited, a.err)
	}
	beside := tryNow(5) // 10 + 5 <= 15
	if beside == nil {
		t.Fatal("a need of 5 waited beside 10 of 15")
	}
	beside()

	// A cancellation ends a wait that has begun.
	ctx3, cancel3 := context.WithCancel(ctx)
	third := make(chan error)
	go func() {
		_, _, err := g.acquire(ctx3, Budget{}, 10)
		third <- err
	}()
	waitFor(t, "the third training to wait", func() bool { return g.waiting() == 1 })
	cancel3()
	if err := <-third; !errors.Is(err, context.Canceled) || g.waiting() != 0 {
		t.Errorf("cancelled wait: %v, %d still waiting", err, g.waiting())
	}
	a.release()

	// Nothing in flight: the base is measured again, and two needs of 10
	// fit 30. With one of them left and another process having taken 10,
	// the machine has 10 available: room for 10 more, not 11.
	avail.Store(30)
	r1, r2 := tryNow(10), tryNow(10)
	if r1 == nil || r2 == nil || g.base != 30 {
		t.Fatalf("base measured again: admitted %v %v, base %d", r1 != nil, r2 != nil, g.base)
	}
	r1()
	avail.Store(10)
	if r := tryNow(11); r != nil {
		t.Error("a need of 11 entered beside 10 with 10 available")
	}
	if r := tryNow(10); r == nil {
		t.Error("a need of 10 waited beside 10 with 10 available")
	} else {
		r()
	}
	r2()
	if g.running != 0 || g.held != 0 || g.waiting() != 0 {
		t.Errorf("ledger not empty at the end: %d running, %d held", g.running, g.held)
	}
}

// Two trainings of one process run side by side only when the machine has
// room for both: with a fake machine one byte short of their two needs
// (EstimateTraining with the margin), the second waits for the first to end;
// with exactly their two needs they overlap. Each training, at its first
// epoch, waits until the other is training or waiting for memory, so
// either outcome shows whatever the scheduling.
func TestTrainWaitsForMemory(t *testing.T) {
	initRuntime(t)
	pixels, labels := leaves(80, 16, 3)
	net, err := genotype.MustParse("C(4,3,1) - FC(8) - SM()").Build(genotype.Input{Height: 16, Width: 16, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	train, val := Examples{pixels, labels, seq(0, 60)}, Examples{pixels, labels, seq(60, 80)}
	need := trainingNeed(net, EstimateTraining(net, 16, nil))
	for _, tc := range []struct {
		name      string
		available int64
		overlap   bool
		waits     int // trainings that waited
	}{
		{"one byte short", 2*need - 1, false, 1},
		{"room for both", 2 * need, true, 0},
	} {
		fakeMachine(t, func() int64 { return tc.available })
		var (
			lock              sync.Mutex
			started, finished [2]bool
			overlap           bool
		)
		progress := func(i int) func(EpochRecord) {
			return func(e EpochRecord) {
				lock.Lock()
				started[i] = true
				finished[i] = e.Epoch == 2
				lock.Unlock()
				if e.Epoch != 1 {
					return
				}
				waitFor(t, "the other training", func() bool {
					lock.Lock()
					defer lock.Unlock()
					overlap = overlap || started[1-i] && !finished[1-i]
					return started[1-i] || trainings.waiting() > 0
				})
			}
		}
		var results [2]*Result
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				cfg := TrainConfig{Epochs: 2, BatchSize: 16, Seed: uint64(i), Threads: 1, Schedule: LRSchedule{Constant: true}, Progress: progress(i)}
				res, err := Train(t.Context(), net, train, val, cfg)
				if err != nil || res.Status != StatusOK || len(res.Epochs) != 2 {
					t.Errorf("%s: training %d: %+v, %v", tc.name, i, res, err)
				}
				results[i] = res
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		waits := 0
		for _, r := range results {
			if r.Waited > 0 {
				waits++
			}
		}
		t.Logf("%s (%d bytes for needs of %d): overlap %v, waited %.3f s and %.3f s, trained %.3f s and %.3f s",
			tc.name, tc.available, need, overlap, results[0].Waited, results[1].Waited, results[0].Seconds, results[1].Seconds)
		if overlap != tc.overlap || waits != tc.waits {
			t.Errorf("%s: overlap %v with %d waiting, want %v with %d", tc.name, overlap, waits, tc.overlap, tc.waits)
		}
	}
}

// A training that fits the machine alone is not refused for the memory its
// neighbours in the process hold: with a fake machine of exactly its
// estimate, and another training in flight that took 1000 bytes of it,
// CheckMemory still compares with the whole; once another process takes
// those 1000 bytes too, it refuses.
func TestCheckMemoryBesideOthers(t *testing.T) {
	net, err := genotype.MustParse("C(4,3,1) - P(2,2) - SM()").Build(genotype.Input{Height: 16, Width: 16, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	total := EstimateTraining(net, 8, nil).Total() // 117,472 bytes (TestEstimateTraining)
	var avail atomic.Int64
	avail.Store(total)
	fakeMachine(t, avail.Load)
	release, _, err := trainings.acquire(t.Context(), Budget{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	avail.Store(total - 1000)
	if why := (Budget{}).CheckMemory(net, 8, nil); why != "" {
		t.Errorf("beside a training of this process: refused (%s)", why)
	}
	avail.Store(total - 2000)
	if why := (Budget{}).CheckMemory(net, 8, nil); !strings.Contains(why, "available") {
		t.Errorf("with 1000 bytes taken by another process: %q", why)
	}
}

// Against the machine's memory a cell network is counted at 5/2 of its
// estimate (docs/limits.md: such networks took 1.8 to 2.2 times theirs), a
// layer network at its estimate: on a machine of twice the estimate, the
// cell network is refused and the layer network is not. An explicit limit
// compares with the estimate itself, for both.
func TestCheckMemoryCellMargin(t *testing.T) {
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	cell := buildNet(t, "net(stem=4, filters=4, normal=1, reductions=1, style=nasnet) normal: b0 = add(conv_3x3(h1), identity(h0)) | reduction: b0 = add(conv_3x3(h1), max_pool_3x3(h0))", in)
	layers, err := genotype.MustParse("C(4,3,1) - P(2,2) - SM()").Build(in, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		net     *genotype.Net
		refused bool
	}{{"cell network", cell, true}, {"layer network", layers, false}} {
		total := EstimateTraining(tc.net, 8, nil).Total()
		fakeMachine(t, func() int64 { return 2 * total })
		why := (Budget{}).CheckMemory(tc.net, 8, nil)
		if (why != "") != tc.refused || (tc.refused && !strings.Contains(why, "a cell network is counted at 5/2 of that")) {
			t.Errorf("%s on a machine of twice its estimate: %q, want refused %v", tc.name, why, tc.refused)
		}
		if why := (Budget{MaxMemory: 2 * total}).CheckMemory(tc.net, 8, nil); why != "" {
			t.Errorf("%s within --max-memory of twice its estimate: refused (%s)", tc.name, why)
		}
	}
}

// Train leaves its tensors collected when it returns, so that the training
// admitted after it does not find them still on the heap: of the 24 bytes per
// parameter its Go slices hold (two sets of weights and of Adam's two
// moments), only the 4 of the returned weights remain, within 8.
func TestTrainCollectsItsTensors(t *testing.T) {
	initRuntime(t)
	pixels, labels := leaves(40, 32, 5)
	net, err := genotype.MustParse("FC(2000) - SM()").Build(genotype.Input{Height: 32, Width: 32, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	res, err := Train(t.Context(), net, Examples{pixels, labels, seq(0, 32)}, Examples{pixels, labels, seq(32, 40)},
		TrainConfig{Epochs: 1, BatchSize: 16, Seed: 1, Threads: 1, Schedule: LRSchedule{Constant: true}})
	goruntime.ReadMemStats(&after)
	if err != nil || res.Status != StatusOK {
		t.Fatalf("%+v, %v", res, err)
	}
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap %d bytes larger after training %d parameters", grown, net.Params())
	if grown > 8*net.Params() {
		t.Errorf("heap %d bytes larger after Train, more than 8 bytes per parameter (%d)", grown, net.Params())
	}
}

// fakeMachine makes the process's trainings see available as the machine's
// available memory until the test ends.
func fakeMachine(t *testing.T, available func() int64) {
	trainings.mu.Lock()
	was := trainings.available
	trainings.available = available
	trainings.mu.Unlock()
	t.Cleanup(func() {
		trainings.mu.Lock()
		trainings.available = was
		trainings.mu.Unlock()
	})
}
