package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nasctl/nasctl/cluster"
	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
)

// built is the command compiled once for the tests of this process, in a
// folder TestMain removes.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// buildNasctl compiles the command (once per test process) and returns the
// binary.
func buildNasctl(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "nasctl-test-bin"); built.err != nil {
			return
		}
		bin := filepath.Join(built.dir, "nasctl")
		out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		built.bin = bin
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// A real search process (two workers) is killed with SIGKILL in the middle
// of its run, then resumed: every trial recorded before the kill is kept as
// it was, none is trained twice, and the resumed run ends with the trials of
// an uninterrupted one (training is deterministic; the trials in flight at
// the kill are trained again).
func TestSearchKillAndResume(t *testing.T) {
	bin := buildNasctl(t)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "leaves")
	generateLeaves(t, data, 240, 16, 4)
	runs := filepath.Join(tmp, "runs")
	const total = 16
	args := []string{"search", "metaqnn", "--preset", "cpu", "--data", data, "--dir", runs,
		"--input", "16x16x1", "--schedule", "1.0:10,0.5:6", "--epochs", "2", "--batch", "16", "--skip-final", "--threads", "1", "--seed", "3", "--json"}
	dir := filepath.Join(runs, "kill")
	cmd := startUntil(t, exec.Command(bin, append(args, "--name", "kill")...), dir, 4)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	before := readLog(t, dir)
	if len(before) >= total {
		t.Fatalf("the search finished (%d trials) before it was killed", len(before))
	}
	// Killed, it is stopped: its lock names a process that is gone.
	if code, listOut, _ := runCLI(t, "runs", "list", "--dir", runs, "--json"); code != 0 || !strings.Contains(listOut, `"status": "stopped"`) {
		t.Errorf("runs list after the kill: %d\n%s", code, listOut)
	}

	out, err := exec.Command(bin, "search", "metaqnn", "--resume", dir, "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	after := readLog(t, dir)
	if len(after) != total {
		t.Fatalf("%d trials after resuming, want %d", len(after), total)
	}
	byID := map[int]rundir.Trial{}
	for _, a := range after {
		byID[a.ID] = a
	}
	for _, b := range before {
		if a, b := byID[b.ID].Untimed(), b.Untimed(); !reflect.DeepEqual(a, b) {
			t.Errorf("trial %d changed across the resume: %+v -> %+v", b.ID, b, a)
		}
	}
	if out, err := exec.Command(bin, append(args, "--name", "whole")...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted: %v\n%s", err, out)
	}
	sameLogs(t, after, readLog(t, filepath.Join(runs, "whole")))
	ids := map[int]bool{}
	trained := map[string]int{}
	for _, tr := range after {
		if ids[tr.ID] {
			t.Errorf("trial id %d recorded twice", tr.ID)
		}
		ids[tr.ID] = true
		if tr.Status != rundir.StatusReused {
			if prev, ok := trained[tr.Arch]; ok {
				t.Errorf("%s trained by trials %d and %d", tr.Arch, prev, tr.ID)
			}
			trained[tr.Arch] = tr.ID
		}
	}
	t.Logf("killed after %d trials, resumed to %d", len(before), len(after))

	// The run is listed and shown.
	code, listOut, _ := runCLI(t, "runs", "list", "--dir", runs)
	if code != 0 || !regexp.MustCompile(`\nkill +metaqnn +finished +16/16 `).MatchString(listOut) {
		t.Errorf("runs list: %d\n%s", code, listOut)
	}
	code, showOut, _ := runCLI(t, "runs", "show", "kill", "--dir", runs)
	if code != 0 || !strings.Contains(showOut, "## Validation accuracy per epsilon") {
		t.Errorf("runs show: %d\n%s", code, showOut)
	}
	// A second search into the same name is refused with a hint, as a usage error.
	code, _, errOut := runCLI(t, append(args, "--name", "kill")...)
	if code != 2 || !strings.Contains(errOut, "resume it with --resume") {
		t.Errorf("existing run: exit %d, %s", code, errOut)
	}
	// A resume with another worker count would say that the trials after
	// it change (at the end below); of a run with no trial left, it says
	// nothing of the kind.
	for _, workers := range []string{"3", "2"} {
		code, _, errOut := runCLI(t, "search", "metaqnn", "--resume", dir, "--workers", workers, "--quiet")
		if code != 0 || strings.Contains(errOut, "note: --workers") {
			t.Errorf("resume of a finished run with --workers %s: exit %d, %s", workers, code, errOut)
		}
	}
	// Images moved to a folder that is not there: a usage error.
	missing := filepath.Join(t.TempDir(), "moved")
	if code, _, errOut := runCLI(t, "search", "metaqnn", "--resume", dir, "--data", missing); code != exitUsage ||
		!strings.Contains(errOut, "--data "+missing+": no such file or directory") {
		t.Errorf("resume with a missing --data: exit %d, %s", code, errOut)
	}
	// The run was searched with --skip-final: a resume with
	// --skip-final=false adds the final phase and trains no trial again,
	// with a final augmentation of its own when given.
	code, _, errOut = runCLI(t, "search", "metaqnn", "--resume", dir, "--skip-final=false", "--top-k", "2")
	if code != exitUsage || !strings.Contains(errOut, "--top-k cannot change a resumed run") {
		t.Errorf("resume with --top-k: exit %d, %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "search", "metaqnn", "--resume", dir, "--skip-final=false", "--final-augment", "flips,shift:8")
	if code != exitUsage || !strings.Contains(errOut, "--final-augment: augmentation flips,shift:8: a shift of 8 pixels would move images of 16x16") {
		t.Errorf("resume with a shift too large for the run's input: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "search", "metaqnn", "--resume", dir, "--skip-final=false", "--final-augment", "flips,shift:1", "--quiet"); code != 0 {
		t.Fatalf("resume with --skip-final=false: exit %d, %s", code, errOut)
	}
	finals, err := rundir.ReadFinals(dir)
	if err != nil || len(finals) != 10 {
		t.Errorf("finals after the resume: %d (%v), want the cpu preset's 10", len(finals), err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, rundir.WinnerName(1))); err != nil {
		t.Error(err)
	} else if info, err := onnxgen.ReadModelInfo(b); err != nil || !strings.Contains(info.Meta[onnxgen.MetaTraining], `"augment":"flips,shift:1"`) {
		t.Errorf("final #1 trained with %v, %v; want --final-augment's flips,shift:1", info, err)
	}
	// Once finals are recorded, the final augmentation stays.
	code, _, errOut = runCLI(t, "search", "metaqnn", "--resume", dir, "--final-augment", "flips")
	if code != exitUsage || !strings.Contains(errOut, "the final phase has begun (10 final models), so final.augment (--final-augment) can no longer change") {
		t.Errorf("resume with --final-augment after the final phase: exit %d, %s", code, errOut)
	}
	sameLogs(t, readLog(t, dir), after)
	// Given more trials, the trials from here on are those of the new count.
	code, _, errOut = runCLI(t, "search", "metaqnn", "--resume", dir, "--workers", "3", "--trials", "17", "--skip-final", "--quiet")
	if code != 0 || !strings.Contains(errOut, "note: --workers 3, the run started with 2: from here on the trials are those of a run with 3 workers") {
		t.Errorf("resume with --workers 3 for one more trial: exit %d, %s", code, errOut)
	}
}

// A search that cannot start (a folder without images) leaves no run
// directory behind, so the same command works once the data is there.
func TestSearchFailedStartLeavesNothing(t *testing.T) {
	runs := t.TempDir()
	empty := filepath.Join(runs, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "search", "metaqnn", "--data", empty, "--dir", runs, "--name", "x")
	if code != 1 || !strings.Contains(errOut, empty) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(runs, "x")); !os.IsNotExist(err) {
		t.Errorf("run directory left behind: %v", err)
	}
}

// An empty --name is refused before anything is written: the search would
// otherwise go to runs/metaqnn (or runs/nasnet), not the default name that
// the help promises.
func TestSearchEmptyName(t *testing.T) {
	runs := t.TempDir()
	for _, tc := range []struct{ kind, name string }{{"metaqnn", "metaqnn-cpu"}, {"nasnet", "nasnet-cpu"}} {
		code, _, errOut := runCLI(t, "search", tc.kind, "--name", "", "--dir", runs, "--data", runs)
		if want := `--name "": give a run name, or leave --name out for the default (here ` + tc.name + ")"; code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("%s: exit %d, %q; want exit 2 and %q", tc.kind, code, errOut, want)
		}
	}
	if entries, _ := os.ReadDir(runs); len(entries) > 0 {
		t.Errorf("%s holds %d entries, want none", runs, len(entries))
	}
}

func TestSearchSampleAndUsage(t *testing.T) {
	// --seed left out is 1, as its help says; a broker token in the
	// environment (for a cluster) is no flag given.
	t.Setenv("NASCTL_BROKER_TOKEN", "secret")
	_, one, errOut := runCLI(t, "search", "metaqnn", "--sample", "5", "--seed", "1")
	if code, none, _ := runCLI(t, "search", "metaqnn", "--sample", "5"); code != 0 || none != one || one == "" {
		t.Errorf("--sample 5 without --seed: exit %d, %q; with --seed 1 %q (%s)", code, none, one, errOut)
	}
	code, out, _ := runCLI(t, "search", "metaqnn", "--sample", "50", "--space", "baker2017", "--seed", "9")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 50 {
		t.Fatalf("sample: exit %d, %d lines", code, len(lines))
	}
	for _, l := range lines {
		if code, _, errOut := runCLI(t, "arch", "inspect", l, "--space", "baker2017"); code != 0 {
			t.Errorf("sampled %q invalid: %s", l, errOut)
		}
	}
	// A space of one's own from --config: strided convolutions drawn; a
	// NASNet configuration refused.
	strided := filepath.Join(t.TempDir(), "strided.yaml")
	if err := os.WriteFile(strided, []byte("metaqnn:\n  space:\n    conv_strides: [1, 2]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "search", "metaqnn", "--sample", "30", "--config", strided); code != 0 || !regexp.MustCompile(`C\(\d+,\d,2\)`).MatchString(out) {
		t.Errorf("--sample --config with conv_strides [1, 2]: exit %d, no strided convolution in\n%s%s", code, out, errOut)
	}
	cells := filepath.Join(t.TempDir(), "cells.yaml")
	if err := os.WriteFile(cells, []byte("kind: nasnet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "search", "metaqnn", "--sample", "3", "--config", cells); code != 2 || !strings.Contains(errOut, "describes a nasnet search, whose architectures --sample does not draw") {
		t.Errorf("--sample --config of a NASNet search: exit %d, %s", code, errOut)
	}
	code, out, _ = runCLI(t, "search", "metaqnn", "--sample", "50", "--space", "baker2017", "--seed", "9", "--json")
	var sampled []string
	if err := json.Unmarshal([]byte(out), &sampled); code != 0 || err != nil || !slices.Equal(sampled, lines) {
		t.Errorf("--sample --json: exit %d, %v: %q, want the same 50 as the text", code, err, sampled)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"search", "metaqnn", "--preset", "gpu"}, "valid: cpu, study, baker2017"},
		{[]string{"search", "metaqnn", "--name", "x"}, "data: an image folder is required"},
		{[]string{"search", "metaqnn", "--data", ".", "--schedule", "1.0:x"}, "--schedule"},
		{[]string{"search", "metaqnn", "--data", ".", "--schedule", "scaled"}, "--schedule scaled fits the run's schedule to --trials: give --trials too"},
		{[]string{"search", "metaqnn", "--resume", "runs/x", "--epochs", "3"}, "cannot change a resumed run"},
		{[]string{"search", "metaqnn", "--resume", "runs/x", "--trials", "0"}, "--trials must be at least 1, got 0"},
		{[]string{"search", "metaqnn", "--data", ".", "--trials", "0"}, "--trials must be at least 1, got 0"},
		{[]string{"search", "metaqnn", "--sample", "0"}, "must be at least 1"},
		// Zeros that would silently mean the preset's values, before any image is read.
		{[]string{"search", "metaqnn", "--data", ".", "--epochs", "0"}, "--epochs must be at least 1, got 0"},
		{[]string{"search", "metaqnn", "--data", ".", "--batch", "0"}, "--batch must be at least 1, got 0"},
		{[]string{"search", "metaqnn", "--data", ".", "--lr", "0"}, "--lr must be positive, got 0"},
		{[]string{"search", "metaqnn", "--data", ".", "--reward", "accuracy", "--target-ms", "0.1"}, "--target-ms is the target latency of the mnasnet reward, and the accuracy reward does not use it"},
		{[]string{"search", "metaqnn", "--data", ".", "--target-ms", "0.1"}, "add --reward mnasnet, or leave --target-ms out"},
		{[]string{"search", "metaqnn", "--data", ".", "--workers", "0"}, "--workers must be at least 1, got 0"},
		{[]string{"search", "metaqnn", "--data", ".", "--data-fraction", "0"}, "--data-fraction 0: give the share"},
		{[]string{"search", "nasnet", "--data", ".", "--data-fraction", "0"}, "--data-fraction 0: give the share"},
		{[]string{"search", "nasnet", "--data", ".", "--augment", "rotate"}, `--augment: unknown augmentation "rotate" (valid: none, mirror, flips, shift:N, brightness:B, contrast:C, or several such as flips,shift:2,brightness:0.2)`},
		{[]string{"search", "metaqnn", "--data", ".", "--input", "16x16x1", "--augment", "flips,shift:8"}, "train.augment: augmentation flips,shift:8: a shift of 8 pixels would move images of 16x16 by half their size or more; give at most shift:7"},
		{[]string{"search", "metaqnn", "--resume", "runs/x", "--augment", "flips"}, "cannot change a resumed run"},
		{[]string{"search", "metaqnn", "--data", ".", "--final-augment", "flips,shift"}, `--final-augment: `},
		{[]string{"search", "metaqnn", "--resume", "runs/x", "--final-augment", "flips,shift"}, `--final-augment: `},
		{[]string{"search", "metaqnn", "--data", ".", "--input", "16x16x2"}, "--input 16x16x2: images are read with 1 channel"},
		{[]string{"search", "bogus"}, "valid: metaqnn"},
		// Negative limits are mistakes, not "no limit" (0, whose message
		// TestCPUPresetBaseline checks).
		{[]string{"search", "metaqnn", "--data", ".", "--max-params", "-5"}, "--max-params must be positive, got -5"},
		{[]string{"search", "nasnet", "--data", ".", "--reward", "constraint", "--max-latency-ms", "-1"}, "--max-latency-ms must be positive, got -1"},
		// Flags that would be ignored.
		{[]string{"search", "metaqnn", "--sample", "3", "--data", ".", "--trials", "5"}, "--sample draws architectures from the space and trains nothing; it takes only --space, --preset, --config, --input, --seed and --json: drop --trials and --data"},
		{[]string{"search", "nasnet", "--data", ".", "--trials", "50"}, "--trials is search metaqnn's: search nasnet counts its trials as episodes, --episodes\n"},
		{[]string{"search", "metaqnn", "--seed", "-1"}, "--seed -1: want a whole number, 0 or more\n"},
		{[]string{"search", "metaqnn", "--trials", "x"}, "--trials x: want a whole number\n"},
		{[]string{"search", "metaqnn", "--lr", "fast"}, "--lr fast: want a number\n"},
		// Limits with a reward that refuses nothing by them.
		{[]string{"search", "metaqnn", "--data", ".", "--reward", "accuracy", "--max-latency-ms", "0.01"}, "--max-latency-ms is a limit of the constraint reward, and the accuracy reward refuses nothing by it"},
		{[]string{"search", "nasnet", "--data", ".", "--reward", "mnasnet", "--target-ms", "5", "--max-params", "1000"}, "--max-params is a limit of the constraint reward"},
		// A latency source of a search that uses no latency (the cpu
		// preset's constraint limits parameters only).
		{[]string{"search", "metaqnn", "--data", ".", "--latency", "measured"}, "--latency says where the latency of --reward mnasnet or of --max-latency-ms comes from, and this search uses none"},
		{[]string{"search", "nasnet", "--data", ".", "--reward", "constraint", "--max-params", "1000", "--latency", "measured"}, "leave --latency out"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// A --config file's zero that a default would replace is a usage error
// that names the key, for either kind, before any image is read (the
// review's p0.yaml ran with train.lr 0.001 instead of the preset's).
func TestSearchConfigGivenZeros(t *testing.T) {
	dir := t.TempDir()
	p0 := filepath.Join(dir, "p0.yaml")
	if err := os.WriteFile(p0, []byte("train: {patience: 0, lr: 0}\nfinal: {epoch_factor: 0, patience: 0}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"metaqnn", "nasnet"} {
		code, out, errOut := runCLI(t, "search", kind, "--config", p0, "--data", dir, "--dir", dir)
		for _, want := range []string{"nasctl: --config: " + p0 + ": invalid settings:\ntrain.lr: 0, want a positive rate", "\nfinal.epoch_factor: 0", "\nfinal.patience: 0"} {
			if code != exitUsage || !strings.Contains(errOut, want) {
				t.Errorf("%s: exit %d, %s%s; want exit 2 and %q", kind, code, out, errOut, want)
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%s holds %d entries, want p0.yaml alone", dir, len(entries))
	}
}

// The help of the search commands: one seed default for both (1, every
// preset's), median stopping's wait for 10 trials, the NASNet cpu
// preset's time said once, and search nasnet's --trials pointing to
// --episodes (as its error does, TestSearchSampleAndUsage).
func TestSearchHelp(t *testing.T) {
	for _, kind := range []string{"metaqnn", "nasnet"} {
		code, out, _ := runCLI(t, "search", kind, "--help")
		for _, want := range []string{"and the shuffling (default: 1)", "once 10 earlier trials have trained (0: never; train.median_stop.min_trials in --config sets the 10)"} {
			if want == "and the shuffling (default: 1)" && kind == "nasnet" {
				want = "and of the training (default: 1)"
			}
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("search %s --help: exit %d, lacks %q", kind, code, want)
			}
		}
	}
	if _, out, _ := runCLI(t, "search", "nasnet", "--help"); !strings.Contains(out, "60 episodes, SGD with momentum; about 10 min with the final\n") || strings.Contains(out, "20 minutes") ||
		!strings.Contains(out, "search metaqnn's; here the trials are --episodes") {
		t.Errorf("search nasnet --help: the cpu preset's time:\n%s", out)
	}
}

// The cpu preset's Q-learning takes the next best untried network on a
// greedy repeat; --agent random on the same preset (the baseline) runs
// without it, and both keep the preset's parameter limit.
func TestCPUPresetBaseline(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "leaves")
	generateLeaves(t, data, 120, 16, 5)
	runs := filepath.Join(tmp, "runs")
	// The Q-learning run stops inside its schedule's random start. Random
	// search, the same command with --agent random, uses no epsilon, and a
	// note says so.
	for agent, nextBest := range map[string]int{"qlearning": 100, "random": 0} {
		note := ""
		if agent == "random" {
			note = "note: the random agent uses no epsilon: it runs the 3 trials of --trials, every layer drawn at random, and its report groups them by the schedule's phases, to set beside Q-learning's\n"
		}
		code, _, errOut := runCLI(t, "search", "metaqnn", "--preset", "cpu", "--agent", agent, "--data", data, "--dir", runs, "--name", agent,
			"--input", "16x16x1", "--epochs", "1", "--batch", "16", "--skip-final", "--threads", "1", "--quiet", "--trials", "3", "--schedule", "1.0:4,0.5:2")
		if code != 0 {
			t.Fatalf("--agent %s: exit %d: %s", agent, code, errOut)
		}
		if got := strings.Contains(errOut, "note: "); got != (note != "") || !strings.Contains(errOut, note) {
			t.Errorf("--agent %s: %q, want the note %q", agent, errOut, note)
		}
		cfg, err := search.LoadConfig(filepath.Join(runs, agent, "config.yaml"), search.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if q, r := cfg.MetaQNN.QLearning, cfg.Reward; q.NextBest != nextBest || r.Mode != search.RewardConstraint || r.MaxParams != 160_000 {
			t.Errorf("--agent %s: next_best %d, reward %s with at most %d parameters; want next_best %d, constraint, 160000",
				agent, q.NextBest, r.Mode, r.MaxParams, nextBest)
		}
		if n := len(readLog(t, filepath.Join(runs, agent))); n != 3 {
			t.Errorf("--agent %s: %d trials, want 3", agent, n)
		}
		if sum, err := search.Summarize(filepath.Join(runs, agent)); err != nil || !sum.FinalSkipped {
			t.Errorf("--agent %s --skip-final: summary %+v, %v; want final_skipped", agent, sum, err)
		}
	}
	// A resume cannot change the schedule: its warning does not offer
	// --schedule as the fix, and when no trial is left to draw (only the
	// final phase) there is no warning.
	qrun := filepath.Join(runs, "qlearning")
	code, out, errOut := runCLI(t, "search", "metaqnn", "--resume", qrun, "--trials", "4", "--quiet")
	if want := "warning: all 4 trials fall in the schedule's random start (4 trials): the agent never uses what it learns, and the run is a random search; " +
		"give more --trials; the schedule of a run cannot change, so for one scaled to these trials start a new run with --schedule "; code != 0 || !strings.Contains(errOut, want) {
		t.Errorf("--resume --trials 4: exit %d, %s%q; want %q", code, out, errOut, want)
	}
	if code, _, errOut := runCLI(t, "search", "metaqnn", "--resume", qrun, "--skip-final=false", "--quiet"); code != 0 || strings.Contains(errOut, "warning") {
		t.Errorf("--resume --skip-final=false with every trial done: exit %d, %q; want no warning", code, errOut)
	}
	// Another reward lifts the preset's limit, in config.yaml too; the
	// final phase's augmentation is its own there.
	code, out, errOut = runCLI(t, "search", "metaqnn", "--preset", "cpu", "--reward", "accuracy", "--data", data, "--dir", runs, "--name", "accuracy",
		"--input", "16x16x1", "--schedule", "1.0:1", "--epochs", "1", "--batch", "16", "--skip-final", "--threads", "1", "--quiet",
		"--augment", "flips", "--final-augment", "flips,shift:2")
	if code != 0 {
		t.Fatalf("--reward accuracy: exit %d: %s%s", code, out, errOut)
	}
	if cfg, err := search.LoadConfig(filepath.Join(runs, "accuracy", "config.yaml"), search.Config{}); err != nil || cfg.Reward.MaxParams != 0 || cfg.Reward.Mode != search.RewardAccuracy ||
		cfg.Train.Augment != "flips" || cfg.Final.Augment != "flips,shift:2" {
		t.Errorf("--preset cpu --reward accuracy --augment flips --final-augment flips,shift:2: %+v, augment %q, final %q, %v; want the accuracy reward, no parameter limit and both augmentations",
			cfg.Reward, cfg.Train.Augment, cfg.Final.Augment, err)
	}
	// --schedule scaled fits the preset's schedule to --trials, phase by
	// phase, and the run records it: no warning that the trials end early.
	code, out, errOut = runCLI(t, "search", "metaqnn", "--preset", "cpu", "--schedule", "scaled", "--trials", "5", "--data", data, "--dir", runs, "--name", "scaled",
		"--input", "16x16x1", "--epochs", "1", "--batch", "16", "--skip-final", "--threads", "1", "--quiet")
	if code != 0 || strings.Contains(errOut, "warning") {
		t.Fatalf("--schedule scaled --trials 5: exit %d: %s%s", code, out, errOut)
	}
	if cfg, err := search.LoadConfig(filepath.Join(runs, "scaled", "config.yaml"), search.Config{}); err != nil ||
		!slices.Equal(cfg.MetaQNN.Schedule.EpsilonSchedule, controller.ScheduleCPU.Scale(5)) || cfg.MetaQNN.Schedule.Total() != 5 || cfg.Trials != 5 {
		t.Errorf("--schedule scaled --trials 5: schedule %v, %d trials, %v; want %v", cfg.MetaQNN.Schedule, cfg.Trials, err, controller.ScheduleCPU.Scale(5))
	}
	// More trials for the finished baseline: it goes on to 5.
	if code, _, errOut := runCLI(t, "search", "metaqnn", "--resume", filepath.Join(runs, "random"), "--trials", "5", "--quiet"); code != 0 {
		t.Fatalf("--resume --trials 5: exit %d: %s", code, errOut)
	}
	if n := len(readLog(t, filepath.Join(runs, "random"))); n != 5 {
		t.Errorf("--resume --trials 5: %d trials, want 5", n)
	}
	// A name taken is a usage error before any image is read (this folder
	// has none, which loading it would report).
	code, _, errOut = runCLI(t, "search", "metaqnn", "--preset", "cpu", "--data", t.TempDir(), "--dir", runs, "--name", "random")
	if code != 2 || !strings.Contains(errOut, "run already exists; resume it with --resume") {
		t.Errorf("a name taken: exit %d, %s", code, errOut)
	}
	// A limit that no network meets: every trial is refused, and the run,
	// finished and reported, is not a success (3 trials: --trials over the
	// schedule's 2).
	code, out, errOut = runCLI(t, "search", "metaqnn", "--preset", "cpu", "--max-params", "1", "--data", data, "--dir", runs, "--name", "none",
		"--input", "16x16x1", "--schedule", "1.0:2", "--trials", "3", "--epochs", "1", "--batch", "16", "--skip-final", "--threads", "1", "--quiet")
	if code != 1 || !strings.Contains(errOut, "no trial of the run was evaluated (3 refused); the commonest reason (3 of 3 trials), the last of them: ") || !strings.Contains(out, "Run directory:") {
		t.Errorf("--max-params 1: exit %d, %s%s", code, out, errOut)
	}
	// The same under --json: the event stream ends with "failed", not
	// "done", and names the run directory; the schedule's warning (3 trials,
	// all in a random start of 4) is an event too.
	code, out, errOut = runCLI(t, "search", "metaqnn", "--preset", "cpu", "--max-params", "1", "--data", data, "--dir", runs, "--name", "none-json",
		"--input", "16x16x1", "--schedule", "1.0:4,0.5:2", "--trials", "3", "--epochs", "1", "--batch", "16", "--skip-final", "--threads", "1", "--json")
	events := jsonEvents(t, out)
	last := events[len(events)-1]
	if code != 1 || last.Kind != "failed" || !strings.HasPrefix(last.Message, "no trial of the run was evaluated (3 refused)") ||
		last.Dir != filepath.Join(runs, "none-json") || !slices.ContainsFunc(events, func(e search.Event) bool { return e.Kind == "start" && e.Dir == last.Dir }) || strings.Contains(errOut, "warning:") ||
		!slices.ContainsFunc(events, func(e search.Event) bool { return e.Kind == "info" && strings.HasPrefix(e.Message, "warning: ") }) {
		t.Errorf("--max-params 1 --json: exit %d, %s%s", code, out, errOut)
	}
	// A missing --data is a usage error, as in train and eval, with or
	// without --json (whose stream ends with failed), and nothing is
	// created.
	for _, json := range []string{"--json", "--quiet"} {
		code, out, errOut = runCLI(t, "search", "metaqnn", "--preset", "cpu", "--data", filepath.Join(tmp, "missing"), "--dir", runs, "--name", "nodata", json)
		if code != 2 || (json == "--quiet") != (out == "") || !strings.Contains(errOut, "--data "+filepath.Join(tmp, "missing")+": no such file or directory; give a folder of image files") {
			t.Errorf("%s without data: exit %d, %q%q", json, code, out, errOut)
		}
		if json == "--json" {
			if events := jsonEvents(t, out); len(events) != 1 || events[0].Kind != "failed" {
				t.Errorf("--json without data: %q", out)
			}
		}
		if _, err := os.Stat(filepath.Join(runs, "nodata")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s without data left a run folder: %v", json, err)
		}
	}
	// A search that cannot start says so in the stream too: a config's data
	// is read when the search opens.
	cfgFile := filepath.Join(tmp, "nodata.yaml")
	if err := os.WriteFile(cfgFile, []byte("data: "+filepath.Join(tmp, "missing")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "search", "metaqnn", "--preset", "cpu", "--config", cfgFile, "--dir", runs, "--name", "nodata", "--json")
	if events := jsonEvents(t, out); code != 1 || len(events) != 1 || events[0].Kind != "failed" ||
		!strings.Contains(events[0].Message, "image folder "+filepath.Join(tmp, "missing")+": no such file or directory; give a folder of image files") {
		t.Errorf("--json with a config without data: exit %d, %s", code, out)
	}
	// --max-params 0 leaves the preset's constraint reward without a limit:
	// the error says how to search without one.
	code, _, errOut = runCLI(t, "search", "metaqnn", "--preset", "cpu", "--max-params", "0", "--data", data, "--dir", runs, "--name", "nolimit")
	if code == 0 || !strings.Contains(errOut, "for no limit use --reward accuracy") {
		t.Errorf("--max-params 0: exit %d, %s", code, errOut)
	}
}

// A trial's progress line shows the reward beside the validation accuracy
// when the two differ (NASNet's cube of the last epochs' best), and only
// the accuracy when they are the same; a wait for memory follows the time.
func TestTrialResultReward(t *testing.T) {
	for _, tc := range []struct {
		t    rundir.Trial
		want string
	}{
		{rundir.Trial{Status: rundir.StatusOK, ValAccuracy: 0.4714, Reward: 0.1642, Seconds: 2}, "val 0.4714, reward 0.1642 in 2.0s"},
		{rundir.Trial{Status: rundir.StatusOK, ValAccuracy: 0.9, Reward: 0.9, Seconds: 1}, "val 0.9000 in 1.0s"},
		{rundir.Trial{Status: rundir.StatusRefused, Reason: "too big"}, "refused: too big"},
		{rundir.Trial{Status: rundir.StatusOK, ValAccuracy: 0.8, Reward: 0.8, Seconds: 1, Pruned: true, Restarts: 1,
			Epochs: []runtime.EpochRecord{{Attempt: 0, Epoch: 1}, {Attempt: 1, Epoch: 1}, {Attempt: 1, Epoch: 2}}}, "val 0.8000 in 1.0s (stopped after epoch 2)"},
		{rundir.Trial{Status: rundir.StatusOK, ValAccuracy: 0.516, Reward: 0.516, Seconds: 1, AtChance: true}, "val 0.5160 in 1.0s (at chance: no better than a constant predictor)"},
		{rundir.Trial{Status: rundir.StatusOK, ValAccuracy: 0.9, Reward: 0.9, Seconds: 3, WaitedSeconds: 12.34}, "val 0.9000 in 3.0s after 12.3s waiting for memory"},
		{rundir.Trial{Status: rundir.StatusOK, ValAccuracy: 0.4643, Reward: 0.2657, RewardAccuracy: 0.6429, Seconds: 1},
			"val 0.4643, reward 0.2657 (from val 0.6429 of another epoch) in 1.0s"},
	} {
		if got := trialResult(&tc.t, nil); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.t, got, tc.want)
		}
	}
}

// The command after a failure continues the run where it ran: with its
// broker's flags (the token by its variable), and, when trials failed, how
// to train those again.
func TestAfterFailure(t *testing.T) {
	broker := brokerOptions{URL: "tls://user:pw@h:4222", Client: cluster.ClientOptions{Token: "secret", TLSCA: "my ca.pem"}}
	failed := []rundir.Trial{{Status: rundir.StatusOK}, {Status: rundir.StatusFailed}}
	got := afterFailure(search.KindMetaQNN, "runs/a b", "a b", broker, failed)
	want := "finished trials are saved; resume with NASCTL_BROKER_TOKEN=<the broker's token> nasctl search metaqnn --resume 'runs/a b' " +
		"--broker tls://REDACTED@h:4222 --broker-tls-ca 'my ca.pem'; a resume keeps the trials recorded as failed"
	if !strings.HasPrefix(got, want) || strings.Contains(got, "secret") || strings.Contains(got, "pw") {
		t.Errorf("got  %q\nwant %q...", got, want)
	}
	// The trials in flight stay on the broker: how to remove them.
	if drop := "if no resume is coming, remove them: NASCTL_BROKER_TOKEN=<the broker's token> nasctl jobs --broker tls://REDACTED@h:4222 --broker-tls-ca 'my ca.pem' --drop 'a b'"; !strings.HasSuffix(got, drop) {
		t.Errorf("got  %q\nwant it to end %q", got, drop)
	}
	if got := afterFailure(search.KindMetaQNN, "runs/a", "a", brokerOptions{}, failed[:1]); got != "finished trials are saved; resume with nasctl search metaqnn --resume runs/a" {
		t.Errorf("no broker, no failed trial: %q", got)
	}
	embedded := brokerOptions{URL: "embedded", Listen: "127.0.0.1:4300", Store: "runs/.b"}
	if got := embedded.resumeCommand(search.KindNASNet, "runs/n"); got != "nasctl search nasnet --resume runs/n --broker embedded --broker-listen 127.0.0.1:4300 --broker-store runs/.b" {
		t.Errorf("embedded: %q", got)
	}
}

// jsonEvents parses a search's --json output, one event per line; it fails
// the test on an empty stream or a line that is not an event.
func jsonEvents(t *testing.T, out string) []search.Event {
	t.Helper()
	var events []search.Event
	for line := range strings.Lines(out) {
		var e search.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Kind == "" {
			t.Fatalf("not an event: %q (%v)", line, err)
		}
		events = append(events, e)
	}
	if len(events) == 0 {
		t.Fatal("no events")
	}
	return events
}

// A final model at chance says so on its progress line; one above chance
// does not.
func TestEventLineFinalAtChance(t *testing.T) {
	f := rundir.FinalResult{Rank: 2, Arch: "C(32,3,1) - GAP()", ValAccuracy: 0.4762, TestAccuracy: 0.4833, Status: rundir.StatusOK, Model: "winners/rank-02.onnx", AtChance: true}
	want := "final #2 C(32,3,1) - GAP(): val 0.4762, test 0.4833 (winners/rank-02.onnx) (at chance: no better than a constant predictor)"
	if got := eventLine(search.Event{Kind: "final", Final: &f}, ""); got != want {
		t.Errorf("at chance: %q, want %q", got, want)
	}
	f.AtChance = false
	if got := eventLine(search.Event{Kind: "final", Final: &f}, ""); strings.Contains(got, "chance") {
		t.Errorf("above chance: %q", got)
	}
}

// A trial line's best is "-" until a trial is evaluated: every trial
// refused by a limit had read "best 0.0000".
func TestEventLineBestBeforeAny(t *testing.T) {
	tr := rundir.Trial{Candidate: rundir.Candidate{ID: 1, Arch: "C(8,3,1) - SM()", Epsilon: 1}, Status: rundir.StatusRefused, Reason: "over the limit"}
	e := search.Event{Kind: "trial", Trial: &tr, Done: 1, Total: 5}
	if got := eventLine(e, ""); !strings.Contains(got, "refused: over the limit  best -  elapsed") {
		t.Errorf("none evaluated: %q", got)
	}
	e.Best, e.BestArch = 0.9, "C(4,3,1) - SM()"
	if got := eventLine(e, ""); !strings.Contains(got, "  best 0.9000  ") {
		t.Errorf("one evaluated: %q", got)
	}
}

// A --json search whose options are refused ends its events with failed,
// as one that cannot start for a later reason does, and keeps its exit
// code.
func TestJSONSearchRefusedOptions(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"search", "nasnet", "--data", filepath.Join(dir, "nodata"), "--episodes", "2", "--dir", dir, "--json"},
		{"search", "nasnet", "--cells", "stem=0", "--reward", "mock", "--dir", dir, "--json"},
		{"search", "metaqnn", "--data", filepath.Join(dir, "nodata"), "--dir", dir, "--json"},
		{"search", "nasnet", "--trials", "3", "--reward", "mock", "--json"},
	} {
		code, out, errOut := runCLI(t, args...)
		if code != 2 {
			t.Errorf("%q: exit %d, %s", args, code, errOut)
			continue
		}
		events := jsonEvents(t, out)
		if last := events[len(events)-1]; last.Kind != "failed" || last.Message == "" || !strings.Contains(errOut, last.Message) {
			t.Errorf("%q: last event %+v; stderr %q", args, last, errOut)
		}
	}
}

// A stopping search looks again, every so often, whether a worker trains
// its trials, and abandons them to the queue once none does; a look that
// finds none at once needs no wait, and an ended context ends the looks.
func TestWhenUnserved(t *testing.T) {
	looks := 0
	called := false
	whenUnserved(context.Background(), time.Millisecond, func(context.Context) bool { looks++; return looks == 3 }, func() { called = true })
	if looks != 3 || !called {
		t.Errorf("%d looks, called %v; want 3 looks, the third unserved, then the call", looks, called)
	}
	// Served at every look: it looks again until the context ends (here
	// at the third look), and never calls.
	ctx, cancel := context.WithCancel(context.Background())
	looks = 0
	whenUnserved(ctx, time.Millisecond, func(context.Context) bool {
		if looks++; looks == 3 {
			cancel()
		}
		return false
	}, func() { t.Error("called while served") })
	if looks != 3 {
		t.Errorf("%d looks, want 3: it looks again, and stops when the context ends", looks)
	}
}

// --time-budget stops drawing trials once it has passed, plans the run
// anew at the trials recorded and retrains the best of them; a budget the
// trials do not use up changes nothing; a negative one is refused.
func TestSearchTimeBudget(t *testing.T) {
	tmp := t.TempDir()
	data, runs := filepath.Join(tmp, "leaves"), filepath.Join(tmp, "runs")
	generateLeaves(t, data, 120, 16, 6)
	args := []string{"search", "metaqnn", "--data", data, "--dir", runs, "--input", "16x16x1", "--epochs", "1", "--top-k", "1", "--threads", "1"}
	code, out, errOut := runCLI(t, append(args, "--name", "spent", "--trials", "100000", "--time-budget", "3s")...)
	dir := filepath.Join(runs, "spent")
	recorded := readLog(t, dir)
	cfg, err := search.ReadConfig(dir)
	// A trial queued at the stop, before the last one recorded, trains in
	// the second part: every trial of the plan is then recorded.
	if code != 0 || err != nil || len(recorded) == 0 || cfg.Trials != len(recorded) || recorded[len(recorded)-1].ID != len(recorded) ||
		!strings.Contains(errOut, "time budget of 3s spent after ") || !strings.Contains(errOut, fmt.Sprintf(" of 100000: the run's plan becomes its first %d", len(recorded))) ||
		!strings.Contains(out, fmt.Sprintf("%d of %d trials", len(recorded), len(recorded))) {
		t.Fatalf("exit %d, %d trials recorded, planned %d (%v):\n%s%s", code, len(recorded), cfg.Trials, err, out, errOut)
	}
	if finals, err := rundir.ReadFinalRecords(dir); err != nil || len(finals) != 1 {
		t.Errorf("%d finals (%v), want 1", len(finals), err)
	}
	if _, err := os.Stat(filepath.Join(dir, rundir.BestName)); err != nil {
		t.Errorf("no best model: %v", err)
	}

	code, _, errOut = runCLI(t, append(args, "--name", "ample", "--trials", "3", "--time-budget", "1h")...)
	if cfg, err := search.ReadConfig(filepath.Join(runs, "ample")); code != 0 || err != nil || cfg.Trials != 3 || strings.Contains(errOut, "time budget") {
		t.Errorf("an ample budget: exit %d, %v, planned %d:\n%s", code, err, cfg.Trials, errOut)
	}
	if code, out, errOut := runCLI(t, append(args, "--name", "neg", "--time-budget", "-1s", "--json")...); code != 2 || !strings.Contains(errOut, "--time-budget -1s: give a positive duration") ||
		!strings.Contains(out, `"event":"failed"`) {
		t.Errorf("a negative budget: exit %d, %s%s", code, out, errOut)
	}
	// Spent before evolution's random population is drawn: the run cannot
	// end there, and says how to go on.
	evo := filepath.Join(tmp, "evo.yaml")
	if err := os.WriteFile(evo, []byte("nasnet:\n  agent: evolution\n  evolution:\n    population: 1000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "search", "nasnet", "--reward", "mock", "--config", evo, "--episodes", "2000000", "--dir", runs, "--name", "evo", "--time-budget", "300ms")
	if code != 1 || !strings.Contains(errOut, "was spent after") || !strings.Contains(errOut, "too few to end the run there") ||
		!strings.Contains(errOut, "go on with more time: nasctl search nasnet --resume "+filepath.Join(runs, "evo")) {
		t.Errorf("evolution's population not drawn: exit %d, %s", code, errOut)
	}
}

// A budget that runs out once every trial is recorded, before the final
// phase starts, stops nothing: the run would only be planned again at the
// same count. Before that it stops the trials, once.
func TestBudgetAfterLastTrial(t *testing.T) {
	for _, c := range []struct {
		events []search.Event
		stops  bool
	}{
		{[]search.Event{{Kind: "trial", Done: 2, Total: 3}}, true},
		{[]search.Event{{Kind: "trial", Done: 2, Total: 3}, {Kind: "trial", Done: 3, Total: 3}}, false},
		{[]search.Event{{Kind: "final_start", Done: 3, Total: 3}}, false},
	} {
		b, once, stop := &budgetStop{}, &sync.Once{}, make(chan struct{})
		for _, e := range c.events {
			b.seen(e)
		}
		b.fire(once, stop)
		b.fire(once, stop) // a second firing closes nothing twice
		select {
		case <-stop:
			if !c.stops || !b.spent.Load() {
				t.Errorf("after %+v: stopped, spent %v", c.events, b.spent.Load())
			}
		default:
			if c.stops || b.spent.Load() {
				t.Errorf("after %+v: not stopped, spent %v", c.events, b.spent.Load())
			}
		}
	}
}

// runs compare reads the runs named, by name or folder, and prints what
// search.CompareRuns gives of them (printComparison's words are
// TestPrintComparison's); a run named twice, however written, is refused.
func TestRunsCompare(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "leaves")
	generateLeaves(t, data, 120, 16, 5)
	runs := filepath.Join(tmp, "runs")
	for _, agent := range []string{"qlearning", "random"} {
		code, _, errOut := runCLI(t, "search", "metaqnn", "--preset", "cpu", "--agent", agent, "--data", data, "--dir", runs, "--name", agent,
			"--input", "16x16x1", "--schedule", "1.0:2,0.5:1,0.1:1", "--top-k", "2", "--epochs", "1", "--batch", "16", "--threads", "1")
		if code != 0 {
			t.Fatalf("--agent %s: exit %d: %s", agent, code, errOut)
		}
		if note := "note: the random agent uses no epsilon: it runs the schedule's 4 trials"; (agent == "random") != strings.Contains(errOut, note) {
			t.Errorf("--agent %s: %q; want the note %q for random search only", agent, errOut, note)
		}
		if note := "note: Q-learning was measured ahead of random search by more than the spread between seeds with 225 trials"; (agent == "qlearning") != strings.Contains(errOut, note) {
			t.Errorf("--agent %s: %q; want the note %q for Q-learning only", agent, errOut, note)
		}
	}
	want, err := search.CompareRuns([]string{filepath.Join(runs, "qlearning"), filepath.Join(runs, "random")})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := printComparison(&b, want); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "runs", "compare", "--dir", runs, "qlearning", filepath.Join(runs, "random")); code != 0 || out != b.String() {
		t.Errorf("runs compare: exit %d, %s%s; want\n%s", code, out, errOut, b.String())
	}
	var got search.Comparison
	if _, out, _ := runCLI(t, "runs", "compare", "--dir", runs, "qlearning", "random", "--json"); json.Unmarshal([]byte(out), &got) != nil ||
		len(got.Runs) != 2 || got.Runs[1].Agent != "random" || got.Runs[0].FinalPhase != search.FinalComplete || got.Runs[0].BestFive != 2 {
		t.Errorf("runs compare --json: %s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"qlearning"}, "runs compare takes two or more run names or directories, got 1"},
		{[]string{"qlearning", runs + "/../runs/qlearning"}, "runs compare: " + runs + "/../runs/qlearning is named twice (as " + filepath.Join(runs, "qlearning") + " too)"},
	} {
		if code, _, errOut := runCLI(t, append([]string{"runs", "compare", "--dir", runs}, tc.args...)...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	if code, _, errOut := runCLI(t, "runs", "compare", "--dir", runs, "qlearning", "missing"); code != 1 || !strings.Contains(errOut, "no run named missing in "+runs) {
		t.Errorf("a missing run: exit %d, %q", code, errOut)
	}
}

// printComparison's words for each case: a run's final phase not
// complete, of fewer than five finals, ranked by balanced accuracy or with
// no trial trained; an agent with no run, one run or several with finals;
// a lead ahead of, within and behind the spread, or without one; no lead.
func TestPrintComparison(t *testing.T) {
	sd := func(v float64) *float64 { return &v }
	gain := 0.1015
	c := search.Comparison{
		Runs: []search.ComparedRun{
			{Name: "q1", Agent: "qlearning", Seed: 1, Trained: 222, Constant: 3, Gain: &gain, BestVal: 0.9964, FinalPhase: search.FinalComplete, BestFive: 5, BestFiveTest: 0.99783,
				Winner: &search.WinnerInfo{TestAccuracy: 0.9975, Params: 20753}},
			{Name: "q2", Agent: "qlearning", Seed: 2, Trained: 10, Metric: "balanced_accuracy", BestVal: 0.9, FinalPhase: search.FinalComplete, BestFive: 2, BestFiveTest: 0.99,
				Winner: &search.WinnerInfo{TestAccuracy: 0.99, Params: 1000}},
			{Name: "r1", Agent: "random", Seed: 1, FinalPhase: search.FinalNotStarted},
		},
		Groups: []search.AgentGroup{{Agent: "qlearning", Runs: 3, Finals: 2, Mean: 0.995, SD: sd(0.001)}, {Agent: "random", Runs: 2, Finals: 2, Mean: 0.99, SD: sd(0.002)}},
		Leads:  []search.Lead{{Agent: "qlearning", Over: "random", Mean: 0.005, PerSeed: map[uint64]float64{2: 0.004, 1: 0.006}, Beyond: true}},
		Differ: []string{"images", "train.lr"}, TestImages: 1200,
	}
	var b strings.Builder
	if err := printComparison(&b, c); err != nil {
		t.Fatal(err)
	}
	want := `RUN  AGENT      SEED  TRAINED  CONSTANT  GAIN     BEST VAL           FIVE BEST TEST  WINNER TEST (PARAMS)
q1   qlearning  1     222      3 (1.4%)  +0.1015  99.64%             99.783%         99.75% (20,753)
q2   qlearning  2     10       0 (0.0%)  -        90.00% (balanced)  99.000% (of 2)  99.00% (1,000)
r1   random     1     0        -         -        -                  not started     -

qlearning: best finals (as few as 2 a run) 99.500% on average over 2 runs (sd 0.100 between them); 1 more without a complete final phase
random: five best 99.000% on average over 2 runs (sd 0.200 between them)
qlearning minus random: +0.500 points (seed 1 +0.600, seed 2 +0.400): ahead by more than the spread between seeds (sds 0.100 and 0.200)
One test image of 1,200 is 0.083 points of a model's accuracy (docs/search-quality.md, "What the final test accuracy can resolve").
warning: the runs differ in images, train.lr besides name, seed and agent: not a matched comparison
`
	if b.String() != want {
		t.Errorf("printed\n%s\nwant\n%s", b.String(), want)
	}
	for _, tc := range []struct {
		groups []search.AgentGroup
		lead   *search.Lead
		want   string
	}{
		{[]search.AgentGroup{{Agent: "qlearning", Runs: 2, Finals: 2, Mean: 0.99, SD: sd(0.003)}, {Agent: "random", Runs: 2, Finals: 2, Mean: 0.991, SD: sd(0.002)}},
			&search.Lead{Agent: "qlearning", Over: "random", Mean: -0.001},
			"qlearning minus random: -0.100 points: within the spread between seeds (sds 0.300 and 0.200)\n"},
		{[]search.AgentGroup{{Agent: "qlearning", Runs: 2, Finals: 2, Mean: 0.98, SD: sd(0.001)}, {Agent: "random", Runs: 2, Finals: 2, Mean: 0.99, SD: sd(0.002)}},
			&search.Lead{Agent: "qlearning", Over: "random", Mean: -0.01, Beyond: true},
			"qlearning minus random: -1.000 points: behind by more than the spread between seeds (sds 0.100 and 0.200)\n"},
		{[]search.AgentGroup{{Agent: "qlearning", Runs: 1, Finals: 1, Mean: 0.99}, {Agent: "random", Runs: 2, Finals: 2, Mean: 0.98, SD: sd(0.002)}},
			&search.Lead{Agent: "qlearning", Over: "random", Mean: 0.01},
			"qlearning: five best 99.000% (one run)\nrandom: five best 98.000% on average over 2 runs (sd 0.200 between them)\nqlearning minus random: +1.000 points; the spread between seeds needs two runs of each with finals\n"},
		{[]search.AgentGroup{{Agent: "qlearning", Runs: 2, Finals: 1, Mean: 0.99}, {Agent: "random", Runs: 1}, {Agent: "evolution", Runs: 2}}, nil,
			"qlearning: five best 99.000% (one run); 1 more without a complete final phase\nrandom: 1 run, none with its final phase complete\nevolution: 2 runs, none with its final phase complete\nno lead: random and evolution have no run with a complete final phase\n"},
		{[]search.AgentGroup{{Agent: "random", Runs: 2}}, nil, "random: 2 runs, none with its final phase complete\none agent only: no lead to give\n"},
	} {
		c := search.Comparison{Groups: tc.groups}
		if tc.lead != nil {
			c.Leads = []search.Lead{*tc.lead}
		}
		b.Reset()
		if err := printComparison(&b, c); err != nil || !strings.HasSuffix(b.String(), tc.want) {
			t.Errorf("printed\n%s\nwant it to end\n%s", b.String(), tc.want)
		}
	}
}
