package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/search/rundir"
)

// A constraint search with a latency limit times its final models on this
// machine after the final phase (final_latency.json, the report's "timed
// ms" column) and picks the best among those the timing puts within the
// limit: the best over it is passed over, and with none within it no best
// is written. A resume keeps the timings.
func TestFinalsTimedAgainstTheLimit(t *testing.T) {
	withRuntime(t)
	cfg := limitConfig(t)
	s := newSearch(t, cfg, &fakeExecutor{})
	var events []string
	s.Progress = func(e Event) { events = append(events, e.Message) }
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	dir := s.Dir()
	timing, err := rundir.ReadFinalLatency(dir)
	if err != nil || timing == nil {
		t.Fatalf("final_latency.json: %v, %v", timing, err)
	}
	finals := read(t, rundir.ReadFinals, dir)
	if len(finals) != cfg.Final.TopK || len(timing.Models) != len(finals) || timing.Threads != 1 || timing.Runs != 200 {
		t.Fatalf("%d finals, %d timed at %d thread(s), %d runs each", len(finals), len(timing.Models), timing.Threads, timing.Runs)
	}
	for _, f := range finals {
		// A batch-1 run of these 16x16 networks takes microseconds to
		// milliseconds, not nothing and not a second.
		if f.MeasuredLatencyMs == nil || !(*f.MeasuredLatencyMs > 0.0005 && *f.MeasuredLatencyMs < 100) {
			t.Errorf("rank %d: timed %v ms", f.Rank, f.MeasuredLatencyMs)
		}
	}
	if !strings.Contains(strings.Join(events, "\n"), "timing the batch-1 latency of the 3 final models on this machine (1 thread)") {
		t.Errorf("no word of the timing in:\n%s", strings.Join(events, "\n"))
	}
	rep := readFile(t, filepath.Join(dir, rundir.FileReport))
	markdownHas(t, rep, " latency ms (measured) | timed ms |", "timed together after the final phase, by which the best is picked")
	best, err := ReadReport(dir)
	if err != nil || best.Best == nil {
		t.Fatalf("best %v: %v", best.Best, err)
	}

	// The best timed over the limit is passed over for the next.
	setTimings(t, dir, timing, func(rank int) float64 {
		if rank == best.Best.Rank {
			return 1500
		}
		return 500
	})
	r := resume(t, cfg, &fakeExecutor{})
	if err := r.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	r.Close()
	after, err := ReadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after.Best == nil || after.Best.Rank == best.Best.Rank || len(after.OverLimit) != 1 || after.OverLimit[0] != best.Best.Rank {
		t.Fatalf("best %+v, over the limit %v; rank %d was timed over it", after.Best, after.OverLimit, best.Best.Rank)
	}
	kept, err := rundir.ReadFinalLatency(dir)
	if err != nil || !kept.Time.Equal(timing.Time) {
		t.Errorf("the resume timed the finals again: %v", err)
	}
	copied := readFile(t, filepath.Join(dir, rundir.BestName))
	if want := readFile(t, filepath.Join(dir, after.Best.Model)); copied != want {
		t.Errorf("%s is not rank %d's model", rundir.BestName, after.Best.Rank)
	}
	markdownHas(t, readFile(t, filepath.Join(dir, rundir.FileReport)),
		"Rank "+strconv.Itoa(best.Best.Rank)+" is over the latency limit of 1000 ms as timed, and not picked")

	// Every final over it: no best, and the search says so in its error (a
	// script's next step would look for best.onnx), though the run is
	// finished, not failed: a resume would change nothing.
	setTimings(t, dir, timing, func(int) float64 { return 2000 })
	r = resume(t, cfg, &fakeExecutor{})
	if err := r.Run(context.Background(), nil); !errors.Is(err, ErrNoneWithinLimit) || !strings.Contains(err.Error(), "limit of 1000 ms as timed after the final phase") {
		t.Errorf("every final over the limit: %v", err)
	}
	r.Close()
	if _, err := os.Stat(filepath.Join(dir, rundir.FileFailure)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s written: %v", rundir.FileFailure, err)
	}
	if none, err := ReadReport(dir); err != nil || none.Best != nil || len(none.OverLimit) != len(finals) || none.BestFive != 0 {
		t.Errorf("every final over the limit: best %+v, over %v, best five %d (%v)", none.Best, none.OverLimit, none.BestFive, err)
	}
	if _, err := os.Stat(filepath.Join(dir, rundir.BestName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left in place: %v", rundir.BestName, err)
	}
	markdownHas(t, readFile(t, filepath.Join(dir, rundir.FileReport)), "No final model is within the limit: no best is picked")

	// Damaged timings are named to a reader, and a resume takes them again.
	if err := os.WriteFile(filepath.Join(dir, rundir.FileFinalLatency), []byte(`{"threads": 1, "mod`), 0o644); err != nil {
		t.Fatal(err)
	}
	if rep, err := ReadReport(dir); err != nil || !rep.TimingsPending || rep.Best != nil {
		t.Errorf("report of damaged timings: pending %v, best %+v (%v)", rep.TimingsPending, rep.Best, err)
	}
	if sum, err := Summarize(dir); err != nil || !strings.Contains(sum.Error, "the final models' timings are damaged; a resume of the run times them again") ||
		sum.StatusOf(false) != RunStopped || sum.Trials != cfg.Trials {
		t.Errorf("summary of damaged timings: %+v (%v)", sum, err)
	}
	r = resume(t, cfg, &fakeExecutor{})
	events = nil
	r.Progress = func(e Event) { events = append(events, e.Message) }
	if err := r.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if !strings.Contains(strings.Join(events, "\n"), "note: final_latency.json is damaged (unexpected end of JSON input): timing the final models again") {
		t.Errorf("resumed with damaged timings:\n%s", strings.Join(events, "\n"))
	}
	if again, err := ReadReport(dir); err != nil || again.Best == nil || len(again.OverLimit) != 0 {
		t.Errorf("after timing again: best %+v, over %v (%v)", again.Best, again.OverLimit, err)
	}
}

// setTimings rewrites the run's final_latency.json with the made-up
// latency ms(rank) for each model.
func setTimings(t *testing.T, dir string, timing *rundir.FinalLatency, ms func(rank int) float64) {
	t.Helper()
	made := *timing
	made.Models = nil
	for _, m := range timing.Models {
		m.P50Ms = ms(m.Rank)
		made.Models = append(made.Models, m)
	}
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(made); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, rundir.FileFinalLatency), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Under the MnasNet reward the finals rank by their timed latency: of two
// equally accurate finals, the one predicted faster but timed slower is not
// the best.
func TestMnasNetBestByTimedLatency(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Reward = RewardSettings{Mode: RewardMnasNet, TargetMs: 0.05}
	slow, fast := 0.09, 0.03
	finals := []rundir.FinalResult{
		{Rank: 1, Trial: 1, Status: rundir.StatusOK, ValAccuracy: 0.9, TestAccuracy: 0.9, LatencyMs: 0.02, MeasuredLatencyMs: &slow, Model: "winners/rank-01.onnx"},
		{Rank: 2, Trial: 2, Status: rundir.StatusOK, ValAccuracy: 0.9, TestAccuracy: 0.8, LatencyMs: 0.04, MeasuredLatencyMs: &fast, Model: "winners/rank-02.onnx"},
	}
	cfg.Final.TopK, cfg.Trials = 2, 2
	trials := []rundir.Trial{{Candidate: rundir.Candidate{Arch: "a", Lag: 1}, Status: rundir.StatusOK}, {Candidate: rundir.Candidate{Arch: "b", Lag: 1}, Status: rundir.StatusOK}}
	var r Report
	r.finals(cfg, trials, finals)
	if r.Best == nil || r.Best.Rank != 2 {
		t.Fatalf("best %+v; rank 2 is timed faster", r.Best)
	}
	// Without timings, none is picked: the timings are still to come.
	finals[0].MeasuredLatencyMs, finals[1].MeasuredLatencyMs = nil, nil
	var before Report
	before.finals(cfg, trials, finals)
	if before.Best != nil || !before.TimingsPending {
		t.Fatalf("best %+v without timings (pending %v)", before.Best, before.TimingsPending)
	}
	// A run of a nasctl before the timings (its trials record no
	// look-ahead) keeps the best it picked then, by the search's figures.
	for i := range trials {
		trials[i].Lag = 0
	}
	var older Report
	older.finals(cfg, trials, finals)
	if older.Best == nil || older.Best.Rank != 1 || older.TimingsPending {
		t.Fatalf("an older run: best %+v (pending %v); rank 1 is predicted faster", older.Best, older.TimingsPending)
	}
}

// limitConfig is the test config with a constraint reward whose latency
// limit, 1000 ms, every network meets, timed as the search goes.
func limitConfig(t *testing.T) Config {
	cfg := testConfig(t, t.TempDir())
	cfg.Reward = RewardSettings{Mode: RewardConstraint, MaxLatencyMs: 1000, Latency: LatencyMeasured}
	return cfg.WithDefaults()
}

// A timing stopped before its end leaves the final phase unfinished: no
// best is picked or written, the run is stopped, not finished, and the
// report says to resume, which times the finals and picks. A final model
// that cannot be loaded stops the timing with how to retrain it.
func TestFinalsUntimed(t *testing.T) {
	withRuntime(t)
	cfg := limitConfig(t)
	s := newSearch(t, cfg, &fakeExecutor{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Progress = func(e Event) {
		if strings.HasPrefix(e.Message, "timing the batch-1 latency") {
			cancel() // as a second Ctrl-C would, once the timing has begun
		}
	}
	if err := s.Run(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted timing: %v", err)
	}
	s.Close()
	dir := s.Dir()
	rep, err := ReadReport(dir)
	if err != nil || !rep.TimingsPending || rep.Best != nil || len(rep.Finals) != cfg.Final.TopK {
		t.Fatalf("report: pending %v, best %+v, %d finals (%v)", rep.TimingsPending, rep.Best, len(rep.Finals), err)
	}
	if _, err := os.Stat(filepath.Join(dir, rundir.BestName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s written from untimed finals: %v", rundir.BestName, err)
	}
	markdownHas(t, readFile(t, filepath.Join(dir, rundir.FileReport)), "The final models are all retrained but not yet timed")
	if sum, err := Summarize(dir); err != nil || !sum.FinalsUntimed || sum.StatusOf(false) != RunStopped || sum.WinnerArch != "" {
		t.Errorf("summary %+v (%v), want stopped without a winner", sum, err)
	}

	// A damaged model: the timing says how to retrain it.
	winner := filepath.Join(dir, rep.Finals[2].Model)
	good := readFile(t, winner)
	if err := os.WriteFile(winner, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := resume(t, cfg, &fakeExecutor{})
	if err := r.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "(rank 3)") ||
		!strings.Contains(err.Error(), "move it away, delete the line of rank 3 from final.jsonl, and resume") {
		t.Errorf("timing a damaged model: %v", err)
	}
	r.Close()
	if err := os.WriteFile(winner, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	r = resume(t, cfg, &fakeExecutor{})
	if err := r.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if rep, err := ReadReport(dir); err != nil || rep.TimingsPending || rep.Best == nil {
		t.Errorf("resumed: pending %v, best %+v (%v)", rep.TimingsPending, rep.Best, err)
	}
	if _, err := os.Stat(filepath.Join(dir, rundir.BestName)); err != nil {
		t.Error(err)
	}
}
