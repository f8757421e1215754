package dashboard

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/internal/figure"
	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// figureSpec is a figure of a run page. The report's figures are drawn by
// the report's own code (package search), the Pareto figures by nasctl
// bench's (package bench), from the files as they are now.
type figureSpec struct {
	name, title string
	// has reports whether the run in dir has the figure.
	has  func(dir string, d *runData) bool
	draw func(dir string, d *runData) (*plot.Plot, error)
}

var figureSpecs = []figureSpec{
	{"accuracy", "Validation accuracy per trial, the best so far and epsilon", kind(search.KindMetaQNN),
		func(_ string, d *runData) (*plot.Plot, error) {
			return search.AccuracyPlot(d.trials(), d.cfg.ValidationOf(0).Name)
		}},
	{"epsilon", "Validation accuracy per phase of the epsilon schedule", kind(search.KindMetaQNN), func(dir string, d *runData) (*plot.Plot, error) {
		var data search.Data
		if err := readJSON(filepath.Join(dir, rundir.FileData), &data); err != nil {
			return nil, err
		}
		return search.AgentEpsilonPlot(d.cfg, d.trials(), data.ValMajority)
	}},
	{"params", "Parameters against validation accuracy", kind(search.KindMetaQNN),
		func(_ string, d *runData) (*plot.Plot, error) {
			return search.ParamsPlot(d.trials(), d.cfg.ValidationOf(0).Name)
		}},
	{"reward", fmt.Sprintf("Reward per trial, the mean of the last %d (of all, while fewer) and the controller's baseline", search.AverageWindow), kind(search.KindNASNet), func(dir string, d *runData) (*plot.Plot, error) {
		if !d.cfg.Controlled() {
			return search.RewardPlot(d.trials(), nil) // random search and evolution have no baseline
		}
		notes, err := rundir.ReadNotes(dir)
		if err != nil {
			return nil, err
		}
		byTrial := map[int]rundir.Note{}
		for _, n := range notes {
			byTrial[n.Trial] = n
		}
		return search.RewardPlot(d.trials(), byTrial)
	}},
	{"temperature", "Sampling temperature per trial", controlled,
		func(_ string, d *runData) (*plot.Plot, error) { return search.TemperaturePlot(d.trials()) }},
	{"pareto", "Winners: accuracy against latency, the Pareto front (nasctl bench)", benched, func(dir string, _ *runData) (*plot.Plot, error) {
		rs, err := bench.ReadCSV(filepath.Join(dir, benchCSV))
		if err != nil {
			return nil, err
		}
		return bench.AccuracyLatencyPlot(rs)
	}},
	{"params-latency", "Winners: parameters against latency, coloured by accuracy (nasctl bench)", benched, func(dir string, _ *runData) (*plot.Plot, error) {
		rs, err := bench.ReadCSV(filepath.Join(dir, benchCSV))
		if err != nil {
			return nil, err
		}
		return bench.ParamsLatencyPlot(rs)
	}},
}

// kind is a figure of the runs of kind k with an evaluated trial: before
// one, or in a run whose every trial was refused, a figure would be empty
// axes.
func kind(k search.Kind) func(string, *runData) bool {
	return func(_ string, d *runData) bool { return evaluated(d) && d.cfg.Kind == k }
}

// controlled is a figure of the runs whose agent is the REINFORCE
// controller, with an evaluated trial.
func controlled(_ string, d *runData) bool { return evaluated(d) && d.cfg.Controlled() }

// evaluated reports whether the run was read and has an evaluated trial.
func evaluated(d *runData) bool { return d.err == nil && d.summary.Evaluated > 0 }

// benched is a figure of the runs that nasctl bench has measured.
func benched(dir string, _ *runData) bool {
	_, err := os.Stat(filepath.Join(dir, benchCSV))
	return err == nil
}

// readJSON decodes the JSON file at path into v; a missing file leaves v
// as it is.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func (s *Server) figure(w http.ResponseWriter, r *http.Request, ref *runRef) {
	name, format := figureFormat(r.PathValue("figure"))
	d := s.cache.get(ref.dir)
	for _, f := range figureSpecs {
		if format != "" && f.name == name && f.has(ref.dir, d) {
			serveFigure(w, r, format, d.version, func() (*plot.Plot, error) { return f.draw(ref.dir, d) })
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("run %s has no figure %q", ref.name, r.PathValue("figure")))
}

