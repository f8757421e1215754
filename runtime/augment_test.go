package runtime

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/genotype"
)

func TestParseAugment(t *testing.T) {
	for _, a := range []Augment{AugmentNone, AugmentMirror, AugmentFlips} {
		got, err := ParseAugment(a.String())
		if err != nil || got != a {
			t.Errorf("ParseAugment(%q) = %v, %v", a.String(), got, err)
		}
	}
	if a, err := ParseAugment(""); err != nil || a != AugmentNone {
		t.Errorf(`ParseAugment("") = %v, %v; want none`, a, err)
	}
	if _, err := ParseAugment("rotate"); err == nil || !strings.Contains(err.Error(), "none, mirror, flips") {
		t.Errorf("ParseAugment(rotate): %v, want an error listing the valid names", err)
	}
}

// Every image of a batch comes out as itself or as one of the flips its
// Augment allows, each seen in a batch of 64, checked pixel by pixel against
// the flips written as coordinate maps. The images have 2 channels of 3 rows
// (a middle row that stays) and 4 columns, all values distinct.
func TestAugmentApply(t *testing.T) {
	const n, channels, h, w = 64, 2, 3, 4
	size := channels * h * w
	orig := make([]float32, n*size)
	for i := range orig {
		orig[i] = float32(i)
	}
	// flipped returns image i with its columns and/or rows reversed.
	flipped := func(i int, cols, rows bool) []float32 {
		out := make([]float32, size)
		for c := range channels {
			for y := range h {
				for x := range w {
					sy, sx := y, x
					if rows {
						sy = h - 1 - y
					}
					if cols {
						sx = w - 1 - x
					}
					out[(c*h+y)*w+x] = orig[i*size+(c*h+sy)*w+sx]
				}
			}
		}
		return out
	}
	kinds := []string{"as is", "mirrored", "upside down", "both"}
	for _, tc := range []struct {
		aug     Augment
		allowed []bool // by kinds
	}{
		{AugmentNone, []bool{true, false, false, false}},
		{AugmentMirror, []bool{true, true, false, false}},
		{AugmentFlips, []bool{true, true, true, true}},
	} {
		x := slices.Clone(orig)
		tc.aug.apply(x, n, channels, h, w, rand.New(rand.NewPCG(5, 6)))
		seen := make([]int, len(kinds))
		for i := range n {
			got := x[i*size : (i+1)*size]
			k := -1 // the kind of got: bit 0 mirrored, bit 1 upside down
			for j := range kinds {
				if slices.Equal(got, flipped(i, j&1 == 1, j&2 == 2)) {
					k = j
					break
				}
			}
			if k < 0 || !tc.allowed[k] {
				t.Fatalf("%s: image %d came out as %v (kind %d)", tc.aug, i, got, k)
			}
			seen[k]++
		}
		for k, ok := range tc.allowed {
			if ok && seen[k] == 0 {
				t.Errorf("%s: no image of %d came out %s (%v)", tc.aug, n, kinds[k], seen)
			}
		}
		t.Logf("%s: %v", tc.aug, seen)
	}
}

// halves makes n images of 8x8 with faint noise and one bright bar: in the
// left or right half (the label) with vertical false, in the top or bottom
// half with vertical true.
func halves(n int, vertical bool, seed uint64) Examples {
	r := rand.New(rand.NewPCG(seed, 1))
	ex := Examples{Pixels: make([]float32, n*64), Labels: make([]int, n), Indices: seq(0, n)}
	for i := range n {
		img := ex.Pixels[i*64 : (i+1)*64]
		for j := range img {
			img[j] = 0.2 * r.Float32()
		}
		ex.Labels[i] = r.IntN(2)
		at := 4*ex.Labels[i] + r.IntN(4) // a column (or row) in the label's half
		for k := range 8 {
			if vertical {
				img[at*8+k] = 1
			} else {
				img[k*8+at] = 1
			}
		}
	}
	return ex
}

// A flip that turns an image into one of the other class makes the task
// unlearnable, and only then: left-right bars are learnt as they are and
// not when mirrored; top-bottom bars are learnt as they are and mirrored,
// and not with both flips. So the flips reach the training images, with
// their labels left as they were, and not the validation images (else a
// learnt task would score at chance). The network reaches 1.0 where it
// can learn; floor and ceiling below leave a wide margin.
func TestTrainAugmentFlipsImages(t *testing.T) {
	initRuntime(t)
	net, err := genotype.MustParse("C(4,3,1) - P(2,2) - FC(8) - SM()").Build(genotype.Input{Height: 8, Width: 8, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		vertical  bool
		aug       Augment
		learnable bool
	}{
		{false, AugmentNone, true},
		{false, AugmentMirror, false},
		{true, AugmentMirror, true},
		{true, AugmentFlips, false},
	} {
		train, val := halves(256, tc.vertical, 1), halves(200, tc.vertical, 2)
		cfg := TrainConfig{Epochs: 10, BatchSize: 16, LR: 3e-3, Schedule: LRSchedule{Constant: true}, Patience: -1, Seed: 1, Threads: 2, Augment: tc.aug}
		res, err := Train(context.Background(), net, train, val, cfg)
		if err != nil {
			t.Fatal(err)
		}
		last := res.Epochs[len(res.Epochs)-1]
		t.Logf("vertical %v, %s: best val %.3f, last epoch train %.3f val %.3f", tc.vertical, tc.aug, res.ValAccuracy, last.TrainAccuracy, last.ValAccuracy)
		if tc.learnable && res.ValAccuracy < 0.95 {
			t.Errorf("vertical %v, %s: val accuracy %.3f, want at least 0.95", tc.vertical, tc.aug, res.ValAccuracy)
		}
		if !tc.learnable && (last.TrainAccuracy > 0.7 || last.ValAccuracy > 0.75) {
			t.Errorf("vertical %v, %s: learnt a task its flips make unlearnable (train %.3f, val %.3f)", tc.vertical, tc.aug, last.TrainAccuracy, last.ValAccuracy)
		}
	}
}

// BenchmarkAugment flips a batch as BenchmarkTrainStep's (128 images of
// 64x64x1) both ways at random: run the two side by side to compare a
// step's flips with the step.
func BenchmarkAugment(b *testing.B) {
	x := make([]float32, 128*64*64)
	r := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		AugmentFlips.apply(x, 128, 1, 64, 64, r)
	}
}
