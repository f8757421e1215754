package dashboard

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/quantize"
	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
)

// RunDetail is a run as its page shows it.
type RunDetail struct {
	Run
	// Report is the run's report as it stands (nil for a run that cannot
	// be read).
	Report  *search.Report `json:"report,omitempty"`
	Figures []Figure       `json:"figures"`
	// BestDownload is where to download winners/best.onnx, the final model
	// picked by validation (WinnerArch's), once the final phase is done.
	BestDownload string `json:"best_download,omitempty"`
	// EarlierBest is where to download the best model of each earlier plan
	// of the run that has one (earlier/PLAN/winners/best.onnx), by plan: a
	// resume with more trials has no best of its own until its final phase
	// ends.
	EarlierBest map[string]string `json:"earlier_best,omitempty"`
}

// Figure is a figure of a run, served as PNG at URL (and as SVG at the
// same address ending in .svg).
type Figure struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

// FinalModel is a row of the final table: the result and where to
// download its model ("" when none was exported).
type FinalModel struct {
	rundir.FinalResult
	Download string `json:"download,omitempty"`
	// Winner marks the model picked by validation (winners/best.onnx),
	// which need not be the one of the highest test accuracy.
	Winner bool `json:"winner,omitempty"`
	// Bench is what nasctl bench measured of this model file (batch-1
	// latency on the machine it ran on), when bench/bench.csv holds it:
	// a model retrained since has no figures.
	Bench *BenchFigures `json:"bench,omitempty"`
	// LowestRecall is the class of its lowest recall on the test images
	// (rundir.LowestRecall); nil for a final recorded without them.
	LowestRecall *rundir.ClassRecall `json:"lowest_recall,omitempty"`
}

// BenchFigures are nasctl bench's figures of a final model.
type BenchFigures struct {
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	Pareto bool    `json:"pareto"`
}

// benchOf matches the bench results of the run to its winner files
// (search.BenchOf): a file measured before it was retrained gets no
// figures.
func benchOf(ref *runRef) func(file string) *BenchFigures {
	rs, err := bench.ReadCSV(filepath.Join(ref.dir, benchCSV))
	if err != nil || len(rs) == 0 {
		return func(string) *BenchFigures { return nil }
	}
	return func(file string) *BenchFigures {
		var sum string
		if f, err := os.OpenInRoot(ref.dir, filepath.Join(rundir.DirWinners, file)); err == nil {
			if b, err := io.ReadAll(f); err == nil {
				sum = quantize.SHA256(b)
			}
			f.Close()
		}
		if r := search.BenchOf(rs, file, sum); r != nil {
			return &BenchFigures{P50Ms: r.LatencyMs.P50, P95Ms: r.LatencyMs.P95, Pareto: r.Pareto}
		}
		return nil
	}
}

// benchStale names the winners of the run in dir that its bench/ did not
// measure ("" when it measured them all, or has measured none).
func benchStale(dir string) string {
	rs, err := bench.ReadCSV(filepath.Join(dir, benchCSV))
	if err != nil {
		return ""
	}
	return search.BenchStale(dir, rs)
}

// runURL is the API address of a run's resource.
func runURL(name string, parts ...string) string {
	u := "/api/runs/" + url.PathEscape(name)
	for _, p := range parts {
		u += "/" + url.PathEscape(p)
	}
	return u
}

func (s *Server) runDetail(w http.ResponseWriter, r *http.Request, ref *runRef) {
	d := s.cache.get(ref.dir)
	det := RunDetail{Run: d.run(ref, rundir.Running(ref.dir)), Figures: []Figure{}}
	if d.err == nil {
		if rep, err := search.ReadReport(ref.dir); err == nil {
			det.Report = &rep
		}
	}
	if best := filepath.Base(rundir.BestName); d.summary.WinnerArch != "" && slices.Contains(s.winnerFiles(ref), best) {
		det.BestDownload = runURL(ref.name, "winners", best)
	}
	plans, _ := rundir.Earlier(ref.dir) // earlier/PLAN, as the report names them
	for _, plan := range plans {
		if fi, err := os.Lstat(filepath.Join(ref.dir, plan, rundir.BestName)); err == nil && fi.Mode().IsRegular() {
			if det.EarlierBest == nil {
				det.EarlierBest = map[string]string{}
			}
			det.EarlierBest[plan] = runURL(ref.name, rundir.DirEarlier, filepath.Base(plan), filepath.Base(rundir.BestName))
		}
	}
	stale := benchStale(ref.dir)
	// A run ranked by another metric names it where the captions say
	// "validation accuracy", as its figures do (search.Validation).
	val := d.cfg.ValidationOf(0)
	named := strings.NewReplacer("Validation accuracy", val.Title(), "validation accuracy", val.Name)
	for _, f := range figureSpecs {
		if f.has(ref.dir, d) {
			title := named.Replace(f.title)
			if stale != "" && strings.HasSuffix(title, "(nasctl bench)") {
				title += ". Note: " + stale
			}
			det.Figures = append(det.Figures, Figure{Name: f.name, Title: title, URL: runURL(ref.name, "figures", f.name+".png")})
		}
	}
	writeJSON(w, det)
}

