package runtime

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Augment is how a training step varies its images: each image of a batch is
// flipped or not at random, afresh at every step, so that a network does not
// learn which way round the objects of a small dataset happen to lie. The
// labels stay as they are; evaluation and testing see the images unchanged.
// Choose it only where a flipped image still belongs to its class (a leaf is
// a leaf either way round; a digit is not).
type Augment uint8

// The augmentations.
const (
	AugmentNone   Augment = iota // the images as they are
	AugmentMirror                // left and right swapped, half the time
	AugmentFlips                 // left-right and top-bottom, each half the time, independently
)

var (
	augmentNames = []string{"none", "mirror", "flips"}
	augmentWords = []string{"", "flipped left-right at random", "flipped left-right and top-bottom at random"}
)

// String returns "none", "mirror" or "flips".
func (a Augment) String() string {
	if int(a) < len(augmentNames) {
		return augmentNames[a]
	}
	return fmt.Sprintf("Augment(%d)", a)
}

// Describe says what a does to the training images ("flipped left-right at
// random"); empty for none.
func (a Augment) Describe() string {
	if int(a) < len(augmentWords) {
		return augmentWords[a]
	}
	return a.String()
}

// ParseAugment parses an augmentation's name ("" is none); its error lists
// the valid ones.
func ParseAugment(s string) (Augment, error) {
	if s == "" {
		return AugmentNone, nil
	}
	if i := slices.Index(augmentNames, s); i >= 0 {
		return Augment(i), nil
	}
	return 0, fmt.Errorf("unknown augmentation %q (valid: %s)", s, strings.Join(augmentNames, ", "))
}

// apply flips the images of x (batch-major, each channels x h x w, in place)
// as a draws from r: one draw per image for AugmentMirror, two for
// AugmentFlips, none otherwise.
func (a Augment) apply(x []float32, n, channels, h, w int, r *rand.Rand) {
	if a == AugmentNone {
		return
	}
	size := channels * h * w
	for i := range n {
		img := x[i*size : (i+1)*size]
		if r.IntN(2) == 1 {
			mirror(img, channels*h, w)
		}
		if a == AugmentFlips && r.IntN(2) == 1 {
			upsideDown(img, channels, h, w)
		}
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
