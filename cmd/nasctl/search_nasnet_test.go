package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
)

// readLog reads a run's trials in trial order; a line being written does
// not parse and is left out.
func readLog(t *testing.T, dir string) []rundir.Trial {
	t.Helper()
	ts, err := rundir.ReadTrials(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// sameLogs compares two runs trial for trial, times left out.
func sameLogs(t *testing.T, got, want []rundir.Trial) {
	t.Helper()
	if i := rundir.FirstDifference(got, want); i >= 0 {
		t.Fatalf("the runs differ at trial %d (%d and %d trials)", i+1, len(got), len(want))
	}
}

// A short mock search end to end: JSON progress, every file of the run
// directory, runs list and show, a resume of the finished run.
func TestSearchNASNetMock(t *testing.T) {
	runs := t.TempDir()
	code, out, errOut := runCLI(t, "search", "nasnet", "--reward", "mock", "--episodes", "40", "--controller-batch", "2",
		"--dir", runs, "--name", "m", "--seed", "3", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var kinds []string
	trials, updates := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e search.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		kinds = append(kinds, e.Kind)
		if e.Kind == "trial" {
			trials++
			if e.Trial == nil || e.Trial.ID != trials || e.Done != trials || e.Total != 40 || e.Learned == nil {
				t.Errorf("event %d: %s", trials, line)
			}
			if e.Learned.Update != nil {
				updates++
			}
		}
	}
	if trials != 40 || updates != 20 || kinds[0] != "start" || kinds[len(kinds)-1] != "done" {
		t.Errorf("events %v, %d updates; want 40 trials and 20 updates (batch 2)", kinds, updates)
	}
	dir := filepath.Join(runs, "m")
	for _, f := range []string{"config.yaml", "trials.jsonl", "trials.csv", "agent.state", "agent.jsonl", "top.json",
		"report.md", "plots/reward.png", "plots/reward.svg", "plots/temperature.png", "plots/temperature.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	log := readLog(t, dir)
	for i, tr := range log {
		if tr.ID != i+1 || len(tr.Actions) != 20 || !strings.HasPrefix(tr.Arch, "normal: ") || tr.Reward < 0.5 || tr.Reward > 0.998 {
			t.Errorf("trial %+v", tr)
		}
		if i == 0 && tr.Temperature != 5 {
			t.Errorf("first temperature %v, want 5", tr.Temperature)
		}
	}
	if len(log) != 40 {
		t.Errorf("%d trials, want 40", len(log))
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.yaml"))
	for _, want := range []string{"kind: nasnet", "name: mock", "blocks: 2", "trials: 40", "preset: paper", "batch_size: 2", "hidden: 35", "baseline: ema", "seed: 3"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config.yaml lacks %q:\n%s", want, cfg)
		}
	}

	code, listOut, _ := runCLI(t, "runs", "list", "--dir", runs)
	if code != 0 || !strings.Contains(listOut, "nasnet") || !strings.Contains(listOut, "40/40") {
		t.Errorf("runs list: %d\n%s", code, listOut)
	}
	// A copy with a damaged line lists the trials before it, and the damage.
	damaged := filepath.Join(runs, "damaged")
	if err := os.CopyFS(damaged, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(damaged, "trials.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	os.WriteFile(filepath.Join(damaged, "trials.jsonl"), []byte(strings.Join(lines[:30], "")+"{\"id\n"+strings.Join(lines[31:], "")), 0o644)
	if code, out, _ := runCLI(t, "runs", "list", "--dir", runs); code != 0 || !regexp.MustCompile(`damaged +nasnet +stopped +30/40 .* damaged: .*trials.jsonl line 31: `).MatchString(out) {
		t.Errorf("runs list with a damaged run: %d\n%s", code, out)
	}
	code, showOut, _ := runCLI(t, "runs", "show", "m", "--dir", runs)
	if code != 0 || !strings.Contains(showOut, "# NASNet search m") || !strings.Contains(showOut, "| 31-40 |") {
		t.Errorf("runs show: %d\n%s", code, showOut)
	}
	code, jsonOut, _ := runCLI(t, "runs", "show", "m", "--dir", runs, "--json")
	var rep struct {
		Dir    string           `json:"dir"`
		Status search.RunStatus `json:"status"`
		search.Report
	}
	if err := json.Unmarshal([]byte(jsonOut), &rep); code != 0 || err != nil || rep.Name != "m" || rep.Trials != 40 || len(rep.Windows) == 0 ||
		rep.Dir != dir || rep.Status != search.RunFinished {
		t.Errorf("runs show --json: %d, %v\n%s", code, err, jsonOut)
	}
	// By its directory, from anywhere; a path that is no run is named as given.
	if code, out, _ := runCLI(t, "runs", "show", dir, "--dir", "elsewhere"); code != 0 || out != showOut {
		t.Errorf("runs show %s: %d\n%s", dir, code, out)
	}
	if code, _, errOut := runCLI(t, "runs", "show", runs); code != 1 || !strings.Contains(errOut, runs+" holds runs but is not one") {
		t.Errorf("runs show %s: %d\n%s", runs, code, errOut)
	}
	if code, _, errOut := runCLI(t, "runs", "list", "--dir", filepath.Join(runs, "nope")); code != 1 || !strings.Contains(errOut, "nope does not exist: give the directory of the runs with --dir") {
		t.Errorf("runs list of a missing directory: %d\n%s", code, errOut)
	}
	// Resuming a finished run samples nothing and writes the report again,
	// with nothing to watch live.
	code, out, errOut = runCLI(t, "search", "nasnet", "--resume", dir)
	if code != 0 || !strings.Contains(out, "40 of 40 trials") || !strings.Contains(errOut, "(40 done)") || strings.Contains(errOut, "watch it live") {
		t.Errorf("resume of a finished run: %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "search", "nasnet", "--reward", "mock", "--episodes", "4", "--dir", runs, "--name", "m2"); code != 0 ||
		!strings.Contains(errOut, "watch it live: nasctl ui --runs "+runs+", then open http://127.0.0.1:8080/runs/m2") {
		t.Errorf("a new run: %d\n%s", code, errOut)
	}
	sameLogs(t, readLog(t, dir), log)
	// A resume is of the run's kind, and a run without training has no final
	// phase to add or leave out; --sample does not resume.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"search", "metaqnn", "--resume", dir}, "is a nasnet run: resume it with nasctl search nasnet --resume " + dir},
		{[]string{"search", "nasnet", "--resume", dir, "--skip-final=false"}, "scores its trials with mock: no images, no final phase"},
		{[]string{"search", "nasnet", "--resume", dir, "--data", dir}, "--data applies to the searches that train"},
		{[]string{"search", "nasnet", "--resume", dir, "--final-augment", "flips"}, "--final-augment applies to the searches that train"},
		{[]string{"search", "metaqnn", "--resume", dir, "--sample", "2"}, "--sample draws from a new search's space"},
	} {
		if code, _, errOut := runCLI(t, tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, want 2 and %q:\n%s", tc.args, code, tc.want, errOut)
		}
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "config.yaml")); string(now) != string(cfg) {
		t.Errorf("a refused resume changed config.yaml:\n%s", now)
	}
	// The same name again is refused with a hint, as a usage error.
	code, _, errOut = runCLI(t, "search", "nasnet", "--reward", "mock", "--episodes", "5", "--dir", runs, "--name", "m")
	if code != 2 || !strings.Contains(errOut, "resume it with --resume") {
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
	if !strings.Contains(errOut, "[12/12] T ") || !strings.Contains(errOut, "preset natsbench, small-budget settings tuned on the NATS-Bench table; LSTM") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if !strings.Contains(out, "NATS-Bench cifar100") || !strings.Contains(out, "Run directory: "+filepath.Join(runs, "nasnet-natsbench")) {
		t.Errorf("stdout:\n%s", out)
	}
}

// The progress of the agents without a controller says how each trial was
// drawn: at random, or as a mutant after evolution's random start of 20;
// the report names the agent.
func TestSearchNASNetAgentsText(t *testing.T) {
	for agent, want := range map[string][]string{
		"random":    {"[1/24] random ", "[24/24] random ", "random search (every decision uniform"},
		"evolution": {"[20/24] random ", "[21/24] mutant ", "regularized evolution (population 20, tournaments of 3"},
	} {
		code, out, errOut := runCLI(t, "search", "nasnet", "--reward", "natsbench", "--agent", agent, "--episodes", "24", "--dir", t.TempDir())
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", agent, code, errOut)
		}
		for _, w := range want {
			if !strings.Contains(errOut+out, w) {
				t.Errorf("%s: no %q in\n%s%s", agent, w, errOut, out)
			}
		}
	}
}

func TestSearchNASNetUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--reward", "bogus"}, `--reward: unknown reward "bogus" (valid: train, mnasnet, constraint, mock, natsbench)`},
		{[]string{"--preset", "gpu"}, "valid: cpu, study; the controller presets paper, study, natsbench apply to --reward mock and natsbench"},
		{[]string{"--reward", "mock", "--preset", "gpu"}, "valid: paper, study, natsbench"},
		{[]string{"--reward", "mock", "--data", "d"}, "--data applies to the searches that train (--reward train, mnasnet, constraint); --reward mock trains nothing"},
		{[]string{"--reward", "natsbench", "--cells", "stem=4"}, "--cells applies to the searches that train"},
		{[]string{"--cells", "depth=3"}, `--cells: unknown key "depth"`},
		{[]string{"--data", "d", "--epochs", "0"}, "--epochs must be at least 1, got 0"},
		{[]string{"--data", ".", "--reward", "mnasnet"}, "reward.target_ms: the mnasnet reward needs a target latency T > 0"},
		{[]string{"--reward", "train"}, "data: an image folder is required"},
		{[]string{"--dataset", "cifar10"}, "--dataset applies to --reward natsbench only; add --reward natsbench or drop --dataset"},
		{[]string{"--reward", "natsbench", "--dataset", "svhn"}, "valid: cifar10, cifar100, imagenet16-120"},
		{[]string{"--reward", "natsbench", "--blocks", "3"}, "--blocks does not apply to --reward natsbench"},
		{[]string{"--episodes", "0"}, "--episodes must be at least 1, got 0"},
		{[]string{"--controller-batch", "-2"}, "--controller-batch must be at least 1"},
		{[]string{"--temperature", "0"}, "--temperature 0: must be positive"},
		{[]string{"--controller-lr", "0"}, "--controller-lr 0: must be positive"},
		{[]string{"--baseline-decay", "0"}, "--baseline-decay 0 would stand for the default, 0.95: give a value in (0, 1)"},
		{[]string{"--baseline", "mean"}, `--baseline: unknown baseline "mean" (valid: ema, study)`},
		{[]string{"--temperature", "0.5"}, "reinforce: temperature 0.5 is below its floor 1"},
		{[]string{"--agent", "bogus"}, `--agent: unknown agent "bogus" (valid: reinforce, random, evolution)`},
		{[]string{"--reward", "mock", "--agent", "random", "--temperature", "2"}, "--temperature sets the REINFORCE controller; --agent random has none"},
		{[]string{"--reward", "mock", "--agent", "evolution", "--preset", "study"}, "--agent evolution has no controller (drop --preset)"},
		{[]string{"--resume", "runs/x", "--agent", "random"}, "--agent, --dir cannot change a resumed run"},
		{[]string{"--resume", "runs/x", "--agent", "random", "--epochs", "2"}, "--agent, --dir, --epochs cannot change a resumed run, even to the value it has"},
		{[]string{"--name", ".x"}, "name: \".x\" is not a valid run name"},
		{[]string{"--config", "missing.yaml"}, "--config: open missing.yaml"},
		{[]string{"extra"}, "takes no arguments"},
	} {
		args := append([]string{"search", "nasnet", "--dir", t.TempDir()}, tc.args...)
		code, _, errOut := runCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	code, _, errOut := runCLI(t, "search", "nasnet", "--resume", "runs/x", "--episodes", "0")
	if code != 2 || !strings.Contains(errOut, "--episodes must be at least 1, got 0") {
		t.Errorf("resumed with 0 episodes: exit %d, %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "search", "nasnet", "--resume", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "is not a run folder (it has no config.yaml)") {
		t.Errorf("resume of an empty directory: exit %d, %s", code, errOut)
	}
}

// A real search process is killed with SIGKILL in the middle of its run,
// then resumed: the resumed run keeps every trial recorded before the kill
// and ends with the trials of an uninterrupted run.
func TestSearchNASNetKillAndResume(t *testing.T) {
	bin := buildNasctl(t)
	runs := t.TempDir()
	args := []string{"search", "nasnet", "--reward", "mock", "--episodes", "600", "--preset", "study", "--seed", "5", "--dir", runs, "--quiet"}
	dir := filepath.Join(runs, "killed")
	cmd := startUntil(t, exec.Command(bin, append(args, "--name", "killed")...), dir, 20)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	before := readLog(t, dir)
	if len(before) >= 600 {
		t.Fatalf("the search finished (%d trials) before the kill arrived", len(before))
	}
	if out, err := exec.Command(bin, "search", "nasnet", "--resume", dir, "--quiet").CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	after := readLog(t, dir)
	sameLogs(t, after[:len(before)], before)
	if out, err := exec.Command(bin, append(args, "--name", "whole")...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted: %v\n%s", err, out)
	}
	sameLogs(t, after, readLog(t, filepath.Join(runs, "whole")))
	t.Logf("killed after %d trials, resumed to %d", len(before), len(after))
}

// A finished run given more episodes with --resume ends with the trials of
// an uninterrupted run of that many: the controller learns the recorded
// episodes again, batch by batch, and samples on as that run does. Fewer
// episodes than recorded are refused.
func TestSearchNASNetMoreEpisodes(t *testing.T) {
	runs := t.TempDir()
	args := []string{"search", "nasnet", "--reward", "mock", "--controller-batch", "4", "--seed", "7", "--dir", runs, "--quiet"}
	dir := filepath.Join(runs, "more")
	for _, extra := range [][]string{{"--name", "whole", "--episodes", "60"}, {"--name", "more", "--episodes", "40"}} {
		if code, _, errOut := runCLI(t, append(args, extra...)...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", extra, code, errOut)
		}
	}
	code, _, errOut := runCLI(t, "search", "nasnet", "--resume", dir, "--episodes", "39")
	if code != 2 || !strings.Contains(errOut, "has recorded 40 trials: give at least that many") {
		t.Errorf("39 episodes after 40: exit %d, %s", code, errOut)
	}
	code, out, errOut := runCLI(t, "search", "nasnet", "--resume", dir, "--episodes", "60")
	// The 40 episodes learned again are not printed again.
	if code != 0 || !strings.Contains(errOut, "40 of 60 trials done (planned: 60, was 40); the agent learns the 40 recorded again, and what the run had of its 40-trial plan (checkpoint, report) is in ") || strings.Contains(errOut, "[40/60]") || !strings.Contains(errOut, "[41/60]") {
		t.Fatalf("resumed with 60 episodes: exit %d\n%s\n%s", code, out, errOut)
	}
	sameLogs(t, readLog(t, dir), readLog(t, filepath.Join(runs, "whole")))
	if _, err := os.Stat(filepath.Join(dir, rundir.DirEarlier, "trials-40", rundir.FileReport)); err != nil {
		t.Errorf("the 40-episode report set aside: %v", err)
	}
	// runs show names the folder.
	code, out, errOut = runCLI(t, "runs", "show", dir)
	if code != 0 || !strings.Contains(out, "when its number of trials changed (each with its checkpoint, and its final phase and report if it had them): "+filepath.Join(rundir.DirEarlier, "trials-40")+".") {
		t.Errorf("runs show: exit %d\n%s%s", code, out, errOut)
	}
}

// A real search process gets Ctrl-C (SIGINT), SIGTERM or SIGHUP (a closed
// terminal) in the middle of its run: it finishes the trial in flight, says
// how to resume and exits with 128 + the signal's number, as a shell
// reports a process the signal ended.
func TestSearchNASNetInterrupt(t *testing.T) {
	bin := buildNasctl(t)
	if signal.Ignored(syscall.SIGHUP) {
		// Run under nohup, the search would inherit the ignored SIGHUP and
		// rightly go on (TestSearchUnderNohup). A handler here instead of
		// the ignore gives the child the default, which exec restores.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}, {syscall.SIGHUP, 129}} {
		runs := t.TempDir()
		dir := filepath.Join(runs, "int")
		var stderr bytes.Buffer
		// Far more episodes than run before the signal, however loaded the
		// machine: 600 could all finish first (1 run in 3 on 2026-12-07).
		c := exec.Command(bin, "search", "nasnet", "--reward", "mock", "--episodes", "1000000", "--dir", runs, "--name", "int", "--json")
		c.Stderr = &stderr
		cmd := startUntil(t, c, dir, 20)
		if err := cmd.Process.Signal(tc.sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(2 * time.Minute):
			cmd.Process.Kill()
			t.Fatalf("%v: the search went on for two minutes after the signal:\n%s", tc.sig, stderr.String())
		}
		if n := len(readLog(t, dir)); n >= 1000000 {
			t.Fatalf("the search finished (%d trials) before the signal arrived", n)
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != tc.code || !strings.Contains(stderr.String(), "nasctl search nasnet --resume "+dir) {
			t.Errorf("%v: %v, want exit code %d\n%s", tc.sig, err, tc.code, stderr.String())
		}
		// The last line, as after a second interrupt or one before the
		// first trial.
		if !strings.HasSuffix(stderr.String(), "\nnasctl: interrupted\n") {
			t.Errorf("%v: the last line is not nasctl: interrupted:\n%s", tc.sig, stderr.String())
		}
	}
}

// Under nohup (SIGHUP ignored when nasctl starts) a SIGHUP does not stop a
// search: catching it would undo what nohup is run for.
func TestSearchUnderNohup(t *testing.T) {
	bin := buildNasctl(t)
	runs := t.TempDir()
	dir := filepath.Join(runs, "nohup")
	var stderr bytes.Buffer
	c := exec.Command("sh", "-c", `trap "" HUP; exec "$0" "$@"`, bin, "search", "nasnet", "--reward", "mock", "--episodes", "1000000",
		"--dir", runs, "--name", "nohup", "--json")
	c.Stderr = &stderr
	cmd := startUntil(t, c, dir, 20)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("the search ended on a SIGHUP under nohup: %v\n%s", err, stderr.String())
	case <-time.After(2 * time.Second):
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := <-done; err == nil || err.(*exec.ExitError).ExitCode() != 130 {
		t.Errorf("Ctrl-C after: %v, want exit code 130\n%s", err, stderr.String())
	}
}

// A search whose output's reader goes away ("| head", a pager quit) stops
// as after Ctrl-C, not killed by SIGPIPE in the middle of its trials: it
// finishes the trial in flight, says how to resume on stderr and exits
// 141, SIGPIPE's code; the trials recorded are whole.
func TestSearchStopsWhenOutputGone(t *testing.T) {
	bin := buildNasctl(t)
	runs := t.TempDir()
	dir := filepath.Join(runs, "pipe")
	var stderr bytes.Buffer
	c := exec.Command(bin, "search", "nasnet", "--reward", "mock", "--episodes", "100000", "--dir", runs, "--name", "pipe", "--json")
	c.Stderr = &stderr
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "{") {
		t.Fatalf("first line %q, %v", line, err)
	}
	out.Close() // as head does after its lines
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		c.Process.Kill()
		t.Fatalf("the search went on for a minute after its output's reader went away:\n%s", stderr.String())
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 141 || !strings.Contains(stderr.String(), "nasctl search nasnet --resume "+dir) {
		t.Errorf("%v, want exit code 141 and the resume command on stderr:\n%s", err, stderr.String())
	}
	if n := len(readLog(t, dir)); n == 0 || n >= 100000 {
		t.Errorf("%d trials recorded", n)
	}
	if code, _, errOut := runCLI(t, "search", "nasnet", "--resume", dir, "--episodes", fmt.Sprint(len(readLog(t, dir))+2)); code != 0 {
		t.Errorf("resume: exit %d: %s", code, errOut)
	}
}

// startUntil starts a search process and returns once the run in dir has
// recorded n trials.
func startUntil(t *testing.T, cmd *exec.Cmd, dir string, n int) *exec.Cmd {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(readLog(t, dir)) < n {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no %d trials within 2 minutes", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cmd
}

// A NASNet search that trains its cells, end to end on a small dataset:
// cell networks of the --cells macro are trained with the preset's SGD and
// validation-loss monitor, rewarded with the cubed accuracy, the best are
// retrained and exported, and the exported winner evaluates on the data.
func TestSearchNASNetTrains(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "leaves")
	generateLeaves(t, data, 240, 16, 4)
	runs := filepath.Join(tmp, "runs")
	code, out, errOut := runCLI(t, "search", "nasnet", "--data", data, "--input", "16x16x1", "--cells", "stem=2, filters=4",
		"--episodes", "4", "--epochs", "2", "--top-k", "2", "--threads", "1", "--seed", "3", "--dir", runs, "--name", "cells")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	dir := filepath.Join(runs, "cells")
	for _, want := range []string{"# NASNet search cells", "(best validation accuracy of the last 5 epochs, or of all when fewer)^3",
		"net(stem=2, filters=4, normal=1, reductions=1, style=nasnet)", "winners/rank-02.onnx", "copied to winners/best.onnx"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.yaml"))
	for _, want := range []string{"kind: nasnet", "optimizer: sgd", "momentum: 0.9", "monitor: val_loss", "stem: 2", "filters: 4", "style: nasnet", "last_epochs: 5", "exponent: 3"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config.yaml lacks %q:\n%s", want, cfg)
		}
	}
	log := readLog(t, dir)
	if len(log) != 4 {
		t.Fatalf("%d trials, want 4", len(log))
	}
	for _, tr := range log {
		if tr.Status == rundir.StatusOK && (len(tr.Epochs) == 0 || tr.Reward <= 0 || tr.Reward > tr.ValAccuracy+1e-9) {
			t.Errorf("trial %d: %d epochs, reward %v, val accuracy %v", tr.ID, len(tr.Epochs), tr.Reward, tr.ValAccuracy)
		}
	}
	code, evalOut, errOut := runCLI(t, "eval", filepath.Join(dir, "winners", "best.onnx"), "--data", data, "--json")
	if code != 0 || !strings.Contains(evalOut, `"accuracy"`) {
		t.Errorf("eval of the winner: exit %d\n%s\n%s", code, evalOut, errOut)
	}
}

// The latency-aware rewards on cell networks: mnasnet calibrates the latency
// model on cell networks sampled from the space and rewards the cubed
// accuracy times (LAT/T)^-0.07; constraint refuses, before training, the
// cells over the parameter limit.
func TestSearchNASNetLatencyRewards(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "leaves")
	generateLeaves(t, data, 120, 16, 4)
	config := filepath.Join(tmp, "c.yaml")
	os.WriteFile(config, []byte("reward:\n  calibration: 20\n"), 0o644)
	runs := filepath.Join(tmp, "runs")
	common := []string{"search", "nasnet", "--data", data, "--input", "16x16x1", "--cells", "stem=2, filters=4", "--config", config,
		"--episodes", "4", "--epochs", "1", "--skip-final", "--threads", "1", "--dir", runs, "--quiet"}
	if code, _, errOut := runCLI(t, append(common, "--reward", "mnasnet", "--target-ms", "0.05", "--name", "soft")...); code != 0 {
		t.Fatalf("mnasnet: exit %d: %s", code, errOut)
	}
	var lm struct {
		Coefficients []float64 `json:"coefficients"`
		Fitted       int       `json:"fitted"`
	}
	b, err := os.ReadFile(filepath.Join(runs, "soft", "latency_model.json"))
	if err != nil || json.Unmarshal(b, &lm) != nil || len(lm.Coefficients) != 10 || lm.Fitted != 16 {
		t.Fatalf("latency model: %v %s", err, b)
	}
	for _, tr := range readLog(t, filepath.Join(runs, "soft")) {
		acc := 0.0
		for _, e := range tr.Epochs {
			acc = max(acc, e.ValAccuracy)
		}
		want := math.Pow(acc, 3) * math.Pow(tr.LatencyMs/0.05, -0.07)
		if tr.Status != rundir.StatusOK || !(tr.LatencyMs > 0) || math.Abs(tr.Reward-want) > 1e-9 {
			t.Errorf("trial %d: %s, latency %v ms, reward %v, want %v", tr.ID, tr.Status, tr.LatencyMs, tr.Reward, want)
		}
	}
	if code, _, errOut := runCLI(t, append(common, "--reward", "constraint", "--max-params", "2000", "--name", "hard")...); code != 0 {
		t.Fatalf("constraint: exit %d: %s", code, errOut)
	}
	refused := 0
	for _, tr := range readLog(t, filepath.Join(runs, "hard")) {
		if over := tr.Params > 2000; over != (tr.Status == rundir.StatusRefused) || over && !strings.Contains(tr.Reason, "exceed the limit of 2000") {
			t.Errorf("trial %d: %d parameters, %s (%s)", tr.ID, tr.Params, tr.Status, tr.Reason)

		}
		if tr.Status == rundir.StatusRefused {
			refused++
		}
	}
	if refused == 0 || refused == 4 {
		t.Errorf("constraint: %d of 4 refused; the limit should part them", refused)
	}
}
