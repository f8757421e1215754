package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nasctl/nasctl/cluster"
	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
)

// TestCluster runs searches across nasctl worker processes. Each subtest
// has its own broker, embedded in the test process on loopback with a token
// and a 2 s AckWait (so that a killed worker's trial moves on quickly); they
// share one build of nasctl, the dataset and the local run they compare
// with.
func TestCluster(t *testing.T) {
	c := &clusterEnv{bin: buildNasctl(t), data: filepath.Join(t.TempDir(), "leaves")}
	generateLeaves(t, c.data, 240, 16, 4)
	for _, st := range []struct {
		name string
		test func(*testing.T, *clusterEnv)
	}{
		{"WorkerKilledMidTrial", testWorkerKilledMidTrial},
		{"DriverKilledAndResumed", testDriverKilledAndResumed},
		{"TrialFailsOnEveryDelivery", testTrialFailsOnEveryDelivery},
		{"RefusesWithoutCredentials", testRefusesWithoutCredentials},
		{"WorkerWaitsForBroker", testWorkerWaitsForBroker},
		{"NoWorkerJSON", testNoWorkerJSON},
		{"AbandonedJobsDropped", testAbandonedJobsDropped},
	} {
		t.Run(st.name, func(t *testing.T) { st.test(t, c) })
	}
}

const clusterToken = "cluster-test-token"

// clusterSearch is a search small enough for CI: 240 16x16 images, 10
// trials of 3 epochs, two in flight.
var clusterSearch = []string{"search", "metaqnn", "--preset", "cpu", "--input", "16x16x1", "--schedule", "1.0:6,0.5:4",
	"--epochs", "3", "--batch", "16", "--skip-final", "--threads", "1", "--seed", "3", "--workers", "2", "--quiet"}

// clusterEnv is what the subtests of TestCluster share: the nasctl
// binary, the tiny dataset, and the trials of the same search run locally.
type clusterEnv struct {
	bin, data string

	once   sync.Once
	local  []rundir.Trial
	failed string
}

// clusterFixture is a subtest's broker and folder of runs.
type clusterFixture struct {
	*clusterEnv
	runs string
	srv  *cluster.Server
}

func (c *clusterEnv) fixture(t *testing.T) *clusterFixture {
	t.Helper()
	srv, err := cluster.StartServer(context.Background(), cluster.ServerOptions{Listen: "127.0.0.1:0", Store: t.TempDir(), Token: clusterToken,
		Settings: cluster.Settings{AckWait: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &clusterFixture{clusterEnv: c, runs: t.TempDir(), srv: srv}
}

// env is the environment of a nasctl process that has the broker's token.
func (f *clusterFixture) env() []string { return append(os.Environ(), tokenEnv+"="+clusterToken) }

// searchArgs are the arguments of the tiny search named name.
func (f *clusterFixture) searchArgs(name string, extra ...string) []string {
	return append(append(slices.Clone(clusterSearch), "--data", f.data, "--dir", f.runs, "--name", name), extra...)
}

// workerProc is a nasctl worker process and the lines it printed.
type workerProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when its output ends

	mu     sync.Mutex
	lines  []string
	killOn *regexp.Regexp // a line matching it kills the process at once
	killed string         // the line that did
}

// startWorker starts a worker process that stops with the test.
func (f *clusterFixture) startWorker(t *testing.T, name string) *workerProc {
	t.Helper()
	return f.startWorkerAt(t, name, f.srv.URL())
}

// startWorkerAt starts a worker process of the broker at url.
func (f *clusterFixture) startWorkerAt(t *testing.T, name, url string) *workerProc {
	t.Helper()
	w := &workerProc{name: name, done: make(chan struct{})}
	w.cmd = exec.Command(f.bin, "worker", "--broker", url, "--name", name, "--cache", t.TempDir())
	w.cmd.Env = f.env()
	out, err := w.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go w.read(bufio.NewScanner(out))
	t.Cleanup(func() {
		w.cmd.Process.Kill()
		<-w.done
		w.cmd.Wait()
		if t.Failed() {
			t.Logf("worker %s:\n%s", name, strings.Join(w.output(), "\n"))
		}
	})
	return w
}

func (w *workerProc) read(sc *bufio.Scanner) {
	defer close(w.done)
	for sc.Scan() {
		w.mu.Lock()
		w.lines = append(w.lines, sc.Text())
		if w.killOn != nil && w.killOn.MatchString(sc.Text()) {
			w.cmd.Process.Signal(syscall.SIGKILL)
			w.killed, w.killOn = sc.Text(), nil
		}
		w.mu.Unlock()
	}
}

func (w *workerProc) output() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.lines)
}

