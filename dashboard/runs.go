package dashboard

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
)

// Status is where a run stands (search.RunSummary.StatusOf).
type Status = search.RunStatus

// The statuses of a run.
const (
	StatusRunning  = search.RunRunning
	StatusStopped  = search.RunStopped
	StatusFinished = search.RunFinished
	StatusFailed   = search.RunFailed
)

// Run is a run as the runs page lists it: search.Summarize's summary (its
// Started and Updated times as its logs record them) with its status.
type Run struct {
	search.RunSummary
	// Version changes whenever the run's files do; pages add it to the
	// addresses of figures to draw them anew.
	Version string `json:"version"`
	// Reward names what the trials are rewarded for (rewardText): runs
	// whose rewards differ cannot be compared by reward.
	Reward string `json:"reward,omitempty"`
	// FinalProgress is how far the final retrainings in flight are, as
	// the search last wrote it (rundir.FileFinalProgress; none when the
	// retrainings run on remote workers).
	FinalProgress []rundir.FinalProgress `json:"final_progress,omitempty"`
}

// benchCSV is where nasctl bench RUN writes its measurements in a run.
var benchCSV = filepath.Join(rundir.DirBench, "bench.csv")

// watched are the files whose size and time tell that a run has changed.
// The last, the final retrainings' progress, changes only the run's
// facts: it is left out of the version that figures and the report are
// drawn from (see stampOf).
var watched = []string{rundir.FileConfig, rundir.FileTrials, rundir.FileFinal, rundir.FileFinalLatency, rundir.FileNotes, rundir.FileData, benchCSV, rundir.FileFailure,
	rundir.FileFinalProgress}

// runData is what the dashboard has read of a run at one state of its files
// (one stamp). It is shared between requests and never changed once made.
type runData struct {
	stamp   string    // of every watched file
	version string    // of those the figures and report are drawn from
	updated time.Time // the latest modification time of a watched file
	summary search.RunSummary
	cfg     search.Config // with defaults
	// trials returns the run's trials in trial order, read when first
	// asked for: listing the runs needs only their summaries, and a runs
	// folder of hundreds of long runs held every trial's curves in memory
	// (docs/performance.md, "The dashboard's updates").
	trials func() []rundir.Trial
	err    error // why the run could not be read
	// What Run adds to the summary, from the trials.
	reward        string
	finalProgress []rundir.FinalProgress
}

// stampOf returns a digest of the sizes and times of the run's watched
// files, the same of all but the last (the version), and the latest of
// those times. The logs are only appended to, so a new line always changes
// the digests.
func stampOf(dir string) (stamp, version string, latest time.Time) {
	h := fnv.New64a()
	for i, name := range watched {
		if i == len(watched)-1 {
			version = fmt.Sprintf("%016x", h.Sum64())
		}
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			fmt.Fprint(h, "-;")
			continue
		}
		fmt.Fprintf(h, "%d.%d;", fi.Size(), fi.ModTime().UnixNano())
		if fi.ModTime().After(latest) {
			latest = fi.ModTime()
		}
	}
	return fmt.Sprintf("%016x", h.Sum64()), version, latest
}

// load reads the run in dir. The stamp is taken before reading: a write in
// between makes the next stamp differ, and the run is read again.
func load(dir, stamp, version string, updated time.Time) *runData {
	d := &runData{stamp: stamp, version: version, updated: updated, trials: func() []rundir.Trial { return nil }}
	if err := linkIn(dir); err != nil {
		d.err = err
		return d
	}
	sum, err := search.Summarize(dir)
	if err != nil {
		d.err = err
		return d
	}
	d.summary = *sum
	cfg, err := search.ReadConfig(dir)
	if err != nil {
		d.err = err
		return d
	}
	d.cfg = cfg.WithDefaults()
	// A damaged line in the log: the trials before it are shown, and the
	// summary's Error names the line (a resume refuses the run until it is
	// mended). Summarize has read the log already, so another error is
	// not expected here; it leaves the trials read before it.
	d.trials = sync.OnceValue(func() []rundir.Trial {
		trials, _ := rundir.ReadTrials(dir)
		return trials
	})
	d.reward = rewardText(d.cfg)
	readJSON(filepath.Join(dir, rundir.FileFinalProgress), &d.finalProgress) // none outside a final phase
	return d
}

// rewardText names what the trials of a run of cfg (with defaults) are
// rewarded for: two runs with the same text have rewards that compare.
func rewardText(cfg search.Config) string {
	if !cfg.Trains() {
		return strings.Join(slices.DeleteFunc([]string{cfg.Problem.Name, cfg.Problem.Dataset, "score"}, func(w string) bool { return w == "" }), " ")
	}
	return cfg.DescribeReward()
}

// status decides where the run stands, given whether a process holds it.
func (d *runData) status(running bool) Status {
	if d.err != nil && !running {
		return StatusStopped
	}
	return d.summary.StatusOf(running)
}

