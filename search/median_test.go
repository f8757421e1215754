package search

import (
	"context"
	"encoding/csv"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
)

// trained is a trial record with the given validation accuracy per epoch
// of its last attempt (attempt restarts; earlier attempts in first).
func trained(id int, status rundir.Status, restarts int, first []float64, vals ...float64) rundir.Trial {
	t := rundir.Trial{Candidate: rundir.Candidate{ID: id}, Status: status, Restarts: restarts}
	for i, v := range first {
		t.Epochs = append(t.Epochs, runtime.EpochRecord{Attempt: 0, Epoch: i + 1, ValAccuracy: v})
	}
	for i, v := range vals {
		t.Epochs = append(t.Epochs, runtime.EpochRecord{Attempt: restarts, Epoch: i + 1, ValAccuracy: v})
	}
	return t
}

// The thresholds, worked by hand: the best so far of each trained trial,
// carried past its last epoch, and the median of those per epoch from
// After on. Reused, refused and failed trials, and earlier attempts, do
// not count.
func TestMedianStopThresholds(t *testing.T) {
	earlier := []rundir.Trial{
		trained(1, rundir.StatusOK, 0, nil, 0.6, 0.7, 0.8),               // best 0.6 0.7 0.8
		trained(2, rundir.StatusOK, 0, nil, 0.9, 0.5, 0.95),              // 0.9 0.9 0.95
		trained(3, rundir.StatusOK, 0, nil, 0.5, 0.55),                   // 0.5 0.55 (0.55)
		trained(4, rundir.StatusReused, 0, nil, 0.1, 0.1, 0.1),           // not counted
		trained(5, rundir.StatusFailed, 0, nil, 0.1),                     // not counted
		trained(6, rundir.StatusOK, 1, []float64{0.99}, 0.7, 0.72, 0.74), // 0.7 0.72 0.74
		trained(7, rundir.StatusRefused, 0, nil),                         // not counted
	}
	got := MedianStop{After: 2, MinTrials: 4}.thresholds(earlier, 4)
	// Epoch 2: 0.7 0.9 0.55 0.72; epoch 3: 0.8 0.95 0.55 0.74; none after
	// the last epoch, which would only mark a full training as stopped.
	want := []float64{0, 0.71, 0.77, 0}
	if len(got) != len(want) {
		t.Fatalf("thresholds %v, want %v", got, want)
	}
	for i := range want {
		if d := got[i] - want[i]; d > 1e-12 || d < -1e-12 {
			t.Fatalf("thresholds %v, want %v", got, want)
		}
	}
	if odd := (MedianStop{After: 1, MinTrials: 3}).thresholds(earlier[:3], 3); !slices.Equal(odd, []float64{0.6, 0.7, 0}) {
		t.Errorf("three trials: %v, want [0.6 0.7 0]", odd)
	}
	if got := (MedianStop{After: 2, MinTrials: 5}).thresholds(earlier, 4); got != nil {
		t.Errorf("4 trained trials, 5 wanted: %v", got)
	}
	if got := (MedianStop{}).thresholds(earlier, 4); got != nil {
		t.Errorf("rule off: %v", got)
	}
}