// waitFor waits for a line matching re, failing the test when the worker
// ends first or after a minute (a bound on a hang, not a speed check).
func (w *workerProc) waitFor(t *testing.T, re *regexp.Regexp) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); w.count(re) == 0; time.Sleep(20 * time.Millisecond) {
		select {
		case <-w.done:
			if w.count(re) == 0 {
				t.Fatalf("worker %s ended without a line matching %q:\n%s", w.name, re, strings.Join(w.output(), "\n"))
			}
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %s: no line matching %q in a minute:\n%s", w.name, re, strings.Join(w.output(), "\n"))
		}
	}
}

// count is the number of lines matching re.
func (w *workerProc) count(re *regexp.Regexp) int {
	n := 0
	for _, l := range w.output() {
		if re.MatchString(l) {
			n++
		}
	}
	return n
}

// localTrials are the trials of the tiny search trained in this process,
// without a broker (run once, for every subtest that compares with it).
func (f *clusterFixture) localTrials(t *testing.T) []rundir.Trial {
	t.Helper()
	f.once.Do(func() {
		if code, _, errOut := runCLI(t, f.searchArgs("local")...); code != 0 {
			f.failed = errOut
			return
		}
		f.local = readLog(t, filepath.Join(f.runs, "local"))
	})
	if f.failed != "" {
		t.Fatalf("local search: %s", f.failed)
	}
	return f.local
}

// trainedOnce checks that the workers wrote one result for every trial
// trained (none for a reused one, or one refused before training); a worker
// logs the summary of a result only when it wrote it, and the trial names
// that worker.
func trainedOnce(t *testing.T, run string, trials []rundir.Trial, workers ...*workerProc) {
	t.Helper()
	for _, tr := range trials {
		if tr.Status == rundir.StatusReused || tr.Status == rundir.StatusRefused {
			continue
		}
		done := regexp.MustCompile(fmt.Sprintf(`run %s trial %d: [a-z]+, val`, run, tr.ID))
		n := 0
		for _, w := range workers {
			c := w.count(done)
			if n += c; c == 1 && tr.Worker != w.name {
				t.Errorf("trial %d: trained on %s, recorded as trained on %q", tr.ID, w.name, tr.Worker)
			}
		}
		if n != 1 {
			t.Errorf("trial %d: %d results written by the workers, want 1", tr.ID, n)
		}
	}
}

