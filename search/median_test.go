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
	// Epoch 2: 0.7 0.9 0.55 0.72; epoch 3: 0.8 0.95 0.55 0.74; epoch 4 as 3.
	want := []float64{0, 0.71, 0.77, 0.77}
	if len(got) != len(want) {
		t.Fatalf("thresholds %v, want %v", got, want)
	}
	for i := range want {
		if d := got[i] - want[i]; d > 1e-12 || d < -1e-12 {
			t.Fatalf("thresholds %v, want %v", got, want)
		}
	}
	if odd := (MedianStop{After: 1, MinTrials: 3}).thresholds(earlier[:3], 2); !slices.Equal(odd, []float64{0.6, 0.7}) {
		t.Errorf("three trials: %v, want [0.6 0.7]", odd)
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
		for e := 2; e <= 5; e++ {
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
	const trials, epochs = 2700, 20
	earlier := make([]rundir.Trial, trials)
	for i := range earlier {
		vals := make([]float64, epochs)
		for e := range vals {
			vals[e] = float64((i*7919+e*104729)%1000) / 1000
		}
		earlier[i] = trained(i+1, rundir.StatusOK, 0, nil, vals...)
	}
	m := MedianStop{After: 3}
	for b.Loop() {
		if m.thresholds(earlier, epochs) == nil {
			b.Fatal("no thresholds")
		}
	}
}
