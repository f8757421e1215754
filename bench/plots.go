package bench

import (
	"fmt"
	"image/color"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/nasctl/nasctl/internal/figure"
)

// ParamsLatencyPlot draws parameters against batch-1 median latency, each model
// coloured by its accuracy (dark low, bright high; grey when unknown), the
// Pareto-front models ringed and joined.
func ParamsLatencyPlot(rs []*Result) (*plot.Plot, error) {
	p := figure.New("Parameters against latency (colour: accuracy; ringed: Pareto front)", "latency, batch 1, p50 (ms)", "parameters")
	if len(rs) == 0 {
		return p, nil
	}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = figure.LogTicks{}
	cmap := moreland.ExtendedBlackBody()
	lo, hi := accuracyRange(rs)
	cmap.SetMin(lo)
	// The map ends in white: stop at its yellow, four fifths of the way, so
	// the most accurate model stays visible on the white background.
	cmap.SetMax(hi + (hi-lo)/4)
	pts := make(plotter.XYs, len(rs))
	for i, r := range rs {
		pts[i] = plotter.XY{X: r.LatencyMs.P50, Y: float64(max(r.Params, 1))}
	}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	sc.GlyphStyleFunc = func(i int) draw.GlyphStyle {
		c := color.Color(figure.LightGrey)
		if a := rs[i].Accuracy; a != nil {
			if col, err := cmap.At(*a); err == nil {
				c = col
			}
		}
		return draw.GlyphStyle{Color: c, Radius: vg.Points(4), Shape: draw.CircleGlyph{}}
	}
	p.Add(plotter.NewGrid(), sc)
	if err := labelModels(p, pts, rs); err != nil {
		return nil, err
	}
	onFront := func(i int) bool { return rs[i].Pareto } // of the three objectives: accuracy is the colour
	if err := addFront(p, rs, onFront, func(r *Result) plotter.XY { return plotter.XY{X: r.LatencyMs.P50, Y: float64(max(r.Params, 1))} }); err != nil {
		return nil, err
	}
	pad(p, pts, true)
	p.Legend.Add(fmt.Sprintf("accuracy %.3f (dark) to %.3f (bright)", lo, hi))
	p.Legend.Top, p.Legend.Left = true, true
	return p, nil
}

// AccuracyLatencyPlot draws accuracy against batch-1 median latency, the
// Pareto-front models highlighted.
func AccuracyLatencyPlot(rs []*Result) (*plot.Plot, error) {
	p := figure.New("Accuracy against latency", "latency, batch 1, p50 (ms)", "accuracy")
	var pts plotter.XYs
	var with []*Result
	for _, r := range rs {
		if r.Accuracy != nil {
			pts = append(pts, plotter.XY{X: r.LatencyMs.P50, Y: *r.Accuracy})
			with = append(with, r)
		}
	}
	if len(pts) == 0 {
		return p, nil
	}
	sc, err := figure.Points(pts, 3)
	if err != nil {
		return nil, err
	}
	p.Add(plotter.NewGrid(), sc)
	if err := labelModels(p, pts, with); err != nil {
		return nil, err
	}
	p.Legend.Add("model", sc)
	front := accuracyLatencyFront(with)
	if err := addFront(p, with, func(i int) bool { return front[i] }, func(r *Result) plotter.XY { return plotter.XY{X: r.LatencyMs.P50, Y: *r.Accuracy} }); err != nil {
		return nil, err
	}
	pad(p, pts, false)
	// Bottom right, raised so that the front's ring in the legend (taller
	// than a line of text) stays clear of the x axis, in a strip below the
	// points kept free for it: the slowest model may also be the least
	// accurate.
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.YOffs = vg.Points(4)
	_, _, ymin, ymax := plotter.XYRange(pts)
	p.Y.Min -= 0.25 * max(ymax-ymin, 0.01)
	return p, nil
}

// modelLabels are labelModels' names.
func modelLabels(rs []*Result) []string {
	names, seen := make([]string, len(rs)), map[string]int{}
	for i, r := range rs {
		names[i] = strings.TrimSuffix(filepath.Base(r.Model), ".onnx")
		seen[names[i]]++
	}
	for i, r := range rs {
		if seen[names[i]] > 1 { // a float winner and its int8 model: rank-01 and int8/rank-01
			if dir := filepath.Base(filepath.Dir(r.Model)); dir != "winners" && dir != "." {
				names[i] = dir + "/" + names[i]
			}
		}
	}
	return names
}