// A search through two worker processes, one of them killed with SIGKILL in
// the middle of a trial: the trial goes to the other worker after the
// AckWait, is recorded once, and the run has the trials of a local run with
// the same seed (compared untimed with rundir.FirstDifference: same
// architectures, statuses, curves and rewards).
func testWorkerKilledMidTrial(t *testing.T, c *clusterEnv) {
	f := c.fixture(t)
	a, b := f.startWorker(t, "wa"), f.startWorker(t, "wb")
	a.mu.Lock()
	a.killOn = regexp.MustCompile(`run dist trial \d+: epoch 1/`) // two epochs to go
	a.mu.Unlock()
	cmd := exec.Command(f.bin, f.searchArgs("dist", "--broker", f.srv.URL())...)
	cmd.Env = f.env()
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("distributed search: %v\n%s", err, out)
	}
	t.Logf("distributed search with a worker killed: %.1fs", time.Since(start).Seconds())
	a.mu.Lock()
	killed := a.killed
	a.mu.Unlock()
	if killed == "" {
		t.Fatal("worker wa never started a trial")
	}
	id := regexp.MustCompile(`trial (\d+):`).FindStringSubmatch(killed)[1]
	if b.count(regexp.MustCompile(`run dist trial `+id+`: training .*delivery 2 of 3`)) != 1 {
		t.Errorf("trial %s, killed on wa (%q), was not trained again on wb", id, killed)
	}
	got := readLog(t, filepath.Join(f.runs, "dist"))
	sameLogs(t, got, f.localTrials(t))
	trainedOnce(t, "dist", got, a, b)
	by := map[string]int{}
	for _, tr := range got {
		if tr.Worker != "" {
			by[tr.Worker]++
		}
	}
	var ws []string
	for _, w := range slices.Sorted(maps.Keys(by)) {
		ws = append(ws, fmt.Sprintf("%s %d", w, by[w]))
	}
	report, err := os.ReadFile(filepath.Join(f.runs, "dist", "report.md"))
	if want := "Trials trained by remote workers: " + strings.Join(ws, ", ") + "."; len(ws) == 0 || err != nil || !strings.Contains(string(report), want) {
		t.Errorf("report.md lacks %q (%v):\n%s", want, err, report)
	}
}

// A driver killed with SIGKILL while trials are in flight, then resumed
// through the broker: the trials the workers finished meanwhile are taken
// from the results bucket (no trial is trained twice, none recorded twice),
// and the run ends with the trials of a local run.
func testDriverKilledAndResumed(t *testing.T, c *clusterEnv) {
	f := c.fixture(t)
	a, b := f.startWorker(t, "wa"), f.startWorker(t, "wb")
	dir := filepath.Join(f.runs, "driver")
	cmd := exec.Command(f.bin, f.searchArgs("driver", "--broker", f.srv.URL())...)
	cmd.Env = f.env()
	startUntil(t, cmd, dir, 3)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	before := len(readLog(t, dir))
	resume := exec.Command(f.bin, "search", "metaqnn", "--resume", dir, "--broker", f.srv.URL(), "--quiet")
	resume.Env = f.env()
	if out, err := resume.CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	got := readLog(t, dir)
	t.Logf("driver killed after %d trials, resumed to %d", before, len(got))
	sameLogs(t, got, f.localTrials(t))
	trainedOnce(t, "driver", got, a, b)
}

// sabotaged sends one trial to the workers as an architecture they cannot
// build (the driver checked the real one), so that it fails on every
// delivery.
type sabotaged struct {
	*cluster.Executor
	trial int
}

func (s sabotaged) Evaluate(ctx context.Context, j search.Job) (*search.Outcome, error) {
	if j.Trial == s.trial {
		j.Genotype, _ = genotype.Parse("C(8,17,1) - SM()") // kernel 17 on a 16x16 input
	}
	return s.Executor.Evaluate(ctx, j)
}