// run is the run's listing, given whether a process holds it.
func (d *runData) run(ref *runRef, running bool) Run {
	r := Run{RunSummary: d.summary, Version: d.version, Reward: d.reward, FinalProgress: d.finalProgress}
	if d.err != nil {
		r.SetStatus(d.status(running))
	} else {
		r.Settle(running)
	}
	r.Name, r.Dir = ref.name, ref.dir
	if r.Updated.IsZero() { // unreadable: its files' time
		r.Updated = d.updated
	}
	if d.err != nil {
		r.Error = d.err.Error()
	}
	return r
}

// cache keeps what was read of each run until its files change, so that
// the pages' polls and every open event stream cost a few stat calls.
type cache struct {
	mu   sync.Mutex
	runs map[string]*runData // by run directory
}

// get returns the run in dir as its files are now.
func (c *cache) get(dir string) *runData {
	stamp, version, updated := stampOf(dir)
	c.mu.Lock()
	d := c.runs[dir]
	c.mu.Unlock()
	if d != nil && d.stamp == stamp {
		return d
	}
	d = load(dir, stamp, version, updated)
	c.mu.Lock()
	c.runs[dir] = d
	c.mu.Unlock()
	return d
}

// keep forgets the runs whose directories are not in dirs (runs removed).
func (c *cache) keep(dirs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for dir := range c.runs {
		if !slices.Contains(dirs, dir) {
			delete(c.runs, dir)
		}
	}
}

// forget drops what was read of the run in dir (a run removed).
func (c *cache) forget(dir string) {
	c.mu.Lock()
	delete(c.runs, dir)
	c.mu.Unlock()
}

// runRef is a run named in a request, found in the runs folder.
type runRef struct {
	name string
	dir  string
}

// runNames lists the runs in the runs folder: folders, not links (which
// could lead out of it), that hold a config.yaml.
func (s *Server) runNames() ([]string, error) {
	entries, err := os.ReadDir(s.opts.Runs)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if fi, err := os.Lstat(filepath.Join(s.opts.Runs, e.Name(), rundir.FileConfig)); err == nil && fi.Mode().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// lookup finds a run by name. A name is only ever compared with the names
// listed in the runs folder, never joined to a path before that, so no
// name ("..", "a/../b", an encoded slash) reaches outside the folder.
func (s *Server) lookup(name string) (*runRef, bool) {
	names, err := s.runNames()
	if err != nil || !slices.Contains(names, name) {
		return nil, false
	}
	return &runRef{name: name, dir: filepath.Join(s.opts.Runs, name)}, true
}

// named wraps a handler of the run named in the path; an unknown name is
// answered 404, a run holding a link (linkIn) 403.
func (s *Server) named(h func(http.ResponseWriter, *http.Request, *runRef)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ref, ok := s.lookup(r.PathValue("name"))
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no run %q in the runs folder", r.PathValue("name")))
			return
		}
		if err := linkIn(ref.dir); err != nil {
			writeError(w, http.StatusForbidden, err.Error())
			return
		}
		h(w, r, ref)
	}
}

// linkedScanned are the folders of a run whose files the dashboard reads
// or serves, besides the run's own folder.
var linkedScanned = []string{"", rundir.DirWinners, rundir.DirBench, rundir.DirEarlier}

// linkIn returns an error naming a symbolic link among the files the
// dashboard reads of the run in dir (its folder, winners/, bench/,
// earlier/): a link could lead out of the runs folder, to any file the
// dashboard's user may read, so nothing of such a run is read or served.
func linkIn(dir string) error {
	for _, sub := range linkedScanned {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			continue // missing: nothing to read there
		}
		for _, e := range entries {
			if e.Type()&fs.ModeSymlink != 0 {
				return fmt.Errorf("%s is a symbolic link: the dashboard reads and serves nothing of a run holding links, so that no address reaches outside the runs folder; put the file itself there", filepath.Join(filepath.Base(dir), sub, e.Name()))
			}
		}
	}
	return nil
}

// runOf returns the listing of a run as it is now.
func (s *Server) runOf(ref *runRef) Run {
	return s.cache.get(ref.dir).run(ref, rundir.Running(ref.dir))
}

// listRuns answers GET /api/runs: every run, the latest updated first.
func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	names, err := s.runNames()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	runs := make([]Run, 0, len(names))
	var dirs []string
	for _, name := range names {
		ref := &runRef{name: name, dir: filepath.Join(s.opts.Runs, name)}
		runs = append(runs, s.runOf(ref))
		dirs = append(dirs, ref.dir)
	}
	s.cache.keep(dirs)
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Updated.After(runs[j].Updated) })
	writeJSON(w, runs)
}

// folder answers GET /api/folder: the runs folder, which the runs page names
// (a mistyped --runs shows as an empty list otherwise).
func (s *Server) folder(w http.ResponseWriter, r *http.Request) {
	abs, err := filepath.Abs(s.opts.Runs)
	if err != nil {
		abs = s.opts.Runs
	}
	_, err = os.Stat(s.opts.Runs)
	writeJSON(w, map[string]any{"path": s.opts.Runs, "abs": abs, "exists": err == nil})
}
