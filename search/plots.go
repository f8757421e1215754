package search

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"unicode"
	"unicode/utf8"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/internal/figure"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// AccuracyPlot is the study's figure: every trial's validation accuracy
// (under its name, Validation.Name) in the order the agent learned them
// (trial order), the best so far, and epsilon.
// Refused and failed trials have no accuracy: they are marked apart, on the
// axis, so that they do not read as networks that trained to 0%.
func AccuracyPlot(trials []rundir.Trial, name string) (*plot.Plot, error) {
	p := figure.New("MetaQNN search: "+name+" per trial", "trial", name+" / epsilon")
	p.Y.Min, p.Y.Max = 0, 1.02
	p.X.Tick.Marker = figure.WholeTicks{}
	if len(trials) == 0 {
		return p, nil
	}
	s := accuracySeries(trials)
	sc, err := figure.Points(s.measured, 2)
	if err != nil {
		return nil, err
	}
	bl, err := plotter.NewLine(s.best)
	if err != nil {
		return nil, err
	}
	bl.Color, bl.Width = figure.Red, vg.Points(1.5)
	el, err := plotter.NewLine(s.eps)
	if err != nil {
		return nil, err
	}
	el.Color, el.Width, el.Dashes = figure.Grey, vg.Points(1), []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(plotter.NewGrid(), sc, bl, el)
	p.Legend.Add("trial", sc)
	p.Legend.Add("best so far", bl)
	p.Legend.Add("epsilon", el)
	if len(s.unmeasured) > 0 {
		un, err := plotter.NewScatter(s.unmeasured)
		if err != nil {
			return nil, err
		}
		un.GlyphStyle = draw.GlyphStyle{Color: figure.Grey, Radius: vg.Points(3), Shape: draw.CrossGlyph{}}
		p.Add(un)
		p.Legend.Add("refused or failed (no accuracy)", un)
	}
	p.Legend.Top = false
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(10)
	p.Legend.YOffs = vg.Points(18) // above the row of refused trials
	return p, nil
}

// accuracyPoints are AccuracyPlot's series, by trial number: the measured
// trials' validation accuracies, the refused and failed trials (at 0), the
// best accuracy so far and epsilon.
type accuracyPoints struct {
	measured, unmeasured, best, eps plotter.XYs
}

func accuracySeries(trials []rundir.Trial) accuracyPoints {
	var s accuracyPoints
	b := 0.0
	for _, t := range trials {
		x := float64(t.ID) // IDs may have a gap where a damaged line was left out
		if measured(t) {
			b = max(b, t.ValAccuracy)
			s.measured = append(s.measured, plotter.XY{X: x, Y: t.ValAccuracy})
		} else {
			s.unmeasured = append(s.unmeasured, plotter.XY{X: x, Y: 0})
		}
		s.best = append(s.best, plotter.XY{X: x, Y: b})
		s.eps = append(s.eps, plotter.XY{X: x, Y: t.Epsilon})
	}
	return s
}

// EpsilonPlot shows the validation accuracy per epsilon of the trials that
// have one (measured) as box plots, with the number of trials and the share
// of constant predictors (accuracy no better than chance: constantPredictor)
// under each box.
func EpsilonPlot(trials []rundir.Trial, v Validation) (*plot.Plot, error) {
	byEps := map[float64]plotter.Values{}
	for _, t := range trials {
		if measured(t) {
			byEps[t.Epsilon] = append(byEps[t.Epsilon], t.ValAccuracy)
		}
	}
	var eps []float64
	for e := range byEps {
		eps = append(eps, e)
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(eps)))
	var groups []boxGroup
	for _, e := range eps {
		groups = append(groups, boxGroup{"ε=" + controller.EpsilonText(e), byEps[e]})
	}
	return accuracyBoxes(v.Title()+" per epsilon", groups, v)
}

// PhasePlot is EpsilonPlot for the agents that do not draw at the
// schedule's epsilon (random search, evolution): a box per phase of the
// schedule, by trial range, as the report's phase table.
func PhasePlot(trials []rundir.Trial, v Validation, schedule controller.EpsilonSchedule) (*plot.Plot, error) {
	var groups []boxGroup
	for _, g := range phaseGroups(trials, schedule) {
		groups = append(groups, boxGroup{fmt.Sprintf("%d-%d", g.From, g.To), g.rs})
	}
	return accuracyBoxes(v.Title()+" per trial range of the schedule", groups, v)
}

// Validation names a run's validation accuracy and its chance level for
// the figures: plain accuracy and the majority share, or balanced accuracy
// and one over the number of classes.
type Validation struct {
	Name       string  // the axis: "validation accuracy"
	Chance     float64 // what a constant predictor scores
	ChanceName string  // the chance line's legend: "majority share"
}

// Title is v's name with its first letter in upper case, to start a title.
func (v Validation) Title() string {
	r, n := utf8.DecodeRuneInString(v.Name)
	return string(unicode.ToUpper(r)) + v.Name[n:]
}

// MajorityShare is the default metric's Validation, chance at majority.
func MajorityShare(majority float64) Validation {
	return Validation{Name: validationAccuracy, Chance: majority, ChanceName: "majority share"}
}

// ValidationOf is the Validation of cfg's runs, chance at level (data.json's
// val_majority).
func (c Config) ValidationOf(level float64) Validation {
	if m, _ := c.Train.metric(); m == runtime.MetricBalanced {
		return Validation{Name: "validation balanced accuracy", Chance: level, ChanceName: "chance: 1 / classes"}
	}
	return MajorityShare(level)
}

// boxGroup is one box of accuracyBoxes: its label and its accuracies.
type boxGroup struct {
	label string
	vs    plotter.Values
}