// A trial that fails on every delivery (three, on both workers) is
// recorded as failed, once, with the workers' reason; the search goes on.
func testTrialFailsOnEveryDelivery(t *testing.T, c *clusterEnv) {
	f := c.fixture(t)
	f.startWorker(t, "wa")
	f.startWorker(t, "wb")
	ctx := context.Background()
	cfg, err := search.Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name, cfg.Dir, cfg.Data, cfg.Input, cfg.Seed, cfg.Workers, cfg.Threads = "fail", f.runs, f.data, "16x16x1", 3, 2, 1
	cfg.Train.Epochs, cfg.Train.BatchSize, cfg.Final.Skip, cfg.Trials = 2, 16, true, 0
	sched, err := controller.ParseSchedule("1.0:4")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MetaQNN.Schedule = search.ScheduleSpec{EpsilonSchedule: sched}
	cfg = cfg.WithDefaults()
	local, err := search.NewLocalExecutor(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cluster.Connect(ctx, cluster.ClientOptions{URL: f.srv.URL(), Token: clusterToken})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	x, err := cluster.NewExecutor(ctx, b, cfg, local)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	// final.int8 calibrates on this process's images: the local executor's.
	got, n := x.CalibrationImages(5)
	want, m := local.CalibrationImages(5)
	if n != 5 || m != 5 || !slices.Equal(got, want) {
		t.Errorf("calibration images through the broker's executor: %d (%d values), want the local %d (%d values)", n, len(got), m, len(want))
	}
	s, err := search.New(cfg, sabotaged{x, 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	trials := readLog(t, s.Dir())
	if len(trials) != 4 {
		t.Fatalf("%d trials recorded, want 4", len(trials))
	}
	tr := trials[1]
	if tr.ID != 2 || tr.Status != rundir.StatusFailed || !strings.Contains(tr.Reason, "failed on all 3 deliveries; the last on worker w") || !strings.Contains(tr.Reason, "kernel 17 exceeds") {
		t.Errorf("trial 2: %s %q", tr.Status, tr.Reason)
	}
	t.Logf("trial 2: %s", tr.Reason)
}

// A worker without the broker's token, or with a wrong one, is refused and
// says what to give; a broker asked to listen beyond loopback without
// credentials does not start.
func testRefusesWithoutCredentials(t *testing.T, c *clusterEnv) {
	f := c.fixture(t)
	withToken := strings.Replace(f.srv.URL(), "://", "://wrong@", 1) // a token in the address
	for _, tc := range []struct {
		env, url string
		want     string
	}{
		{"", f.srv.URL(), "needs credentials; give its token"},
		{tokenEnv + "=wrong", f.srv.URL(), "refused the credentials given"},
		{"", withToken, "refused the credentials given"},
	} {
		cmd := exec.Command(f.bin, "worker", "--broker", tc.url, "--cache", t.TempDir())
		cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, tokenEnv+"=") })
		if tc.env != "" {
			cmd.Env = append(cmd.Env, tc.env)
		}
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); err == nil || code != exitFailure || !strings.Contains(string(out), tc.want) {
			t.Errorf("worker with %q at %s: exit %d, %s", tc.env, tc.url, code, out)
		}
	}
	code, _, errOut := runCLI(t, "server", "--listen", "0.0.0.0:0", "--store", t.TempDir())
	if code != exitUsage || !strings.Contains(errOut, "refusing to listen without credentials on 0.0.0.0:0") {
		t.Errorf("open server: exit %d, %s", code, errOut)
	}
}

// freeAddr is a loopback address where nothing listens (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// A worker started before its broker waits for it, then takes jobs; one
// still waiting stops on Ctrl-C, with exit code 0.
func testWorkerWaitsForBroker(t *testing.T, c *clusterEnv) {
	addr := freeAddr(t)
	f := &clusterFixture{clusterEnv: c}
	w := f.startWorkerAt(t, "early", "nats://"+addr)
	w.waitFor(t, regexp.MustCompile(`waiting for the broker at nats://`+regexp.QuoteMeta(addr)))
	srv, err := cluster.StartServer(context.Background(), cluster.ServerOptions{Listen: addr, Store: t.TempDir(), Token: clusterToken})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	w.waitFor(t, regexp.MustCompile(`worker early: 1 slot\(s\) on cpu, taking jobs from`))

	idle := f.startWorkerAt(t, "idle", "nats://"+freeAddr(t))
	idle.waitFor(t, regexp.MustCompile(`waiting for the broker`))
	if err := idle.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	idle.waitFor(t, regexp.MustCompile(`stopped before the broker answered`))
	<-idle.done
	if err := idle.cmd.Wait(); err != nil { // a stop, as for a worker that had connected
		t.Errorf("a worker stopped while waiting for its broker: %v, want exit 0", err)
	}
}

