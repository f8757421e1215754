package dataset

import (
	"image"
	"math"
	"testing"
)

// painted counts the pixels of img equal to v and returns their bounding box.
func painted(img *image.Gray, v uint8) (int, image.Rectangle) {
	n := 0
	var box image.Rectangle
	for y := range img.Bounds().Dy() {
		for x := range img.Bounds().Dx() {
			if img.GrayAt(x, y).Y == v {
				n++
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return n, box
}

func TestFillDisc(t *testing.T) {
	// Counts of integer points with x^2 + y^2 <= r^2 (Gauss circle problem,
	// OEIS A000328): 1, 5, 13, 29, 49, 81.
	for r, want := range []int{1, 5, 13, 29, 49, 81} {
		img := image.NewGray(image.Rect(0, 0, 20, 20))
		fillDisc(img, 10, 10, r, 1)
		n, box := painted(img, 1)
		if n != want || box != image.Rect(10-r, 10-r, 11+r, 11+r) {
			t.Errorf("r=%d: %d pixels in %v, want %d in a %d-pixel square", r, n, box, want, 2*r+1)
		}
	}
	// Clipped at the border without panicking.
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	fillDisc(img, 0, 0, 3, 1)
	fillDisc(img, 100, 100, 3, 2)
	if n, _ := painted(img, 1); n != 11 { // the quarter of 29 with x, y >= 0
		t.Errorf("clipped disc: %d pixels, want 11", n)
	}
}

func TestFillRect(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 20, 20))
	fillRect(img, 3, 4, 6, 9, 1)
	if n, box := painted(img, 1); n != 54 || box != image.Rect(3, 4, 9, 13) {
		t.Errorf("%d pixels in %v, want 54 in (3,4)-(9,13)", n, box)
	}
	fillRect(img, 15, 15, 16, 16, 2) // clipped
	if n, _ := painted(img, 2); n != 25 {
		t.Errorf("clipped: %d pixels, want 25", n)
	}
}

func TestFillEllipse(t *testing.T) {
	// Axis-aligned leaf body of size 20: semi-axes 10 and 6 pixels, so it spans
	// 21 x 13 pixel centres and touches its four extreme points exactly.
	img := image.NewGray(image.Rect(0, 0, 40, 40))
	fillEllipse(img, 20, 20, 100, 60, 0, 1)
	n, box := painted(img, 1)
	if box != image.Rect(10, 14, 31, 27) {
		t.Errorf("box %v, want (10,14)-(31,27)", box)
	}
	// Lattice points in an ellipse approach its area pi*a*b = 188.5; for these
	// axes the boundary error stays within a few per cent.
	if area := math.Pi * 10 * 6; math.Abs(float64(n)-area) > 0.05*area {
		t.Errorf("%d pixels, want about %.1f", n, area)
	}
	// Turned by 90 degrees it is the transpose.
	rot := image.NewGray(image.Rect(0, 0, 40, 40))
	fillEllipse(rot, 20, 20, 100, 60, math.Pi/2, 1)
	for y := range 40 {
		for x := range 40 {
			if img.GrayAt(x, y) != rot.GrayAt(y, x) {
				t.Fatalf("90-degree ellipse is not the transpose at (%d,%d)", x, y)
			}
		}
	}
	// Any angle keeps the area.
	for _, theta := range []float64{0.3, 1, 2.2} {
		r := image.NewGray(image.Rect(0, 0, 40, 40))
		fillEllipse(r, 20, 20, 100, 60, theta, 1)
		if m, _ := painted(r, 1); math.Abs(float64(m-n)) > 0.05*float64(n) {
			t.Errorf("theta %.1f: %d pixels, axis-aligned %d", theta, m, n)
		}
	}
}

func TestDrawLine(t *testing.T) {
	cases := []struct {
		name   string
		p, q   point
		w      int
		pixels int
		box    image.Rectangle
	}{
		{"horizontal 1", point{2, 5}, point{12, 5}, 1, 11, image.Rect(2, 5, 13, 6)},
		{"vertical 3", point{5, 2}, point{5, 9}, 3, 24, image.Rect(4, 2, 7, 10)},
		{"horizontal 2", point{2, 5}, point{7, 5}, 2, 12, image.Rect(2, 4, 8, 6)},
		{"diagonal 1", point{0, 0}, point{9, 9}, 1, 10, image.Rect(0, 0, 10, 10)},
		{"point 1", point{4, 4}, point{4, 4}, 1, 1, image.Rect(4, 4, 5, 5)},
	}
	for _, c := range cases {
		img := image.NewGray(image.Rect(0, 0, 20, 20))
		drawLine(img, c.p, c.q, c.w, 1)
		if n, box := painted(img, 1); n != c.pixels || box != c.box {
			t.Errorf("%s: %d pixels in %v, want %d in %v", c.name, n, box, c.pixels, c.box)
		}
	}
	// A thin line at any slope is a band one pixel wide across it: every column
	// holds one or two of its pixels (the band spans 1/cos(angle) vertically) and
	// their number is about the band's area, length x 1, plus one for the
	// inclusive ends.
	img := image.NewGray(image.Rect(0, 0, 30, 30))
	drawLine(img, point{1, 3}, point{28, 17}, 1, 1)
	for x := 1; x <= 28; x++ {
		col := 0
		for y := range 30 {
			if img.GrayAt(x, y).Y == 1 {
				col++
			}
		}
		if col < 1 || col > 2 {
			t.Errorf("column %d has %d line pixels, want 1 or 2", x, col)
		}
	}
	length := math.Hypot(27, 14)
	if n, _ := painted(img, 1); math.Abs(float64(n)-(length+1)) > 2 {
		t.Errorf("%d pixels, want about %.1f", n, length+1)
	}
}

func TestDrawLeafGeometry(t *testing.T) {
	// Size 20 at (30, 30): body 21 x 13 pixels (semi-axes 10 and 6), central
	// vein x = 30 over y 24..36, side veins 20/3 = 6.67 long, centred, so
	// x 27..33, at y = 27, 30 and 33 (1/4, 2/4, 3/4 of the 12-pixel height).
	img := image.NewGray(image.Rect(0, 0, 64, 64))
	drawLeaf(img, 30, 30, 20, 1, 0, 100, 70)
	n, box := painted(img, 70)
	if box != image.Rect(27, 24, 34, 37) {
		t.Errorf("veins in %v, want (27,24)-(34,37)", box)
	}
	if want := 13 + 3*(7-1); n != want {
		t.Errorf("%d vein pixels, want %d", n, want)
	}
	for _, y := range []int{27, 30, 33} {
		for x := 27; x <= 33; x++ {
			if img.GrayAt(x, y).Y != 70 {
				t.Errorf("side vein at y=%d misses x=%d", y, x)
			}
		}
	}
	// The body's top and bottom pixels (30, 24) and (30, 36) are vein.
	if _, box := painted(img, 100); box != image.Rect(20, 25, 41, 36) {
		t.Errorf("body in %v, want (20,25)-(41,36)", box)
	}
}
