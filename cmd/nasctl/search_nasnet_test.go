package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nasctl/nasctl/search"
)

func readEpisodeLog(t *testing.T, path string) []search.Episode {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []search.Episode
	for _, line := range strings.Split(string(b), "\n") {
		var e search.Episode
		if json.Unmarshal([]byte(line), &e) == nil {
			out = append(out, e) // a line being written does not parse
		}
	}
	return out
}

// A short mock search end to end: JSON progress, every file of the run
// directory, runs list and show, a resume of the finished run.
func TestSearchNASNetMock(t *testing.T) {
	runs := t.TempDir()
	code, out, errOut := runCLI(t, "search", "nasnet", "--reward", "mock", "--episodes", "40", "--batch", "2",
		"--dir", runs, "--name", "m", "--seed", "3", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var kinds []string
	episodes := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e search.NASNetEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		kinds = append(kinds, e.Kind)
		if e.Kind == "episode" {
			episodes++
			if e.Episode == nil || e.Episode.Episode != episodes || e.Done != episodes || e.Total != 40 {
				t.Errorf("event %d: %s", episodes, line)
			}
		}
	}
	if episodes != 40 || kinds[0] != "start" || kinds[len(kinds)-1] != "done" {
		t.Errorf("events %v", kinds)
	}
	dir := filepath.Join(runs, "m")
	for _, f := range []string{"config.yaml", "episodes.jsonl", "episodes.csv", "controller.state", "top.json", "top-cells.txt",
		"report.md", "plots/reward.png", "plots/reward.svg", "plots/temperature.png", "plots/temperature.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	eps := readEpisodeLog(t, filepath.Join(dir, "episodes.jsonl"))
	updates := 0
	for i, e := range eps {
		if e.Episode != i+1 || len(e.Actions) != 20 || !strings.HasPrefix(e.Cell, "normal: ") || e.Reward < 0.5 || e.Reward > 0.998 {
			t.Errorf("episode %+v", e)
		}
		if e.Update != nil {
			updates++
		}
		if i == 0 && e.Temperature != 5 {
			t.Errorf("first temperature %v, want 5", e.Temperature)
		}
	}
	if len(eps) != 40 || updates != 20 {
		t.Errorf("%d episodes, %d updates; want 40 and 20 (batch 2)", len(eps), updates)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.yaml"))
	for _, want := range []string{"kind: nasnet", "reward: mock", "blocks: 2", "episodes: 40", "preset: paper", "batch_size: 2", "hidden: 35", "baseline: ema", "seed: 3"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config.yaml lacks %q:\n%s", want, cfg)
		}
	}

	code, listOut, _ := runCLI(t, "runs", "list", "--dir", runs)
	if code != 0 || !strings.Contains(listOut, "nasnet") || !strings.Contains(listOut, "40/40") {
		t.Errorf("runs list: %d\n%s", code, listOut)
	}
	code, showOut, _ := runCLI(t, "runs", "show", "m", "--dir", runs)
	if code != 0 || !strings.Contains(showOut, "# NASNet search m") || !strings.Contains(showOut, "| 1-40 |") {
		t.Errorf("runs show: %d\n%s", code, showOut)
	}
	// Resuming a finished run samples nothing and writes the report again.
	code, out, errOut = runCLI(t, "search", "nasnet", "--resume", dir)
	if code != 0 || !strings.Contains(out, "40 of 40 episodes") || !strings.Contains(errOut, "(40 done)") {
		t.Errorf("resume of a finished run: %d\n%s\n%s", code, out, errOut)
	}
	if n := len(readEpisodeLog(t, filepath.Join(dir, "episodes.jsonl"))); n != 40 {
		t.Errorf("%d episodes after the resume", n)
	}
	// The same name again is refused with a hint.
	code, _, errOut = runCLI(t, "search", "nasnet", "--episodes", "5", "--dir", runs, "--name", "m")
	if code != 1 || !strings.Contains(errOut, "resume it with --resume") {
		t.Errorf("existing run: exit %d, %s", code, errOut)
	}
}

// Without --json, every episode is a line on stderr and the report goes to
// stdout; a natsbench run reports its table.
func TestSearchNASNetNATSBenchText(t *testing.T) {
	runs := t.TempDir()
	code, out, errOut := runCLI(t, "search", "nasnet", "--reward", "natsbench", "--dataset", "cifar100", "--episodes", "12", "--dir", runs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "[12/12] T ") || !strings.Contains(errOut, "controller preset natsbench") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if !strings.Contains(out, "NATS-Bench cifar100") || !strings.Contains(out, "Run directory: "+filepath.Join(runs, "nasnet-natsbench")) {
		t.Errorf("stdout:\n%s", out)
	}
}

func TestSearchNASNetUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--reward", "train"}, `--reward: unknown reward "train" (valid: mock, natsbench)`},
		{[]string{"--preset", "gpu"}, "valid: paper, study, natsbench"},
		{[]string{"--dataset", "cifar10"}, "--dataset applies to --reward natsbench only; add --reward natsbench or drop --dataset"},
		{[]string{"--reward", "natsbench", "--dataset", "svhn"}, "valid: cifar10, cifar100, imagenet16-120"},
		{[]string{"--reward", "natsbench", "--blocks", "3"}, "--blocks applies to --reward mock only"},
		{[]string{"--episodes", "0"}, "--episodes must be at least 1, got 0"},
		{[]string{"--batch", "-2"}, "--batch must be at least 1"},
		{[]string{"--baseline", "mean"}, `--baseline: unknown baseline "mean" (valid: ema, study)`},
		{[]string{"--temperature", "0.5"}, "controller: temperature 0.5 is below its floor 1"},
		{[]string{"--name", ".x"}, "name: \".x\" is not a valid run name"},
		{[]string{"--resume", "runs/x", "--episodes", "3"}, "--episodes cannot change a resumed run"},
		{[]string{"--config", "missing.yaml"}, "--config: open missing.yaml"},
		{[]string{"extra"}, "takes no arguments"},
	} {
		args := append([]string{"search", "nasnet", "--dir", t.TempDir()}, tc.args...)
		code, _, errOut := runCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	code, _, errOut := runCLI(t, "search", "nasnet", "--resume", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "not a run directory") {
		t.Errorf("resume of an empty directory: exit %d, %s", code, errOut)
	}
}

