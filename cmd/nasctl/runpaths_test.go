package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/search/rundir"
)

// fakeRun makes a folder that looks like a finished run to the path checks:
// a config.yaml and winners/best.onnx, rank-01.onnx (all empty: nothing
// here reads them).
func fakeRun(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{rundir.FileConfig, rundir.BestName, rundir.WinnerName(1)} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A run folder given where a model file is expected is named as one, with
// its models; a plain folder is told a model file is expected. Neither
// error is "read DIR: is a directory".
func TestModelFolderGiven(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "s2")
	fakeRun(t, run)
	best := filepath.Join(run, rundir.BestName)
	asRun := run + " is a search run's folder: give one of its models, such as " + best
	asFolder := dir + " is a folder: a model file (.onnx) is expected"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", run, "--data", dir}, asRun},
		{[]string{"predict", run, "x.png"}, asRun},
		{[]string{"export", run, "--out", filepath.Join(dir, "x.onnx")}, asRun},
		{[]string{"eval", dir, "--data", dir}, asFolder},
		{[]string{"predict", dir, "x.png"}, asFolder},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "is a directory") {
			t.Errorf("%q: exit %d, %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// A file given where a run folder is expected is named as a file (with
// its run when it is in one), and runs show of an unknown name points at
// runs list rather than at starting a search.
func TestRunFolderExpected(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "s2")
	fakeRun(t, run)
	best := filepath.Join(run, rundir.BestName)
	isFile := best + " is a file, not a run folder: give the folder of a run, the one that holds config.yaml (this file's run is " + run + ")"
	spaced := filepath.Join(dir, "my runs")
	if err := os.Mkdir(spaced, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"runs", "show", best}, isFile},
		{[]string{"search", "metaqnn", "--resume", best}, isFile},
		{[]string{"search", "nasnet", "--resume", best}, isFile},
		{[]string{"runs", "show", "nonexist", "--dir", dir}, "no run named nonexist in " + dir + "; nasctl runs list --dir " + dir + " lists the runs there"},
		// --runs, as ui names the folder, is --dir.
		{[]string{"runs", "show", "nonexist", "--runs", dir}, "no run named nonexist in " + dir + "; nasctl runs list --dir " + dir + " lists the runs there"},
		// A folder with a space is quoted in the command to paste.
		{[]string{"runs", "show", "nonexist", "--dir", spaced}, "nasctl runs list --dir '" + spaced + "' lists the runs there"},
		{[]string{"runs", "show", "nonexist", "--dir", filepath.Join(dir, "nope")}, "the folder of runs " + filepath.Join(dir, "nope") + " does not exist; give it with --dir"},
		{[]string{"search", "metaqnn", "--resume", filepath.Join(dir, "gone")}, filepath.Join(dir, "gone") + " does not exist: give the folder of a run"},
		{[]string{"runs", "show", "nonexist", "--dir", best}, "no run named nonexist: " + best + " is a file, not a folder of runs; give the folder with --dir"},
		{[]string{"runs", "list", "--dir", best}, best + " is a file, not a folder of runs"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "start a search with --name") {
			t.Errorf("%q: exit %d, %q; want exit 1 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// A run folder with no winner says why and what to do: its kind's search
// command to finish it, to paste; nothing to resume when no trial was
// evaluated or every final model failed. eval and bench say the same.
func TestRunFolderWithoutWinners(t *testing.T) {
	run := filepath.Join(t.TempDir(), "my run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, lines ...any) {
		var b []byte
		for _, l := range lines {
			j, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			b = append(append(b, j...), '\n')
		}
		if err := os.WriteFile(filepath.Join(run, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	refused := rundir.Trial{Candidate: rundir.Candidate{ID: 1, Arch: "SM()"}, Status: rundir.StatusRefused, Reason: "too big"}
	ok := rundir.Trial{Candidate: rundir.Candidate{ID: 1, Arch: "SM()"}, Status: rundir.StatusOK, ValAccuracy: 0.9}
	failedFinal := rundir.FinalResult{Rank: 1, Trial: 1, Arch: "SM()", Status: rundir.StatusFailed, Reason: "broke"}
	for _, tc := range []struct {
		config       string
		trials       []any
		finals       []any
		want, absent string
	}{
		{"kind: nasnet\n", nil, nil, "its final phase has written no model yet: nasctl search nasnet --resume '" + run + "' finishes it", ""},
		{"kind: metaqnn\nfinal:\n  skip: true\n", nil, nil, "its final phase was skipped: nasctl search metaqnn --resume '" + run + "' --skip-final=false retrains its winners", ""},
		{"kind: nasnet\nproblem:\n  name: mock\n", nil, nil, "its trials are scored (mock), not trained: it has no models", ""},
		{"kind: metaqnn\ntrials: 1\n", []any{refused}, nil, "none of its trials was evaluated (" + filepath.Join(run, "trials.csv") + " says why each was refused, failed or diverged)", "--resume"},
		{"kind: metaqnn\ntrials: 1\nfinal: {top_k: 1}\n", []any{ok}, []any{failedFinal}, "its final models all failed (" + filepath.Join(run, "final.jsonl") + " says why)", "--resume"},
		// A search that ended with an error, trials evaluated: a resume goes on.
		{"kind: metaqnn\ntrials: 5\nfailure\n", []any{ok}, nil, "its search ended with an error (3 trials in a row failed): nasctl search metaqnn --resume '" + run + "' goes on", "evaluated"},
	} {
		config, failure := strings.CutSuffix(tc.config, "failure\n")
		if err := os.WriteFile(filepath.Join(run, rundir.FileConfig), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		write(rundir.FileTrials, tc.trials...)
		write(rundir.FileFinal, tc.finals...)
		os.Remove(filepath.Join(run, rundir.FileFailure))
		if failure {
			write(rundir.FileFailure, rundir.Failure{Error: "3 trials in a row failed"})
		}
		for _, args := range [][]string{{"eval", run, "--data", t.TempDir()}, {"bench", run}} {
			if code, _, errOut := runCLI(t, args...); code == 0 || !strings.Contains(errOut, tc.want) || tc.absent != "" && strings.Contains(errOut, tc.absent) {
				t.Errorf("%s %q: exit %d, %q; want %q", args[0], tc.config, code, errOut, tc.want)
			}
		}
	}
}

// A run whose search is still running (another process holds it: here
// this test, which opens it as a search does) has no winners yet because
// its final phase has not ended: eval and bench say so, and give no
// --resume, which the lock would refuse.
func TestRunFolderStillSearching(t *testing.T) {
	run := filepath.Join(t.TempDir(), "lk")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ config, want string }{
		{"kind: nasnet\n", "its search is still running in another nasctl process; its winners come when its final phase ends (watch it with nasctl ui --runs "},
		{"kind: nasnet\nfinal:\n  skip: true\n", "its search is still running in another nasctl process, and skips its final phase: once it ends, nasctl search nasnet --resume " +
			run + " --skip-final=false retrains its winners"},
	} {
		if err := os.WriteFile(filepath.Join(run, rundir.FileConfig), []byte(tc.config), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := rundir.Open(run)
		if err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"eval", run, "--data", t.TempDir()}, {"bench", run}} {
			code, _, errOut := runCLI(t, args...)
			if code == 0 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "finishes it") {
				t.Errorf("%s %q: exit %d, %q; want %q", args[0], tc.config, code, errOut, tc.want)
			}
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runs list of the folder above the runs points at the runs/ inside it.
func TestRunsListPointsInside(t *testing.T) {
	dir := t.TempDir()
	fakeRun(t, filepath.Join(dir, "runs", "s1"))
	code, out, errOut := runCLI(t, "runs", "list", "--dir", dir)
	if want := "no runs in " + dir + "; " + filepath.Join(dir, "runs") + " holds 1: nasctl runs list --dir " + filepath.Join(dir, "runs") + "\n"; code != 0 || out != want {
		t.Errorf("exit %d, %q%s; want %q", code, out, errOut, want)
	}
	if code, out, _ := runCLI(t, "runs", "list", "--dir", filepath.Join(dir, "runs", "s1")); code != 0 || out != "no runs in "+filepath.Join(dir, "runs", "s1")+"\n" {
		t.Errorf("a folder with nothing inside: exit %d, %q", code, out)
	}
}

// runs list marks a winner at chance beside its test accuracy, and says so
// in its JSON. (--runs, as ui names the folder, is --dir.)
func TestRunsListWinnerAtChance(t *testing.T) {
	runs := t.TempDir()
	run := filepath.Join(runs, "flat")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	trial, _ := json.Marshal(rundir.Trial{Candidate: rundir.Candidate{ID: 1, Arch: "SM()"}, Status: rundir.StatusOK, ValAccuracy: 0.52})
	final, _ := json.Marshal(rundir.FinalResult{Rank: 1, Trial: 1, Arch: "SM()", Status: rundir.StatusOK, ValAccuracy: 0.52, TestAccuracy: 0.5125, AtChance: true})
	for name, b := range map[string][]byte{rundir.FileConfig: []byte("kind: metaqnn\ntrials: 1\nfinal: {top_k: 1}\n"),
		rundir.FileTrials: append(trial, '\n'), rundir.FileFinal: append(final, '\n')} {
		if err := os.WriteFile(filepath.Join(run, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, errOut := runCLI(t, "runs", "list", "--dir", runs); code != 0 || !strings.Contains(out, "0.5125 (at chance)") {
		t.Errorf("runs list: exit %d, %q%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "runs", "list", "--runs", runs, "--json"); code != 0 || !strings.Contains(out, `"winner_at_chance": true`) {
		t.Errorf("runs list --json: exit %d, %q%s", code, out, errOut)
	}
}
