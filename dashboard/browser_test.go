package dashboard

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
)

// The browser tests drive Debian's Chromium, headless, through the
// DevTools protocol (chromedp), against a dashboard on a loopback port.

var screenshots = flag.String("screenshots", "", "write a screenshot of each page into this folder (the repository keeps them in docs/dashboard: go test ./dashboard -run Browser -screenshots ../docs/dashboard)")

// chromium returns the browser to drive: $CHROMIUM, else Chromium on PATH.
// Without one the tests fail, in CI too: the set-up installs it.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal(`the browser tests need Chromium: install Debian's package with "apt-get install -y chromium" ` +
		`("make test" does, through scripts/setup-test-deps.sh), or set $CHROMIUM to a Chromium binary`)
	return ""
}

// browser starts headless Chromium with a new profile and returns the
// context of its tab; everything ends with the test. The flags keep it off
// the network: this machine reaches none, and Chromium would keep trying.
// Its temporary folder is the test's too: Chromium leaves a folder there
// when it is stopped at the end of a test.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	tmp := t.TempDir()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Env("TMPDIR="+tmp),
		chromedp.WindowSize(1360, 900),
	)
	ctx, cancelTab := chromedp.NewContext(alloc)
	ctx, cancelTime := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// do runs steps in the tab, failing the test on an error.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitFor waits until a JavaScript expression is true in the page, and
// fails the test with what describe (an expression) says after timeout.
func waitFor(t *testing.T, ctx context.Context, cond, describe string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("waited %s for %s: %v; the page shows %v", timeout, cond, err, eval[any](t, ctx, describe))
	}
}

// screenshot saves the whole page as name.png in -screenshots, if set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if *screenshots == "" {
		return
	}
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*screenshots, name+".png"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rows is an expression: the number of trial rows the run page shows.
const rows = `document.querySelectorAll('#trials tbody tr[data-id]').length`

// The runs page lists every run with its counts and status, sorts, and
// compares the runs ticked.
func TestBrowserRunsPage(t *testing.T) {
	runs, _ := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/"))
	cell := func(run, sel string) string {
		return fmt.Sprintf(`document.querySelector('#runs tr[data-name=%q] %s')?.textContent`, run, sel)
	}
	waitFor(t, ctx, cell("leaves-c", ".count")+` === '2 / 8'`, `document.getElementById('runs').innerText`, 10*time.Second)
	for run, want := range map[string][2]string{
		"leaves-a": {"24 / 24", "finished"},
		"leaves-b": {"10 / 30", "running"},
		"leaves-c": {"2 / 8", "stopped"},
	} {
		if got := [2]string{eval[string](t, ctx, cell(run, ".count")), eval[string](t, ctx, cell(run, ".badge"))}; got != want {
			t.Errorf("%s: %q, want %q", run, got, want)
		}
	}
	// The header names the folder served.
	abs, _ := filepath.Abs(runs)
	waitFor(t, ctx, fmt.Sprintf(`document.getElementById('folder').textContent === %q`, "in "+abs), `document.querySelector('header').innerText`, 5*time.Second)
	// Two runs ticked make a comparison of them.
	do(t, ctx, chromedp.Click(chromedp.CSS(`#runs tr[data-name="leaves-a"] input`)), chromedp.Click(chromedp.CSS(`#runs tr[data-name="leaves-b"] input`)))
	if eval[bool](t, ctx, `document.getElementById('compare').disabled`) {
		t.Error("two runs ticked, and the compare button is disabled")
	}
	screenshot(t, ctx, "runs")

	names := `[...document.querySelectorAll('#runs tbody tr')].map(r => r.dataset.name).join(' ')`
	do(t, ctx, chromedp.Click(chromedp.CSS(`#runs th[data-key="name"]`)))
	if got := eval[string](t, ctx, names); got != "leaves-a leaves-b leaves-c" {
		t.Errorf("sorted by name: %s", got)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS(`#runs th[data-key="name"]`)))
	if got := eval[string](t, ctx, names); got != "leaves-c leaves-b leaves-a" {
		t.Errorf("sorted by name, descending: %s", got)
	}
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(cdppage.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`#compare`)))); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, ctx, `location.pathname + location.search`); got != "/compare?run=leaves-a&run=leaves-b" {
		t.Errorf("compare went to %s", got)
	}
}

