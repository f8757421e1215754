package runtime

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// The scores and the chance levels, counted by hand.
func TestMetricScoreAndChance(t *testing.T) {
	right, images := []int{45, 1, 0}, []int{50, 10, 0} // the third class has no image
	if got, want := MetricAccuracy.Score(right, images), 46.0/60; math.Abs(got-want) > 1e-12 {
		t.Errorf("accuracy %v, want %v", got, want)
	}
	if got, want := MetricBalanced.Score(right, images), (0.9+0.1)/2; math.Abs(got-want) > 1e-12 {
		t.Errorf("balanced accuracy %v, want %v", got, want)
	}
	if got := MetricBalanced.Score([]int{0, 0}, []int{0, 0}); got != 0 {
		t.Errorf("no images: %v, want 0", got)
	}
	ex := Examples{Labels: []int{0, 0, 0, 0, 0, 1}, Indices: []int{0, 1, 2, 3, 4, 5}}
	if got, want := MetricAccuracy.Chance(ex, 3), 5.0/6; math.Abs(got-want) > 1e-12 {
		t.Errorf("accuracy's chance %v, want %v", got, want)
	}
	if got := MetricBalanced.Chance(ex, 3); got != 0.5 {
		t.Errorf("balanced accuracy's chance %v, want 0.5 (two classes present)", got)
	}
	for _, name := range []string{"accuracy", "balanced_accuracy"} {
		if m, err := ParseMetric(name); err != nil || m.String() != name {
			t.Errorf("ParseMetric(%q) = %v, %v", name, m, err)
		}
	}
	if _, err := ParseMetric("f1"); err == nil || err.Error() != `unknown metric "f1" (valid: accuracy, balanced_accuracy)` {
		t.Errorf("ParseMetric(f1): %v", err)
	}
}

// bars is n 8x8 images of classes classes in shares of about 4 to 2 to 1
// (4 to 1 of two): a faint vertical bar in the class's columns over noise.
func bars(n, classes int, seed uint64) Examples {
	r := rand.New(rand.NewPCG(seed, 2))
	ex := Examples{Pixels: make([]float32, n*64), Labels: make([]int, n), Indices: seq(0, n)}
	for i := range n {
		img := ex.Pixels[i*64 : (i+1)*64]
		for j := range img {
			img[j] = 0.6 * r.Float32()
		}
		switch x := r.IntN(7); {
		case classes == 2 && x >= 5, classes == 3 && x == 6:
			ex.Labels[i] = classes - 1
		case classes == 3 && x >= 4:
			ex.Labels[i] = 1
		}
		at := 2*ex.Labels[i] + r.IntN(2)
		for k := range 8 {
			img[k*8+at] += 0.3
		}
	}
	return ex
}

// A training under the balanced metric reports, at its best epoch, the
// mean recall that the exported model's confusion matrix gives on the
// validation images, for two classes (one sigmoid unit) and three, of
// unequal sizes so that the balanced score differs from accuracy.
func TestTrainBalancedMetric(t *testing.T) {
	initRuntime(t)
	for _, classes := range []int{2, 3} {
		t.Run(fmt.Sprint(classes), func(t *testing.T) {
			const arch = "C(8,3,1) - P(2,2) - FC(16) - SM()"
			net, err := genotype.MustParse(arch).Build(genotype.Input{Height: 8, Width: 8, Channels: 1}, classes)
			if err != nil {
				t.Fatal(err)
			}
			all := bars(700, classes, uint64(classes))
			train, val := all, all
			train.Indices, val.Indices = all.Indices[:400], all.Indices[400:]
			res, err := Train(context.Background(), net, train, val, TrainConfig{Epochs: 3, BatchSize: 16, LR: 3e-3, Schedule: LRSchedule{Constant: true},
				Seed: 1, Threads: 1, Metric: MetricBalanced})
			if err != nil || res.Status != StatusOK {
				t.Fatalf("%v, %+v", err, res)
			}
			names := []string{"a", "b", "c"}[:classes]
			model, err := onnxgen.Inference(net, res.Weights, onnxgen.Metadata{Arch: arch, Input: net.Input, Classes: names})
			if err != nil {
				t.Fatal(err)
			}
			m, err := NewModel(model, SessionOptions{IntraOpThreads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ev, err := m.Evaluate(context.Background(), val, 64)
			if err != nil {
				t.Fatal(err)
			}
			var recall float64
			for c, row := range ev.Confusion {
				n := 0
				for _, x := range row {
					n += x
				}
				recall += float64(row[c]) / float64(n)
			}
			recall /= float64(classes)
			t.Logf("balanced %.4f (epoch %d), from the confusion %v: %.4f; accuracy %.4f", res.ValAccuracy, res.BestEpoch, ev.Confusion, recall, ev.Accuracy)
			if math.Abs(recall-res.ValAccuracy) > 1e-9 {
				t.Errorf("training reported %.6f, the exported model's mean recall is %.6f", res.ValAccuracy, recall)
			}
			if math.Abs(recall-ev.Accuracy) < 1e-3 || recall <= 1/float64(classes)+0.05 {
				t.Errorf("balanced accuracy %.4f, accuracy %.4f: a network at chance, or no imbalance, cannot tell the two apart", recall, ev.Accuracy)
			}
		})
	}
}
