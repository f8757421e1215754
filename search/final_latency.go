package search

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
)

// timesFinals reports whether a run of cfg times its final models after
// the final phase: its reward limits or weighs a latency predicted or timed
// for this machine. A latency table's is for the machine it was measured
// on, where nasctl bench RUN measures the winners instead.
func (c Config) timesFinals() bool {
	r := c.Reward.withDefaults()
	return c.Trains() && !c.Final.Skip && r.needsLatency() && r.Table == ""
}

// timeFinals times the batch-1 latency of the final models on this
// machine, all together in rounds as nasctl bench does, once every final
// is retrained, and writes it to final_latency.json. The search's own
// figures can be off by a quarter or more on a network (docs/performance.md,
// "Latency model"), so the best is picked by these (Report.finals). A
// resumed run whose finals were all timed keeps the timings.
func (s *Search) timeFinals(ctx context.Context) error {
	if !s.cfg.timesFinals() {
		return nil
	}
	if _, err := rundir.ReadFinalLatency(s.dir.Path); damagedTimings(err) {
		// Only timings, which are taken again in seconds.
		s.emit(Event{Kind: "info", Message: fmt.Sprintf("note: %s is damaged (%v): timing the final models again", rundir.FileFinalLatency, errors.Unwrap(err))})
		if err := os.Remove(filepath.Join(s.dir.Path, rundir.FileFinalLatency)); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	finals, err := rundir.ReadFinals(s.dir.Path)
	if err != nil {
		return err
	}
	var timed []rundir.FinalResult
	untimed := 0
	for _, f := range finals {
		if f.Status == rundir.StatusOK && f.Model != "" {
			timed = append(timed, f)
			if f.MeasuredLatencyMs == nil {
				untimed++
			}
		}
	}
	if untimed == 0 {
		return nil
	}
	threads := s.cfg.Reward.withDefaults().Threads
	s.emit(Event{Kind: "info", Message: fmt.Sprintf("timing the batch-1 latency of the %s on this machine (%s), as nasctl bench does",
		english.Plural(len(timed), "final model", "final models"), english.Plural(threads, "thread", "threads"))})
	opts := bench.Options{Session: runtime.SessionOptions{IntraOpThreads: threads}}
	paths := make([]string, len(timed))
	for i, f := range timed {
		paths[i] = filepath.Join(s.dir.Path, f.Model)
		// A damaged model would fail every resume's timing alike: the
		// final phase retrains a rank whose line final.jsonl lacks.
		b, err := os.ReadFile(paths[i])
		if err == nil {
			_, err = onnxgen.ReadModelInfo(b)
		}
		if err != nil {
			return fmt.Errorf("timing the final models: %s (rank %d): %w; to retrain it, move it away, delete the line of rank %d from %s, and resume",
				paths[i], f.Rank, err, f.Rank, rundir.FileFinal)
		}
	}
	lat, err := bench.TimeLatencies(ctx, paths, opts)
	if err != nil {
		return fmt.Errorf("timing the final models: %w", err)
	}
	rec := rundir.FinalLatency{Threads: threads, Runs: lat[0].Runs, Rounds: bench.LatencyRounds, Time: time.Now()}
	for i, f := range timed {
		rec.Models = append(rec.Models, rundir.TimedFinal{Rank: f.Rank, Trial: f.Trial, P50Ms: lat[i].P50, P95Ms: lat[i].P95})
	}
	if err := s.dir.WriteJSON(rundir.FileFinalLatency, rec); err != nil {
		return err
	}
	if limit := s.cfg.Reward.MaxLatencyMs; s.cfg.Reward.Mode == RewardConstraint && limit > 0 {
		var over []string
		for i, f := range timed {
			if lat[i].P50 > limit {
				over = append(over, fmt.Sprintf("rank %d (%.5f ms, the search's figure %.5f)", f.Rank, lat[i].P50, f.LatencyMs))
			}
		}
		then := "the best is picked among the others (report.md)"
		if len(over) == len(timed) {
			then = "none is within it, so no best is picked (report.md)"
		}
		if len(over) > 0 {
			s.emit(Event{Kind: "info", Message: fmt.Sprintf("warning: timed here, %s over the latency limit of %g ms: %s; %s",
				english.PluralWord(len(over), "one final is", fmt.Sprintf("%d finals are", len(over))), limit, strings.Join(over, ", "), then)})
		}
	}
	return nil
}
