package search

import (
	"math"
	"slices"
	"testing"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/internal/plottest"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// syntheticTrials are 60 trials from closed forms: epsilon falls 1.0, 0.5,
// 0.1 by 20 trials; every fourth trial of the first phase is a constant
// predictor; the rest rise with a fixed wiggle. The reward is half the
// validation accuracy (as a latency-aware reward differs from it), so the
// golden images show the accuracy is what the figures draw.
func syntheticTrials() []rundir.Trial {
	var ts []rundir.Trial
	for i := range 60 {
		eps := []float64{1, 0.5, 0.1}[i/20]
		r := 0.7 + 0.25*float64(i)/60 + 0.03*math.Sin(float64(i)*1.3)
		if i < 20 && i%4 == 0 {
			r = 0.516
		}
		ts = append(ts, rundir.Trial{Candidate: rundir.Candidate{ID: i + 1, Epsilon: eps}, Reward: r / 2, ValAccuracy: r, Status: rundir.StatusOK,
			Params: int64(1000 * (1 + i%13) * (1 + i%5))})
	}
	return ts
}

// withUnmeasured is syntheticTrials with trial 3 refused and trial 30
// failed, as a run records them: no accuracy.
func withUnmeasured() []rundir.Trial {
	ts := syntheticTrials()
	for _, i := range []int{2, 29} {
		ts[i].Status, ts[i].ValAccuracy, ts[i].Reward = rundir.StatusRefused, 0, 0
	}
	ts[29].Status = rundir.StatusFailed
	return ts
}

// The accuracy figure draws refused and failed trials apart from the
// trained ones, and they do not lower the best so far.
func TestAccuracySeriesUnmeasured(t *testing.T) {
	ts := withUnmeasured()
	s := accuracySeries(ts)
	if len(s.measured) != 58 || len(s.unmeasured) != 2 || s.unmeasured[0] != (plotter.XY{X: 3, Y: 0}) || s.unmeasured[1] != (plotter.XY{X: 30, Y: 0}) {
		t.Errorf("unmeasured %v, %d measured", s.unmeasured, len(s.measured))
	}
	for _, pt := range s.measured {
		if pt.X == 3 || pt.X == 30 || pt.Y == 0 {
			t.Errorf("trial %v drawn as measured at %v", pt.X, pt.Y)
		}
	}
	if len(s.best) != 60 || len(s.eps) != 60 || s.best[2].Y != s.best[1].Y || s.eps[29].Y != 0.5 {
		t.Errorf("best %v, eps %v at trials 2-3 and 30", s.best[1:3], s.eps[29])
	}
}

// Trials are drawn at their IDs: a run read with a damaged line left out
// has a gap, and the trials after it keep their places.
func TestAccuracySeriesGap(t *testing.T) {
	ts := slices.Delete(syntheticTrials(), 9, 10) // trial 10 missing
	s := accuracySeries(ts)
	if len(s.measured) != 59 || s.measured[8].X != 9 || s.measured[9].X != 11 || s.eps[58].X != 60 {
		t.Errorf("points around the gap at %v and %v, last at %v; want 9, 11 and 60", s.measured[8].X, s.measured[9].X, s.eps[58].X)
	}
}

// The MetaQNN figures match the golden images (see plottest.Golden;
// regenerate with go test -regen-golden).
func TestMetaQNNPlotsGolden(t *testing.T) {
	ts := syntheticTrials()
	for name, mk := range map[string]func() (*plot.Plot, error){
		"metaqnn_accuracy": func() (*plot.Plot, error) { return AccuracyPlot(withUnmeasured(), "validation accuracy") },
		"metaqnn_epsilon":  func() (*plot.Plot, error) { return EpsilonPlot(ts, MajorityShare(0.516)) },
		"metaqnn_params":   func() (*plot.Plot, error) { return ParamsPlot(ts, "validation accuracy") },
		// An evolution or random run: boxes by the schedule's trial ranges
		// (30, 15, 15), not by the epsilons recorded (20, 20, 20).
		"metaqnn_phases": func() (*plot.Plot, error) {
			return PhasePlot(ts, MajorityShare(0.516), controller.EpsilonSchedule{{Epsilon: 1, Models: 30}, {Epsilon: 0.5, Models: 15}, {Epsilon: 0.1, Models: 15}})
		},
	} {
		p, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		plottest.Golden(t, p, name)
	}
}

// The epsilon figure leaves out the trials without an accuracy, as the
// report's table does: under each box, n and the constant share count the
// trained and reused trials only.
func TestEpsilonPlotMeasuredOnly(t *testing.T) {
	trials := []rundir.Trial{
		{Candidate: rundir.Candidate{ID: 1, Epsilon: 1}, Status: rundir.StatusOK, ValAccuracy: 0.9},
		{Candidate: rundir.Candidate{ID: 2, Epsilon: 1}, Status: rundir.StatusRefused},
		{Candidate: rundir.Candidate{ID: 3, Epsilon: 1}, Status: rundir.StatusFailed},
		{Candidate: rundir.Candidate{ID: 4, Epsilon: 0.5}, Status: rundir.StatusReused, ValAccuracy: 0.516},
	}
	p, err := EpsilonPlot(trials, MajorityShare(0.516))
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, tk := range p.X.Tick.Marker.Ticks(p.X.Min, p.X.Max) {
		labels = append(labels, tk.Label)
	}
	want := []string{"ε=1.0\nn=1\n0% const", "ε=0.5\nn=1\n100% const"}
	if len(labels) != len(want) || labels[0] != want[0] || labels[1] != want[1] {
		t.Errorf("labels %q, want %q", labels, want)
	}
}

// Ten boxes get smaller labels than three, which have room.
func TestBoxLabelsFit(t *testing.T) {
	var ten []rundir.Trial
	for i := range 10 {
		ten = append(ten, rundir.Trial{Candidate: rundir.Candidate{ID: i + 1, Epsilon: 1 - float64(i)/10}, Status: rundir.StatusOK, ValAccuracy: 0.9})
	}
	p10, err := EpsilonPlot(ten, MajorityShare(0.516))
	if err != nil {
		t.Fatal(err)
	}
	p3, err := EpsilonPlot(syntheticTrials(), MajorityShare(0.516))
	if err != nil {
		t.Fatal(err)
	}
	if small, usual := p10.X.Tick.Label.Font.Size, p3.X.Tick.Label.Font.Size; small != vg.Points(8) || !(usual > small) {
		t.Errorf("label sizes: %v for ten boxes, %v for three", small, usual)
	}
}

// A run ranked by balanced accuracy names it in its figures' titles and
// axes; the default names plain validation accuracy, as the golden images
// show.
func TestPlotsNameTheMetric(t *testing.T) {
	cfg := Config{Kind: KindMetaQNN}
	cfg.Train.Metric = runtime.MetricBalanced.String()
	v := cfg.ValidationOf(1.0 / 3)
	acc, err := AccuracyPlot(nil, v.Name)
	if err != nil {
		t.Fatal(err)
	}
	params, err := ParamsPlot(nil, v.Name)
	if err != nil {
		t.Fatal(err)
	}
	eps, err := EpsilonPlot(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ got, want string }{
		{acc.Title.Text, "MetaQNN search: validation balanced accuracy per trial"},
		{acc.Y.Label.Text, "validation balanced accuracy / epsilon"},
		{params.Title.Text, "Parameters against validation balanced accuracy"},
		{params.Y.Label.Text, "validation balanced accuracy"},
		{eps.Title.Text, "Validation balanced accuracy per epsilon"},
		{eps.Y.Label.Text, "validation balanced accuracy"},
		{MajorityShare(0.5).Title(), "Validation accuracy"},
	} {
		if tc.got != tc.want {
			t.Errorf("%q, want %q", tc.got, tc.want)
		}
	}
}
