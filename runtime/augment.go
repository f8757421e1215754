package runtime

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Augment is how a training step varies its images: each image of a batch is
// flipped or not at random, moved by a few pixels, made brighter or darker
// and given more or less contrast, afresh at every step, so that a network
// does not learn which way round, where in the frame, or in what light the
// objects of a small dataset happen to lie. The labels stay as they
// are; evaluation and testing see the images unchanged. Choose a flip only
// where a flipped image still belongs to its class (a leaf is a leaf either
// way round; a digit is not), and a shift only where the object stays in
// the frame.
type Augment struct {
	Flip Flip
	// Shift moves each image by a whole number of pixels drawn from
	// -Shift to Shift, along each axis independently; the pixels moved in
	// repeat the nearest edge, so no border of a colour the images never
	// have appears. Zero: no shift.
	Shift int
	// Brightness adds to every pixel of an image one offset drawn from
	// -Brightness to Brightness (pixels run from 0 to 1), and Contrast
	// scales an image's pixels about its mean by a factor drawn from
	// 1-Contrast to 1+Contrast: a camera's exposure and contrast vary from
	// frame to frame. The results are clipped to [0, 1], as a sensor
	// saturates. Zero: neither.
	Brightness, Contrast float64
}

// Flip is the flipping of an Augment.
type Flip uint8

// The flips.
const (
	FlipNone   Flip = iota // the images as they are
	FlipMirror             // left and right swapped, half the time
	FlipBoth               // left-right and top-bottom, each half the time, independently
)

// The augmentations that flip only.
var (
	AugmentNone   = Augment{}
	AugmentMirror = Augment{Flip: FlipMirror}
	AugmentFlips  = Augment{Flip: FlipBoth}
)

// maxShift bounds Augment.Shift: a larger move hides most of an image of
// the sizes searched here.
const maxShift = 16

// valueChange is an augmentation of an image's values, by its name in
// String and ParseAugment: the field it sets, and what it does.
type valueChange struct {
	name    string
	field   func(*Augment) *float64
	words   string // with the setting
	example string // what 0.2 does
}

// photometric are the value changes, in the order they apply and draw.
var photometric = []valueChange{
	{"brightness", func(a *Augment) *float64 { return &a.Brightness }, "brightened or darkened by up to %g of the pixels' range at random", "brightness:0.2 adds an offset from -0.2 to 0.2"},
	{"contrast", func(a *Augment) *float64 { return &a.Contrast }, "their contrast scaled by up to %g either way at random", "contrast:0.2 scales by 0.8 to 1.2"},
}

var (
	flipNames = []string{"none", "mirror", "flips"}
	flipWords = []string{"", "flipped left-right at random", "flipped left-right and top-bottom at random"}
)

