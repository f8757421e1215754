package dashboard

import (
	"bytes"
	"image/png"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/internal/figure"
	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
)

// newNASNetRun writes a finished NASNet run of agent on the mock problem: n
// trials with their temperature and the controller's baseline noted.
func newNASNetRun(t *testing.T, runs, name, agent string, n int) {
	t.Helper()
	d := create(t, search.Config{Kind: search.KindNASNet, Name: name, Dir: runs, Trials: n, Problem: search.ProblemSettings{Name: "mock"},
		NASNet: search.NASNetSettings{Agent: agent}})
	defer d.Close()
	for id := 1; id <= n; id++ {
		r := 0.6 + 0.3*math.Sin(float64(id))*math.Sin(float64(id))
		tr := rundir.Trial{Candidate: rundir.Candidate{ID: id, Arch: "cell-" + string(rune('a'+id%5)), Actions: []int{id % 3, 1}, Temperature: 5 - 0.1*float64(id)},
			Status: rundir.StatusOK, Reward: r, Score: r, Finished: fixtureStart.Add(time.Duration(id) * time.Second)}
		if err := d.AppendTrial(tr); err != nil {
			t.Fatal(err)
		}
		if err := d.AppendNote(rundir.Note{Trial: id, Learned: controller.Learned{Baseline: 0.7}}); err != nil {
			t.Fatal(err)
		}
	}
}

