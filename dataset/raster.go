package dataset

import (
	"image"
	"math"
)

// The generator's drawing primitives. They are exact rather than anti-aliased:
// a pixel takes the shape's gray level when its centre lies inside the shape,
// and keeps its value otherwise. Pixel (x, y) has its centre at (x, y), so a shape
// centred on integer coordinates is centred on a pixel. Everything is clipped to
// the image.
//
// Products are wrapped in float64() conversions where a compiler could otherwise
// fuse a multiply and an add (the Go spec allows that on some architectures):
// an explicit conversion forces rounding, which keeps the output the same on
// every platform.

// fillDisc paints the pixels within distance r of (cx, cy).
func fillDisc(img *image.Gray, cx, cy, r int, gray uint8) {
	bb := image.Rect(cx-r, cy-r, cx+r+1, cy+r+1).Intersect(img.Bounds())
	for y := bb.Min.Y; y < bb.Max.Y; y++ {
		dy := y - cy
		row := img.Pix[img.PixOffset(bb.Min.X, y):]
		for x := bb.Min.X; x < bb.Max.X; x++ {
			dx := x - cx
			if dx*dx+dy*dy <= r*r {
				row[x-bb.Min.X] = gray
			}
		}
	}
}

// fillRect paints the w x h pixels whose top-left pixel is (x, y).
func fillRect(img *image.Gray, x, y, w, h int, gray uint8) {
	r := image.Rect(x, y, x+w, y+h).Intersect(img.Bounds())
	for yy := r.Min.Y; yy < r.Max.Y; yy++ {
		row := img.Pix[img.PixOffset(r.Min.X, yy):]
		for i := range r.Dx() {
			row[i] = gray
		}
	}
}

// fillEllipse paints the ellipse centred on (cx, cy) whose semi-axes are a10/10
// pixels along the direction at angle theta (radians; clockwise on screen since
// y points down) and b10/10 pixels across it: the pixels with
// (u/a)^2 + (v/b)^2 <= 1, where (u, v) is the pixel centre in the ellipse's own
// frame. Taking the axes in tenths lets the test run as
// (10u*b10)^2 + (10v*a10)^2 <= (a10*b10)^2, which for theta = 0 involves only
// integers and is therefore exact: axis-aligned ellipses have no rounding at
// their edge.
func fillEllipse(img *image.Gray, cx, cy, a10, b10 int, theta float64, gray uint8) {
	sin, cos := math.Sincos(theta)
	if theta == 0 {
		sin, cos = 0, 1
	}
	a, b := float64(a10), float64(b10)
	// Half-extents of the rotated ellipse's bounding box, in pixels.
	ex := math.Sqrt(float64(a*cos*a*cos)+float64(b*sin*b*sin)) / 10
	ey := math.Sqrt(float64(a*sin*a*sin)+float64(b*cos*b*cos)) / 10
	bx, by := int(math.Ceil(ex)), int(math.Ceil(ey))
	bb := image.Rect(cx-bx, cy-by, cx+bx+1, cy+by+1).Intersect(img.Bounds())
	ab := float64(a * b)
	lim := float64(ab * ab)
	for y := bb.Min.Y; y < bb.Max.Y; y++ {
		dy := float64(10 * (y - cy))
		row := img.Pix[img.PixOffset(bb.Min.X, y):]
		for x := bb.Min.X; x < bb.Max.X; x++ {
			dx := float64(10 * (x - cx))
			u := float64(dx*cos) + float64(dy*sin)
			v := float64(dy*cos) - float64(dx*sin)
			ub, va := float64(u*b), float64(v*a)
			if float64(ub*ub)+float64(va*va) <= lim {
				row[x-bb.Min.X] = gray
			}
		}
	}
}

// point is a position in pixel coordinates (pixel centres are integers).
type point struct{ x, y float64 }

// drawLine paints a straight band of thickness w from p to q with square ends
// flush with p and q: the pixels whose centre projects onto the segment
// (inclusive) and lies at a signed distance s from its axis with
// -w/2 <= s < w/2. The half-open band makes an axis-aligned line exactly w
// pixels thick; at other angles the thickness is measured across the line, so
// a column (or row) may hold one pixel more, and a thickness-1 line is
// 8-connected. When p == q it degenerates to a w-pixel vertical stick at p.
func drawLine(img *image.Gray, p, q point, w int, gray uint8) {
	dx, dy := q.x-p.x, q.y-p.y
	l2 := float64(dx*dx) + float64(dy*dy)
	tmax := l2 // projections onto the axis, times its length, run from 0 to l2
	if l2 == 0 {
		dx, dy, l2, tmax = 1, 0, 1, 0
	}
	l := math.Sqrt(l2)
	hw := float64(w) / 2
	pad := hw + 1
	bb := image.Rect(
		int(math.Floor(min(p.x, q.x)-pad)), int(math.Floor(min(p.y, q.y)-pad)),
		int(math.Ceil(max(p.x, q.x)+pad))+1, int(math.Ceil(max(p.y, q.y)+pad))+1,
	).Intersect(img.Bounds())
	for y := bb.Min.Y; y < bb.Max.Y; y++ {
		ry := float64(y) - p.y
		row := img.Pix[img.PixOffset(bb.Min.X, y):]
		for x := bb.Min.X; x < bb.Max.X; x++ {
			rx := float64(x) - p.x
			t := float64(rx*dx) + float64(ry*dy)
			if t < 0 || t > tmax {
				continue
			}
			s := (float64(ry*dx) - float64(rx*dy)) / l // signed distance from the axis
			if s >= -hw && s < hw {
				row[x-bb.Min.X] = gray
			}
		}
	}
}