// String returns the augmentation as ParseAugment reads it: "none",
// "mirror", "flips", "shift:2", "brightness:0.2", or several in that order,
// "flips,shift:2,brightness:0.2,contrast:0.1".
func (a Augment) String() string {
	var parts []string
	if a.Flip != FlipNone {
		parts = append(parts, nameOf(flipNames, a.Flip, "Flip"))
	}
	if a.Shift > 0 {
		parts = append(parts, fmt.Sprintf("shift:%d", a.Shift))
	}
	for _, p := range photometric {
		if v := *p.field(&a); v > 0 {
			parts = append(parts, p.name+":"+strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// Describe says what a does to the training images ("flipped left-right at
// random"); empty for none.
func (a Augment) Describe() string {
	var parts []string
	if int(a.Flip) < len(flipWords) && a.Flip != FlipNone {
		parts = append(parts, flipWords[a.Flip])
	}
	if a.Shift > 0 {
		parts = append(parts, fmt.Sprintf("shifted by up to %d pixel%s each way at random (edges repeated)", a.Shift, plural(a.Shift)))
	}
	for _, p := range photometric {
		if v := *p.field(&a); v > 0 {
			parts = append(parts, fmt.Sprintf(p.words, v))
		}
	}
	return strings.Join(parts, " and ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// MarshalText writes a as String does, so that a training's settings
// travel as their names.
func (a Augment) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (a *Augment) UnmarshalText(b []byte) (err error) {
	*a, err = ParseAugment(string(b))
	return err
}

// ParseAugment parses an augmentation: a flip (none, mirror, flips), a
// shift (shift:N, N from 1 to 16 pixels), brightness:B and contrast:C (B
// and C above 0, at most 1), or several of them separated by commas, each
// once; "" is none. Its error says what is valid.
func ParseAugment(s string) (Augment, error) {
	var a Augment
	if s == "" {
		return a, nil
	}
	var flip, shift bool
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if i := slices.IndexFunc(photometric, func(p valueChange) bool { return strings.HasPrefix(part, p.name+":") }); i >= 0 {
			p := photometric[i]
			v, err := strconv.ParseFloat(strings.TrimPrefix(part, p.name+":"), 64)
			f := p.field(&a)
			if *f > 0 || err != nil || !(v > 0 && v <= 1) {
				return Augment{}, fmt.Errorf("augmentation %q: want one %s:X with X above 0 and at most 1 (%s)", s, p.name, p.example)
			}
			*f = v
			continue
		}
		if n, ok := strings.CutPrefix(part, "shift:"); ok {
			v, err := strconv.Atoi(n)
			if shift || err != nil || v < 1 || v > maxShift {
				return Augment{}, fmt.Errorf("augmentation %q: %q: want one shift:N with N a whole number of pixels from 1 to %d", s, part, maxShift)
			}
			a.Shift, shift = v, true
			continue
		}
		i := slices.Index(flipNames, part)
		if i < 0 {
			return Augment{}, fmt.Errorf("unknown augmentation %q (valid: %s, shift:N, brightness:B, contrast:C, or several such as flips,shift:2,brightness:0.2)", s, strings.Join(flipNames, ", "))
		}
		if flip {
			return Augment{}, fmt.Errorf("augmentation %q: give one flip (%s), with the others or not", s, strings.Join(flipNames, ", "))
		}
		a.Flip, flip = Flip(i), true
	}
	return a, nil
}

// Fits says why a cannot vary images of h x w pixels, or nil: a shift must
// leave more than half of each side.
func (a Augment) Fits(h, w int) error {
	if a.Shift == 0 || 2*a.Shift < min(h, w) {
		return nil
	}
	most := (min(h, w) - 1) / 2
	if most < 1 {
		return fmt.Errorf("augmentation %s: images of %dx%d are too small to shift", a, h, w)
	}
	return fmt.Errorf("augmentation %s: a shift of %d pixel%s would move images of %dx%d by half their size or more; give at most shift:%d", a, a.Shift, plural(a.Shift), h, w, most)
}

// apply flips, shifts and changes the values of the images of x
// (batch-major, each channels x h x w, in place) as a draws from r: per
// image, one draw for FlipMirror, two for FlipBoth, then two for a shift,
// one for a brightness and one for a contrast; none for AugmentNone. Each
// augmentation draws after those that came before it, so a run without
// the later ones draws as it did before they existed.
func (a Augment) apply(x []float32, n, channels, h, w int, r *rand.Rand) {
	if a == AugmentNone {
		return
	}
	size := channels * h * w
	var scratch []float32
	if a.Shift > 0 {
		scratch = make([]float32, h*w)
	}
	for i := range n {
		img := x[i*size : (i+1)*size]
		if a.Flip != FlipNone && r.IntN(2) == 1 {
			mirror(img, channels*h, w)
		}
		if a.Flip == FlipBoth && r.IntN(2) == 1 {
			upsideDown(img, channels, h, w)
		}
		if a.Shift > 0 {
			dy, dx := r.IntN(2*a.Shift+1)-a.Shift, r.IntN(2*a.Shift+1)-a.Shift
			shift(img, channels, h, w, dy, dx, scratch)
		}
		if a.Brightness > 0 || a.Contrast > 0 {
			var offset, factor float64 = 0, 1
			if a.Brightness > 0 {
				offset = a.Brightness * (2*r.Float64() - 1)
			}
			if a.Contrast > 0 {
				factor = 1 + a.Contrast*(2*r.Float64()-1)
			}
			expose(img, factor, offset)
		}
	}
}

// expose scales img's values about their mean by factor, adds offset, and
// clips the results to [0, 1].
func expose(img []float32, factor, offset float64) {
	var sum float64
	for _, v := range img {
		sum += float64(v)
	}
	mean := sum / float64(len(img))
	for i, v := range img {
		img[i] = float32(min(max((float64(v)-mean)*factor+mean+offset, 0), 1))
	}
}

// mirror reverses each of the rows rows of width w in img.
func mirror(img []float32, rows, w int) {
	for r := range rows {
		slices.Reverse(img[r*w : (r+1)*w])
	}
}

// upsideDown reverses the order of the h rows of each channel of img.
func upsideDown(img []float32, channels, h, w int) {
	for c := range channels {
		plane := img[c*h*w : (c+1)*h*w]
		for top, bottom := 0, h-1; top < bottom; top, bottom = top+1, bottom-1 {
			a, b := plane[top*w:(top+1)*w], plane[bottom*w:(bottom+1)*w]
			for j := range a {
				a[j], b[j] = b[j], a[j]
			}
		}
	}
}

// shift moves each channel of img dy rows down and dx columns right (up
// and left when negative): pixel (y, x) takes the value at (y-dy, x-dx),
// clamped to the image, so the rows and columns moved in repeat the edge.
// scratch holds h x w values.
func shift(img []float32, channels, h, w, dy, dx int, scratch []float32) {
	if dy == 0 && dx == 0 {
		return
	}
	for c := range channels {
		plane := img[c*h*w : (c+1)*h*w]
		copy(scratch, plane)
		for y := range h {
			row := scratch[clamp(y-dy, h)*w:]
			out := plane[y*w : (y+1)*w]
			for x := range out {
				out[x] = row[clamp(x-dx, w)]
			}
		}
	}
}

// clamp is i within [0, n).
func clamp(i, n int) int { return min(max(i, 0), n-1) }