// Every figure a run lists is served as PNG at the screen's resolution, and
// as SVG, drawn by the report's and bench's code; an unchanged one is
// answered 304 to a page that has it. Learning curves and the comparison
// are figures too.
func TestFigures(t *testing.T) {
	runs, _ := fixtureRuns(t)
	newNASNetRun(t, runs, "mock", search.AgentReinforce, 12)
	newNASNetRun(t, runs, "mock-random", search.AgentRandom, 12)
	acc := func(v float64) *float64 { return &v }
	os.MkdirAll(filepath.Join(runs, "leaves-a", "bench"), 0o755)
	if err := bench.WriteCSV(filepath.Join(runs, "leaves-a", benchCSV), []*bench.Result{
		{Model: "winners/rank-01.onnx", Params: 12000, LatencyMs: bench.Latency{P50: 0.08}, Accuracy: acc(0.93), Pareto: true},
		{Model: "winners/rank-02.onnx", Params: 30000, LatencyMs: bench.Latency{P50: 0.11}, Accuracy: acc(0.91)},
	}); err != nil {
		t.Fatal(err)
	}
	// A run whose trials were all refused has no figure: it would be
	// empty axes.
	d := create(t, search.Config{Kind: search.KindMetaQNN, Name: "refused", Dir: runs, Trials: 2, Data: "data/leaves"})
	for id := 1; id <= 2; id++ {
		tr := fakeTrial(id, 4)
		tr.Status, tr.Reward, tr.ValAccuracy, tr.Epochs = rundir.StatusRefused, 0, 0, nil
		if err := d.AppendTrial(tr); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	srv := serve(t, Options{Runs: runs})
	for run, want := range map[string][]string{
		"refused":     nil,
		"leaves-a":    {"accuracy", "epsilon", "params", "pareto", "params-latency"},
		"leaves-b":    {"accuracy", "epsilon", "params"},
		"mock":        {"reward", "temperature"},
		"mock-random": {"reward"}, // random search has no temperature
	} {
		var det RunDetail
		get(t, srv.URL+"/api/runs/"+run, &det)
		var names []string
		for _, f := range det.Figures {
			names = append(names, f.Name)
			if !strings.HasSuffix(f.URL, "/"+f.Name+".png") {
				t.Errorf("%s: figure %s at %s, want its PNG", run, f.Name, f.URL)
			}
			checkFigure(t, srv.URL+f.URL)
			checkFigure(t, srv.URL+strings.TrimSuffix(f.URL, ".png")+".svg")
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s: figures %v, want %v", run, names, want)
		}
	}
	for _, f := range figure.Formats() {
		checkFigure(t, srv.URL+"/api/runs/leaves-a/trials/2/curves."+f)
		checkFigure(t, srv.URL+"/api/compare/best."+f+"?run=leaves-a&run=leaves-b&run=mock")
	}
	for path, code := range map[string]int{
		"/api/runs/leaves-a/figures/reward.png":   http.StatusNotFound, // a NASNet figure
		"/api/runs/refused/figures/accuracy.png":  http.StatusNotFound,
		"/api/runs/leaves-a/figures/accuracy.jpg": http.StatusNotFound,
		"/api/runs/leaves-a/trials/2/curves.jpg":  http.StatusNotFound,
		"/api/runs/leaves-a/trials/2/epochs.png":  http.StatusNotFound,
		"/api/compare/worst.png?run=leaves-a":     http.StatusNotFound,
		"/api/runs/leaves-a/trials/5/curves.svg":  http.StatusOK, // refused: no curves, an empty figure
		"/api/compare/best.svg":                   http.StatusBadRequest,
		"/api/compare/best.svg?run=nope":          http.StatusNotFound,
	} {
		if resp, body := get(t, srv.URL+path, nil); resp.StatusCode != code {
			t.Errorf("%s: status %d, want %d: %s", path, resp.StatusCode, code, body)
		}
	}
}

// checkFigure fetches a figure, PNG or SVG by its ending, checks that it is
// one (a PNG at figure.ScreenDPI), then asks again with its ETag and
// expects 304.
func checkFigure(t *testing.T, url string) {
	t.Helper()
	resp, body := get(t, url, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("%s: status %d: %.80q", url, resp.StatusCode, body)
		return
	}
	if path, _, _ := strings.Cut(url, "?"); strings.HasSuffix(path, ".png") {
		cfg, err := png.DecodeConfig(bytes.NewReader(body))
		// 18 x 11 cm at 192 dots per inch.
		if resp.Header.Get("Content-Type") != "image/png" || err != nil || cfg.Width != 1361 || cfg.Height != 831 {
			t.Errorf("%s: %s, %v, %dx%d; want a PNG of 1361x831", url, resp.Header.Get("Content-Type"), err, cfg.Width, cfg.Height)
			return
		}
	} else if resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(string(body), "<svg") {
		t.Errorf("%s: %s %.80q", url, resp.Header.Get("Content-Type"), body)
		return
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusNotModified {
		t.Errorf("%s with its ETag: status %d, want 304", url, again.StatusCode)
	}
}

// Runs with the same reward are compared by it; runs whose rewards differ
// (here validation accuracy and its cube, NASNet's) by their validation
// accuracy, which the figure's title says.
func TestCompareRewards(t *testing.T) {
	runs, _ := fixtureRuns(t)
	d := create(t, search.Config{Kind: search.KindMetaQNN, Name: "cubed", Dir: runs, Trials: 4, Data: "data/leaves",
		Reward: search.RewardSettings{Exponent: 3}})
	for id := 1; id <= 4; id++ {
		tr := fakeTrial(id, 4)
		tr.Reward = math.Pow(tr.ValAccuracy, 3)
		if err := d.AppendTrial(tr); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	srv := serve(t, Options{Runs: runs})
	var det RunDetail
	get(t, srv.URL+"/api/runs/cubed", &det)
	if det.Reward != "(validation accuracy)^3" || det.BestVal < 0.5 {
		t.Errorf("cubed: reward %q, best validation accuracy %v", det.Reward, det.BestVal)
	}
	for query, want := range map[string]string{
		"run=leaves-a&run=leaves-b": ">Best reward so far<",
		"run=leaves-a&run=cubed":    "Best validation accuracy so far (the runs",
	} {
		if _, body := get(t, srv.URL+"/api/compare/best.svg?"+query, nil); !strings.Contains(string(body), want) { // the title, as text
			t.Errorf("%s: no %q in the figure", query, want)
		}
	}
}
