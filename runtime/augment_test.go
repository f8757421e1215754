package runtime

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/genotype"
)

func TestParseAugment(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Augment
		name string // String's
	}{
		{"", AugmentNone, "none"},
		{"none", AugmentNone, "none"},
		{"mirror", AugmentMirror, "mirror"},
		{"flips", AugmentFlips, "flips"},
		{"shift:2", Augment{Shift: 2}, "shift:2"},
		{"shift:2, flips", Augment{Flip: FlipBoth, Shift: 2}, "flips,shift:2"},
		{"mirror,shift:16", Augment{Flip: FlipMirror, Shift: 16}, "mirror,shift:16"},
		{"none,shift:1", Augment{Shift: 1}, "shift:1"},
		{"brightness:0.2", Augment{Brightness: 0.2}, "brightness:0.2"},
		{"contrast:0.3, flips,brightness:1,shift:2", Augment{Flip: FlipBoth, Shift: 2, Brightness: 1, Contrast: 0.3}, "flips,shift:2,brightness:1,contrast:0.3"},
	} {
		got, err := ParseAugment(tc.in)
		if err != nil || got != tc.want || got.String() != tc.name {
			t.Errorf("ParseAugment(%q) = %v (%q), %v; want %v (%q)", tc.in, got, got.String(), err, tc.want, tc.name)
		}
		// The name travels (JSON, a worker's job) and reads back the same.
		b, err := got.MarshalText()
		var back Augment
		if err != nil || back.UnmarshalText(b) != nil || back != got {
			t.Errorf("%q: text %q read back as %v", tc.in, b, back)
		}
	}
	for in, want := range map[string]string{
		"rotate":                        "valid: none, mirror, flips, shift:N",
		"mirror,flips":                  "give one flip (none, mirror, flips), with the others or not",
		"shift:0":                       "want one shift:N with N a whole number of pixels from 1 to 16",
		"shift:17":                      "from 1 to 16",
		"shift:x":                       "from 1 to 16",
		"shift:1,shift:2":               "want one shift:N",
		"brightness:0":                  "want one brightness:X with X above 0 and at most 1",
		"brightness:1.5":                "want one brightness:X",
		"contrast:-0.1":                 "want one contrast:X with X above 0 and at most 1 (contrast:0.2 scales by 0.8 to 1.2)",
		"contrast:x":                    "want one contrast:X",
		"contrast:NaN":                  "want one contrast:X",
		"brightness:0.1,brightness:0.2": "want one brightness:X",
		"gamma:0.1":                     "valid: none, mirror, flips, shift:N, brightness:B, contrast:C",
	} {
		if _, err := ParseAugment(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseAugment(%q): %v, want an error saying %q", in, err, want)
		}
	}
	if d := (Augment{Flip: FlipBoth, Shift: 2}).Describe(); d != "flipped left-right and top-bottom at random and shifted by up to 2 pixels each way at random (edges repeated)" {
		t.Errorf("describe: %q", d)
	}
	if d := (Augment{Brightness: 0.2, Contrast: 0.1}).Describe(); d != "brightened or darkened by up to 0.2 of the pixels' range at random and their contrast scaled by up to 0.1 either way at random" {
		t.Errorf("describe: %q", d)
	}
	// A shift must leave more than half of each side.
	if err := (Augment{Shift: 4}).Fits(9, 12); err != nil {
		t.Errorf("shift:4 on 9x12: %v", err)
	}
	if err := (Augment{Shift: 5}).Fits(9, 12); err == nil || !strings.Contains(err.Error(), "give at most shift:4") {
		t.Errorf("shift:5 on 9x12: %v, want at most shift:4", err)
	}
	if err := (Augment{Shift: 1}).Fits(2, 8); err == nil || err.Error() != "augmentation shift:1: images of 2x8 are too small to shift" {
		t.Errorf("shift:1 on 2x8: %v", err)
	}
	if err := AugmentFlips.Fits(0, 0); err != nil {
		t.Errorf("flips on a size not known: %v", err)
	}
}