func (s *Server) trials(w http.ResponseWriter, r *http.Request, ref *runRef) {
	d := s.cache.get(ref.dir)
	if d.err != nil {
		writeError(w, http.StatusInternalServerError, d.err.Error())
		return
	}
	out := d.trials()
	if out == nil {
		out = []rundir.Trial{} // [] rather than null
	}
	writeJSON(w, out)
}

// findTrial returns the trial of the id in the request's path.
func (s *Server) findTrial(w http.ResponseWriter, r *http.Request, ref *runRef) (*runData, *rundir.Trial) {
	d := s.cache.get(ref.dir)
	raw := r.PathValue("id")
	id, err := strconv.Atoi(raw)
	if err != nil || strconv.Itoa(id) != raw { // one spelling per trial: not "01" or "+1"
		writeError(w, http.StatusBadRequest, fmt.Sprintf("trial %q: a trial is named by its number, such as 12", raw))
		return nil, nil
	}
	trials := d.trials()
	i, found := sort.Find(len(trials), func(i int) int { return id - trials[i].ID })
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("run %s has no trial %q (yet)", ref.name, r.PathValue("id")))
		return nil, nil
	}
	return d, &trials[i]
}

func (s *Server) trial(w http.ResponseWriter, r *http.Request, ref *runRef) {
	if _, t := s.findTrial(w, r, ref); t != nil {
		writeJSON(w, t) // its seed a string: see runtime.Seed
	}
}

func (s *Server) final(w http.ResponseWriter, r *http.Request, ref *runRef) {
	finals, err := search.ReadFinals(ref.dir)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	sort.Slice(finals, func(i, j int) bool { return finals[i].Rank < finals[j].Rank })
	winners, benched := s.winnerFiles(ref), benchOf(ref)
	winner := s.cache.get(ref.dir).summary.WinnerArch
	out := make([]FinalModel, len(finals))
	for i, f := range finals {
		out[i].FinalResult = f
		out[i].Winner = winner != "" && f.Arch == winner
		if low, ok := rundir.LowestRecall(f.TestByClass); ok {
			out[i].LowestRecall = &low
		}
		if file := path.Base(filepath.ToSlash(f.Model)); f.Model != "" && slices.Contains(winners, file) {
			out[i].Download = runURL(ref.name, "winners", file)
			out[i].Bench = benched(file)
		}
	}
	writeJSON(w, out)
}

// winnerFiles lists the models in the run's winners folder, by file name.
func (s *Server) winnerFiles(ref *runRef) []string {
	found, _ := filepath.Glob(filepath.Join(ref.dir, rundir.DirWinners, "*.onnx"))
	names := make([]string, len(found))
	for i, f := range found {
		names[i] = filepath.Base(f)
	}
	return names
}

// winner serves a model of the winners folder for download; only a file
// listed there is served.
func (s *Server) winner(w http.ResponseWriter, r *http.Request, ref *runRef) {
	name := r.PathValue("file")
	if !slices.Contains(s.winnerFiles(ref), name) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("run %s has no winner %q", ref.name, name))
		return
	}
	serveFile(w, r, ref, filepath.Join(rundir.DirWinners, name), ref.name+"-"+name)
}

// serveFile serves the file rel of the run for download as name. It is
// opened within the run's folder: a link that appeared since the check
// (linkIn) cannot lead out of it.
func serveFile(w http.ResponseWriter, r *http.Request, ref *runRef, rel, name string) {
	f, err := os.OpenInRoot(ref.dir, rel)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !fi.Mode().IsRegular() {
		writeError(w, http.StatusNotFound, fmt.Sprintf("run %s: %s is not a file", ref.name, filepath.ToSlash(rel)))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// earlierBest serves the best model of an earlier plan of the run for
// download; only a plan listed there is served.
func (s *Server) earlierBest(w http.ResponseWriter, r *http.Request, ref *runRef) {
	plan := r.PathValue("plan")
	if plans, _ := rundir.Earlier(ref.dir); !slices.Contains(plans, filepath.Join(rundir.DirEarlier, plan)) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("run %s has no earlier plan %q", ref.name, plan))
		return
	}
	serveFile(w, r, ref, filepath.Join(rundir.DirEarlier, plan, rundir.BestName), ref.name+"-"+plan+"-best.onnx")
}

func (s *Server) config(w http.ResponseWriter, r *http.Request, ref *runRef) {
	b, err := os.ReadFile(filepath.Join(ref.dir, rundir.FileConfig))
	writeBody(w, "text/plain; charset=utf-8", b, err)
}

// writeBody answers b, of content type ctype, or the error that reading it
// gave.
func writeBody(w http.ResponseWriter, ctype string, b []byte, err error) {
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

// writeError answers {"error": msg} with code.
func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
