package search

import (
	"fmt"
	"image/color"
	"path/filepath"
	"sort"

	"github.com/nasctl/nasctl/controller"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var (
	colorTrial   = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	colorBest    = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	colorEpsilon = color.RGBA{R: 110, G: 110, B: 110, A: 255}
	colorConst   = color.RGBA{R: 255, G: 127, B: 14, A: 255}
)

// WritePlots draws the search's figures into dir, each as PNG and SVG:
// accuracy (per trial, best so far and epsilon), epsilon (the reward
// distribution per epsilon and the share of constant predictors) and params
// (parameters against validation accuracy).
func WritePlots(dir string, trials []Trial, schedule controller.Schedule, majority float64) error {
	plots := []struct {
		name string
		make func() (*plot.Plot, error)
	}{
		{"accuracy", func() (*plot.Plot, error) { return AccuracyPlot(trials) }},
		{"epsilon", func() (*plot.Plot, error) { return EpsilonPlot(trials, majority) }},
		{"params", func() (*plot.Plot, error) { return ParamsPlot(trials) }},
	}
	for _, p := range plots {
		pl, err := p.make()
		if err != nil {
			return fmt.Errorf("plot %s: %w", p.name, err)
		}
		for _, ext := range []string{"png", "svg"} {
			if err := pl.Save(figureWidth, figureHeight, filepath.Join(dir, p.name+"."+ext)); err != nil {
				return fmt.Errorf("plot %s: %w", p.name, err)
			}
		}
	}
	return nil
}

// AccuracyPlot is the study's figure: every trial's validation accuracy in the
// order the agent learned them (trial order), the best so far, and epsilon.
func AccuracyPlot(trials []Trial) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "MetaQNN search: validation accuracy per trial"
	p.X.Label.Text = "trial"
	p.Y.Label.Text = "validation accuracy / epsilon"
	p.Y.Min, p.Y.Max = 0, 1.02
	pts := make(plotter.XYs, len(trials))
	best := make(plotter.XYs, len(trials))
	eps := make(plotter.XYs, len(trials))
	b := 0.0
	for i, t := range trials {
		b = max(b, t.ValAccuracy)
		pts[i] = plotter.XY{X: float64(i + 1), Y: t.ValAccuracy}
		best[i] = plotter.XY{X: float64(i + 1), Y: b}
		eps[i] = plotter.XY{X: float64(i + 1), Y: t.Epsilon}
	}
	if len(trials) == 0 {
		return p, nil
	}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	sc.GlyphStyle = draw.GlyphStyle{Color: colorTrial, Radius: vg.Points(2), Shape: draw.CircleGlyph{}}
	bl, err := plotter.NewLine(best)
	if err != nil {
		return nil, err
	}
	bl.Color, bl.Width = colorBest, vg.Points(1.5)
	el, err := plotter.NewLine(eps)
	if err != nil {
		return nil, err
	}
	el.Color, el.Width, el.Dashes = colorEpsilon, vg.Points(1), []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(plotter.NewGrid(), sc, bl, el)
	p.Legend.Add("trial", sc)
	p.Legend.Add("best so far", bl)
	p.Legend.Add("epsilon", el)
	p.Legend.Top = false
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(10)
	p.Legend.YOffs = vg.Points(10)
	return p, nil
}

// EpsilonPlot shows the validation accuracy per epsilon as box plots, with
// the number of trials and the share of constant predictors (accuracy within
// one point of the majority share) under each box.
func EpsilonPlot(trials []Trial, majority float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Validation accuracy per epsilon"
	p.Y.Label.Text = "validation accuracy"
	p.Y.Min, p.Y.Max = 0, 1.02
	byEps := map[float64]plotter.Values{}
	for _, t := range trials {
		byEps[t.Epsilon] = append(byEps[t.Epsilon], t.ValAccuracy)
	}
	var eps []float64
	for e := range byEps {
		eps = append(eps, e)
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(eps)))
	var names []string
	for i, e := range eps {
		vs := byEps[e]
		box, err := plotter.NewBoxPlot(vg.Points(18), float64(i), vs)
		if err != nil {
			return nil, err
		}
		box.FillColor = color.RGBA{R: 198, G: 219, B: 239, A: 255}
		p.Add(box)
		n := 0
		for _, v := range vs {
			if constantPredictor(v, majority) {
				n++
			}
		}
		names = append(names, fmt.Sprintf("ε=%.1f\nn=%d\n%.0f%% const", e, len(vs), 100*float64(n)/float64(len(vs))))
	}
	if len(eps) > 0 {
		line, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: majority}, {X: float64(len(eps)) - 0.5, Y: majority}})
		if err != nil {
			return nil, err
		}
		line.Color, line.Dashes = colorConst, []vg.Length{vg.Points(3), vg.Points(3)}
		p.Add(line)
		p.Legend.Add("majority share", line)
		p.Legend.Left, p.Legend.Top = true, false
		p.NominalX(names...)
	}
	return p, nil
}

// ParamsPlot is parameters (log scale) against validation accuracy for every
// trained architecture.
func ParamsPlot(trials []Trial) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Parameters against validation accuracy"
	p.X.Label.Text = "parameters"
	p.Y.Label.Text = "validation accuracy"
	p.Y.Min, p.Y.Max = 0, 1.02
	var pts plotter.XYs
	for _, t := range trials {
		if t.Status == StatusOK && t.Params > 0 {
			pts = append(pts, plotter.XY{X: float64(t.Params), Y: t.ValAccuracy})
		}
	}
	if len(pts) == 0 {
		return p, nil
	}
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	sc.GlyphStyle = draw.GlyphStyle{Color: colorTrial, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
	p.Add(plotter.NewGrid(), sc)
	return p, nil
}