// A real search process gets Ctrl-C (SIGINT) in the middle of its run: it
// finishes the episode in flight, says how to resume and exits 1; the
// resumed run keeps every episode recorded before and completes the run.
func TestSearchNASNetInterruptAndResume(t *testing.T) {
	bin := buildNasctl(t)
	runs := t.TempDir()
	const total = 300
	cmd := exec.Command(bin, "search", "nasnet", "--episodes", "300", "--preset", "study", "--dir", runs, "--name", "int", "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(runs, "int", "episodes.jsonl")
	deadline := time.Now().Add(time.Minute)
	for len(readEpisodeLog(t, log)) < 20 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no 20 episodes within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	before := readEpisodeLog(t, log)
	if len(before) >= total {
		t.Skipf("the search finished (%d episodes) before the interrupt arrived", len(before))
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "nasctl search nasnet --resume "+filepath.Join(runs, "int")) {
		t.Fatalf("interrupted: %v\n%s", err, stderr.String())
	}
	if out, err := exec.Command(bin, "search", "nasnet", "--resume", filepath.Join(runs, "int"), "--quiet").CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	after := readEpisodeLog(t, log)
	if len(after) != total {
		t.Fatalf("%d episodes after resuming, want %d", len(after), total)
	}
	for i, b := range before {
		a := after[i]
		a.Seconds, b.Seconds = 0, 0
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Errorf("episode %d changed across the resume:\n%s\n%s", i+1, jb, ja)
		}
	}
	t.Logf("interrupted after %d episodes, resumed to %d", len(before), len(after))
}