// A shift moves each channel by whole pixels and repeats the edge into
// what it uncovers, worked by hand on a 3x4 image of two channels.
func TestShift(t *testing.T) {
	img := []float32{
		0, 1, 2, 3,
		4, 5, 6, 7,
		8, 9, 10, 11,
		// second channel
		20, 21, 22, 23,
		24, 25, 26, 27,
		28, 29, 30, 31,
	}
	shift(img, 2, 3, 4, 1, -2, make([]float32, 12)) // one row down, two columns left
	want := []float32{
		2, 3, 3, 3,
		2, 3, 3, 3,
		6, 7, 7, 7,
		22, 23, 23, 23,
		22, 23, 23, 23,
		26, 27, 27, 27,
	}
	if !slices.Equal(img, want) {
		t.Errorf("shifted by (1, -2):\n%v\nwant\n%v", img, want)
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
	flipped := func(i int, cols, rows bool) []float32 { return transformed(orig, i, channels, h, w, cols, rows, 0, 0) }
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

// With a shift, every image comes out as an allowed flip of itself moved
// by an offset within the shift, and every offset is drawn. The flips draw
// first, one or two draws per image as before shifts existed, so a run
// that only flips trains on the images it trained on before.
func TestAugmentApplyShift(t *testing.T) {
	const n, channels, h, w, s = 600, 2, 3, 4, 1
	size := channels * h * w
	orig := make([]float32, n*size)
	for i := range orig {
		orig[i] = float32(i)
	}
	moved := func(i int, cols, rows bool, dy, dx int) []float32 {
		return transformed(orig, i, channels, h, w, cols, rows, dy, dx)
	}
	x := slices.Clone(orig)
	aug := Augment{Flip: FlipBoth, Shift: s}
	aug.apply(x, n, channels, h, w, rand.New(rand.NewPCG(7, 8)))
	seen := map[[3]int]int{} // kind, dy, dx
	for i := range n {
		got, found := x[i*size:(i+1)*size], false
		for k := 0; k < 4 && !found; k++ {
			for dy := -s; dy <= s && !found; dy++ {
				for dx := -s; dx <= s && !found; dx++ {
					if slices.Equal(got, moved(i, k&1 == 1, k&2 == 2, dy, dx)) {
						seen[[3]int{k, dy, dx}]++
						found = true
					}
				}
			}
		}
		if !found {
			t.Fatalf("image %d came out as %v: no flip and shift of at most %d gives it", i, got, s)
		}
	}
	if len(seen) != 4*(2*s+1)*(2*s+1) {
		t.Errorf("%d of the %d flips and offsets seen in %d images: %v", len(seen), 4*(2*s+1)*(2*s+1), n, seen)
	}
	// The draws per image, in order: left-right, top-bottom (flips only),
	// then the rows' and the columns' offsets. Flips alone draw as they
	// did before shifts existed.
	for _, aug := range []Augment{AugmentFlips, AugmentMirror, {Shift: 1}, {Flip: FlipMirror, Shift: 1}, aug} {
		x = slices.Clone(orig)
		aug.apply(x, n, channels, h, w, rand.New(rand.NewPCG(7, 8)))
		r := rand.New(rand.NewPCG(7, 8))
		for i := range n {
			d := drawsOf(aug, r)
			if !slices.Equal(x[i*size:(i+1)*size], moved(i, d.cols, d.rows, d.dy, d.dx)) {
				t.Fatalf("%s: image %d is not as the draws say (%+v)", aug, i, d)
			}
		}
	}
}

// A change of exposure, worked by hand: the values scaled about their mean
// (0.5), moved, and clipped to [0, 1].
func TestExpose(t *testing.T) {
	img := []float32{0.2, 0.4, 0.6, 0.8}
	expose(img, 1.5, 0.1) // (v - 0.5) * 1.5 + 0.5 + 0.1
	want := []float32{0.15, 0.45, 0.75, 1}
	for i := range img {
		if d := img[i] - want[i]; d > 1e-6 || d < -1e-6 {
			t.Fatalf("exposed %v, want %v", img, want)
		}
	}
	img = []float32{0.1, 0.3}
	expose(img, 0.5, -0.2) // mean 0.2: 0.15 - 0.2 and 0.25 - 0.2
	if img[0] != 0 || img[1] < 0.0499 || img[1] > 0.0501 {
		t.Errorf("darkened %v, want [0 0.05]", img)
	}
}

// Brightness and contrast draw after the flips and the shift, one draw
// each per image, in that order: every image is as its draws say, and the
// draws span their ranges.
func TestAugmentApplyValues(t *testing.T) {
	const n, channels, h, w = 600, 2, 3, 4
	size := channels * h * w
	orig := make([]float32, n*size)
	for i := range orig {
		orig[i] = 0.25 + 0.5*float32(i)/float32(len(orig)) // none clipped by a change of up to a quarter
	}
	for _, aug := range []Augment{{Brightness: 0.2}, {Contrast: 0.3}, {Flip: FlipBoth, Shift: 1, Brightness: 0.2, Contrast: 0.3}} {
		x := slices.Clone(orig)
		aug.apply(x, n, channels, h, w, rand.New(rand.NewPCG(9, 10)))
		r := rand.New(rand.NewPCG(9, 10))
		lo, hi := [2]float64{1, 2}, [2]float64{-1, 0} // offset, factor
		for i := range n {
			d := drawsOf(aug, r)
			lo, hi = [2]float64{min(lo[0], d.offset), min(lo[1], d.factor)}, [2]float64{max(hi[0], d.offset), max(hi[1], d.factor)}
			want := transformed(orig, i, channels, h, w, d.cols, d.rows, d.dy, d.dx)
			var mean float64
			for _, v := range want {
				mean += float64(v) / float64(size)
			}
			got := x[i*size : (i+1)*size]
			for j, v := range want {
				if e := (float64(v)-mean)*d.factor + mean + d.offset; math.Abs(float64(got[j])-e) > 1e-6 {
					t.Fatalf("%s: image %d pixel %d is %v, want %v (%+v)", aug, i, j, got[j], e, d)
				}
			}
		}
		if aug.Brightness > 0 && (lo[0] > -0.9*aug.Brightness || hi[0] < 0.9*aug.Brightness) {
			t.Errorf("%s: offsets drawn from %.3f to %.3f", aug, lo[0], hi[0])
		}
		if aug.Contrast > 0 && (lo[1] > 1-0.9*aug.Contrast || hi[1] < 1+0.9*aug.Contrast) {
			t.Errorf("%s: factors drawn from %.3f to %.3f", aug, lo[1], hi[1])
		}
	}
}

// draws are what Augment.apply draws for one image.
type draws struct {
	cols, rows     bool // mirrored, upside down
	dy, dx         int
	offset, factor float64
}

// drawsOf draws from r what apply draws for one image under aug, in the
// order the tests pin: left-right, top-bottom, the rows' and the columns'
// offsets, the brightness, the contrast, each only when aug has it.
func drawsOf(aug Augment, r *rand.Rand) draws {
	d := draws{factor: 1}
	d.cols = aug.Flip != FlipNone && r.IntN(2) == 1
	d.rows = aug.Flip == FlipBoth && r.IntN(2) == 1
	if aug.Shift > 0 {
		d.dy, d.dx = r.IntN(2*aug.Shift+1)-aug.Shift, r.IntN(2*aug.Shift+1)-aug.Shift
	}
	if aug.Brightness > 0 {
		d.offset = aug.Brightness * (2*r.Float64() - 1)
	}
	if aug.Contrast > 0 {
		d.factor = 1 + aug.Contrast*(2*r.Float64()-1)
	}
	return d
}

// transformed returns image i of orig (images of channels x h x w, one
// after the other) with its columns and/or rows reversed, then moved dy
// rows down and dx columns right, the edge repeated: the augmentations
// written as coordinate maps.
func transformed(orig []float32, i, channels, h, w int, cols, rows bool, dy, dx int) []float32 {
	size := channels * h * w
	out := make([]float32, size)
	for c := range channels {
		for y := range h {
			for x := range w {
				sy, sx := min(max(y-dy, 0), h-1), min(max(x-dx, 0), w-1)
				if rows {
					sy = h - 1 - sy
				}
				if cols {
					sx = w - 1 - sx
				}
				out[(c*h+y)*w+x] = orig[i*size+(c*h+sy)*w+sx]
			}
		}
	}
	return out
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
