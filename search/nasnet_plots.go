package search

import (
	"bytes"
	"fmt"
	"path"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// NASNetAverageWindow is the number of episodes of the reward plot's moving
// average (of all episodes so far, while fewer).
const NASNetAverageWindow = 50

// Size of the NASNet figures, that of the MetaQNN ones.
const (
	figureWidth  = 18 * vg.Centimeter
	figureHeight = 11 * vg.Centimeter
)

// NASNetRewardPlot is the study's figure: every episode's reward, their moving
// average over NASNetAverageWindow episodes and the baseline the controller
// measured each episode against.
func NASNetRewardPlot(eps []Episode) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "NASNet search: reward per episode"
	p.X.Label.Text = "episode"
	p.Y.Label.Text = "reward"
	if len(eps) == 0 {
		return p, nil
	}
	pts := make(plotter.XYs, len(eps))
	avg := make(plotter.XYs, len(eps))
	base := make(plotter.XYs, len(eps))
	sum := 0.0
	for i, e := range eps {
		x := float64(e.Episode)
		sum += e.Reward
		if i >= NASNetAverageWindow {
			sum -= eps[i-NASNetAverageWindow].Reward
		}
		pts[i] = plotter.XY{X: x, Y: e.Reward}
		avg[i] = plotter.XY{X: x, Y: sum / float64(min(i+1, NASNetAverageWindow))}
		base[i] = plotter.XY{X: x, Y: e.Baseline}
	}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	sc.GlyphStyle = draw.GlyphStyle{Color: colorTrial, Radius: vg.Points(1.2), Shape: draw.CircleGlyph{}}
	al, err := plotter.NewLine(avg)
	if err != nil {
		return nil, err
	}
	al.Color, al.Width = colorBest, vg.Points(1.5)
	bl, err := plotter.NewLine(base)
	if err != nil {
		return nil, err
	}
	bl.Color, bl.Width, bl.Dashes = colorConst, vg.Points(1), []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(plotter.NewGrid(), sc, al, bl)
	p.Legend.Add("episode", sc)
	p.Legend.Add(fmt.Sprintf("mean of the last %d", NASNetAverageWindow), al)
	p.Legend.Add("baseline", bl)
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.YOffs = vg.Points(10)
	return p, nil
}

// NASNetTemperaturePlot is the softmax temperature each episode was sampled at.
func NASNetTemperaturePlot(eps []Episode) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "NASNet search: sampling temperature"
	p.X.Label.Text = "episode"
	p.Y.Label.Text = "temperature"
	p.Y.Min = 0
	if len(eps) == 0 {
		return p, nil
	}
	pts := make(plotter.XYs, len(eps))
	for i, e := range eps {
		pts[i] = plotter.XY{X: float64(e.Episode), Y: e.Temperature}
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil, err
	}
	l.Color, l.Width = colorEpsilon, vg.Points(1.5)
	p.Add(plotter.NewGrid(), l)
	return p, nil
}

// renderPlot returns p drawn in format "png" or "svg" at the figures' size.
func renderPlot(p *plot.Plot, format string) ([]byte, error) {
	wt, err := p.WriterTo(figureWidth, figureHeight, format)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writePlots writes plots/reward and plots/temperature, PNG and SVG, each
// atomically.
func (s *NASNetSearch) writePlots() error {
	for _, fig := range []struct {
		name string
		make func([]Episode) (*plot.Plot, error)
	}{{"reward", NASNetRewardPlot}, {"temperature", NASNetTemperaturePlot}} {
		p, err := fig.make(s.episodes)
		if err != nil {
			return fmt.Errorf("plot %s: %w", fig.name, err)
		}
		for _, format := range []string{"png", "svg"} {
			b, err := renderPlot(p, format)
			if err != nil {
				return fmt.Errorf("plot %s: %w", fig.name, err)
			}
			if err := s.store.writeFile(path.Join(dirPlots, fig.name+"."+format), b); err != nil {
				return err
			}
		}
	}
	return nil
}