// The run page has a row per trial; a trial the search appends appears
// without a reload; a click on a trial shows its learning curves.
func TestBrowserRunPage(t *testing.T) {
	runs, b := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/runs/leaves-b"))
	waitFor(t, ctx, rows+` === 10 && document.getElementById('live').textContent === 'watching'`, rows, 10*time.Second)
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	// A run still searching has no final models yet, and says when they come.
	empty := `(c => c ? c.textContent : '')(document.querySelector('#final td.empty'))`
	waitFor(t, ctx, empty+`.startsWith('No final models yet: ')`, empty, 5*time.Second)

	start := time.Now()
	b.add(t, 11)
	waitFor(t, ctx, `!!document.querySelector('#trials tbody tr[data-id="11"]')`, rows, 5*time.Second)
	t.Logf("trial 11 shown %s after it was appended (the server polls every 250 ms)", time.Since(start).Round(time.Millisecond))
	if !eval[bool](t, ctx, `window.notReloaded === true`) || eval[int](t, ctx, rows) != 11 {
		t.Errorf("after the append: reloaded, or %d rows", eval[int](t, ctx, rows))
	}
	waitFor(t, ctx, `document.getElementById('done').textContent === '11 of 30'`, `document.getElementById('done').textContent`, 5*time.Second)

	// Trial 5 was refused: the filter shows it alone.
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`(s => { s.value = 'refused'; s.dispatchEvent(new Event('change')); })(document.getElementById('filter'))`))
	waitFor(t, ctx, rows+` === 1 && !!document.querySelector('#trials tr[data-id="5"]')`, rows, 5*time.Second)
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`(s => { s.value = ''; s.dispatchEvent(new Event('change')); })(document.getElementById('filter'))`))
	waitFor(t, ctx, rows+` === 11`, rows, 5*time.Second)

	do(t, ctx, chromedp.Click(chromedp.CSS(`#trials tbody tr[data-id="2"]`)))
	curve := `(i => !document.getElementById('trial').hidden && i.complete && i.naturalWidth > 0 && i.src.includes('/trials/2/curves.png'))(document.getElementById('curve'))`
	waitFor(t, ctx, curve, `document.getElementById('curve').src`, 10*time.Second)
	if n := eval[int](t, ctx, `document.querySelectorAll('#epochs tbody tr').length`); n != 6 {
		t.Errorf("the epochs of trial 2: %d rows, want 6", n)
	}
	if title := eval[string](t, ctx, `document.getElementById('trial-title').textContent`); title != "Trial 2: "+fakeTrial(2, 2).Arch {
		t.Errorf("the selected trial's title: %q", title)
	}
	if facts := eval[string](t, ctx, `document.getElementById('trial-facts').textContent`); !strings.Contains(facts, "trained on worker gpu-1") {
		t.Errorf("the selected trial's facts do not name its worker: %q", facts)
	}

	// The finished run: its greedy trials say so beside their epsilon, and
	// its facts name the plan a resume with more trials set aside.
	earlierBest := filepath.Join(runs, "leaves-a", rundir.DirEarlier, "trials-20", rundir.BestName)
	if err := os.MkdirAll(filepath.Dir(earlierBest), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(earlierBest, []byte("the earlier plan's best"), 0o644); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, chromedp.Navigate(srv.URL+"/runs/leaves-a"))
	waitFor(t, ctx, rows+` === 24`, rows, 10*time.Second)
	facts := `document.getElementById('facts').textContent`
	waitFor(t, ctx, facts+`.includes('Earlier plans' + 'set aside in the run folder when its number of trials changed: earlier/trials-20 (its best.onnx)')`, facts, 5*time.Second)
	// Its best model downloads from the link.
	link := eval[string](t, ctx, `[...document.querySelectorAll('#facts a')].find(a => a.textContent === 'its best.onnx').href`)
	if resp, body := get(t, link, nil); resp.StatusCode != 200 || string(body) != "the earlier plan's best" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), `filename="leaves-a-trials-20-best.onnx"`) {
		t.Errorf("%s: %d %q %v", link, resp.StatusCode, body, resp.Header)
	}
	// Its winner's test accuracy, as the run's summary has it.
	sum, err := search.Summarize(filepath.Join(runs, "leaves-a"))
	if err != nil || sum.WinnerArch == "" {
		t.Fatalf("the fixture's summary: %v, winner %q", err, sum.WinnerArch)
	}
	waitFor(t, ctx, fmt.Sprintf(`%s.includes('the winner (picked by validation accuracy, ties by validation loss) tests at %.4f')`, facts, sum.BestTest), facts, 5*time.Second)
	// And the mean test accuracy of the best finals, as report.md says it.
	rep, err := search.ReadReport(filepath.Join(runs, "leaves-a"))
	if err != nil || rep.BestFive != 2 {
		t.Fatalf("the fixture's report: %v, %d best", err, rep.BestFive)
	}
	waitFor(t, ctx, fmt.Sprintf(`%s.includes('; the 2 best by the same order average %.4f')`, facts, rep.BestFiveTest), facts, 5*time.Second)
	cell := `document.querySelector('#trials tbody tr[data-id="%d"] td:nth-child(2)').textContent`
	if g, e := eval[string](t, ctx, fmt.Sprintf(cell, 22)), eval[string](t, ctx, fmt.Sprintf(cell, 21)); g != "ε 0.1 greedy" || e != "ε 0.1" {
		t.Errorf("the epsilon cells of a greedy trial and one that explores: %q and %q", g, e)
	}
	// The page writes any epsilon as the Go side's reports and progress lines do.
	epsilons := []float64{1, 0.8, 0.05, 0.02, 0.005, 0, 0.25, 1.0 / 3, 1e-7}
	var want []string
	for _, e := range epsilons {
		want = append(want, controller.EpsilonText(e))
	}
	js := fmt.Sprintf(`import('/static/app.js').then(m => %s.map(m.epsText).join(' '))`, strings.ReplaceAll(fmt.Sprint(epsilons), " ", ","))
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil || got != strings.Join(want, " ") {
		t.Errorf("the page's epsilons of %v: %q (%v), want %q", epsilons, got, err, strings.Join(want, " "))
	}
	// A trial the median rule stopped says so beside its epochs.
	epochs := `document.querySelector('#trials tbody tr[data-id="%d"] td:nth-child(10)').textContent`
	if p, f := eval[string](t, ctx, fmt.Sprintf(epochs, 7)), eval[string](t, ctx, fmt.Sprintf(epochs, 8)); !strings.HasPrefix(p, "3 (best ") || !strings.HasSuffix(p, ") stopped") ||
		!strings.HasPrefix(f, "6 (best ") || strings.Contains(f, "stopped") {
		t.Errorf("the epochs cells of a stopped trial and a whole one: %q and %q", p, f)
	}

	if *screenshots != "" {
		// The screenshot is of the finished run, shown above: its final table filled.
		waitFor(t, ctx, rows+` === 24 && document.querySelectorAll('#final tbody a').length === 2`, rows, 10*time.Second)
		do(t, ctx, chromedp.Click(chromedp.CSS(`#trials tbody tr[data-id="22"]`)))
		waitFor(t, ctx, `[...document.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)`, `document.images.length`, 10*time.Second)
		do(t, ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		screenshot(t, ctx, "run")
	}
}

