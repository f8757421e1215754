package agentbench

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/nasctl/nasctl/internal/figure"
)

// RegretFloor is the smallest regret drawn: the y axis is logarithmic, so a
// mean regret of 0 (every seed found the optimum) is drawn at this value.
const RegretFloor = 0.01

// Regret returns a plot of every agent's mean regret (optimum minus best
// score found) after 1..Budget queries, over seeds, with a band of +-1
// standard error, on a logarithmic regret axis.
func Regret(res *Result, title, unit string) (*plot.Plot, error) {
	p := figure.New(title, "queries", "mean regret")
	if unit != "" {
		p.Y.Label.Text += " (" + unit + ")"
	}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	floor := func(v float64) float64 { return max(v, RegretFloor) }
	for i, a := range res.Agents {
		mean, se := res.RegretCurve(i)
		line := make(plotter.XYs, len(mean))
		band := make(plotter.XYs, 0, 2*len(mean))
		for q, m := range mean {
			line[q] = plotter.XY{X: float64(q + 1), Y: floor(m)}
			band = append(band, plotter.XY{X: float64(q + 1), Y: floor(m + se[q])})
		}
		for q := len(mean) - 1; q >= 0; q-- {
			band = append(band, plotter.XY{X: float64(q + 1), Y: floor(mean[q] - se[q])})
		}
		col := figure.Series(i)
		poly, err := plotter.NewPolygon(band)
		if err != nil {
			return nil, fmt.Errorf("benchplot: %s band: %w", a.Agent, err)
		}
		r, g, b, _ := col.RGBA()
		poly.Color = color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 0x40}
		poly.LineStyle.Width = 0
		l, err := plotter.NewLine(line)
		if err != nil {
			return nil, fmt.Errorf("benchplot: %s curve: %w", a.Agent, err)
		}
		l.LineStyle = draw.LineStyle{Color: col, Width: vg.Points(1.5), Dashes: plotutil.Dashes(i)}
		p.Add(poly, l)
		p.Legend.Add(a.Agent, l)
	}
	return p, nil
}