// labelModels names each point by its model's file, without the folder and
// ".onnx" (rank-01 for winners/rank-01.onnx), so that a figure says which
// model is which; a name two models share keeps its folder too
// (int8/rank-01 beside rank-01).
func labelModels(p *plot.Plot, pts plotter.XYs, rs []*Result) error {
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: modelLabels(rs)})
	if err != nil {
		return err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Font.Size, l.TextStyle[i].Color = vg.Points(10), figure.Grey
	}
	l.Offset = vg.Point{X: vg.Points(9), Y: vg.Points(-3)} // clear of the front's ring
	p.Add(l)
	return nil
}

// accuracyLatencyFront marks the results (all with an accuracy) that no
// other beats in both p50 latency and accuracy: the front of the two
// objectives the accuracy-latency figure draws. On the three (Result.Pareto)
// a model can be on it by its size alone, and be both slower and less
// accurate than another in that figure.
func accuracyLatencyFront(rs []*Result) []bool {
	pts := make([]Point, len(rs))
	for i, r := range rs {
		pts[i] = Point{LatencyMs: r.LatencyMs.P50, Accuracy: *r.Accuracy}
	}
	return ParetoFront(pts)
}

// pad widens the axes around the points, so that no glyph sits on the frame
// and the labels right of them stay inside it (logY: the y axis is
// logarithmic).
func pad(p *plot.Plot, pts plotter.XYs, logY bool) {
	xmin, xmax, ymin, ymax := plotter.XYRange(pts)
	dx := max(xmax-xmin, xmax*0.1)
	p.X.Min, p.X.Max = max(0, xmin-0.1*dx), xmax+0.2*dx
	if logY {
		p.Y.Min, p.Y.Max = ymin/1.5, ymax*1.5
		return
	}
	dy := max(ymax-ymin, 0.01)
	p.Y.Min, p.Y.Max = ymin-0.1*dy, ymax+0.1*dy
}

// addFront rings the results on the Pareto front (onFront(i) for rs[i])
// and joins them in order of latency.
func addFront(p *plot.Plot, rs []*Result, onFront func(int) bool, xy func(*Result) plotter.XY) error {
	var front plotter.XYs
	for i, r := range rs {
		if onFront(i) {
			front = append(front, xy(r))
		}
	}
	if len(front) == 0 {
		return nil
	}
	sort.Slice(front, func(i, j int) bool { return front[i].X < front[j].X })
	ring, err := plotter.NewScatter(front)
	if err != nil {
		return err
	}
	ring.GlyphStyle = draw.GlyphStyle{Color: figure.Red, Radius: vg.Points(7), Shape: draw.RingGlyph{}}
	line, err := plotter.NewLine(front)
	if err != nil {
		return err
	}
	line.Color, line.Dashes = figure.Red, []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(line, ring)
	p.Legend.Add("Pareto front", ring)
	return nil
}

func accuracyRange(rs []*Result) (lo, hi float64) {
	lo, hi = 1, 0
	for _, r := range rs {
		if r.Accuracy != nil {
			lo, hi = min(lo, *r.Accuracy), max(hi, *r.Accuracy)
		}
	}
	if lo >= hi {
		lo, hi = min(lo, hi)-0.01, max(lo, hi)+0.01
	}
	return lo, hi
}

// plots are the figures WritePlots saves, by file name.
var plots = []struct {
	name string
	make func([]*Result) (*plot.Plot, error)
}{{"pareto", ParamsLatencyPlot}, {"accuracy-latency", AccuracyLatencyPlot}}

// PlotFiles returns the files WritePlots writes in dir, so that a caller
// can tell them from files that are not its own.
func PlotFiles(dir string) []string {
	var files []string
	for _, f := range plots {
		for _, format := range figure.Formats() {
			files = append(files, filepath.Join(dir, f.name+"."+format))
		}
	}
	return files
}

// WritePlots saves the two figures in dir (created if missing) as
// pareto.{png,svg} and accuracy-latency.{png,svg}, each atomically (see
// figure.Save), and returns the files written.
func WritePlots(dir string, rs []*Result) ([]string, error) {
	var files []string
	for _, f := range plots {
		p, err := f.make(rs)
		if err != nil {
			return nil, err
		}
		paths, err := figure.Save(p, dir, f.name)
		if err != nil {
			return nil, err
		}
		files = append(files, paths...)
	}
	return files, nil
}