// The compare page draws the runs' best rewards so far and sets their
// final tables side by side; without two runs it offers them to choose.
func TestBrowserComparePage(t *testing.T) {
	runs, _ := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/compare"))
	waitFor(t, ctx, `document.querySelectorAll('#picker input[type=checkbox]').length === 3`, `document.getElementById('picker').innerText`, 10*time.Second)

	do(t, ctx, chromedp.Navigate(srv.URL+"/compare?run=leaves-a&run=leaves-b"))
	loaded := `(i => i.complete && i.naturalWidth > 0)(document.getElementById('best')) && document.querySelectorAll('#columns > div').length === 2`
	waitFor(t, ctx, loaded, `document.getElementById('columns').innerText`, 10*time.Second)
	waitFor(t, ctx, `document.querySelectorAll('#columns [data-run="leaves-a"] tbody tr').length === 2`,
		`document.getElementById('columns').innerText`, 10*time.Second)
	screenshot(t, ctx, "compare")
}

// An open run page follows its log when it is rewritten (it drops the
// trials the log no longer has), and says so when the run is deleted.
func TestBrowserRewrittenAndDeletedRun(t *testing.T) {
	runs, _ := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/runs/leaves-c"))
	waitFor(t, ctx, rows+` === 2 && document.getElementById('live').textContent === 'watching'`, rows, 10*time.Second)

	dir := filepath.Join(runs, "leaves-c")
	rewriteTrials(t, dir, fakeTrial(1, 3))
	waitFor(t, ctx, rows+` === 1 && !document.querySelector('#trials tr[data-id="2"]')`, rows, 5*time.Second)

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	header := `document.querySelector('header').innerText + ' | ' + document.getElementById('banner').innerText`
	waitFor(t, ctx, `document.getElementById('status').textContent === 'deleted' && document.getElementById('banner').textContent.includes('was deleted')`, header, 5*time.Second)
	if got := eval[string](t, ctx, header); strings.Contains(got, "stopped") || strings.Contains(got, "watching") || strings.Contains(got, "nasctl runs list") {
		t.Errorf("a deleted run's page says %q", got)
	}
}

