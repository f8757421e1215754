package search

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/internal/buildinfo"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/quantize"
	"github.com/nasctl/nasctl/search/rundir"
)

// earlierFinal is a final model that an earlier plan of the run retrained
// (a resume with more trials set it aside in earlier/), and that the
// final phase may take instead of training the same network again.
type earlierFinal struct {
	rank  int // 0-based, in this final phase
	f     rundir.FinalResult
	from  string // the earlier plan's folder, relative to the run
	model []byte // its float32 model, with this phase's rank in its metadata
	int8  []byte // its int8 model (final.int8), likewise
}

// earlierFinals finds, for the ranks (0-based, of top) still to retrain,
// the final models that an earlier plan of the run retrained from the same
// search weights with the same settings, images, split and build of
// nasctl: the same training, so a resume with more trials copies them
// instead of spending their epochs again (README.md, "What `make search`
// leaves behind"). It returns those and the ranks left to retrain.
func (s *Search) earlierFinals(top []rundir.Trial, todo []int) ([]earlierFinal, []int, error) {
	folders, err := rundir.Earlier(s.dir.Path)
	if err != nil || len(folders) == 0 {
		return nil, todo, err
	}
	type found struct {
		f    rundir.FinalResult
		from string
	}
	byTrial := map[int]found{} // the latest plan's, when several retrained a trial
	for _, from := range folders {
		finals, err := rundir.ReadFinalRecords(filepath.Join(s.dir.Path, from))
		if err != nil {
			// Only a saving: the networks retrain as without it.
			s.emit(Event{Kind: "info", Message: fmt.Sprintf("warning: the final models of %s are not taken, as its record cannot be read (%v): the networks it retrained are retrained here",
				from, err)})
			continue
		}
		for _, f := range finals {
			byTrial[f.Trial] = found{f, from}
		}
	}
	var reuse []earlierFinal
	var left []int
	for _, rank := range todo {
		e, ok := byTrial[top[rank].ID]
		if !ok {
			left = append(left, rank)
			continue
		}
		r, err := s.earlierFinal(rank, top[rank], e.f, e.from)
		if err != nil {
			return nil, todo, err
		}
		if r == nil {
			left = append(left, rank)
			continue
		}
		reuse = append(reuse, *r)
	}
	return reuse, left, nil
}

// earlierFinal returns f, the final of trial t that the earlier plan from
// retrained, ready to take as rank's (0-based); nil when this phase would
// train it otherwise, or its model is gone.
func (s *Search) earlierFinal(rank int, t rundir.Trial, f rundir.FinalResult, from string) (*earlierFinal, error) {
	if f.Status != rundir.StatusOK || f.Model == "" || f.Arch != t.Arch || strings.Contains(f.Reason, freshWeights) ||
		s.cfg.Final.Int8 != (f.Int8Model != "") {
		return nil, nil
	}
	if _, err := os.Stat(s.dir.ModelPath(t.ID)); err != nil {
		return nil, nil // this phase would train from fresh weights
	}
	model, err := os.ReadFile(filepath.Join(s.dir.Path, from, f.Model))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := onnxgen.ReadModelInfo(model)
	if err != nil || !s.sameTraining(t, info) {
		return nil, nil // damaged, or trained otherwise: retrained
	}
	r := &earlierFinal{rank: rank, f: f, from: from}
	if r.model, err = s.withRank(model, rank); err != nil {
		return nil, err
	}
	if f.Int8Model != "" {
		q, err := os.ReadFile(filepath.Join(s.dir.Path, from, f.Int8Model))
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if r.int8, err = s.withRank(q, rank); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// sameTraining reports whether the model of info was trained as this
// final phase would train trial t: the same network and build of nasctl,
// the same settings (the search weights' trial included) and images.
func (s *Search) sameTraining(t rundir.Trial, info *onnxgen.ModelInfo) bool {
	m := info.Meta
	split := ""
	if s.data.Split.Plan != "" {
		split = s.data.Split.String()
	}
	return info.ProducerVersion == buildinfo.Version() && m[onnxgen.MetaTraining] == s.finalRecord(t) &&
		m[onnxgen.MetaArch] == t.Arch && m[onnxgen.MetaTrial] == strconv.Itoa(t.ID) &&
		m[onnxgen.MetaDatasetHash] == s.data.Hash && m[onnxgen.MetaSplit] == split
}

// withRank returns model with this run's name and rank (0-based) in its
// metadata.
func (s *Search) withRank(model []byte, rank int) ([]byte, error) {
	model, err := quantize.SetMetadata(model, onnxgen.MetaRank, strconv.Itoa(rank+1))
	if err != nil {
		return nil, err
	}
	return quantize.SetMetadata(model, onnxgen.MetaRun, s.cfg.Name)
}

// takeEarlier writes e's models as this phase's and returns its result.
func (s *Search) takeEarlier(e earlierFinal) (rundir.FinalResult, error) {
	f := e.f
	f.Rank, f.Model, f.Reused = e.rank+1, rundir.WinnerName(e.rank+1), e.from
	if err := s.dir.WriteFile(f.Model, e.model); err != nil {
		return f, fmt.Errorf("final #%d from %s: %w", f.Rank, e.from, err)
	}
	if e.int8 != nil {
		f.Int8Model = Int8WinnerName(f.Rank)
		if err := os.MkdirAll(filepath.Join(s.dir.Path, filepath.Dir(f.Int8Model)), 0o755); err != nil {
			return f, err
		}
		if err := s.dir.WriteFile(f.Int8Model, e.int8); err != nil {
			return f, fmt.Errorf("final #%d's int8 model from %s: %w", f.Rank, e.from, err)
		}
	}
	return f, nil
}

// reusedFrom names the earlier plans' folders that reuse comes from.
func reusedFrom(reuse []earlierFinal) string {
	var from []string
	for _, e := range reuse {
		if !slices.Contains(from, e.from) {
			from = append(from, e.from)
		}
	}
	return english.WordSeries(from, "and")
}