// figureFormat splits a figure's file name into its name and format, png
// or svg; the format is "" for another ending.
func figureFormat(file string) (name, format string) {
	for _, f := range figure.Formats() {
		if name, ok := strings.CutSuffix(file, "."+f); ok {
			return name, f
		}
	}
	return file, ""
}

func (s *Server) curves(w http.ResponseWriter, r *http.Request, ref *runRef) {
	name, format := figureFormat(r.PathValue("file"))
	if name != "curves" || format == "" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no %s for a trial: its learning curves are curves.png or curves.svg", r.PathValue("file")))
		return
	}
	if d, t := s.findTrial(w, r, ref); t != nil {
		serveFigure(w, r, format, d.version, func() (*plot.Plot, error) { return curvesPlot(*t) })
	}
}

// compare answers GET /api/compare/best.png?run=A&run=B... (or best.svg): the best
// reward so far of each run, or their best validation accuracy so far when
// their rewards differ (a cube of the accuracy, or one weighed by latency,
// is not on the scale of the accuracy itself).
func (s *Server) compare(w http.ResponseWriter, r *http.Request) {
	name, format := figureFormat(r.PathValue("file"))
	if name != "best" || format == "" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no %s to compare: the figure is best.png or best.svg", r.PathValue("file")))
		return
	}
	names, refs := s.compared(w, r)
	if refs == nil {
		return
	}
	runs := make([]*runData, len(names))
	var etag strings.Builder
	for i, ref := range refs {
		runs[i] = s.cache.get(ref.dir)
		etag.WriteString(runs[i].version)
	}
	serveFigure(w, r, format, etag.String(), func() (*plot.Plot, error) { return bestSoFarPlot(names, runs) })
}

// compared reads the runs a comparison names (?run=A&run=B...); nil refs
// when they cannot be compared, which w has been answered.
func (s *Server) compared(w http.ResponseWriter, r *http.Request) ([]string, []*runRef) {
	names := r.URL.Query()["run"]
	if len(names) == 0 || len(names) > maxCompared {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("name 1 to %d runs: ?run=A&run=B", maxCompared))
		return nil, nil
	}
	refs := make([]*runRef, len(names))
	for i, name := range names {
		ref, ok := s.lookup(name)
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no run %q in the runs folder", name))
			return nil, nil
		}
		refs[i] = ref
	}
	return names, refs
}

// compareAgents answers GET /api/compare?run=A&run=B...: the runs by agent
// (search.CompareRuns, as nasctl runs compare gives them); 422 when they
// cannot be compared so (runs of two kinds, or scored by a problem).
func (s *Server) compareAgents(w http.ResponseWriter, r *http.Request) {
	_, refs := s.compared(w, r)
	if refs == nil {
		return
	}
	dirs := make([]string, len(refs))
	for i, ref := range refs {
		dirs[i] = ref.dir
	}
	c, err := search.CompareRuns(dirs)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	writeJSON(w, c)
}

// maxCompared is the most runs the comparison draws: beyond it the colours
// and dashes (figure.Series) no longer tell them apart.
const maxCompared = 10

// validationOf names the runs' validation metric (search.Validation):
// theirs when they share it, else "validation score", with mixed true.
func validationOf(runs []*runData) (name string, mixed bool) {
	name = runs[0].cfg.ValidationOf(0).Name
	for _, d := range runs[1:] {
		if d.cfg.ValidationOf(0).Name != name {
			return "validation score", true
		}
	}
	return name, false
}

// sameReward reports whether the runs' rewards are the same quantity.
func sameReward(runs []*runData) bool {
	for _, d := range runs {
		if d.reward != runs[0].reward {
			return false
		}
	}
	return true
}