// A worker whose cache folder cannot be made is refused before it
// connects, as a bad flag value.
func TestWorkerRefusesUnwritableCache(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Nothing answers at the broker's address: a worker that got as far as
	// connecting would wait until the context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"nasctl", "worker", "--broker", "nats://" + freeAddr(t), "--cache", filepath.Join(file, "sub")}, &out, &errOut)
	if code != exitUsage || !strings.Contains(errOut.String(), "--cache: ") || !strings.Contains(errOut.String(), "not a directory") {
		t.Errorf("exit %d: %s", code, errOut.String())
	}
}

// server --new-nkey writes a new seed readable by its owner only whatever
// the umask, and never over an existing file.
func TestServerNewNKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "user.nk")
	old := syscall.Umask(0o277) // would make the file 0400
	code, out, errOut := runCLI(t, "server", "--new-nkey", file)
	syscall.Umask(old)
	if code != exitOK || !strings.HasPrefix(out, "U") {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	seed, err := os.ReadFile(file)
	if err != nil || !strings.HasPrefix(string(seed), "SU") {
		t.Fatalf("seed %q, %v", seed, err)
	}
	code, _, errOut = runCLI(t, "server", "--new-nkey", file)
	if code != exitUsage || !strings.Contains(errOut, "exists; remove it first") {
		t.Errorf("over an existing file: exit %d: %s", code, errOut)
	}
	if again, _ := os.ReadFile(file); string(again) != string(seed) {
		t.Error("the existing key was overwritten")
	}
}

// A server listening on every interface with a token suggests a worker
// command with this machine's name and the token's variable, not the
// token itself.
func TestServerSuggestsWorkerCommand(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name here:", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runServer(ctx, cluster.ServerOptions{Listen: "0.0.0.0:0", Store: t.TempDir(), Token: "sekrit"}, &errOut)
	}()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(errOut.String(), "Ctrl-C stops"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no banner in a minute: %s", errOut.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := errOut.String()
	want := regexp.MustCompile(`listening on nats://` + regexp.QuoteMeta(host) + `:\d+,.*\n  ` + tokenEnv + `=<this broker's token> nasctl worker --broker nats://` + regexp.QuoteMeta(host) + `:\d+ --device cpu\n`)
	if !want.MatchString(got) || strings.Contains(got, "sekrit") || strings.Contains(got, "127.0.0.1") {
		t.Errorf("banner:\n%s", got)
	}
	// Stopped, it says so, and where what it held stays.
	if !strings.Contains(got, "nasctl server: stopped; the jobs and results it holds are kept in ") {
		t.Errorf("no word of the stop:\n%s", got)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// With no worker, a --json driver says so in an info event, with the
// command that starts one; stopped, it names the broker in its resume
// command (a resume without it would train the rest here), and the token
// by its variable only.
func testNoWorkerJSON(t *testing.T, c *clusterEnv) {
	f := c.fixture(t)
	dir := filepath.Join(f.runs, "idle")
	cmd := exec.Command(f.bin, append(f.searchArgs("idle", "--broker", f.srv.URL()), "--json")...)
	cmd.Env = f.env()
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hint := "no worker is waiting for cpu trials yet; the trials wait in the queue until one starts: " +
		tokenEnv + "=<the broker's token> nasctl worker --broker " + f.srv.URL() + " --device cpu"
	lines := make(chan string)
	go func() {
		defer close(lines)
		for sc := bufio.NewScanner(out); sc.Scan(); {
			lines <- sc.Text()
		}
	}()
	var seen []string
	timeout := time.After(time.Minute)
wait:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				break wait
			}
			var e search.Event
			if json.Unmarshal([]byte(line), &e) != nil {
				continue
			}
			if e.Kind == "info" {
				seen = append(seen, e.Message)
			}
			if e.Kind == "start" { // the info comes before; Ctrl-C stops gracefully from here on
				break wait
			}
		case <-timeout:
			break wait
		}
	}
	if !slices.Contains(seen, hint) {
		t.Errorf("no info event %q; info events:\n%s", hint, strings.Join(seen, "\n"))
	}
	for range 2 {
		cmd.Process.Signal(os.Interrupt)
		time.Sleep(300 * time.Millisecond)
	}
	go func() {
		for range lines {
		}
	}()
	cmd.Wait()
	resume := tokenEnv + "=<the broker's token> nasctl search metaqnn --resume " + dir + " --broker " + f.srv.URL()
	if !strings.Contains(errOut.String(), resume) || strings.Contains(errOut.String(), clusterToken) {
		t.Errorf("want %q, and not the token, in:\n%s", resume, errOut.String())
	}
}

