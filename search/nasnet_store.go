package search

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nasctl/nasctl/controller"
)

// Episode is one sampled architecture of a NASNet search as recorded in
// episodes.jsonl.
type Episode struct {
	// Episode counts from 1, in the order the controller proposed.
	Episode     int     `json:"episode"`
	Actions     []int   `json:"actions"`
	Cell        string  `json:"cell"`
	Reward      float64 `json:"reward"`
	Accuracy    float64 `json:"accuracy,omitempty"` // see Evaluation.Accuracy
	Baseline    float64 `json:"baseline"`           // the advantage is Reward - Baseline
	Temperature float64 `json:"temperature"`        // the episode was sampled at
	// Update is set when the episode completed a batch: the policy update
	// that followed, or its skipping.
	Update *EpisodeUpdate `json:"update,omitempty"`
	// Seconds is the episode's wall time: sampling, reward, update.
	Seconds float64 `json:"seconds"`
}

// EpisodeUpdate is the controller's update after a full batch (see
// controller.Update).
type EpisodeUpdate struct {
	Index    int     `json:"index"`   // from 0, skipped updates included
	Kept     int     `json:"kept"`    // episodes the update used
	Skipped  bool    `json:"skipped"` // every |reward - baseline| of the batch was below the skip threshold
	Loss     float64 `json:"loss,omitempty"`
	GradNorm float64 `json:"grad_norm,omitempty"` // before clipping
}

// Files of a NASNet run directory (besides config.yaml and plots/).
const (
	fileEpisodes    = "episodes.jsonl"
	fileEpisodesCSV = "episodes.csv"
	fileController  = "controller.state"
	fileTop         = "top.json"
	fileTopCells    = "top-cells.txt"
)

var nasnetLayout = runLayout{log: fileEpisodes, logs: []string{fileEpisodes}, dirs: []string{dirPlots}}

// NASNetStore is a NASNet run directory. Every episode is appended to
// episodes.jsonl and synced before the search goes on; the controller's
// full state is saved (atomically) after every update, so a resume loads it
// and replays the few episodes logged since (see ResumeNASNet).
//
// Ownership: NASNetStore holds an exclusive lock on the directory and its log
// open until Close.
type NASNetStore struct {
	runDir
}

// createNASNetStore makes a new run directory for cfg.
func createNASNetStore(dir string, cfg NASNetConfig) (*NASNetStore, error) {
	r, err := createRun(dir, cfg, nasnetLayout)
	if err != nil {
		return nil, err
	}
	return &NASNetStore{r}, nil
}

// openNASNetStore opens an existing NASNet run and returns its saved
// configuration and its episodes in order. A last line torn by a crash in
// the middle of a write is dropped.
func openNASNetStore(dir string) (*NASNetStore, NASNetConfig, []Episode, error) {
	var cfg NASNetConfig
	if err := readRunConfig(dir, KindNASNet, &cfg); err != nil {
		return nil, cfg, nil, err
	}
	r, err := openRun(dir, nasnetLayout)
	if err != nil {
		return nil, cfg, nil, err
	}
	eps, err := readJSONL[Episode](filepath.Join(dir, fileEpisodes), true)
	if err != nil {
		r.Close()
		return nil, cfg, nil, err
	}
	for i, e := range eps {
		if e.Episode != i+1 {
			r.Close()
			return nil, cfg, nil, fmt.Errorf("%s line %d: episode %d, want %d (the log is out of order)", filepath.Join(dir, fileEpisodes), i+1, e.Episode, i+1)
		}
	}
	return &NASNetStore{r}, cfg, eps, nil
}

// Append records an episode durably.
func (s *NASNetStore) Append(e Episode) error { return appendSynced(s.log, e) }

// SaveController writes the controller's state atomically.
func (s *NASNetStore) SaveController(c *controller.Controller) error {
	var buf bytes.Buffer
	if err := c.Save(&buf); err != nil {
		return err
	}
	return s.writeFile(fileController, buf.Bytes())
}

// LoadController reads the saved controller, or returns nil if there is
// none yet.
func (s *NASNetStore) LoadController(space controller.Space) (*controller.Controller, error) {
	f, err := os.Open(filepath.Join(s.Dir, fileController))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := controller.Load(f, space)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return c, nil
}

// WriteCSV writes every episode as episodes.csv.
func (s *NASNetStore) WriteCSV(eps []Episode) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"episode", "reward", "accuracy", "baseline", "temperature", "update", "kept", "loss", "grad_norm", "seconds", "cell", "actions"})
	for _, e := range eps {
		update, kept, loss, norm := "", "", "", ""
		if u := e.Update; u != nil {
			update, kept, loss, norm = "applied", strconv.Itoa(u.Kept), fmtF(u.Loss), fmtF(u.GradNorm)
			if u.Skipped {
				update, loss, norm = "skipped", "", ""
			}
		}
		acc := "" // a reward without an accuracy
		if e.Accuracy != 0 {
			acc = fmtF(e.Accuracy)
		}
		acts := make([]string, len(e.Actions))
		for i, a := range e.Actions {
			acts[i] = strconv.Itoa(a)
		}
		w.Write([]string{strconv.Itoa(e.Episode), fmtF(e.Reward), acc, fmtF(e.Baseline), fmtF(e.Temperature),
			update, kept, loss, norm, fmtF(e.Seconds), e.Cell, strings.Join(acts, ",")})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return s.writeFile(fileEpisodesCSV, buf.Bytes())
}

// readNASNetRun reads a NASNet run directory without locking or changing it
// (a search may be writing it; a line being written is skipped).
func readNASNetRun(dir string) (NASNetConfig, []Episode, error) {
	var cfg NASNetConfig
	if err := readRunConfig(dir, KindNASNet, &cfg); err != nil {
		return cfg, nil, err
	}
	eps, err := readJSONLTolerant[Episode](filepath.Join(dir, fileEpisodes))
	return cfg, eps, err
}

// summarizeNASNet is Summarize for a NASNet run: episodes for trials, the
// best reward and its cell.
func summarizeNASNet(dir string) (*RunSummary, error) {
	cfg, eps, err := readNASNetRun(dir)
	if err != nil {
		return nil, err
	}
	sum := &RunSummary{Name: filepath.Base(dir), Dir: dir, Kind: KindNASNet, Trials: len(eps), Planned: cfg.Episodes}
	for i, e := range eps {
		if i == 0 || e.Reward > sum.Best {
			sum.Best, sum.BestArch = e.Reward, e.Cell
		}
	}
	for _, name := range []string{fileEpisodes, fileConfig} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
			sum.Updated = fi.ModTime()
			break
		}
	}
	return sum, nil
}