// serveFigure answers the figure draw makes, as PNG at the screen's
// resolution (what the pages show: figure.ScreenDPI says why) or SVG;
// version is what it is drawn from (the run's stamp), so that a page asking
// again for an unchanged figure gets 304 without it being drawn.
func serveFigure(w http.ResponseWriter, r *http.Request, format, version string, draw func() (*plot.Plot, error)) {
	etag := `"` + format + "-" + version + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	p, err := draw()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	var b []byte
	if format == "png" {
		b, err = figure.RenderPNG(p, figure.ScreenDPI)
	} else {
		b, err = figure.Render(p, format)
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", map[string]string{"png": "image/png", "svg": "image/svg+xml"}[format])
	w.Write(b)
}

// curvesPlot draws a trial's accuracy per epoch: validation and training
// (measured on the training batches as they trained: with dropout, where
// the network has it, and augmented) of its last attempt, the validation of attempts restarted
// before it dashed, and the best epoch, whose weights the trial kept.
func curvesPlot(t rundir.Trial) (*plot.Plot, error) {
	p := figure.New(fmt.Sprintf("Trial %d: accuracy per epoch", t.ID), "epoch", "accuracy")
	p.X.Tick.Marker = figure.WholeTicks{}
	p.Y.Min, p.Y.Max = 0, 1.02
	if len(t.Epochs) == 0 {
		return p, nil
	}
	last := t.Epochs[len(t.Epochs)-1].Attempt
	val := map[int]plotter.XYs{}
	var train, best plotter.XYs
	for _, e := range t.Epochs {
		pt := plotter.XY{X: float64(e.Epoch), Y: e.ValAccuracy}
		val[e.Attempt] = append(val[e.Attempt], pt)
		if e.Attempt == last {
			train = append(train, plotter.XY{X: float64(e.Epoch), Y: e.TrainAccuracy})
			if e.Epoch == t.BestEpoch {
				best = append(best, pt)
			}
		}
	}
	p.Add(plotter.NewGrid())
	for a := 0; a < last; a++ {
		if _, err := addLine(p, val[a], figure.LightGrey, true, fmt.Sprintf("validation, attempt %d (restarted)", a+1)); err != nil {
			return nil, err
		}
	}
	if _, err := addLine(p, train, figure.Grey, true, "training (measured while training)"); err != nil {
		return nil, err
	}
	if _, err := addLine(p, val[last], figure.Blue, false, "validation"); err != nil {
		return nil, err
	}
	if len(best) > 0 {
		ring, err := plotter.NewScatter(best)
		if err != nil {
			return nil, err
		}
		ring.GlyphStyle = draw.GlyphStyle{Color: figure.Red, Radius: vg.Points(5), Shape: draw.RingGlyph{}}
		p.Add(ring)
		p.Legend.Add("best epoch (kept)", ring)
	}
	// Accuracy rises from the first epoch: the bottom left stays free.
	p.Legend.Top, p.Legend.Left = false, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(10), vg.Points(10)
	return p, nil
}

// bestSoFarPlot draws the best reward so far against the trial of each run,
// or the best validation accuracy so far when their rewards differ (their
// balanced accuracy, when they rank by it: a mix names each run's metric).
func bestSoFarPlot(names []string, runs []*runData) (*plot.Plot, error) {
	// What the reward is goes in the page's heading: a constraint or
	// latency term makes it too long for the figure's title.
	p := figure.New("Best reward so far", "trial", "best reward")
	value := func(t rundir.Trial) float64 { return t.Reward }
	labels := slices.Clone(names)
	if !sameReward(runs) {
		val, mixed := validationOf(runs)
		p = figure.New("Best "+val+" so far (the runs' rewards differ)", "trial", "best "+val)
		value = func(t rundir.Trial) float64 { return cmp.Or(t.ValAccuracy, t.Score) }
		if mixed { // each line says what its run validates by
			for i, d := range runs {
				labels[i] += " (" + strings.TrimPrefix(d.cfg.ValidationOf(0).Name, "validation ") + ")"
			}
		}
	}
	p.Add(plotter.NewGrid())
	for i, d := range runs {
		trials := d.trials()
		if len(trials) == 0 {
			continue
		}
		pts := make(plotter.XYs, len(trials))
		best := value(trials[0])
		for j, t := range trials {
			best = max(best, value(t))
			pts[j] = plotter.XY{X: float64(t.ID), Y: best}
		}
		// After five runs the colours repeat (figure.Series): dash the rest.
		l, err := addLine(p, pts, figure.Series(i), i >= 5, labels[i])
		if err != nil {
			return nil, err
		}
		l.StepStyle = plotter.PostStep // a best holds until the next trial beats it
	}
	// The best so far rises early and stays high: the bottom right stays
	// free for the legend (the top left, where it was, is where the curves
	// climb).
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(10), vg.Points(10)
	p.X.Tick.Marker = figure.WholeTicks{}
	return p, nil
}

// addLine adds a line through pts with its legend entry; none, and a nil
// line, when pts is empty.
func addLine(p *plot.Plot, pts plotter.XYs, c color.Color, dashed bool, label string) (*plotter.Line, error) {
	if len(pts) == 0 {
		return nil, nil
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil, err
	}
	l.Color, l.Width = c, vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	p.Add(l)
	p.Legend.Add(label, l)
	return l, nil
}
