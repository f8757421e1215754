package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/nasctl/nasctl/search/rundir"
)

// A search process (two workers) is killed with SIGKILL 20 times, 15 times
// in its trial phase (each time once one more trial is recorded, a few
// milliseconds later) and 5 times in its final phase (at once, or once one
// more final result is recorded), and resumed each time: no recorded trial or
// final result is lost or changed, none is recorded twice, and the run
// completes with the trials and final results of an uninterrupted one.
func TestSearchSurvivesKills(t *testing.T) {
	bin := buildNasctl(t)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "leaves")
	generateLeaves(t, data, 400, 16, 5)
	config := filepath.Join(tmp, "c.yaml")
	if err := os.WriteFile(config, []byte("final:\n  epoch_factor: 8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := filepath.Join(tmp, "runs")
	args := []string{"search", "metaqnn", "--preset", "cpu", "--config", config, "--data", data, "--dir", runs, "--input", "16x16x1",
		"--schedule", "1.0:40", "--epochs", "2", "--batch", "16", "--top-k", "5", "--threads", "1", "--workers", "2", "--seed", "9", "--quiet"}
	if out, err := exec.Command(bin, append(args, "--name", "whole")...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted: %v\n%s", err, out)
	}
	whole := filepath.Join(runs, "whole")
	wantTrials, wantFinals := readLog(t, whole), readFinals(t, whole)

	dir := filepath.Join(runs, "killed")
	r := rand.New(rand.NewPCG(20, 26))
	var kept []rundir.Trial // every trial recorded at some kill
	keptFinals := map[int]rundir.FinalResult{}
	kills, finalKills := 0, 0
	for kills < 20 {
		cmd := exec.Command(bin, "search", "metaqnn", "--resume", dir, "--quiet")
		if kills == 0 {
			cmd = exec.Command(bin, append(args, "--name", "killed")...)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		trials, finals := count(dir, rundir.FileTrials), count(dir, rundir.FileFinal)
		var ready func() bool
		switch {
		case kills < 15: // one more trial each: two trials in flight may land together, and 15 kills must fit in 40 trials
			ready = func() bool { return count(dir, rundir.FileTrials) >= trials+1 }
		case kills%2 == 1: // as soon as the final phase runs
			ready = func() bool { return count(dir, rundir.FileTrials) >= len(wantTrials) }
		default: // once one more final result is recorded
			ready = func() bool { return count(dir, rundir.FileFinal) > finals }
		}
		if done := waitFor(t, ready, exited); done {
			break // the run finished before the kill
		}
		time.Sleep(time.Duration(r.IntN(40)) * time.Millisecond)
		if kills >= 15 && count(dir, rundir.FileTrials) < len(wantTrials) {
			t.Fatalf("kill %d: the trial phase is not over (%d trials)", kills+1, count(dir, rundir.FileTrials))
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		kills++
		if kills > 15 {
			finalKills++
		}
		now := readLog(t, dir)
		checkKept(t, kills, now, kept)
		kept = now
		for _, f := range readFinals(t, dir) {
			if prev, ok := keptFinals[f.Rank]; ok && !reflect.DeepEqual(prev, f) {
				t.Fatalf("kill %d: final rank %d changed", kills, f.Rank)
			}
			keptFinals[f.Rank] = f
		}
	}
	if out, err := exec.Command(bin, "search", "metaqnn", "--resume", dir, "--quiet").CombinedOutput(); err != nil {
		t.Fatalf("last resume: %v\n%s", err, out)
	}
	if kills != 20 || finalKills != 5 {
		t.Fatalf("%d kills, %d in the final phase; want 20 and 5", kills, finalKills)
	}
	got := readLog(t, dir)
	checkKept(t, kills+1, got, kept)
	sameLogs(t, got, wantTrials)
	finals := readFinals(t, dir)
	if len(finals) != len(wantFinals) {
		t.Fatalf("%d final results, want %d", len(finals), len(wantFinals))
	}
	byRank := map[int]rundir.FinalResult{}
	for _, f := range wantFinals {
		byRank[f.Rank] = f
	}
	seen := map[int]bool{}
	for _, f := range finals {
		w := byRank[f.Rank]
		if seen[f.Rank] || f.Trial != w.Trial || f.TestAccuracy != w.TestAccuracy || f.ValAccuracy != w.ValAccuracy {
			t.Errorf("final rank %d: %+v, uninterrupted %+v (or recorded twice)", f.Rank, f, w)
		}
		seen[f.Rank] = true
		if k, ok := keptFinals[f.Rank]; ok && !reflect.DeepEqual(k, f) {
			t.Errorf("final rank %d changed after a kill", f.Rank)
		}
	}
	t.Logf("20 kills (5 in the final phase), %d final results kept across them", len(keptFinals))
}

// checkKept fails unless every trial of before is in now unchanged, and no
// trial is recorded twice.
func checkKept(t *testing.T, kill int, now, before []rundir.Trial) {
	t.Helper()
	byID := map[int]rundir.Trial{}
	for _, tr := range now {
		if _, dup := byID[tr.ID]; dup {
			t.Fatalf("after kill %d: trial %d recorded twice", kill, tr.ID)
		}
		byID[tr.ID] = tr
	}
	for _, b := range before {
		if a, ok := byID[b.ID]; !ok || !reflect.DeepEqual(a.Untimed(), b.Untimed()) {
			t.Fatalf("after kill %d: trial %d lost or changed", kill, b.ID)
		}
	}
}

// count is the number of complete lines of a run file (0 when absent).
func count(dir, name string) int {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// waitFor polls ready until it holds (false) or the process exits (true).
func waitFor(t *testing.T, ready func() bool, exited chan error) bool {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !ready() {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("the search failed: %v", err)
			}
			return true
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no progress within 2 minutes")
		}
	}
	return false
}

func readFinals(t *testing.T, dir string) []rundir.FinalResult {
	t.Helper()
	fs, err := rundir.ReadFinals(dir)
	if err != nil {
		t.Fatal(fmt.Errorf("%s: %w", dir, err))
	}
	return fs
}
