package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// leaves renders n images of the study's generator at size x size, in memory,
// and returns them with the training and validation halves.
func leaves(n, size int, seed uint64) (pixels []float32, labels []int) {
	opts := dataset.Options{Count: n, Size: size, Seed: seed}
	for i := range n {
		img, leaf := dataset.Render(opts, i)
		for _, p := range img.Pix {
			pixels = append(pixels, float32(p)/255)
		}
		l := 0
		if leaf {
			l = 1
		}
		labels = append(labels, l)
	}
	return pixels, labels
}

func seq(lo, hi int) []int {
	var s []int
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}

var smallNet = "C(8,3,1) - P(2,2) - C(16,3,1) - P(2,2) - SM()"

// A small network learns the leaves task: 600 training and 200 validation
// images of 32x32 (generator seed 1), 12 epochs at a constant learning rate
// of 3e-3, batch 16, seed 1. Measured on this project's machine: best
// validation accuracy 0.865 (epoch 8; 0.870 at epoch 9 with the dropout masks
// drawn from a single stream before). The floor of 0.80 leaves room for
// the rounding differences of another CPU's kernels.
func TestTrainLearnsLeaves(t *testing.T) {
	initRuntime(t)
	pixels, labels := leaves(800, 32, 1)
	net, err := genotype.MustParse(smallNet).Build(genotype.Input{Height: 32, Width: 32, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	train := Examples{Pixels: pixels, Labels: labels, Indices: seq(0, 600)}
	val := Examples{Pixels: pixels, Labels: labels, Indices: seq(600, 800)}
	var epochs int
	res, err := Train(context.Background(), net, train, val, TrainConfig{Epochs: 12, BatchSize: 16, LR: 3e-3, Schedule: LRSchedule{Constant: true}, Seed: 1, Threads: 2, Progress: func(EpochRecord) { epochs++ }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("status %s, val accuracy %.4f at epoch %d, %d restarts, %.1f s, %.0f images/s", res.Status, res.ValAccuracy, res.BestEpoch, res.Restarts, res.Seconds, res.ImagesPerSecond)
	const floor = 0.80
	if res.Status != StatusOK || res.ValAccuracy < floor {
		t.Fatalf("val accuracy %.4f (%s), want at least %.2f", res.ValAccuracy, res.Status, floor)
	}
	if epochs != len(res.Epochs) || res.Params != net.Params() {
		t.Errorf("progress called %d times for %d epochs; params %d", epochs, len(res.Epochs), res.Params)
	}
	// The best epoch's weights are returned: the exported model reproduces
	// the best validation accuracy.
	ev := checkExported(t, net, smallNet, res, val)
	if ev.Confusion[0][0]+ev.Confusion[1][1] != ev.Correct || ev.N != val.Len() {
		t.Errorf("confusion %v, correct %d", ev.Confusion, ev.Correct)
	}
}

// tinyTask is a small network and 100 training and 40 validation images
// of 16x16 (generator seed 2).
func tinyTask(t *testing.T) (net *genotype.Net, train, val Examples) {
	t.Helper()
	pixels, labels := leaves(140, 16, 2)
	net, err := genotype.MustParse("C(4,3,1) - P(2,2) - FC(8) - SM()").Build(genotype.Input{Height: 16, Width: 16, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	return net, Examples{Pixels: pixels, Labels: labels, Indices: seq(0, 100)}, Examples{Pixels: pixels, Labels: labels, Indices: seq(100, 140)}
}

// Same seed, same threads: same epochs and weights. A partial last batch
// (100 = 3*32 + 4) is included.
func TestTrainDeterministic(t *testing.T) {
	initRuntime(t)
	net, train, val := tinyTask(t)
	cfg := TrainConfig{Epochs: 3, BatchSize: 32, Seed: 7, Threads: 2, Schedule: LRSchedule{Constant: true}, Patience: -1}
	a, err := Train(context.Background(), net, train, val, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Train(context.Background(), net, train, val, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Epochs {
		ea, eb := a.Epochs[i], b.Epochs[i]
		if ea.TrainLoss != eb.TrainLoss || ea.ValLoss != eb.ValLoss || ea.ValAccuracy != eb.ValAccuracy {
			t.Errorf("epoch %d differs: %+v vs %+v", i+1, ea, eb)
		}
	}
	for i := range a.Weights {
		if !slices.Equal(a.Weights[i], b.Weights[i]) {
			t.Errorf("weights %d differ", i)
		}
	}
	cfg.Seed = 8
	c, err := Train(context.Background(), net, train, val, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.Epochs[0].TrainLoss == a.Epochs[0].TrainLoss {
		t.Error("another seed gave the same first epoch")
	}
}

// StopBelow stops an attempt after the first epoch whose best validation
// accuracy so far is below that epoch's threshold, and only then: against
// the same training run in full (the runs are deterministic), a threshold
// just above epoch 3's best stops it there, and thresholds equal to every
// epoch's best stop nothing.
func TestTrainStopBelow(t *testing.T) {
	initRuntime(t)
	net, train, val := tinyTask(t)
	cfg := TrainConfig{Epochs: 5, BatchSize: 32, LR: 3e-3, Seed: 7, Threads: 2, Schedule: LRSchedule{Constant: true}, Patience: -1}
	full, err := Train(context.Background(), net, train, val, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var best []float64 // best validation accuracy after each epoch
	b := 0.0
	for _, e := range full.Epochs {
		b = max(b, e.ValAccuracy)
		best = append(best, b)
	}
	if full.Pruned || len(best) != 5 {
		t.Fatalf("without thresholds: pruned %v after %d epochs", full.Pruned, len(best))
	}

	cfg.StopBelow = slices.Clone(best)
	same, err := Train(context.Background(), net, train, val, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if same.Pruned || len(same.Epochs) != 5 || same.ValAccuracy != full.ValAccuracy {
		t.Errorf("thresholds equal to the best so far: pruned %v after %d epochs, accuracy %v (full run %v)", same.Pruned, len(same.Epochs), same.ValAccuracy, full.ValAccuracy)
	}
	// Picking the best epoch by validation loss does not change what the
	// thresholds are compared with: the best accuracy so far, which here is
	// above the accuracy of the lowest-loss epoch at some epoch.
	byLoss := cfg
	byLoss.Monitor, byLoss.LR, byLoss.Epochs, byLoss.StopBelow = MonitorValLoss, 3e-2, 8, nil
	lossRun, err := Train(context.Background(), net, train, val, byLoss)
	if err != nil {
		t.Fatal(err)
	}
	b = 0
	lowest, apart := lossRun.Epochs[0], false
	for _, e := range lossRun.Epochs {
		b = max(b, e.ValAccuracy)
		if e.ValLoss < lowest.ValLoss {
			lowest = e
		}
		apart = apart || lowest.ValAccuracy < b
		byLoss.StopBelow = append(byLoss.StopBelow, b)
	}
	if !apart {
		t.Fatalf("by loss, the lowest-loss epoch always has the best accuracy so far: %+v", lossRun.Epochs)
	}
	again, err := Train(context.Background(), net, train, val, byLoss)
	if err != nil {
		t.Fatal(err)
	}
	if again.Pruned || len(again.Epochs) != byLoss.Epochs {
		t.Errorf("monitor val loss, thresholds equal to the best accuracy so far: pruned %v after %d epochs", again.Pruned, len(again.Epochs))
	}

	cfg.StopBelow = []float64{0, 0, best[2] + 1e-6, 1, 1}
	cut, err := Train(context.Background(), net, train, val, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !cut.Pruned || cut.Status != StatusOK || len(cut.Epochs) != 3 || cut.ValAccuracy != best[2] || cut.BestEpoch > 3 || cut.Weights == nil {
		t.Errorf("threshold above epoch 3's best (%v): pruned %v, status %s after %d epochs, accuracy %v at epoch %d", best[2], cut.Pruned, cut.Status, len(cut.Epochs), cut.ValAccuracy, cut.BestEpoch)
	}
}

func TestTrainDivergedRefusedRestarted(t *testing.T) {
	initRuntime(t)
	pixels, labels := leaves(80, 16, 3)
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	net, err := genotype.MustParse("C(8,3,1) - FC(16) - SM()").Build(in, 2)
	if err != nil {
		t.Fatal(err)
	}
	train := Examples{Pixels: pixels, Labels: labels, Indices: seq(0, 60)}
	val := Examples{Pixels: pixels, Labels: labels, Indices: seq(60, 80)}

	// A huge learning rate makes the loss infinite or NaN: reward 0, a reason.
	res, err := Train(context.Background(), net, train, val, TrainConfig{Epochs: 3, LR: 1e12, Seed: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusDiverged || res.Reward() != 0 || res.Reason == "" {
		t.Errorf("lr 1e12: status %s, reward %v, reason %q", res.Status, res.Reward(), res.Reason)
	}
	// A diverged run's record must be storable: no NaN in it.
	if _, err := json.Marshal(res); err != nil {
		t.Errorf("diverged result does not marshal: %v", err)
	}
	// One step per epoch makes the first validation loss the first non-finite one.
	res, err = Train(context.Background(), net, Examples{pixels, labels, train.Indices[:8]}, val, TrainConfig{Epochs: 3, BatchSize: 8, LR: 1e12, Seed: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := json.Marshal(res); err != nil || res.Status != StatusDiverged {
		t.Errorf("diverged on validation: status %s, marshal error %v", res.Status, err)
	}

	// Over the budget: refused before anything runs.
	res, err = Train(context.Background(), net, train, val, TrainConfig{Budget: Budget{MaxMACs: net.MACs() - 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusRefused || len(res.Epochs) != 0 || res.Reason == "" {
		t.Errorf("budget: %+v", res)
	}

	// Blank images: nothing can be learned, validation stays at chance after
	// the first epoch, so Baker et al.'s rule restarts with lr x 0.4, at most
	// MaxRestarts times, then trains on.
	blank := make([]float32, len(pixels))
	res, err = Train(context.Background(), net, Examples{blank, labels, train.Indices}, Examples{blank, labels, val.Indices},
		TrainConfig{Epochs: 2, LR: 1e-3, Seed: 1, Threads: 1, Schedule: LRSchedule{MaxRestarts: 2}})
	if err != nil {
		t.Fatal(err)
	}
	var lrs []float64
	for _, e := range res.Epochs {
		lrs = append(lrs, e.LR)
	}
	want := []float64{1e-3, 4e-4, 1.6e-4, 1.6e-4}
	if res.Restarts != 2 || len(lrs) != len(want) {
		t.Fatalf("restarts %d, learning rates %v; want 2 and %v", res.Restarts, lrs, want)
	}
	for i := range want {
		if math.Abs(lrs[i]-want[i]) > 1e-12 {
			t.Errorf("learning rates %v, want %v", lrs, want)
		}
	}
}

// Cancelling keeps the finished epochs and the best weights among them.
func TestTrainInterrupted(t *testing.T) {
	initRuntime(t)
	pixels, labels := leaves(80, 16, 3)
	net, err := genotype.MustParse("C(4,3,1) - FC(8) - SM()").Build(genotype.Input{Height: 16, Width: 16, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	epochs := 0
	cfg := TrainConfig{Epochs: 10, BatchSize: 16, Seed: 1, Threads: 1, Schedule: LRSchedule{Constant: true},
		Progress: func(EpochRecord) {
			if epochs++; epochs == 2 {
				cancel()
			}
		}}
	res, err := Train(ctx, net, Examples{pixels, labels, seq(0, 60)}, Examples{pixels, labels, seq(60, 80)}, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if res == nil || res.Status != StatusInterrupted || len(res.Epochs) != 2 || res.Weights == nil || res.BestEpoch < 1 {
		t.Fatalf("interrupted result %+v", res)
	}
}

func TestTrainBadInput(t *testing.T) {
	initRuntime(t)
	net, err := genotype.MustParse("SM()").Build(genotype.Input{Height: 2, Width: 2, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	px := make([]float32, 8)
	for _, tc := range []struct {
		train, val Examples
	}{
		{Examples{px, []int{0, 1}, nil}, Examples{px, []int{0, 1}, []int{0}}},
		{Examples{px, []int{0, 1}, []int{5}}, Examples{px, []int{0, 1}, []int{0}}},
		{Examples{px, []int{0, 2}, []int{1}}, Examples{px, []int{0, 1}, []int{0}}},
		{Examples{px[:7], []int{0, 1}, []int{1}}, Examples{px, []int{0, 1}, []int{0}}},
	} {
		if _, err := Train(context.Background(), net, tc.train, tc.val, TrainConfig{}); err == nil {
			t.Errorf("accepted %+v", tc.train)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, net, Examples{px, []int{0, 1}, []int{0, 1}}, Examples{px, []int{0, 1}, []int{0, 1}}, TrainConfig{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// Architectures sampled from a search space train for one epoch, evaluate,
// export and predict through ONNX Runtime: every layer combination the
// agent can produce compiles into graphs that run.
func TestSampledArchitecturesRun(t *testing.T) {
	initRuntime(t)
	in := genotype.Input{Height: 12, Width: 12, Channels: 1}
	pixels, labels := leaves(12, 12, 6)
	space := genotype.Study.Clone()
	space.ConvFilters = []int{2, 3}
	space.FCUnits = []int{4, 3}
	r := rand.New(rand.NewPCG(8, 8))
	for i := range 40 {
		st := space.Start(in)
		var a genotype.Arch
		for !st.Done {
			acts := space.Actions(st)
			l := acts[r.IntN(len(acts))]
			a = append(a, l)
			st = space.Step(st, l)
		}
		net, err := a.Build(in, 2)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		res, err := Train(context.Background(), net, Examples{pixels, labels, seq(0, 9)}, Examples{pixels, labels, seq(9, 12)},
			TrainConfig{Epochs: 1, BatchSize: 4, Seed: uint64(i), Threads: 1})
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		model, err := onnxgen.Inference(net, res.Weights, onnxgen.Metadata{Arch: a.String(), Input: in, Classes: []string{"a", "b"}})
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		m, err := NewModel(model, SessionOptions{IntraOpThreads: 1})
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		probs, err := m.Predict(context.Background(), pixels[:2*144], 2)
		m.Close()
		if err != nil || len(probs) != 4 || math.Abs(float64(probs[0]+probs[1])-1) > 1e-5 {
			t.Fatalf("%s: predict %v %v", a, probs, err)
		}
	}
}

// Train's CPU session runs convolutions on NCHWc kernels, whose weight
// gradients take only batches of a multiple of 4 images; another batch (the
// last of an epoch) runs on the same graph without them.
func TestTrainStepOddBatch(t *testing.T) {
	initRuntime(t)
	net, err := genotype.MustParse("C(16,3,1) - C(16,3,1) - GAP()").Build(genotype.Input{Height: 8, Width: 8, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := newTrainer(net, TrainConfig{Threads: 1}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	if tr.train.BlockedConvs() == 0 || tr.train.BatchMultiple() != 4 {
		t.Fatalf("training session: %d convolutions on NCHWc kernels, batches of a multiple of %d (block size %d)",
			tr.train.BlockedConvs(), tr.train.BatchMultiple(), nchwcBlockSize())
	}
	tr.setWeights(onnxgen.Init(tr.tg.Params, rand.New(rand.NewPCG(1, 2))))
	for i, n := range []int64{8, 6, 8} {
		stepOnce(t, tr, n, 5)
		if i == 0 && tr.plain != nil {
			t.Error("a batch of 8 made a session without NCHWc kernels")
		}
	}
	if tr.plain == nil || tr.plain.BlockedConvs() != 0 {
		t.Error("the batch of 6 did not run on a session without NCHWc kernels")
	}
}

// A nasnet-style cell network (batch normalisation in training mode) learns
// with SGD and momentum 0.9, monitored on validation loss as the study's
// child training is: the best epoch is the one of lowest validation loss,
// training stops Patience epochs after it, and the exported model (batch
// normalisations folded, running statistics) reproduces that epoch's
// validation accuracy. 600 training and 200 validation images of 16x16,
// seed 3. Measured here: lowest validation loss at epoch 7 (accuracy 0.860),
// stopped after epoch 9; monitoring accuracy instead stops after epoch 5,
// which this test catches. The floor of 0.75 leaves room for other CPUs.
func TestTrainCellNetworkMonitorsValLoss(t *testing.T) {
	initRuntime(t)
	const arch = "net(stem=4, filters=4, normal=1, reductions=1, style=nasnet) " +
		"normal: b0 = add(sep_conv_3x3(h1), identity(h0)); b1 = concat(conv_3x3(b0), max_pool_3x3(h1)) | " +
		"reduction: b0 = add(conv_3x3(h1), avg_pool_3x3(h0)); b1 = add(dil_conv_3x3(b0), conv_1x1(h1))"
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	pixels, labels := leaves(800, in.Height, 3)
	g, err := genotype.ParseGenotype(arch)
	if err != nil {
		t.Fatal(err)
	}
	net, err := g.Build(in, 2)
	if err != nil {
		t.Fatal(err)
	}
	train := Examples{Pixels: pixels, Labels: labels, Indices: seq(0, 600)}
	val := Examples{Pixels: pixels, Labels: labels, Indices: seq(600, 800)}
	const patience = 2
	res, err := Train(context.Background(), net, train, val, TrainConfig{Epochs: 12, BatchSize: 32, LR: 0.02, Optimizer: onnxgen.SGD{Momentum: 0.9},
		Schedule: LRSchedule{Constant: true}, Monitor: MonitorValLoss, Patience: patience, Seed: 1, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	best := 0
	for i, e := range res.Epochs {
		t.Logf("epoch %d: train loss %.4f, val loss %.4f, val accuracy %.4f", e.Epoch, e.TrainLoss, e.ValLoss, e.ValAccuracy)
		if e.ValLoss < res.Epochs[best].ValLoss {
			best = i
		}
	}
	if res.Status != StatusOK || res.BestEpoch != best+1 || res.ValAccuracy != res.Epochs[best].ValAccuracy {
		t.Fatalf("status %s, best epoch %d (val accuracy %.4f); lowest validation loss at epoch %d", res.Status, res.BestEpoch, res.ValAccuracy, best+1)
	}
	if n := len(res.Epochs); n != 12 && n != best+1+patience {
		t.Errorf("stopped after %d epochs; lowest loss at epoch %d, patience %d", n, best+1, patience)
	}
	const floor = 0.75
	if res.ValAccuracy < floor {
		t.Errorf("val accuracy %.4f, want at least %.2f", res.ValAccuracy, floor)
	}
	checkExported(t, net, arch, res, val)
}

// checkExported exports the weights Train returned and checks that the
// model reproduces the validation accuracy Train reported (to within one
// image's rounding).
func checkExported(t *testing.T, net *genotype.Net, arch string, res *Result, val Examples) *Evaluation {
	t.Helper()
	m := exported(t, net, arch, res.Weights, []string{"no_leaf", "leaf"})
	ev, err := m.Evaluate(context.Background(), val, 64)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(ev.Accuracy-res.ValAccuracy) > 1.5/float64(val.Len()) {
		t.Errorf("exported model: accuracy %.4f, training reported %.4f", ev.Accuracy, res.ValAccuracy)
	}
	// The mistakes are the images the model, asked one at a time, answers
	// wrong: as many as the count, each with its prediction.
	if len(ev.Mistakes) != ev.N-ev.Correct {
		t.Errorf("%d mistakes listed, %d counted", len(ev.Mistakes), ev.N-ev.Correct)
	}
	size := net.Input.Channels * net.Input.Height * net.Input.Width
	for _, mk := range ev.Mistakes {
		probs, err := m.Predict(context.Background(), val.Pixels[mk.Image*size:(mk.Image+1)*size], 1)
		if err != nil {
			t.Fatal(err)
		}
		if mk.Label != val.Labels[mk.Image] || mk.Predicted == mk.Label || math.Abs(float64(probs[mk.Predicted]-mk.Probability)) > 1e-5 || probs[mk.Predicted] < probs[mk.Label] {
			t.Errorf("mistake %+v: alone, the image's probabilities are %v", mk, probs)
		}
	}
	t.Logf("%d of %d validation images predicted wrong", len(ev.Mistakes), ev.N)
	return ev
}

// exported is the inference model of net (arch) with weights w and the
// classes' names, closed with the test.
func exported(t *testing.T, net *genotype.Net, arch string, w [][]float32, classes []string) *Model {
	t.Helper()
	model, err := onnxgen.Inference(net, w, onnxgen.Metadata{Arch: arch, Input: net.Input, Classes: classes})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewModel(model, SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// stepOnce runs one training step of tr on a batch of n images whose pixels
// cycle through period levels, and checks that the loss is a positive
// number.
func stepOnce(t *testing.T, tr *trainer, n int64, period int) {
	t.Helper()
	b, err := tr.batchTensors(n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b[0].Data() {
		b[0].Data()[i] = float32(i%period) / float32(period)
	}
	ms, err := tr.maskTensors(n)
	if err != nil {
		t.Fatal(err)
	}
	tr.drawMasks(ms)
	tr.step.Data()[0]++
	tr.lr.Data()[0] = 1e-3
	if err := tr.trainStep(b, ms); err != nil {
		t.Fatalf("batch of %d: %v", n, err)
	}
	if l := tr.loss.Data()[0]; math.IsNaN(float64(l)) || l <= 0 {
		t.Errorf("batch of %d: loss %g", n, l)
	}
}

// The accuracy monitor orders equal accuracies by loss, and Best finds the
// kept epoch's record in the last attempt.
func TestMonitorTiesAndBest(t *testing.T) {
	best := EpochRecord{ValAccuracy: 1, ValLoss: 0.02}
	for _, c := range []struct {
		e    EpochRecord
		want bool
	}{
		{EpochRecord{ValAccuracy: 1, ValLoss: 0.01}, true},
		{EpochRecord{ValAccuracy: 1, ValLoss: 0.03}, false},
		{EpochRecord{ValAccuracy: 1, ValLoss: 0.02}, false},
		{EpochRecord{ValAccuracy: 0.99, ValLoss: 0.001}, false},
	} {
		if got := MonitorValAccuracy.better(c.e, best); got != c.want {
			t.Errorf("accuracy monitor: %+v better than %+v = %v, want %v", c.e, best, got, c.want)
		}
	}
	if MonitorValLoss.better(EpochRecord{ValAccuracy: 0.5, ValLoss: 0.01}, best) != true {
		t.Error("loss monitor: a lower loss at a lower accuracy is better")
	}
	r := Result{BestEpoch: 2, Restarts: 1, Epochs: []EpochRecord{
		{Attempt: 0, Epoch: 1}, {Attempt: 0, Epoch: 2, ValLoss: 9},
		{Attempt: 1, Epoch: 1}, {Attempt: 1, Epoch: 2, ValLoss: 0.5}, {Attempt: 1, Epoch: 3}}}
	if e, ok := r.Best(); !ok || e.ValLoss != 0.5 {
		t.Errorf("Best() = %+v, %v; want attempt 1 epoch 2", e, ok)
	}
	if _, ok := (&Result{}).Best(); ok {
		t.Error("Best() of a result without epochs reports one")
	}
}

// The validation loss of a set is the mean over its images however they
// are batched: 40 images in batches of 16 (16, 16 and a last batch of 8)
// give the loss and accuracy of one batch of 40, for the same weights.
func TestEvaluateLastBatchWeight(t *testing.T) {
	initRuntime(t)
	net, err := genotype.MustParse("C(4,3,1) - P(2,2) - FC(8) - SM()").Build(genotype.Input{Height: 8, Width: 8, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	val := halves(40, false, 2)
	w := onnxgen.Init(onnxgen.Params(net), rand.New(rand.NewPCG(3, 4)))
	var loss, acc [2]float64
	for i, batch := range []int{16, 40} {
		tr, err := newTrainer(net, TrainConfig{BatchSize: batch, Threads: 1}.WithDefaults())
		if err != nil {
			t.Fatal(err)
		}
		tr.setWeights(w)
		loss[i], acc[i], err = tr.evaluate(context.Background(), val, tr.params[tr.cur])
		tr.close()
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("batches of 16: loss %.6f, accuracy %.3f; one batch of 40: %.6f, %.3f", loss[0], acc[0], loss[1], acc[1])
	if math.Abs(loss[0]-loss[1]) > 1e-6 || acc[0] != acc[1] {
		t.Errorf("batches of 16: loss %v, accuracy %v; one batch of 40: %v, %v", loss[0], acc[0], loss[1], acc[1])
	}
}

// The decay multiplies the rate after every DecayEvery-th epoch: with a
// period of 2 and a factor of 0.5, five epochs train at lr, lr, lr/2,
// lr/2 and lr/4.
func TestDecayPeriod(t *testing.T) {
	initRuntime(t)
	net, err := genotype.MustParse("C(4,3,1) - P(2,2) - FC(8) - SM()").Build(genotype.Input{Height: 8, Width: 8, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := TrainConfig{Epochs: 5, BatchSize: 16, LR: 1e-2, Schedule: LRSchedule{MaxRestarts: -1, DecayEvery: 2, DecayFactor: 0.5},
		Patience: -1, Seed: 1, Threads: 1}
	res, err := Train(context.Background(), net, halves(32, false, 1), halves(32, false, 2), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3}
	var got []float64
	for _, e := range res.Epochs {
		got = append(got, e.LR)
	}
	if len(got) != len(want) {
		t.Fatalf("%d epochs (%s), want 5", len(got), res.Reason)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Errorf("rates per epoch %v, want %v", got, want)
			break
		}
	}
}