// accuracyBoxes draws a box per group, with the number of trials and the
// share of constant predictors under each, and the chance line.
func accuracyBoxes(title string, groups []boxGroup, v Validation) (*plot.Plot, error) {
	majority := v.Chance
	p := figure.New(title, "", v.Name)
	p.Y.Min, p.Y.Max = 0, 1.02
	var names []string
	for i, g := range groups {
		box, err := plotter.NewBoxPlot(vg.Points(18), float64(i), g.vs)
		if err != nil {
			return nil, err
		}
		box.FillColor = figure.PaleBlue
		p.Add(box)
		n := 0
		for _, v := range g.vs {
			if constantPredictor(v, majority) {
				n++
			}
		}
		names = append(names, fmt.Sprintf("%s\nn=%d\n%.0f%% const", g.label, len(g.vs), 100*float64(n)/float64(len(g.vs))))
	}
	if len(groups) > 0 {
		line, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: majority}, {X: float64(len(groups)) - 0.5, Y: majority}})
		if err != nil {
			return nil, err
		}
		line.Color, line.Dashes = figure.Orange, []vg.Length{vg.Points(3), vg.Points(3)}
		p.Add(line)
		p.Legend.Add(v.ChanceName, line)
		p.Legend.Left, p.Legend.Top = true, false
		p.NominalX(names...)
		if len(groups) > 6 {
			// Ten labels such as "0% const" side by side ran into one
			// another in a browser's sans-serif.
			p.X.Tick.Label.Font.Size = vg.Points(8)
		}
	}
	return p, nil
}

// ParamsPlot is parameters (log scale) against validation accuracy, under
// its name (Validation.Name), for every trained architecture.
func ParamsPlot(trials []rundir.Trial, name string) (*plot.Plot, error) {
	p := figure.New("Parameters against "+name, "parameters", name)
	p.Y.Min, p.Y.Max = 0, 1.02
	var pts plotter.XYs
	for _, t := range trials {
		if t.Status == rundir.StatusOK && t.Params > 0 {
			pts = append(pts, plotter.XY{X: float64(t.Params), Y: t.ValAccuracy})
		}
	}
	if len(pts) == 0 {
		return p, nil
	}
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = figure.LogTicks{}
	sc, err := figure.Points(pts, 2.5)
	if err != nil {
		return nil, err
	}
	p.Add(plotter.NewGrid(), sc)
	return p, nil
}

// AverageWindow is the number of trials of the reward plot's moving
// average (of all trials so far, while fewer).
const AverageWindow = 50

// RewardPlot is the study's figure of the NASNet search: every trial's
// reward, their moving average over AverageWindow trials and the baseline
// the controller measured each trial against (none when notes is nil: an
// agent without a baseline).
func RewardPlot(eps []rundir.Trial, notes map[int]rundir.Note) (*plot.Plot, error) {
	p := figure.New("NASNet search: reward per trial", "trial", "reward")
	p.X.Tick.Marker = figure.WholeTicks{}
	if len(eps) == 0 {
		return p, nil
	}
	pts := make(plotter.XYs, len(eps))
	avg := make(plotter.XYs, len(eps))
	base := make(plotter.XYs, len(eps))
	sum := 0.0
	for i, e := range eps {
		x := float64(e.ID)
		sum += e.Reward
		if i >= AverageWindow {
			sum -= eps[i-AverageWindow].Reward
		}
		pts[i] = plotter.XY{X: x, Y: e.Reward}
		avg[i] = plotter.XY{X: x, Y: sum / float64(min(i+1, AverageWindow))}
		base[i] = plotter.XY{X: x, Y: notes[e.ID].Baseline}
	}
	sc, err := figure.Points(pts, 1.5)
	if err != nil {
		return nil, err
	}
	al, err := plotter.NewLine(avg)
	if err != nil {
		return nil, err
	}
	al.Color, al.Width = figure.Red, vg.Points(1.5)
	bl, err := plotter.NewLine(base)
	if err != nil {
		return nil, err
	}
	bl.Color, bl.Width, bl.Dashes = figure.Orange, vg.Points(1), []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(plotter.NewGrid(), sc, al)
	p.Legend.Add("trial", sc)
	mean := fmt.Sprintf("mean of the last %d", AverageWindow)
	if len(eps) <= AverageWindow {
		mean = "mean so far" // no trial has left the window yet
	}
	p.Legend.Add(mean, al)
	if notes != nil {
		p.Add(bl)
		p.Legend.Add("baseline", bl)
	}
	// Rewards fall anywhere between 0 and 1, so no corner is sure to be
	// empty: the legend goes top right, in a band above the highest point.
	drawn := pts
	if notes != nil {
		drawn = slices.Concat(pts, base)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, xy := range drawn {
		lo, hi = min(lo, xy.Y), max(hi, xy.Y)
	}
	p.Y.Min, p.Y.Max = lo, hi+0.3*max(hi-lo, 0.01)
	p.Legend.Top, p.Legend.Left = true, false
	return p, nil
}

// TemperaturePlot is the softmax temperature each trial was sampled at.
func TemperaturePlot(eps []rundir.Trial) (*plot.Plot, error) {
	p := figure.New("NASNet search: sampling temperature", "trial", "temperature")
	p.X.Tick.Marker = figure.WholeTicks{}
	p.Y.Min = 0
	if len(eps) == 0 {
		return p, nil
	}
	pts := make(plotter.XYs, len(eps))
	for i, e := range eps {
		pts[i] = plotter.XY{X: float64(e.ID), Y: e.Temperature}
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil, err
	}
	l.Color, l.Width = figure.Grey, vg.Points(1.5)
	p.Add(plotter.NewGrid(), l)
	return p, nil
}