// A search stopped while its trials wait for a worker leaves them queued
// and says how to remove them; nasctl jobs lists them
// under the run's name, and the command said removes them.
func testAbandonedJobsDropped(t *testing.T, c *clusterEnv) {
	f := c.fixture(t)
	cmd := exec.Command(f.bin, f.searchArgs("gone", "--broker", f.srv.URL())...)
	cmd.Env = f.env()
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	jobs := func(args ...string) (string, error) {
		c := exec.Command(f.bin, append([]string{"jobs", "--broker", f.srv.URL()}, args...)...)
		c.Env = f.env()
		out, err := c.CombinedOutput()
		return string(out), err
	}
	listed := regexp.MustCompile(`(?m)^gone +cpu +2 +0 +\S+ \S+ +1-2$`)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		out, err := jobs()
		if err != nil {
			t.Fatalf("nasctl jobs: %v\n%s", err, out)
		}
		if listed.MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the search's two trials were not listed in a minute:\n%s", out)
		}
	}
	// One SIGTERM, as systemd or timeout sends: a graceful stop would wait
	// for the trials in flight for ever, but no worker trains them, so they
	// are abandoned to the queue at once, as by a second Ctrl-C.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-exited:
	case <-time.After(time.Minute): // a bound on a hang, not a speed check
		cmd.Process.Kill()
		t.Fatalf("the search did not end in a minute after a SIGTERM:\n%s", errOut.String())
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 143 {
		t.Fatalf("the search ended with %v after SIGTERM, want exit code 143:\n%s", err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "no worker is training this search's trials: they stay queued on the broker instead of being waited for") {
		t.Errorf("the stop does not say why it did not wait:\n%s", errOut.String())
	}
	drop := regexp.MustCompile(`(?m)^  (\S+)=<the broker's token> nasctl jobs --broker (\S+) --drop gone$`).FindStringSubmatch(errOut.String())
	if drop == nil || drop[1] != tokenEnv || drop[2] != f.srv.URL() {
		t.Fatalf("no command to remove the jobs in what the search said:\n%s", errOut.String())
	}
	if out, err := jobs("--drop", "gone"); err != nil || !strings.Contains(out, "removed 2 jobs of run gone") {
		t.Fatalf("nasctl jobs --drop gone: %v\n%s", err, out)
	}
	if out, err := jobs("--json"); err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("nasctl jobs --json after the drop: %v\n%s", err, out)
	}
	if out, err := jobs("--drop", "gone"); err == nil || !strings.Contains(out, `the broker holds no job of a run called "gone": `+tokenEnv+`=<the broker's token> nasctl jobs --broker `) {
		t.Errorf("dropping again: %v\n%s", err, out)
	}
	if out, err := jobs("--drop", "gone", "--json"); err == nil || !strings.Contains(out, `"dropped": 0`) { // a failure under --json too
		t.Errorf("dropping again, --json: %v\n%s", err, out)
	}
}