// The final models line says where the final phase stands: not started
// during the search or on a stopped run, and since when it runs while it
// does (it reports its epochs only to the terminal).
func TestBrowserFinalPhase(t *testing.T) {
	runs, b := fixtureRuns(t)
	f := newRun(t, runs, "leaves-f", 6, 5, seq(1, 6)...)
	trials, err := rundir.ReadTrials(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	best := trials[0] // a trained one: trial 1
	if err := f.AppendFinal(rundir.FinalResult{Rank: 1, Trial: best.ID, Arch: best.Arch, ValAccuracy: 0.9, TestAccuracy: 0.9,
		Status: rundir.StatusOK, Seconds: 95, Finished: fixtureStart.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// The retraining in flight, as the search writes it.
	if err := f.WriteJSON(rundir.FileFinalProgress, []rundir.FinalProgress{{Rank: 2, Trial: 4, Epoch: 12, MaxEpochs: 30, ValAccuracy: 0.9946,
		Time: fixtureStart.Add(2 * time.Hour), Started: fixtureStart.Add(90 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	facts := `document.getElementById('facts').innerText`
	for run, want := range map[string]string{
		"leaves-b":  "final phase not started: the best 2 are retrained after the last trial",
		"leaves-c":  "final phase not started; the search is stopped",
		"leaves-f":  "retraining: 1 of 2 done; final phase running since " + fixtureStart.Add(90*time.Minute).Local().Format("2006-01-02 15:04:05"),
		"leaves-f ": "#2 (trial 4): epoch 12 of at most 30, val. accuracy 0.9946, at " + fixtureStart.Add(2*time.Hour).Local().Format("2006-01-02 15:04:05"),
	} {
		run = strings.TrimSpace(run) // a second line of one run
		do(t, ctx, chromedp.Navigate(srv.URL+"/runs/"+run))
		waitFor(t, ctx, fmt.Sprintf(`%s.includes(%q)`, facts, want), facts, 10*time.Second)
		if got := eval[string](t, ctx, facts); strings.Contains(got, "the best is picked once all are") {
			t.Errorf("%s: %q", run, got)
		}
	}
	// Before a retraining has said how far it is, the phase runs since
	// the last trial.
	if err := os.Remove(filepath.Join(f.Path, rundir.FileFinalProgress)); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, chromedp.Navigate(srv.URL+"/runs/leaves-f"))
	waitFor(t, ctx, fmt.Sprintf(`%s.includes(%q)`, facts, "final phase running since "+trials[len(trials)-1].Finished.Local().Format("2006-01-02 15:04:05")), facts, 10*time.Second)
	// A running search says how long it has run and has left, and that
	// its trials' summed time is that of all workers. The estimate counts
	// down from its last update, or, when that is long past (a run resumed
	// after a pause; here, the fixture's times), from when the page heard
	// of it: the time left is counted, not "due".
	do(t, ctx, chromedp.Navigate(srv.URL+"/runs/leaves-b"))
	waitFor(t, ctx, facts+`.includes('Training time, all workers') && /Elapsed\s+\S.* since the run was made, about \S.* left \(nasctl search's estimate: done around \d{4}-\d\d-\d\d /.test(`+facts+`)`, facts, 10*time.Second)
	// A run event that repeats the update and the estimate (a final-phase
	// epoch's) keeps the count going rather than starting it again.
	until := `document.querySelector('#facts [data-until]').dataset.until`
	before, heard := eval[string](t, ctx, until), eval[string](t, ctx, `document.body.dataset.runs`)
	time.Sleep(1100 * time.Millisecond)
	if err := b.WriteJSON(rundir.FileFinalProgress, []rundir.FinalProgress{{Rank: 1, Trial: 3, Epoch: 4, MaxEpochs: 30, ValAccuracy: 0.9}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, fmt.Sprintf(`document.body.dataset.runs !== %q`, heard), `document.body.dataset.runs`, 5*time.Second)
	if after := eval[string](t, ctx, until); after != before {
		t.Errorf("the estimate's end moved from %s to %s on an event that repeated it", before, after)
	}
}

// A run page opened before its run exists (as its search starts) says so,
// and shows the run once it is there.
func TestBrowserRunAppears(t *testing.T) {
	runs, _ := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/runs/late"))
	problem := `document.getElementById('problem').innerText`
	waitFor(t, ctx, problem+`.includes('no run "late"') && `+problem+`.includes('looks again every 3 s')`, problem, 10*time.Second)
	if err := newRun(t, runs, "late", 4, 6, 1, 2).Close(); err != nil {
		t.Fatal(err)
	}
	facts := `document.getElementById('facts').innerText`
	waitFor(t, ctx, facts+`.includes('2 of 4') && `+problem+` === '' && document.getElementById('config').textContent !== ''`, facts+` + ' | ' + `+problem, 10*time.Second)
}

// Refreshes keep what the user did: the runs page keeps its rows (and a
// selection in them) while nothing changed, the compare page its sort.
func TestBrowserRefreshKeepsState(t *testing.T) {
	runs, _ := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/"))
	row := `document.querySelector('#runs tr[data-name="leaves-a"]')`
	waitFor(t, ctx, `!!`+row, `document.getElementById('runs').innerText`, 10*time.Second)
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`window.kept = `+row+`; getSelection().selectAllChildren(kept.lastElementChild)`))
	time.Sleep(2500 * time.Millisecond) // the page refreshes every 2 s
	if !eval[bool](t, ctx, `kept.isConnected && getSelection().toString() !== ''`) {
		t.Error("the runs page redrew its unchanged rows, and the selection went with them")
	}

	do(t, ctx, chromedp.Navigate(srv.URL+"/compare?run=leaves-a&run=leaves-b"))
	head := `document.querySelector('#columns [data-run="leaves-a"] th[data-key="test_accuracy"]')`
	waitFor(t, ctx, `!!`+head, `document.getElementById('columns').innerText`, 10*time.Second)
	// Clicked by script: a mouse click goes to where the header was, and the
	// figure above may load meanwhile and move it (a loaded machine missed it).
	do(t, ctx, chromedp.Evaluate[chromedp.Void](head+`.click()`))
	if !eval[bool](t, ctx, head+`?.classList.contains('asc')`) {
		t.Fatal("a click on the test accuracy's header did not sort by it")
	}
	time.Sleep(5500 * time.Millisecond) // the page refreshes every 5 s
	if !eval[bool](t, ctx, head+`?.classList.contains('asc')`) {
		t.Error("the compare page's refresh lost the sort by test accuracy")
	}
}

// The compare page names the winner's test accuracy as the winner's, marks
// its row, and offers best.onnx.
func TestBrowserCompareWinner(t *testing.T) {
	runs, _ := fixtureRuns(t)
	if err := os.WriteFile(filepath.Join(runs, "leaves-a", rundir.BestName), []byte("best"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/compare?run=leaves-a&run=leaves-b"))
	col := `document.querySelector('#columns [data-run="leaves-a"]')`
	waitFor(t, ctx, col+`?.querySelectorAll('tbody tr').length === 2`, `document.getElementById('columns').innerText`, 10*time.Second)
	text := eval[string](t, ctx, col+`.innerText`)
	if !strings.Contains(text, "winner's test accuracy") || strings.Contains(text, "best test accuracy") {
		t.Errorf("leaves-a's column: %q", text)
	}
	if n := eval[int](t, ctx, col+`.querySelectorAll('tr.winner').length`); n != 1 {
		t.Errorf("%d winner rows, want 1", n)
	}
	if href := eval[string](t, ctx, col+`.querySelector('a[download]')?.getAttribute('href') || ''`); href != "/api/runs/leaves-a/winners/best.onnx" {
		t.Errorf("best.onnx link %q", href)
	}

	do(t, ctx, chromedp.Navigate(srv.URL+"/runs/leaves-a"))
	waitFor(t, ctx, `document.querySelectorAll('#final tr.winner').length === 1 && !!document.querySelector('#facts a[href$="/winners/best.onnx"]')`,
		`document.getElementById('final').innerText + document.getElementById('facts').innerText`, 10*time.Second)
}

// The compare page states its limit of 10 runs, in the picker too, and
// shows the server's error rather than a broken figure; its final tables
// fit their columns in a 1280 px window.
func TestBrowserCompareLimits(t *testing.T) {
	runs, _ := fixtureRuns(t)
	var many []string
	for i := 1; i <= 11; i++ {
		name := fmt.Sprintf("more-%02d", i)
		newRun(t, runs, name, 4, uint64(10+i), 1, 2).Close()
		many = append(many, "run="+name)
	}
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/compare?"+strings.Join(many, "&")))
	waitFor(t, ctx, `document.getElementById('problem').textContent.includes('1 to 10 runs')`, `document.getElementById('problem').textContent`, 10*time.Second)

	do(t, ctx, chromedp.Navigate(srv.URL+"/compare"))
	boxes := `[...document.querySelectorAll('#picker input[type=checkbox]')]`
	waitFor(t, ctx, boxes+`.length === 14`, `document.getElementById('picker').innerText`, 10*time.Second)
	do(t, ctx, chromedp.Evaluate[chromedp.Void](boxes+`.slice(0, 10).forEach(b => b.click())`))
	if got := eval[string](t, ctx, boxes+`.map(b => b.disabled ? 'x' : '.').join('')`); got != "..........xxxx" {
		t.Errorf("with 10 runs ticked, the picker's boxes (x: disabled): %s", got)
	}

	do(t, ctx, chromedp.EmulateViewport(1280, 900))
	do(t, ctx, chromedp.Navigate(srv.URL+"/compare?run=leaves-a&run=leaves-b&run=leaves-c"))
	waitFor(t, ctx, `document.querySelectorAll('#columns tbody tr').length >= 4`, `document.getElementById('columns').innerText`, 10*time.Second)
	// Each column and its table's scroller, then the page.
	over := `[...document.querySelectorAll('#columns > div, #columns .scroll-x')].map(c => c.scrollWidth - c.clientWidth).concat(document.documentElement.scrollWidth - innerWidth).join(' ')`
	if got := eval[string](t, ctx, over); got != "0 0 0 0 0 0 0" {
		t.Errorf("the compare columns and page overflow by %s px", got)
	}
}

// A run with a damaged log line is listed with its status and the damage,
// not as unreadable: the trials before the line are there.
func TestBrowserDamagedRun(t *testing.T) {
	runs, _ := fixtureRuns(t)
	damageLine2(t, filepath.Join(runs, "leaves-c"))
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/"))
	row := `(r => r ? r.innerText : '')(document.querySelector('#runs tr[data-name="leaves-c"]'))`
	waitFor(t, ctx, row+`.includes('damaged: ')`, row, 10*time.Second)
	if got := eval[string](t, ctx, row); strings.Contains(got, "unreadable") || !strings.Contains(got, "stopped") {
		t.Errorf("the damaged run's row: %q", got)
	}
}

// A run whose winner is at chance calls it undeployable in its facts, and
// its final table marks the models at chance.
func TestBrowserWinnerAtChance(t *testing.T) {
	runs := t.TempDir()
	g := newRun(t, runs, "leaves-g", 6, 5, seq(1, 6)...)
	trials, err := rundir.ReadTrials(g.Path)
	if err != nil {
		t.Fatal(err)
	}
	for rank, trial := range []int{1, 2} {
		if err := g.AppendFinal(rundir.FinalResult{Rank: rank + 1, Trial: trial, Arch: trials[trial-1].Arch, ValAccuracy: 0.5, TestAccuracy: 0.5,
			Status: rundir.StatusOK, AtChance: true, Finished: fixtureStart.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/runs/leaves-g"))
	facts, final := `document.getElementById('facts').innerText`, `document.getElementById('final').innerText`
	waitFor(t, ctx, facts+`.includes('tests at 0.5000, no better than chance (a constant predictor): do not deploy it')`, facts, 10*time.Second)
	waitFor(t, ctx, final+`.includes('0.5000 (at chance)')`, final, 10*time.Second)
}

// A run whose search ended with an error says so, with the error, where
// its final models would be, and that a resume goes on; the runs page
// lists it as failed.
func TestBrowserSearchEndedWithError(t *testing.T) {
	runs := t.TempDir()
	e := newRun(t, runs, "leaves-e", 6, 5, seq(1, 3)...)
	if err := e.WriteJSON(rundir.FileFailure, rundir.Failure{Error: "3 trials in a row failed, the last with: no GPU", Time: fixtureStart}); err != nil {
		t.Fatal(err)
	}
	e.Close() // no process holds it: not running
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/runs/leaves-e"))
	facts, final := `document.getElementById('facts').innerText`, `document.getElementById('final').innerText`
	waitFor(t, ctx, facts+`.includes('none: the search ended with an error (3 trials in a row failed, the last with: no GPU); a resume goes on')`, facts, 10*time.Second)
	waitFor(t, ctx, final+`.includes('nasctl search metaqnn --resume `+filepath.Join(runs, "leaves-e")+` goes on')`, final, 10*time.Second)
	// Times are the browser's, and say in which zone (the CLI's are the server's).
	waitFor(t, ctx, facts+`.includes('Started (UTC') && `+facts+`.includes('Last update (UTC')`, facts, 10*time.Second)
	waitFor(t, ctx, facts+`.includes('Ended with an error')`, facts, 10*time.Second)
	do(t, ctx, chromedp.Navigate(srv.URL+"/"))
	list := `document.getElementById('runs').innerText`
	waitFor(t, ctx, list+`.includes('failed') && `+list+`.includes('the search ended with an error: 3 trials in a row failed, the last with: no GPU')`, list, 10*time.Second)
}

// The finals' timings, written after the last final model, reach an open
// run page: its final table loads again on the run's new version and
// fills the "Timed ms" column; nasctl bench's figures fill "Bench ms".
func TestBrowserFinalTimings(t *testing.T) {
	runs, _ := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/runs/leaves-a"))
	final := `document.getElementById('final').innerText`
	waitFor(t, ctx, `document.querySelectorAll('#final tbody tr').length === 2 && `+final+`.includes('Timed ms')`, final, 10*time.Second)
	// Each final's lowest class recall on the test images (551 of 580 for rank 1).
	waitFor(t, ctx, final+`.includes('Lowest recall') && `+final+`.includes('leaf 0.9500')`, final, 5*time.Second)
	finals, err := search.ReadFinals(filepath.Join(runs, "leaves-a"))
	if err != nil {
		t.Fatal(err)
	}
	timeRankOne(t, filepath.Join(runs, "leaves-a"), finals[0].Trial)
	waitFor(t, ctx, final+`.includes('0.1250')`, final, 15*time.Second)
	// nasctl bench's figures, when it measures the winners.
	if err := os.MkdirAll(filepath.Join(runs, "leaves-a", rundir.DirBench), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := bench.WriteCSV(filepath.Join(runs, "leaves-a", benchCSV), []*bench.Result{
		{Model: "winners/rank-01.onnx", LatencyMs: bench.Latency{P50: 0.08, P95: 0.09}, Pareto: true}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, final+`.includes('Bench ms') && `+final+`.includes('0.0800 (0.0900) *')`, final, 15*time.Second)
}

// A final model taken from an earlier plan says so in its row, and its
// seconds are not counted as the final phase's; a run scored by a mock
// reward says it has no final phase, not that its finals are yet to come.
func TestBrowserReusedFinalsAndScoredRuns(t *testing.T) {
	runs, _ := fixtureRuns(t)
	f := newRun(t, runs, "longer", 25, 11, seq(1, 24)...)
	chance := fakeTrial(25, 11)
	chance.AtChance = true
	if err := f.AppendTrial(chance); err != nil {
		t.Fatal(err)
	}
	for rank, tr := range []int{2, 4} {
		r := rundir.FinalResult{Rank: rank + 1, Trial: tr, Arch: fixtureArchs[rank], ValAccuracy: 0.9, TestAccuracy: 0.89, Status: rundir.StatusOK,
			Seconds: 95, Model: rundir.WinnerName(rank + 1)}
		if rank == 1 {
			r.Reused = filepath.Join(rundir.DirEarlier, "trials-20")
		}
		if err := f.WriteFile(r.Model, []byte("not really onnx")); err != nil {
			t.Fatal(err)
		}
		if err := f.AppendFinal(r); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	newNASNetRun(t, runs, "scored", search.AgentReinforce, 12)
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/runs/longer"))
	facts, final := `document.getElementById('facts').innerText`, `document.getElementById('final').innerText`
	waitFor(t, ctx, final+`.includes('from earlier/trials-20') && `+facts+`.includes('1 min 35 s in the final phase, 1 final model taken from an earlier plan')`,
		facts+` + ' | ' + `+final, 10*time.Second)
	waitFor(t, ctx, rows+` === 25`, rows, 10*time.Second)
	status := `document.querySelector('#trials tbody tr[data-id="%d"] td:nth-child(4)').textContent`
	if c, o := eval[string](t, ctx, fmt.Sprintf(status, 25)), eval[string](t, ctx, fmt.Sprintf(status, 24)); c != "ok (at chance)" || o != "ok" {
		t.Errorf("the status of a trial at chance and of one that learned: %q and %q", c, o)
	}
	do(t, ctx, chromedp.Navigate(srv.URL+"/runs/scored"))
	waitFor(t, ctx, facts+`.includes('none: this search scores architectures with mock (no training), so it has no final phase') && `+
		final+`.includes('so it has no final phase.') && !`+facts+`.includes('none yet')`, facts+` + ' | ' + `+final, 10*time.Second)
}

// A run ranked by balanced accuracy (train.metric) says so in the columns
// and figure captions that hold it, and the final table's lowest recall
// comes from the API, as for any run.
func TestBrowserBalancedRun(t *testing.T) {
	runs, _ := fixtureRuns(t)
	path := filepath.Join(runs, "leaves-a", rundir.FileConfig)
	cfg, err := search.LoadConfig(path, search.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Train.Metric = "balanced_accuracy"
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, Options{Runs: runs})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/runs/leaves-a"))
	heads := func(id string) string {
		return `[...document.querySelectorAll('#` + id + ` thead th')].map(th => th.textContent).join('|')`
	}
	waitFor(t, ctx, heads("trials")+`.includes('|Val. bal. acc.|') && `+heads("final")+`.includes('|Search val. bal. acc.|Val. bal. acc.|')`,
		heads("trials")+` + ' / ' + `+heads("final"), 10*time.Second)
	final := `document.getElementById('final').innerText`
	waitFor(t, ctx, final+`.includes('leaf 0.9500')`, final, 5*time.Second)
	figs := `document.getElementById('figures').innerText`
	waitFor(t, ctx, figs+`.includes('Validation balanced accuracy per trial') && `+figs+`.includes('Parameters against validation balanced accuracy') && !`+figs+`.toLowerCase().includes('validation accuracy')`,
		figs, 10*time.Second)
	// A plain run keeps the plain names.
	do(t, ctx, chromedp.Navigate(srv.URL+"/runs/leaves-b"))
	waitFor(t, ctx, heads("trials")+`.includes('|Val. accuracy|')`, heads("trials"), 10*time.Second)

	// Compared with a plain run, each side and the figure say which
	// accuracy is whose.
	do(t, ctx, chromedp.Navigate(srv.URL+"/compare?run=leaves-a&run=leaves-b"))
	col := func(run string) string { return `document.querySelector('#columns [data-run="` + run + `"]')` }
	side := func(run string) string {
		return `(` + col(run) + `?.innerText + ' | ' + [...(` + col(run) + `?.querySelectorAll('thead th') || [])].map(th => th.textContent).join('|'))`
	}
	waitFor(t, ctx, side("leaves-a")+`.includes('best val. balanced accuracy') && `+side("leaves-a")+`.includes('|Val. bal. acc.|') && `+
		col("leaves-a")+`.querySelector('.winner-mark')?.title.includes('balanced')`, side("leaves-a"), 10*time.Second)
	waitFor(t, ctx, side("leaves-b")+`.includes('best val. accuracy')`, side("leaves-b"), 10*time.Second)
	what := `document.getElementById('what').textContent`
	waitFor(t, ctx, what+`.startsWith("Best validation score so far: the runs' rewards differ") && `+what+`.endsWith("each line is its run's own metric, accuracy or balanced accuracy")`, what, 10*time.Second)
	_, svg := get(t, srv.URL+"/api/compare/best.svg?run=leaves-a&run=leaves-b", nil)
	for _, want := range []string{"Best validation score so far (the runs", "leaves-a (balanced accuracy)", "leaves-b (accuracy)"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("the compared runs' figure has no %q", want)
		}
	}
}

// Runs of two agents compared show the agents' figures and the lead, as
// search.CompareRuns (nasctl runs compare) gives them; runs of one agent
// do not.
func TestBrowserCompareAgents(t *testing.T) {
	runs, _ := fixtureRuns(t)
	for i, r := range []struct {
		name, agent string
		seed        uint64
	}{{"q-2", search.AgentQLearning, 2}, {"rand-1", search.AgentRandom, 1}, {"rand-2", search.AgentRandom, 2}} {
		d := create(t, search.Config{Kind: search.KindMetaQNN, Name: r.name, Dir: runs, Seed: r.seed, Trials: 24, Data: "data/leaves",
			MetaQNN: search.MetaQNNSettings{Agent: r.agent}, Final: search.FinalSettings{TopK: 2}})
		if err := d.WriteJSON(rundir.FileData, search.Data{Train: 840, Full: 1680, Val: 420, Test: 900, ValMajority: 0.5}); err != nil {
			t.Fatal(err)
		}
		f := &fixtureRun{Dir: d, seed: 11 + uint64(i)} // trials of their own
		f.add(t, seq(1, 24)...)
		f.finish(t)
	}
	names := []string{"leaves-a", "q-2", "rand-1", "rand-2"}
	var dirs []string
	for _, n := range names {
		dirs = append(dirs, filepath.Join(runs, n))
	}
	want, err := search.CompareRuns(dirs)
	if err != nil || len(want.Leads) != 1 {
		t.Fatalf("%+v, %v", want, err)
	}
	srv := serve(t, Options{Runs: runs})
	var got search.Comparison
	get(t, srv.URL+"/api/compare?run="+strings.Join(names, "&run="), &got)
	if len(got.Groups) != 2 || got.Groups[1].Mean != want.Groups[1].Mean || len(got.Leads) != 1 || got.Leads[0].Mean != want.Leads[0].Mean {
		t.Fatalf("/api/compare: %+v, want %+v", got, want)
	}
	if want.Groups[0].SD == nil || want.Groups[1].SD == nil {
		t.Fatalf("two runs each, and no sd: %+v", want.Groups)
	}
	// A run scored by a problem has no finals to set beside the others.
	newNASNetRun(t, runs, "scored", search.AgentReinforce, 4)
	if resp, body := get(t, srv.URL+"/api/compare?run=leaves-a&run=scored", nil); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "only searches that train their trials have finals to compare") {
		t.Errorf("a scored run compared: %d %s", resp.StatusCode, body)
	}
	l := want.Leads[0]
	verdict := "within"
	switch {
	case l.Beyond && l.Mean > 0:
		verdict = "ahead by more than"
	case l.Beyond:
		verdict = "behind by more than"
	}
	line := fmt.Sprintf("qlearning minus random: %+.3f points (seed 1 %+.3f, seed 2 %+.3f): %s the spread between seeds (sds %.3f and %.3f)",
		100*l.Mean, 100*l.PerSeed[1], 100*l.PerSeed[2], verdict, 100**want.Groups[0].SD, 100**want.Groups[1].SD)
	t.Logf("the lead: %s", line)
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/compare?run="+strings.Join(names, "&run=")))
	agents := `(document.getElementById('agents').hidden ? 'hidden' : document.getElementById('agents').innerText)`
	waitFor(t, ctx, agents+`.includes(`+strconv.Quote(line)+`) && `+agents+`.includes(`+strconv.Quote(fmt.Sprintf("%.3f%%", 100*want.Groups[0].Mean))+`)`, agents, 10*time.Second)
	waitFor(t, ctx, `(i => i.complete && i.naturalWidth > 0)(document.getElementById('best'))`, `document.getElementById('best').src`, 10*time.Second)
	screenshot(t, ctx, "compare-agents")
	// One agent: nothing to set against another.
	do(t, ctx, chromedp.Navigate(srv.URL+"/compare?run=leaves-a&run=q-2"))
	waitFor(t, ctx, `document.getElementById('agents').dataset.agents === '1' && document.getElementById('agents').hidden`,
		`document.getElementById('agents').dataset.agents + ' ' + document.getElementById('agents').hidden`, 10*time.Second)
}
