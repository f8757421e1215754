package runtime

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

func TestAverageDecay(t *testing.T) {
	for _, tc := range []struct {
		epochs float64
		steps  int
		want   float32
	}{
		{2, 1, 0.5},
		{2, 18, 1 - 1.0/36},
		{0.5, 1, 0}, // a time constant under one step keeps the weights themselves
	} {
		if got := averageDecay(tc.epochs, tc.steps); math.Abs(float64(got-tc.want)) > 1e-7 {
			t.Errorf("averageDecay(%g, %d) = %g, want %g", tc.epochs, tc.steps, got, tc.want)
		}
	}
}

// With one training step per epoch, an average over 2 epochs (a decay of
// 0.5) keeps the mean of the starting weights and the weights after the
// step. The weights after the step come from the same training without the
// average, which must follow the same path: averaging changes what is
// validated and kept, not what is trained. Two epochs check the second
// step too: 0.25 w0 + 0.25 w1 + 0.5 w2. An average over 4 epochs (d =
// 0.75) tells the decay from its complement: 0.75 w0 + 0.25 w1, then
// 0.5625 w0 + 0.1875 w1 + 0.25 w2.
func TestAverageKeepsTheMean(t *testing.T) {
	initRuntime(t)
	net, err := genotype.MustParse("C(4,3,1) - P(2,2) - FC(8) - SM()").Build(genotype.Input{Height: 8, Width: 8, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	train, val := halves(16, false, 1), halves(32, false, 2)
	w0 := onnxgen.Init(onnxgen.Params(net), rand.New(rand.NewPCG(3, 4)))
	run := func(epochs int, average float64) *Result {
		t.Helper()
		cfg := TrainConfig{Epochs: epochs, BatchSize: 16, LR: 1e-2, Schedule: LRSchedule{Constant: true}, Patience: -1,
			Monitor: MonitorValLoss, Seed: 1, Threads: 1, Init: w0, Average: average}
		res, err := Train(context.Background(), net, train, val, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != StatusOK || len(res.Epochs) != epochs {
			t.Fatalf("average %g: status %v after %d epochs (%s)", average, res.Status, len(res.Epochs), res.Reason)
		}
		return res
	}
	w1, plain := run(1, 0).Weights, run(2, 0)
	w2 := plain.Weights // the best epoch's: the second, checked below
	if plain.BestEpoch != 2 {
		t.Fatalf("without the average the best epoch is %d: the test needs the second", plain.BestEpoch)
	}
	for _, c := range []struct{ average, d float64 }{{2, 0.5}, {4, 0.75}} {
		for _, epochs := range []int{1, 2} {
			avg := run(epochs, c.average)
			for e, rec := range avg.Epochs {
				if rec.TrainLoss != plain.Epochs[e].TrainLoss {
					t.Errorf("average %g, %d epochs: epoch %d's training loss %v with the average, %v without", c.average, epochs, e+1, rec.TrainLoss, plain.Epochs[e].TrainLoss)
				}
			}
			d := c.d
			var moved, worst float64
			for i := range w0 {
				for j := range w0[i] {
					want := d*float64(w0[i][j]) + (1-d)*float64(w1[i][j])
					if avg.BestEpoch == 2 {
						want = d*d*float64(w0[i][j]) + d*(1-d)*float64(w1[i][j]) + (1-d)*float64(w2[i][j])
					}
					worst = max(worst, math.Abs(float64(avg.Weights[i][j])-want))
					moved = max(moved, math.Abs(float64(w1[i][j]-w0[i][j])))
				}
			}
			t.Logf("average %g, %d epochs (best %d): largest step %.3g, largest difference from the mean %.3g", c.average, epochs, avg.BestEpoch, moved, worst)
			if moved < 1e-3 {
				t.Fatalf("the step moved no weight by 1e-3 (%g): the test cannot tell the mean from either end", moved)
			}
			if worst > 1e-6 {
				t.Errorf("average %g, %d epochs: kept weights differ from the mean by up to %g", c.average, epochs, worst)
			}
		}
	}
}

// The schedule's decisions read the weights being trained, not their
// average: with an average of 1,000 epochs, which after one epoch is still
// close to the starting weights (below chance), a network whose weights
// learn in their first epoch is not restarted. Reading the average, it was
// restarted 5 times.
func TestAverageLeavesRestartsToTheWeights(t *testing.T) {
	initRuntime(t)
	net, err := genotype.MustParse("C(4,3,1) - P(2,2) - FC(8) - SM()").Build(genotype.Input{Height: 8, Width: 8, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	train, val := halves(1024, false, 1), halves(200, false, 2)
	for _, average := range []float64{0, 1000} {
		cfg := TrainConfig{Epochs: 2, BatchSize: 16, LR: 1e-2, Patience: -1, Seed: 1, Threads: 1, Average: average}
		res, err := Train(context.Background(), net, train, val, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("average %g: %d restarts, kept val %.3f", average, res.Restarts, res.ValAccuracy)
		if res.Restarts != 0 {
			t.Errorf("average %g: %d restarts, want none (the weights learn in the first epoch)", average, res.Restarts)
		}
	}
}
