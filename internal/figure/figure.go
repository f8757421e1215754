// Package figure is what every chart of the project shares: its colours, its
// one size, and the drawing and saving of a gonum/plot figure as PNG and SVG.
//
// Packages build their own plots (the axes, series and legends are theirs)
// and colour them from this palette; they never choose a size, and they save
// with Save, so that every figure the project writes, and every golden image
// its tests compare with (internal/plottest), is drawn at Width x Height.
package figure

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/nasctl/nasctl/internal/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The size of every figure, saved or served.
const (
	Width  = 18 * vg.Centimeter
	Height = 11 * vg.Centimeter
)

// The palette. Each colour has one role, the same in every figure.
var (
	// Blue draws the data points: trials, models, episodes.
	Blue = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	// Red draws what stands out of the points: the best so far, a moving
	// average, the Pareto front.
	Red = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	// Grey draws secondary lines: epsilon, the sampling temperature.
	Grey = color.RGBA{R: 110, G: 110, B: 110, A: 255}
	// LightGrey draws a point whose value is unknown (a model with no
	// accuracy in a figure coloured by accuracy).
	LightGrey = color.RGBA{R: 150, G: 150, B: 150, A: 255}
	// Orange draws reference lines: the majority share, a baseline.
	Orange = color.RGBA{R: 255, G: 127, B: 14, A: 255}
	// PaleBlue fills boxes (box plots).
	PaleBlue = color.RGBA{R: 198, G: 219, B: 239, A: 255}
)

// series is the order in which Series hands out colours: the palette's
// blue, orange and red, with a green and a purple between them so that five
// series stay apart (the order of the "category10" scale, from which Blue,
// Orange and Red come).
var series = []color.Color{
	Blue,
	Orange,
	color.RGBA{R: 44, G: 160, B: 44, A: 255}, // green
	Red,
	color.RGBA{R: 148, G: 103, B: 189, A: 255}, // purple
}

// Series returns the colour of the i-th of several series of the same kind
// (one curve per agent), i >= 0; after five the colours repeat, so tell the
// series apart by their dashes as well.
func Series(i int) color.Color {
	return series[i%len(series)]
}

// Formats returns the formats Render draws and Save writes, "png" and "svg",
// in the order Save writes them.
func Formats() []string { return []string{"png", "svg"} }

// Render returns p drawn at Width x Height in format "png" or "svg".
func Render(p *plot.Plot, format string) ([]byte, error) {
	if !slices.Contains(Formats(), format) {
		return nil, fmt.Errorf("figure: unknown format %q (want png or svg)", format)
	}
	wt, err := p.WriterTo(Width, Height, format)
	if err != nil {
		return nil, fmt.Errorf("figure: %w", err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("figure: drawing %s: %w", format, err)
	}
	return buf.Bytes(), nil
}

// ScreenDPI is the resolution of the figures the dashboard serves: twice
// the 96 dots per inch of Render's PNG, so that they stay sharp on a
// high-density screen. The dashboard serves PNG, not SVG, because an SVG
// names its fonts and a browser without them draws the text in wider ones:
// legends overlapped and edge labels were cut (README, "Watching a search").
const ScreenDPI = 192

// RenderPNG returns p drawn at Width x Height as PNG at dpi dots per inch.
func RenderPNG(p *plot.Plot, dpi int) ([]byte, error) {
	c := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(Width, Height), vgimg.UseDPI(dpi))}
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("figure: drawing png: %w", err)
	}
	return buf.Bytes(), nil
}

// Save writes p as dir/name.png and dir/name.svg, creating dir if it is
// missing, and returns the paths written. Each file is replaced atomically
// (written aside, then renamed): a reader sees the old figure or the new one,
// never part of one, and a failed write leaves the old file, or none. Both
// formats are drawn before either is written; if the second write fails,
// the paths returned with the error are those written.
func Save(p *plot.Plot, dir, name string) ([]string, error) {
	formats := Formats()
	data := make([][]byte, len(formats))
	for i, format := range formats {
		b, err := Render(p, format)
		if err != nil {
			return nil, err
		}
		data[i] = b
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("figure: %w", err)
	}
	var paths []string
	for i, format := range formats {
		path := filepath.Join(dir, name+"."+format)
		if err := atomicfile.Write(path, data[i]); err != nil {
			return paths, fmt.Errorf("figure: %w", err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// Points returns a scatter of pts drawn as dots of the palette's blue, of
// radius r points: the data points of a figure.
func Points(pts plotter.XYs, r float64) (*plotter.Scatter, error) {
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	sc.GlyphStyle = draw.GlyphStyle{Color: Blue, Radius: vg.Points(r), Shape: draw.CircleGlyph{}}
	return sc, nil
}

// New returns an empty plot with its title and axis labels.
func New(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, x, y
	return p
}

// LogTicks marks a logarithmic axis at 1, 2 and 5 times the powers of ten
// in its range, labelled, and at the other whole multiples, unlabelled;
// when fewer than two labelled marks fall in the range (models of 1.2k to
// 4.8k parameters), every whole multiple is labelled. gonum's LogTicks
// labels powers of ten only, which leaves such an axis with one label or
// none.
type LogTicks struct{}

// Ticks returns the marks between min and max.
func (LogTicks) Ticks(min, max float64) []plot.Tick {
	if !(min > 0) || !(max >= min) {
		return nil
	}
	var ticks []plot.Tick
	labelled := 0
	for e := math.Floor(math.Log10(min)); math.Pow(10, e) <= max; e++ {
		for m := 1.0; m < 10; m++ {
			v := m * math.Pow(10, e)
			if e < 0 {
				v = m / math.Pow(10, -e) // 0.3, not 3 x 0.1 = 0.30000000000000004
			}
			if v < min*(1-1e-9) || v > max*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = compact(v)
				labelled++
			}
			ticks = append(ticks, t)
		}
	}
	if labelled < 2 {
		for i := range ticks {
			ticks[i].Label = compact(ticks[i].Value)
		}
	}
	return ticks
}

// compact writes a tick's value with k for thousands and M for millions
// ("50k", "1.2M"): written out, the labels of a parameter axis from 5,000
// to 100,000 ran into one another.
func compact(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// WholeTicks marks an axis of counts (trials, episodes) at whole numbers
// only: labelled every 1, 2 or 5 times a power of ten, so that at most six
// labels fall in the range, and unlabelled at a fifth of that step when it
// is whole. gonum's default ticks put labels such as "2.50" or "125.00" on a
// trial axis.
type WholeTicks struct{}

// Ticks returns the marks between min and max.
func (WholeTicks) Ticks(min, max float64) []plot.Tick {
	if !(max >= min) {
		return nil
	}
	var step float64
	for p := 1.0; step == 0; p *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if math.Floor(max/(m*p))-math.Ceil(min/(m*p)) < 6 {
				step = m * p
				break
			}
		}
	}
	minor := step / 5
	if minor != math.Trunc(minor) {
		minor = step
	}
	var ticks []plot.Tick
	for v := math.Ceil(min/minor) * minor; v <= max; v += minor {
		t := plot.Tick{Value: v}
		if math.Mod(v, step) == 0 {
			t.Label = strconv.FormatFloat(v, 'f', 0, 64)
		}
		ticks = append(ticks, t)
	}
	return ticks
}
