package search

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nasctl/nasctl/internal/buildinfo"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
)

// pausedFinal is what a run keeps of a final retraining that a stop paused
// (rundir.PausedName): the training's state, and what a resume must match
// to go on from it, since only the same training goes on as if never
// paused (docs/performance.md, "Pausing a retraining").
type pausedFinal struct {
	Format   int
	Trial    int
	Arch     string
	Training string // the retraining's settings (runtime.TrainRecord as JSON)
	Data     string // the images' hash
	Version  string // the nasctl build
	State    runtime.TrainState
}

// pausedFormat numbers pausedFinal's layout.
const pausedFormat = 1

// pausedError is retrain's error for a retraining that a stop paused: its
// state is kept, unless lost says why not (then the resume retrains it).
type pausedError struct {
	rank, epoch, most int
	lost              error
}

func (e *pausedError) Error() string {
	if e.lost != nil {
		return fmt.Sprintf("final #%d paused after epoch %d of at most %d, but its state could not be kept (%v): the resume retrains it", e.rank, e.epoch, e.most, e.lost)
	}
	return fmt.Sprintf("final #%d paused after epoch %d of at most %d: a resume goes on from there", e.rank, e.epoch, e.most)
}

// pausesFinals reports whether the executor's retrainings stop at the end
// of an epoch when asked: a remote worker's finish instead.
func (s *Search) pausesFinals() bool {
	e, ok := s.exec.(elsewhere)
	return !ok || !e.TrainsElsewhere()
}

// savePaused keeps the state of rank's paused retraining of trial t
// (training: its settings' record) and returns a *pausedError, which says
// so, or why the state could not be kept: the stop stays a stop either way.
func (s *Search) savePaused(rank int, t rundir.Trial, training string, st *runtime.TrainState) error {
	e := &pausedError{rank: rank, epoch: st.Epoch, most: s.cfg.finalEpochs()}
	var b bytes.Buffer
	p := pausedFinal{Format: pausedFormat, Trial: t.ID, Arch: t.Arch, Training: training, Data: s.data.Hash, Version: buildinfo.Version(), State: *st}
	if e.lost = gob.NewEncoder(&b).Encode(p); e.lost != nil {
		return e
	}
	if e.lost = os.MkdirAll(filepath.Join(s.dir.Path, rundir.DirPaused), 0o755); e.lost == nil {
		e.lost = s.dir.WriteFile(rundir.PausedName(t.ID), b.Bytes())
	}
	return e
}

// pausedFor returns the state of rank's retraining of trial t that a stop
// paused, when there is one to go on from (pausedState), saying so; nil
// otherwise. It runs on the search's goroutine, which alone emits.
func (s *Search) pausedFor(rank int, t rundir.Trial) *runtime.TrainState {
	st := s.pausedState(rank, t, s.finalRecord(t))
	if st != nil {
		s.emit(Event{Kind: "info", Message: fmt.Sprintf("final #%d goes on after epoch %d, where a stop paused it", rank, st.Epoch)})
	}
	return st
}

// pausedState returns the state of trial t's retraining that a stop
// paused, when it is one of these settings (training), images and build;
// nil when there is none. A state that does not match, or cannot be read,
// is warned of and left, and the retraining starts anew.
func (s *Search) pausedState(rank int, t rundir.Trial, training string) *runtime.TrainState {
	name := rundir.PausedName(t.ID)
	b, err := os.ReadFile(filepath.Join(s.dir.Path, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var p pausedFinal
	if err == nil {
		err = gob.NewDecoder(bytes.NewReader(b)).Decode(&p)
	}
	why := ""
	switch {
	case err != nil:
		why = fmt.Sprintf("it cannot be read (%v)", err)
	case p.Format != pausedFormat || p.Version != buildinfo.Version():
		why = fmt.Sprintf("another build of nasctl (%s) paused it", p.Version)
	case p.Trial != t.ID || p.Arch != t.Arch || p.Data != s.data.Hash || p.Training != training:
		why = "it was trained with other settings or images"
	default:
		return &p.State
	}
	s.emit(Event{Kind: "info", Message: fmt.Sprintf("final #%d retrains from its search weights: the state that a stop left in %s is not taken, as %s",
		rank, filepath.Join(s.dir.Path, name), why)})
	return nil
}

// dropPaused removes the state of trial id's paused retraining, which is
// recorded now; a state left behind is only disk space, retrained over.
func (s *Search) dropPaused(id int) {
	os.Remove(filepath.Join(s.dir.Path, rundir.PausedName(id)))
	os.Remove(filepath.Join(s.dir.Path, rundir.DirPaused)) // once empty
}
