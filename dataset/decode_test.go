package dataset

import (
	"image"
	"image/color"
	"math"
	"path/filepath"
	"testing"
)

// Load resizes with Catmull-Rom, as LoadOptions says, and not with a
// bilinear or nearest filter: a step 64, 64, 192, 192 doubled to 8 pixels.
// Output pixel x samples the source at s = (x + 0.5)/2 - 0.5. Worked by hand
// with the Catmull-Rom kernel, k(t) = 1.5|t|^3 - 2.5|t|^2 + 1 for |t| < 1 and
// -0.5|t|^3 + 2.5|t|^2 - 4|t| + 2 for 1 <= |t| < 2 (k(0.25) = 0.8671875,
// k(0.75) = 0.2265625, k(1.25) = -0.0703125, k(1.75) = -0.0234375, summing
// to 1 over the four source pixels):
//
//	x = 3, s = 1.25: 64 (k(1.25) + k(0.25)) + 192 (k(0.75) + k(1.75)) = 51 + 39 = 90
//	x = 4, s = 1.75: 64 (k(1.75) + k(0.75)) + 192 (k(0.25) + k(1.25)) = 13 + 153 = 166
//
// where bilinear gives 96 and 160. The kernel's negative lobes overshoot
// the step beside the edge: pixel 2 below 64, pixel 5 above 192, which no
// interpolation with positive weights can do.
func TestReadImageCatmullRom(t *testing.T) {
	dir := t.TempDir()
	step := image.NewGray(image.Rect(0, 0, 4, 1))
	for x, v := range []uint8{64, 64, 192, 192} {
		step.SetGray(x, 0, color.Gray{Y: v})
	}
	writeImage(t, dir, "step.png", step)
	px, err := ReadImage(filepath.Join(dir, "step.png"), 8, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	at := func(x int) float64 { return float64(px[x]) * 255 }
	if math.Abs(at(3)-90) > 1.01 || math.Abs(at(4)-166) > 1.01 {
		t.Errorf("pixels 3 and 4: %.1f and %.1f, want 90 and 166 (Catmull-Rom)", at(3), at(4))
	}
	if at(2) >= 64 || at(5) <= 192 {
		t.Errorf("pixels 2 and 5: %.1f and %.1f, want below 64 and above 192 (Catmull-Rom's overshoot)", at(2), at(5))
	}
	for x := range 8 {
		t.Logf("pixel %d: %.1f", x, at(x))
	}
}

// An image is gray only when red, green and blue are equal in every pixel:
// one whose red and green are equal but whose blue differs, (100, 100, 200)
// everywhere, is colour. Read in 3 channels it keeps its blue plane at
// 200/255 (not the red value repeated); read in 1 it is BT.601 luma,
// (19595 x 100 + 38470 x 100 + 7471 x 200) x 257 + 2^15 >> 24, worked by
// hand: (5,806,500 + 1,494,200) x 257 = 1,876,279,900, plus 32,768,
// shifted right by 24: 111 (111.84...), so 111/255.
func TestReadImageBlueMakesColour(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, dir, "c.png", uniformRGB(3, 2, color.RGBA{R: 100, G: 100, B: 200, A: 255}))
	path := filepath.Join(dir, "c.png")
	px, facts, err := ReadImageFacts(path, 0, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if facts.Gray {
		t.Errorf("facts %+v: an image with blue 200 and red 100 is not gray", facts)
	}
	const plane = 3 * 2
	for p := range plane {
		if r, g, b := px[p]*255, px[plane+p]*255, px[2*plane+p]*255; math.Abs(float64(r)-100) > 1e-3 || math.Abs(float64(g)-100) > 1e-3 || math.Abs(float64(b)-200) > 1e-3 {
			t.Fatalf("pixel %d: (%.1f, %.1f, %.1f), want (100, 100, 200)", p, r, g, b)
		}
	}
	gray, err := ReadImage(path, 0, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := gray[0] * 255; math.Abs(float64(got)-111) > 1e-3 {
		t.Errorf("luma %.2f, want 111", got)
	}
}