// A search with the rule: each trial trains with the medians of the trials
// learned before it was proposed (IDs up to its own minus the lag, 6 for 3
// workers), once MinTrials of them are known; the trials that fell below
// stop there and are recorded as pruned, the others never fell below; and
// a second run with random training times repeats every trial.
func TestMedianStopSearch(t *testing.T) {
	var runs [2][]rundir.Trial
	var jobs []Job
	var dir string
	for i := range runs {
		cfg := testConfig(t, t.TempDir())
		cfg.Workers, cfg.Final.Skip = 3, true
		cfg.Train.Epochs, cfg.Train.MedianStop = 5, MedianStop{After: 2, MinTrials: 3}
		exec := &fakeExecutor{jitter: true, curves: true}
		s := newSearch(t, cfg, exec)
		if err := s.Run(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		runs[i], jobs, dir = read(t, rundir.ReadTrials, s.Dir()), exec.jobs, s.Dir()
	}
	sameTrials(t, runs[1], runs[0])
	trials := runs[0]
	byID := map[int]rundir.Trial{}
	for _, tr := range trials {
		byID[tr.ID] = tr
	}
	const lag = 6
	pruned, checked := 0, 0
	for _, j := range jobs {
		var curves [][]float64 // best so far, per epoch, of the trained trials up to j.Trial-lag
		for id := 1; id <= j.Trial-lag; id++ {
			if tr, ok := byID[id]; ok && tr.Status == rundir.StatusOK {
				c := bestSoFar(tr)
				for len(c) < 5 {
					c = append(c, c[len(c)-1])
				}
				curves = append(curves, c)
			}
		}
		if len(curves) < 3 {
			if j.Config.StopBelow != nil {
				t.Errorf("trial %d: %d earlier trials, thresholds %v", j.Trial, len(curves), j.Config.StopBelow)
			}
			continue
		}
		want := make([]float64, 5)
		for e := 2; e < 5; e++ {
			var at []float64
			for _, c := range curves {
				at = append(at, c[e-1])
			}
			slices.Sort(at)
			want[e-1] = (at[(len(at)-1)/2] + at[len(at)/2]) / 2
		}
		if !slices.Equal(j.Config.StopBelow, want) {
			t.Fatalf("trial %d: thresholds %v, want %v", j.Trial, j.Config.StopBelow, want)
		}
		checked++
		tr := byID[j.Trial]
		best := bestSoFar(tr)
		for e := 2; e <= len(best); e++ {
			below := best[e-1] < want[e-1]
			if last := e == len(best); below != (last && tr.Pruned) {
				t.Errorf("trial %d, epoch %d of %d: best %.4f, median %.4f, pruned %v", j.Trial, e, len(best), best[e-1], want[e-1], tr.Pruned)
			}
		}
		if tr.Pruned {
			pruned++
		}
	}
	if pruned == 0 || pruned == checked {
		t.Errorf("%d of %d trials with thresholds stopped early; want some, not all", pruned, checked)
	}
	t.Logf("%d of %d trials with thresholds stopped early", pruned, checked)

	// The report counts them, and trials.csv marks them.
	if md, want := readFile(t, filepath.Join(dir, rundir.FileReport)), fmt.Sprintf("Median stopping from epoch 2: %d trials stopped early", pruned); !strings.Contains(md, want) {
		t.Errorf("report.md lacks %q:\n%s", want, md)
	}
	rows, err := csv.NewReader(strings.NewReader(readFile(t, filepath.Join(dir, rundir.FileTrialsCSV)))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col, marked := slices.Index(rows[0], "pruned"), 0
	if col < 0 {
		t.Fatalf("trials.csv has no pruned column: %q", rows[0])
	}
	for _, row := range rows[1:] {
		id, _ := strconv.Atoi(row[0])
		if row[col] != strconv.FormatBool(byID[id].Pruned) {
			t.Errorf("trials.csv: trial %d pruned %q, trials.jsonl %v", id, row[col], byID[id].Pruned)
		}
		if row[col] == "true" {
			marked++
		}
	}
	if marked != pruned {
		t.Errorf("trials.csv: %d marked pruned, want %d", marked, pruned)
	}
}

// The thresholds of the last trial of a baker2017-sized run: 2,700 earlier
// trials of 20 epochs. A run computes them once per trial, so the run's
// total is about half of 2,700 times this (docs/search-quality.md,
// "Median stopping").
func BenchmarkMedianStopThresholds(b *testing.B) {
	const epochs = 20
	earlier := bakerSized(epochs)
	m := MedianStop{After: 3}
	for b.Loop() {
		if m.thresholds(earlier, epochs) == nil {
			b.Fatal("no thresholds")
		}
	}
}

// Successive halving's thresholds, worked by hand: rungs at epochs 1 and 3
// of 5 (eta 3; a rung at 9 would be past the end), and at each the 2/3
// quantile, linearly interpolated (R's type 4: the k-th smallest of n at
// k/n), of the best so far of the trained trials that reached the rung.
func TestHalvingThresholds(t *testing.T) {
	earlier := []rundir.Trial{
		trained(1, rundir.StatusOK, 0, nil, 0.6, 0.7, 0.8),              // best 0.6 0.7 0.8
		trained(2, rundir.StatusOK, 0, nil, 0.9, 0.5, 0.95),             // 0.9 0.9 0.95
		trained(3, rundir.StatusOK, 0, nil, 0.5, 0.55),                  // 0.5 (stopped before rung 3)
		trained(4, rundir.StatusReused, 0, nil, 0.1, 0.1, 0.1),          // not counted
		trained(5, rundir.StatusOK, 1, []float64{0.99}, 0.7, 0.72, 0.6), // 0.7 . 0.72
		trained(6, rundir.StatusOK, 0, nil, 0.2, 0.3, 0.4, 0.5),         // 0.2 . 0.4
	}
	h := Halving{First: 1, Eta: 3, MinTrials: 4}
	if r := h.rungs(5); !slices.Equal(r, []int{1, 3}) {
		t.Fatalf("rungs %v, want [1 3]", r)
	}
	got := h.thresholds(earlier, 5)
	// Rung 1: 0.2 0.5 0.6 0.7 0.9, 2/3 of 5 = 3.33: 0.6 + 0.33 x 0.1.
	// Rung 3: 0.4 0.72 0.8 0.95, 2/3 of 4 = 2.67: 0.72 + 0.67 x 0.08.
	want := []float64{0.6 + 0.1/3, 0, 0.72 + 0.08*2/3, 0, 0}
	if len(got) != len(want) {
		t.Fatalf("thresholds %v, want %v", got, want)
	}
	for i := range want {
		if d := got[i] - want[i]; d > 1e-12 || d < -1e-12 {
			t.Fatalf("thresholds %v, want %v", got, want)
		}
	}
	// Rung 3 has 4 trials, too few for 5: rung 1 alone.
	if got := (Halving{First: 1, Eta: 3, MinTrials: 5}).thresholds(earlier, 5); len(got) != 5 || got[2] != 0 || got[0] == 0 {
		t.Errorf("min 5 trials: %v, want rung 1 alone", got)
	}
	if got := (Halving{First: 1, Eta: 3, MinTrials: 6}).thresholds(earlier, 5); got != nil {
		t.Errorf("min 6 trials: %v, want nil", got)
	}
	if r := (Halving{First: 2, Eta: 3}).rungs(10); !slices.Equal(r, []int{2, 6}) {
		t.Errorf("first 2, eta 3, 10 epochs: rungs %v, want [2 6]", r)
	}
	if r := (Halving{First: 5, Eta: 2}).rungs(5); r != nil {
		t.Errorf("a rung at the last epoch: %v, want none", r)
	}
	if got := (Halving{}).thresholds(earlier, 5); got != nil {
		t.Errorf("rule off: %v", got)
	}
}

// A search with both rules: each trial trains with, per epoch, the higher
// of the median and the halving threshold of the trials learned before it
// was proposed; some trials stop, and the report names both rules.
func TestHalvingSearch(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Workers, cfg.Final.Skip = 3, true
	cfg.Train.Epochs = 5
	cfg.Train.MedianStop = MedianStop{After: 2, MinTrials: 3}
	cfg.Train.Halving = Halving{First: 1, Eta: 2, MinTrials: 4}
	exec := &fakeExecutor{jitter: true, curves: true}
	s := newSearch(t, cfg, exec)
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	trials := read(t, rundir.ReadTrials, s.Dir())
	byID := map[int]rundir.Trial{}
	for _, tr := range trials {
		byID[tr.ID] = tr
	}
	const lag = 6
	pruned, halved := 0, 0
	for _, j := range exec.jobs {
		var earlier []rundir.Trial
		for id := 1; id <= j.Trial-lag; id++ {
			if tr, ok := byID[id]; ok {
				earlier = append(earlier, tr)
			}
		}
		m := cfg.Train.MedianStop.thresholds(earlier, 5)
		h := cfg.Train.Halving.thresholds(earlier, 5)
		want := make([]float64, 5)
		for e := range want {
			if m != nil {
				want[e] = m[e]
			}
			if h != nil && h[e] > want[e] {
				want[e] = h[e]
			}
		}
		if m == nil && h == nil {
			want = nil
		}
		if !slices.Equal(j.Config.StopBelow, want) {
			t.Fatalf("trial %d: thresholds %v, want %v (median %v, halving %v)", j.Trial, j.Config.StopBelow, want, m, h)
		}
		tr := byID[j.Trial]
		if best := bestSoFar(tr); tr.Pruned {
			pruned++
			if e := len(best); h != nil && (e == 1 || e == 2 || e == 4) && best[e-1] < h[e-1] && (m == nil || best[e-1] >= m[e-1]) {
				halved++
			}
		}
	}
	if pruned == 0 || halved == 0 {
		t.Errorf("%d trials stopped early, %d by halving alone; want some of each", pruned, halved)
	}
	md := readFile(t, filepath.Join(s.Dir(), rundir.FileReport))
	if want := fmt.Sprintf("Median stopping from epoch 2 and successive halving at epochs 1, 2, 4 (the best 1/2 go on): %d trials stopped early", pruned); !strings.Contains(md, want) {
		t.Errorf("report.md lacks %q:\n%s", want, md)
	}
}

// Successive halving's thresholds for the same last trial of a
// baker2017-sized run (docs/search-quality.md, "Successive halving").
func BenchmarkHalvingThresholds(b *testing.B) {
	const epochs = 20
	earlier := bakerSized(epochs)
	h := Halving{First: 2, Eta: 3, MinTrials: 10}
	for b.Loop() {
		if h.thresholds(earlier, epochs) == nil {
			b.Fatal("no thresholds")
		}
	}
}

// With SpareGreedy, MetaQNN's greedy proposals train without halving's
// thresholds, and the exploring ones with them.
func TestHalvingSparesGreedy(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Workers, cfg.Final.Skip = 1, true
	cfg.Train.Epochs = 5
	cfg.Train.Halving = Halving{First: 1, Eta: 2, MinTrials: 3, SpareGreedy: true}
	cfg.MetaQNN.Schedule.EpsilonSchedule = controller.EpsilonSchedule{{Epsilon: 1, Models: 8}, {Epsilon: 0.1, Models: 24}}
	cfg.Trials = 32
	cfg.MetaQNN.QLearning.NextBest, cfg.MetaQNN.QLearning.Redraw = 50, 5 // greedy draws that are new networks
	exec := &fakeExecutor{curves: true}
	s := newSearch(t, cfg, exec)
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	greedy := map[int]bool{}
	for _, tr := range read(t, rundir.ReadTrials, s.Dir()) {
		greedy[tr.ID] = tr.Greedy
	}
	var spared, screened int
	for _, j := range exec.jobs {
		switch {
		case greedy[j.Trial] && j.Config.StopBelow != nil:
			t.Errorf("greedy trial %d: thresholds %v", j.Trial, j.Config.StopBelow)
		case greedy[j.Trial]:
			spared++
		case j.Config.StopBelow != nil:
			screened++
		}
	}
	if spared == 0 || screened == 0 {
		t.Errorf("%d greedy trials spared, %d exploring ones screened; want some of each", spared, screened)
	}
}

// bakerSized is 2,700 trained trials of the given number of epochs, with
// accuracies spread over [0, 1): the earlier trials of the last trial of a
// baker2017-sized run.
func bakerSized(epochs int) []rundir.Trial {
	earlier := make([]rundir.Trial, 2700)
	for i := range earlier {
		vals := make([]float64, epochs)
		for e := range vals {
			vals[e] = float64((i*7919+e*104729)%1000) / 1000
		}
		earlier[i] = trained(i+1, rundir.StatusOK, 0, nil, vals...)
	}
	return earlier
}
