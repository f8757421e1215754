package dashboard

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/quantize"
	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
)

// get requests url and decodes a JSON answer into v (when not nil); it
// returns the response, its body read.
func get(t *testing.T, url string, v any) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v\n%s", url, err, body)
		}
	}
	return resp, body
}

// The runs page's list: every run of the folder with its counts and
// status; links, folders without a run and unreadable runs as they should.
func TestListRuns(t *testing.T) {
	runs, _ := fixtureRuns(t)
	os.MkdirAll(filepath.Join(runs, "not-a-run"), 0o755)
	os.Symlink(filepath.Join(runs, "leaves-a"), filepath.Join(runs, "link"))
	os.MkdirAll(filepath.Join(runs, "old"), 0o755)
	os.WriteFile(filepath.Join(runs, "old", rundir.FileConfig), []byte("kind: metaqnn\nepisodes: 3\n"), 0o644)
	// leaves-a as if copied a day later: its times still come from its logs.
	copied := time.Now().Add(24 * time.Hour)
	entries, _ := os.ReadDir(filepath.Join(runs, "leaves-a"))
	for _, e := range entries {
		os.Chtimes(filepath.Join(runs, "leaves-a", e.Name()), copied, copied)
	}
	srv := serve(t, Options{Runs: runs})

	var list []Run
	if resp, body := get(t, srv.URL+"/api/runs", &list); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	type row struct {
		status          Status
		trials, planned int
		finals          int
		unreadable      bool
	}
	want := map[string]row{
		"leaves-a": {StatusFinished, 24, 24, 2, false},
		"leaves-b": {StatusRunning, 10, 30, 0, false},
		"leaves-c": {StatusStopped, 2, 8, 0, false},
		"old":      {StatusStopped, 0, 0, 0, true},
	}
	got := map[string]row{}
	for i, r := range list {
		got[r.Name] = row{r.Status, r.Trials, r.Planned, r.Finals, r.Error != ""}
		if i > 0 && r.Updated.After(list[i-1].Updated) {
			t.Errorf("%s listed after %s, which was updated earlier", r.Name, list[i-1].Name)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("runs:\n got %v\nwant %v", got, want)
	}
	for _, r := range list {
		if r.Name == "leaves-b" {
			// The estimate of nasctl search: 20 trials left, of which 8 in
			// 10 need training, on 1 worker, at the mean trained trial;
			// then 2 final models of 2x the epochs on the 1680 images of
			// the training split instead of 840, at the time the best 2
			// trials took per epoch, for the run's epochs.
			cfg, err := search.ReadConfig(filepath.Join(runs, "leaves-b"))
			if err != nil {
				t.Fatal(err)
			}
			var sum float64
			var ok []rundir.Trial
			for _, id := range seq(1, 10) {
				if tr := fakeTrial(id, 2); tr.Status == rundir.StatusOK {
					sum += tr.Seconds
					ok = append(ok, tr)
				}
			}
			slices.SortStableFunc(ok, func(a, b rundir.Trial) int { return cmp.Compare(b.Reward, a.Reward) })
			final := 0.0
			for _, tr := range ok[:2] {
				final += tr.Seconds / float64(len(tr.Epochs)) * float64(cfg.Train.Epochs) / 2
			}
			want := 20*0.8*sum/float64(len(ok)) + 2*final*2*2
			if len(ok) != 8 || math.Abs(r.Remaining-want) > 1e-9 {
				t.Errorf("leaves-b: %v s left, want %v (%d trained)", r.Remaining, want, len(ok))
			}
		}
		if r.Status != StatusRunning && r.Remaining != 0 {
			t.Errorf("%s, %s: %v s left; a run that is not running has no estimate", r.Name, r.Status, r.Remaining)
		}
		if r.Name == "leaves-c" {
			// nasctl runs list agrees; the summary alone still estimates
			// the stopped run's trials left.
			listed, err := search.ListRuns(runs)
			i := slices.IndexFunc(listed, func(l *search.RunSummary) bool { return l.Name == r.Name })
			if sum, _ := search.Summarize(r.Dir); err != nil || i < 0 || listed[i].Remaining != 0 || listed[i].Status != StatusStopped || sum == nil || sum.Remaining <= 0 {
				t.Errorf("leaves-c: runs list %v (%d), or no estimate in its summary", err, i)
			}
		}
		if r.Name == "leaves-a" && (r.BestTest <= 0.5 || r.Kind != search.KindMetaQNN || r.Started.IsZero() || r.Version == "") {
			t.Errorf("leaves-a: %+v", r)
		}
		if r.Name == "leaves-a" && (!r.Started.Before(fixtureStart.Add(37*time.Second)) || !r.Updated.Equal(fixtureStart.Add(24*37*time.Second))) {
			t.Errorf("leaves-a, copied: started %v, last updated %v; want before its first trial's end and at its 24th trial's end", r.Started, r.Updated)
		}
	}
}

// A run's trials come in trial order whatever order they were recorded
// in, each with its curves; the run's other resources are there too.
func TestRunResources(t *testing.T) {
	runs, _ := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs})
	base := srv.URL + "/api/runs/leaves-a"

	var trials []rundir.Trial
	get(t, base+"/trials", &trials)
	var ids []int
	for _, tr := range trials {
		ids = append(ids, tr.ID)
	}
	if !slices.Equal(ids, seq(1, 24)) || trials[2].Status != rundir.StatusReused || trials[4].Status != rundir.StatusRefused {
		t.Errorf("trials %v, statuses %v %v", ids, trials[2].Status, trials[4].Status)
	}
	var one map[string]any
	resp, _ := get(t, base+"/trials/4", &one)
	if epochs, _ := one["epochs"].([]any); resp.StatusCode != http.StatusOK || one["id"] != 4.0 || len(epochs) != 6 || one["seed"] != "4" {
		t.Errorf("trial 4: %d %+v", resp.StatusCode, one) // the seed a string, as a page reads it whole
	}
	// A seed above 2^53, which a page's JSON.parse would round, is a string.
	b, err := json.Marshal(rundir.Trial{Seed: 14142573438532588651})
	if err != nil || !strings.Contains(string(b), `"seed":"14142573438532588651"`) || strings.Count(string(b), `"seed"`) != 1 {
		t.Errorf("a 64-bit seed for the pages: %s, %v", b, err)
	}
	for id, code := range map[string]int{"99": 404, "-1": 404, "x": 400, "01": 400, "+1": 400} {
		if resp, _ := get(t, base+"/trials/"+id, nil); resp.StatusCode != code {
			t.Errorf("trial %s: status %d, want %d", id, resp.StatusCode, code)
		}
	}
	// Every API answer is JSON, an unknown address's too.
	var e struct{ Error string }
	if resp, body := get(t, srv.URL+"/api/nosuch", nil); resp.StatusCode != http.StatusNotFound || json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Errorf("an unknown API address: %d %q", resp.StatusCode, body)
	}
	// The API only reads: another method on one of its addresses is 405.
	for _, method := range []string{"POST", "DELETE"} {
		req, _ := http.NewRequest(method, srv.URL+"/api/runs/leaves-a", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" || !strings.Contains(string(body), "the API only reads runs (GET)") {
			t.Errorf("%s: %d %q", method, resp.StatusCode, body)
		}
	}
	var folder struct {
		Path   string
		Exists bool
	}
	if get(t, srv.URL+"/api/folder", &folder); folder.Path != runs || !folder.Exists {
		t.Errorf("folder: %+v, want %s", folder, runs)
	}
	// The page of a run that is not there is answered 404; it is the run
	// page, which says so and looks again (TestBrowserRunAppears).
	resp, body := get(t, srv.URL+"/runs/nosuch", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(body), `src="/static/run.js"`) {
		t.Errorf("page of no run: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, body := get(t, srv.URL+"/runs/leaves-a", nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<html") {
		t.Errorf("page of a run: %d %.80q", resp.StatusCode, body)
	}

	var det RunDetail
	get(t, base, &det)
	var figs []string
	for _, f := range det.Figures {
		figs = append(figs, f.Name)
	}
	if !slices.Equal(figs, []string{"accuracy", "epsilon", "params"}) || det.Report == nil || len(det.Report.Top) != 2 || len(det.Report.Finals) != 2 {
		t.Errorf("detail: figures %v, report %+v", figs, det.Report)
	}

	var finals []FinalModel
	get(t, base+"/final", &finals)
	if len(finals) != 2 || finals[0].Download != "/api/runs/leaves-a/winners/rank-01.onnx" {
		t.Fatalf("final table %+v", finals)
	}
	// The winner, picked by validation, is marked (the fixture's finals
	// rank by search reward, and their validation accuracies keep the order).
	if !finals[0].Winner || finals[1].Winner || finals[0].Arch != det.WinnerArch {
		t.Errorf("winner marks: %v %v, winner %q", finals[0].Winner, finals[1].Winner, det.WinnerArch)
	}
	// best.onnx, the copy of the winner a report writes, is offered.
	if det.BestDownload != "" {
		t.Errorf("best.onnx offered before it was written: %q", det.BestDownload)
	}
	if err := os.WriteFile(filepath.Join(runs, "leaves-a", rundir.BestName), []byte("best"), 0o644); err != nil {
		t.Fatal(err)
	}
	get(t, base, &det)
	if det.BestDownload != "/api/runs/leaves-a/winners/best.onnx" {
		t.Errorf("best.onnx download: %q", det.BestDownload)
	}
	resp, body = get(t, srv.URL+finals[0].Download, nil)
	if string(body) != "not really onnx winners/rank-01.onnx" || !strings.Contains(resp.Header.Get("Content-Disposition"), "leaves-a-rank-01.onnx") {
		t.Errorf("download: %q, %q", body, resp.Header.Get("Content-Disposition"))
	}
	if resp, body := get(t, base+"/config", nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "kind: metaqnn") {
		t.Errorf("config: %d %s", resp.StatusCode, body)
	}
}

// Finished means every planned trial and the final phase recorded, failed
// the same with no trial evaluated, or a search that ended with an error;
// a live process holding the run comes first.
func TestStatus(t *testing.T) {
	ok := func(id int, arch string) rundir.Trial {
		return rundir.Trial{Candidate: rundir.Candidate{ID: id, Arch: arch}, Status: rundir.StatusOK}
	}
	trained := search.Config{Final: search.FinalSettings{TopK: 2}}
	skip := trained
	skip.Final.Skip = true
	scored := search.Config{Problem: search.ProblemSettings{Name: "mock"}}
	twoArchs := []rundir.Trial{ok(1, "a"), ok(2, "b"), ok(3, "a")}
	for _, c := range []struct {
		name            string
		running         bool
		trials, planned int
		finals          int
		cfg             search.Config
		recorded        []rundir.Trial
		want            Status
		failed          string
	}{
		{"running", true, 3, 3, 2, trained, twoArchs, StatusRunning, ""},
		{"trials missing", false, 2, 3, 0, scored, twoArchs[:2], StatusStopped, ""},
		{"final phase missing", false, 3, 3, 1, trained, twoArchs, StatusStopped, ""},
		{"final phase done", false, 3, 3, 2, trained, twoArchs, StatusFinished, ""},
		{"fewer distinct architectures than top-k", false, 2, 2, 1, trained, []rundir.Trial{ok(1, "a"), ok(2, "a")}, StatusFinished, ""},
		{"final phase skipped", false, 3, 3, 0, skip, twoArchs, StatusFinished, ""},
		{"scored, not trained", false, 3, 3, 0, scored, twoArchs, StatusFinished, ""},
		{"every trial refused", false, 2, 2, 0, trained, []rundir.Trial{{Candidate: rundir.Candidate{ID: 1, Arch: "a"}, Status: rundir.StatusRefused},
			{Candidate: rundir.Candidate{ID: 2, Arch: "b"}, Status: rundir.StatusRefused}}, StatusFailed, ""},
		{"ended with an error", false, 2, 3, 0, trained, twoArchs[:2], StatusFailed, "3 trials in a row failed"},
		{"ended with an error, resumed", true, 2, 3, 0, trained, twoArchs[:2], StatusRunning, "3 trials in a row failed"},
	} {
		evaluated := 0
		for _, t := range c.recorded[:c.trials] {
			if t.Status == rundir.StatusOK {
				evaluated++
			}
		}
		sum := search.RunSummary{Trials: c.trials, Planned: c.planned, Finals: c.finals, FinalsPlanned: c.cfg.FinalsPlanned(c.recorded), Evaluated: evaluated, // as Summarize counts them
			Failed: c.failed}
		d := &runData{summary: sum, cfg: c.cfg, trials: func() []rundir.Trial { return c.recorded }}
		if got := d.status(c.running); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// A line the search is half-way through writing is not there yet; once
// its newline is written, it is. The run is closed here, as after a crash
// during that write: the listing names the half-written line as damage.
func TestTornLastLine(t *testing.T) {
	runs, _ := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs})
	line, _ := json.Marshal(fakeTrial(3, 3))
	log, err := os.OpenFile(filepath.Join(runs, "leaves-c", rundir.FileTrials), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	count := func() (listed, trials int, damage string) {
		var list []Run
		get(t, srv.URL+"/api/runs", &list)
		for _, r := range list {
			if r.Name == "leaves-c" {
				listed, damage = r.Trials, r.Error
			}
		}
		var ts []rundir.Trial
		if resp, body := get(t, srv.URL+"/api/runs/leaves-c/trials", &ts); resp.StatusCode != http.StatusOK {
			t.Fatalf("trials: %d %s", resp.StatusCode, body)
		}
		return listed, len(ts), damage
	}
	log.Write(line[:len(line)/2])
	if l, n, damage := count(); l != 2 || n != 2 || !strings.HasPrefix(damage, "trials.jsonl ends in a half-written line that no search is writing") {
		t.Errorf("with a torn last line: listed %d, served %d trials, error %q; want the 2 whole ones, and the line named", l, n, damage)
	}
	log.Write(append(line[len(line)/2:], '\n'))
	if l, n, damage := count(); l != 3 || n != 3 || damage != "" {
		t.Errorf("with the line whole: listed %d, served %d trials, error %q; want 3, none", l, n, damage)
	}
}

// A damaged line in the middle of the log does not hide the run: the
// trials before it are listed and served, with the damage named.
func TestDamagedLine(t *testing.T) {
	runs, _ := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs})
	damageLine2(t, filepath.Join(runs, "leaves-c"))
	var list []Run
	get(t, srv.URL+"/api/runs", &list)
	for _, r := range list {
		if r.Name == "leaves-c" && (r.Trials != 1 || !strings.Contains(r.Error, "trials.jsonl line 2: ")) {
			t.Errorf("listed: %d trials, error %q", r.Trials, r.Error)
		}
	}
	var ts []rundir.Trial
	if resp, body := get(t, srv.URL+"/api/runs/leaves-c/trials", &ts); resp.StatusCode != http.StatusOK || len(ts) != 1 || ts[0].ID != 1 {
		t.Errorf("trials: %d, %d served: %s", resp.StatusCode, len(ts), body)
	}
	var det RunDetail
	if get(t, srv.URL+"/api/runs/leaves-c", &det); !strings.Contains(det.Error, "delete line 2") || len(det.Figures) == 0 {
		t.Errorf("detail: error %q, %d figures", det.Error, len(det.Figures))
	}
}

// No name in a URL reaches outside the runs folder: not "..", not its
// encoded forms, not a link, not a run beside the folder.
func TestPathTraversal(t *testing.T) {
	runs, _ := fixtureRuns(t)
	// A run beside the runs folder, with a secret in its configuration.
	outside := filepath.Join(filepath.Dir(runs), "secret")
	newRun(t, filepath.Dir(runs), "secret", 1, 9).Close()
	os.WriteFile(filepath.Join(outside, "winners", "x.onnx"), []byte("SECRET"), 0o644)
	os.Symlink(outside, filepath.Join(runs, "link"))
	srv := serve(t, Options{Runs: runs})
	u, _ := url.Parse(srv.URL)
	for _, raw := range []string{
		"/api/runs/../secret/config",
		"/api/runs/%2e%2e/secret/config",
		"/api/runs/..%2fsecret/config",
		"/api/runs/%2E%2E%2Fsecret/trials",
		"/api/runs/..%5csecret/config",
		"/api/runs/secret/config",
		"/api/runs/link/config",
		"/api/runs/link/winners/x.onnx",
		"/api/runs/leaves-a/winners/..%2f..%2f..%2fsecret%2fwinners%2fx.onnx",
		"/api/runs/leaves-a/winners/%2e%2e%2fconfig.yaml",
		"/api/runs/leaves-a/earlier/..%2f..%2f..%2fsecret%2fwinners/best.onnx",
		"/api/runs/leaves-a/earlier/%2e%2e/best.onnx",
		"/api/runs/leaves-a/figures/..%2f..%2f..%2fsecret%2fconfig.yaml",
		"/api/runs/leaves-a/../../../secret/config",
		"/runs/..%2fsecret",
		"/static/..%2f..%2fsecret%2fconfig.yaml",
		"/api/compare/best.svg?run=..%2fsecret",
		"/api/compare/best.svg?run=link",
	} {
		req := &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: u.Host, Opaque: raw}, Host: u.Host, Header: http.Header{}}
		if i := strings.IndexByte(raw, '?'); i >= 0 {
			req.URL.Opaque, req.URL.RawQuery = raw[:i], raw[i+1:]
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "SECRET") || strings.Contains(string(body), "kind:") {
			t.Errorf("%s: status %d, %q", raw, resp.StatusCode, body)
		}
	}
}

// A link inside a run (a winner, the winners folder, a log) could lead to
// any file the dashboard's user may read: nothing of such a run is served,
// and the runs page says why.
func TestLinksInsideRun(t *testing.T) {
	runs, _ := fixtureRuns(t)
	secret := filepath.Join(t.TempDir(), "id_rsa")
	os.WriteFile(secret, []byte("SECRET"), 0o600)
	newRun(t, runs, "evil", 3, 5).Close()
	os.Symlink(secret, filepath.Join(runs, "evil", "winners", "leak.onnx"))
	newRun(t, runs, "evil2", 3, 6).Close()
	os.RemoveAll(filepath.Join(runs, "evil2", "winners"))
	os.Symlink(filepath.Dir(secret), filepath.Join(runs, "evil2", "winners"))
	os.Rename(secret, filepath.Join(filepath.Dir(secret), "x.onnx"))
	newRun(t, runs, "evil3", 3, 7).Close()
	os.Rename(filepath.Join(runs, "evil3", rundir.FileTrials), filepath.Join(filepath.Dir(secret), "t"))
	os.Symlink(filepath.Join(filepath.Dir(secret), "t"), filepath.Join(runs, "evil3", rundir.FileTrials))
	// A link among nasctl bench's files, and an earlier plan that is a link.
	newRun(t, runs, "evil4", 3, 8).Close()
	os.MkdirAll(filepath.Join(runs, "evil4", rundir.DirBench), 0o755)
	os.Symlink(filepath.Join(filepath.Dir(secret), "t"), filepath.Join(runs, "evil4", benchCSV))
	newRun(t, runs, "evil5", 3, 9).Close()
	os.MkdirAll(filepath.Join(runs, "evil5", rundir.DirEarlier), 0o755)
	os.Symlink(filepath.Dir(secret), filepath.Join(runs, "evil5", rundir.DirEarlier, "trials-3"))
	srv := serve(t, Options{Runs: runs})
	for _, path := range []string{"/api/runs/evil/winners/leak.onnx", "/api/runs/evil2/winners/x.onnx", "/api/runs/evil3/trials", "/api/runs/evil/config",
		"/api/runs/evil4/figures/pareto.png", "/api/runs/evil5/config"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || strings.Contains(string(body), "SECRET") || !strings.Contains(string(body), "is a symbolic link") {
			t.Errorf("%s: status %d, %q", path, resp.StatusCode, body)
		}
	}
	var list []Run
	get(t, srv.URL+"/api/runs", &list)
	evil := 0
	for _, r := range list {
		if !strings.HasPrefix(r.Name, "evil") {
			continue
		}
		evil++
		if !strings.Contains(r.Error, "is a symbolic link: the dashboard reads and serves nothing of a run holding links") {
			t.Errorf("run %s listed without saying why it is not read: %+v", r.Name, r)
		}
	}
	if evil != 5 {
		t.Errorf("%d runs with links listed, want 5", evil)
	}
	// A plain run is served as before.
	if resp, err := http.Get(srv.URL + "/api/runs/leaves-a/config"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("a run without links: %v %v", resp.StatusCode, err)
	}
	// A link deeper in an earlier plan (linkIn scans earlier/, not its
	// plans): serving opens within the run, so it is not followed.
	os.WriteFile(secret+"2", []byte("SECRET"), 0o600)
	os.MkdirAll(filepath.Join(runs, "leaves-a", rundir.DirEarlier, "trials-30", rundir.DirWinners), 0o755)
	os.Symlink(secret+"2", filepath.Join(runs, "leaves-a", rundir.DirEarlier, "trials-30", rundir.BestName))
	if resp, err := http.Get(srv.URL + "/api/runs/leaves-a/earlier/trials-30/best.onnx"); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body), "SECRET") {
			t.Errorf("a link in an earlier plan's winners: status %d, %q", resp.StatusCode, body)
		}
	}
	os.RemoveAll(filepath.Join(runs, "leaves-a", rundir.DirEarlier))
	// A folder named like a model is not a file to serve.
	os.Mkdir(filepath.Join(runs, "leaves-a", rundir.DirWinners, "folder.onnx"), 0o755)
	if resp, err := http.Get(srv.URL + "/api/runs/leaves-a/winners/folder.onnx"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a folder in winners/: %v %v, want 404", resp.StatusCode, err)
	}
}

// Off loopback a token is required, and it is accepted as a bearer token,
// a query parameter (which a page trades for a cookie) or that cookie.
func TestToken(t *testing.T) {
	ln, token, err := Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if token != "" {
		t.Errorf("loopback: token %q made, want none", token)
	}
	ln, token, err = Listen("0.0.0.0:0", "") // every interface: listens only, nothing is sent
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if len(token) != 32 || !strings.Contains(URL(ln, token), "?token="+token) {
		t.Errorf("every interface: token %q, URL %s", token, URL(ln, token))
	}

	runs, _ := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs, Token: "s3cret"})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(path string, set func(*http.Request)) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if set != nil {
			set(req)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, c := range []struct {
		name string
		path string
		set  func(*http.Request)
		want int
	}{
		{"no token", "/api/runs", nil, http.StatusUnauthorized},
		{"no token, page", "/", nil, http.StatusUnauthorized},
		{"no token, events", "/api/runs/leaves-a/events", nil, http.StatusUnauthorized},
		{"wrong token", "/api/runs", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, http.StatusUnauthorized},
		{"bearer", "/api/runs", func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }, http.StatusOK},
		{"query", "/api/runs?token=s3cret", nil, http.StatusOK},
		{"cookie", "/api/runs", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: tokenCookie, Value: "s3cret"}) }, http.StatusOK},
		{"page with the token", "/runs/leaves-a?token=s3cret", nil, http.StatusSeeOther},
	} {
		if resp := do(c.path, c.set); resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
	resp := do("/runs/leaves-a?token=s3cret", nil)
	// Lax: a link to the address in another page keeps its cookie on the
	// redirect (Strict would not).
	if loc := resp.Header.Get("Location"); loc != "/runs/leaves-a" || len(resp.Cookies()) != 1 || !resp.Cookies()[0].HttpOnly || resp.Cookies()[0].SameSite != http.SameSiteLaxMode {
		t.Errorf("page with the token: sent to %q with cookies %v", loc, resp.Cookies())
	}

	// Without a token, only a loopback host name is answered: a page of
	// another site cannot reach the dashboard through a rebound DNS name.
	open := serve(t, Options{Runs: runs})
	for host, want := range map[string]int{"localhost:8080": 200, "127.0.0.1": 200, "[::1]:80": 200, "evil.example:8080": 403, "10.0.0.1": 403} {
		req, _ := http.NewRequest("GET", open.URL+"/api/runs", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: status %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// event is one server-sent event.
type event struct {
	name string
	data string
}

// readEvents parses the server-sent events of r onto a channel, closed at
// the end of the stream.
// stream opens the event stream of the named run on srv; it ends with the
// test.
func stream(t *testing.T, srv *httptest.Server, run string) (*http.Response, <-chan event) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/api/runs/" + run + "/events")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, readEvents(resp.Body)
}

func readEvents(r io.Reader) <-chan event {
	ch := make(chan event, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		var e event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" && e.name != "":
				ch <- e
				e = event{}
			case strings.HasPrefix(line, "event: "):
				e.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				e.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}

// next returns the next event named name, failing after timeout.
func next(t *testing.T, events <-chan event, name string, timeout time.Duration) event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended before a %q event", name)
			}
			if e.name == name {
				return e
			}
		case <-deadline:
			t.Fatalf("no %q event within %s", name, timeout)
		}
	}
}

// The event stream says hello with the run, then delivers each trial the
// search appends, and the run with its new counts.
func TestEventsDeliverAppendedTrials(t *testing.T) {
	runs, b := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs, Poll: 20 * time.Millisecond})
	resp, events := stream(t, srv, "leaves-b")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var hello Run
	json.Unmarshal([]byte(next(t, events, "hello", 5*time.Second).data), &hello)
	if hello.Trials != 10 || hello.Status != StatusRunning {
		t.Fatalf("hello: %+v", hello)
	}
	start := time.Now()
	b.add(t, 12, 11) // finished out of order, as two workers' trials do
	for _, want := range []int{11, 12} {
		var tr rundir.Trial
		json.Unmarshal([]byte(next(t, events, "trial", 5*time.Second).data), &tr)
		if tr.ID != want {
			t.Errorf("trial event %d, want %d (in trial order)", tr.ID, want)
		}
	}
	t.Logf("trials delivered %s after they were appended (polling every 20 ms)", time.Since(start).Round(time.Millisecond))
	var run Run
	json.Unmarshal([]byte(next(t, events, "run", 5*time.Second).data), &run)
	if run.Trials != 12 || run.Version == hello.Version {
		t.Errorf("run event: %d trials, version %s (was %s)", run.Trials, run.Version, hello.Version)
	}
	// Closing the run is a change of status, without a new trial.
	b.Close()
	json.Unmarshal([]byte(next(t, events, "run", 5*time.Second).data), &run)
	if run.Status != StatusStopped {
		t.Errorf("after the search closed the run: %s", run.Status)
	}
}

// rewriteTrials replaces the trials log of the run in dir by trials, in one
// rename, as a user recovering from a damaged line replaces it.
func rewriteTrials(t *testing.T, dir string, trials ...rundir.Trial) {
	t.Helper()
	var b []byte
	for _, tr := range trials {
		line, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		b = append(append(b, line...), '\n')
	}
	tmp := filepath.Join(dir, "trials.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, rundir.FileTrials)); err != nil {
		t.Fatal(err)
	}
}

// A log cut short, or with an id recorded again, is not what the stream
// sent: it says hello again, so that the page reloads the trials.
func TestEventsRewrittenLog(t *testing.T) {
	runs, _ := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs, Poll: 20 * time.Millisecond})
	_, events := stream(t, srv, "leaves-c")
	next(t, events, "hello", 5*time.Second)
	dir := filepath.Join(runs, "leaves-c")

	again := fakeTrial(2, 3)
	again.Reward, again.Finished = 0.25, again.Finished.Add(time.Hour)
	rewriteTrials(t, dir, fakeTrial(1, 3), again) // trial 2 trained again, resumed
	var hello Run
	json.Unmarshal([]byte(next(t, events, "hello", 5*time.Second).data), &hello)
	if hello.Trials != 2 {
		t.Errorf("hello after trial 2 was recorded again: %d trials", hello.Trials)
	}
	rewriteTrials(t, dir, fakeTrial(1, 3)) // trial 2 cut off
	json.Unmarshal([]byte(next(t, events, "hello", 5*time.Second).data), &hello)
	if hello.Trials != 1 {
		t.Errorf("hello after the log was cut to 1 trial: %d trials", hello.Trials)
	}
}

// A run removed while its page is open ends its stream with "gone".
func TestEventsRunDeleted(t *testing.T) {
	runs, _ := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs, Poll: 20 * time.Millisecond})
	_, events := stream(t, srv, "leaves-c")
	next(t, events, "hello", 5*time.Second)
	if err := os.RemoveAll(filepath.Join(runs, "leaves-c")); err != nil {
		t.Fatal(err)
	}
	if gone := next(t, events, "gone", 5*time.Second); !strings.Contains(gone.data, "deleted") {
		t.Errorf("gone: %s", gone.data)
	}
	select {
	case e, ok := <-events:
		if ok {
			t.Errorf("after gone, the stream sent %q", e.name)
		}
	case <-time.After(5 * time.Second):
		t.Error("the stream did not end after gone")
	}
}

// The final retrainings' progress reaches the run's listing without a new
// version: the figures and the report, which do not depend on it, are not
// drawn again every 30 s.
func TestFinalProgressKeepsVersion(t *testing.T) {
	runs, b := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs})
	var before, after RunDetail
	get(t, srv.URL+"/api/runs/leaves-b", &before)
	if err := b.WriteJSON(rundir.FileFinalProgress, []rundir.FinalProgress{{Rank: 1, Trial: 3, Epoch: 4, MaxEpochs: 30, ValAccuracy: 0.9}}); err != nil {
		t.Fatal(err)
	}
	get(t, srv.URL+"/api/runs/leaves-b", &after)
	if after.Version != before.Version || len(after.FinalProgress) != 1 || after.FinalProgress[0].Epoch != 4 || len(before.FinalProgress) != 0 {
		t.Errorf("version %s -> %s, progress %+v -> %+v", before.Version, after.Version, before.FinalProgress, after.FinalProgress)
	}
}

// A search on a problem is rewarded for the problem's score, named with
// its dataset when it has one, one space between words.
func TestRewardTextOfProblems(t *testing.T) {
	for _, tc := range []struct{ name, dataset, want string }{{"mock", "", "mock score"}, {"natsbench", "cifar10", "natsbench cifar10 score"}} {
		cfg := search.Config{Kind: search.KindNASNet, Problem: search.ProblemSettings{Name: tc.name, Dataset: tc.dataset}}
		if got := rewardText(cfg); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.name, tc.dataset, got, tc.want)
		}
	}
}

// A run that ranks by balanced accuracy has a reward of its own: it is not
// compared, or drawn on one axis, with runs rewarded for plain accuracy.
func TestRewardTextOfMetric(t *testing.T) {
	plain := search.Config{Kind: search.KindMetaQNN}
	balanced := plain
	balanced.Train.Metric = "balanced_accuracy"
	a, b := rewardText(plain), rewardText(balanced)
	if a != "validation accuracy" || b != "validation balanced accuracy" {
		t.Errorf("rewards %q and %q, want validation accuracy and validation balanced accuracy", a, b)
	}
	if sameReward([]*runData{{reward: a}, {reward: b}}) {
		t.Error("a balanced run's reward taken for a plain run's")
	}
}

// A run whose search fails while the dashboard watches it turns failed at
// the next look: failure.json is among the files watched.
func TestFailureSeenLive(t *testing.T) {
	runs, _ := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs})
	status := func() (string, string) {
		var list []Run
		get(t, srv.URL+"/api/runs", &list)
		for _, r := range list {
			if r.Name == "leaves-c" {
				return string(r.Status), r.Failed
			}
		}
		t.Fatal("leaves-c not listed")
		return "", ""
	}
	if st, why := status(); st != "stopped" || why != "" {
		t.Fatalf("before: %s %q", st, why)
	}
	b, _ := json.Marshal(rundir.Failure{Error: "3 trials in a row failed", Time: fixtureStart})
	if err := os.WriteFile(filepath.Join(runs, "leaves-c", rundir.FileFailure), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if st, why := status(); st != "failed" || why != "3 trials in a row failed" {
		t.Errorf("after the failure: %s %q; want failed with its error", st, why)
	}
}

// The finals' latencies timed after the final phase (final_latency.json,
// written after the last final) reach the final table once written, with
// a new version of the run (a page reloads its finals by it; the best can
// change with them).
func TestFinalTimings(t *testing.T) {
	runs, _ := fixtureRuns(t)
	srv := serve(t, Options{Runs: runs})
	base := srv.URL + "/api/runs/leaves-a"
	var finals []FinalModel
	var before, after RunDetail
	get(t, base, &before)
	get(t, base+"/final", &finals)
	if len(finals) != 2 || finals[0].MeasuredLatencyMs != nil {
		t.Fatalf("final table before the timings: %+v", finals)
	}
	timeRankOne(t, filepath.Join(runs, "leaves-a"), finals[0].Trial)
	get(t, base+"/final", &finals)
	if len(finals) != 2 || finals[0].MeasuredLatencyMs == nil || *finals[0].MeasuredLatencyMs != 0.125 || finals[1].MeasuredLatencyMs != nil {
		t.Errorf("final table after the timings: %+v", finals)
	}
	if get(t, base, &after); after.Version == before.Version {
		t.Errorf("version %s unchanged by the timings", after.Version)
	}
}

// timeRankOne writes the timings of the run in dir: its rank 1, trial
// trial, at 0.125 ms.
func timeRankOne(t *testing.T, dir string, trial int) {
	t.Helper()
	timing := rundir.FinalLatency{Threads: 1, Runs: 200, Rounds: 10, Models: []rundir.TimedFinal{{Rank: 1, Trial: trial, P50Ms: 0.125}}}
	b, err := json.Marshal(timing)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, rundir.FileFinalLatency), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A bench of some of the run's winners (taken before its final phase was
// finished, say) is noted under its figures, naming the winners left out.
func TestBenchFiguresStale(t *testing.T) {
	runs, _ := fixtureRuns(t)
	if err := os.MkdirAll(filepath.Join(runs, "leaves-a", "bench"), 0o755); err != nil {
		t.Fatal(err)
	}
	acc := 0.93
	write := func(rs ...*bench.Result) {
		if err := bench.WriteCSV(filepath.Join(runs, "leaves-a", benchCSV), rs); err != nil {
			t.Fatal(err)
		}
	}
	one := &bench.Result{Model: "winners/rank-01.onnx", Params: 12000, LatencyMs: bench.Latency{P50: 0.08}, Accuracy: &acc}
	two := &bench.Result{Model: "winners/rank-02.onnx", Params: 30000, LatencyMs: bench.Latency{P50: 0.11}, Accuracy: &acc}
	srv := serve(t, Options{Runs: runs})
	for _, tc := range []struct {
		rs   []*bench.Result
		note string
	}{
		{[]*bench.Result{one}, ". Note: the run's rank-02.onnx is not measured by this bench (retrained or added since)"},
		{[]*bench.Result{one, two}, ""},
	} {
		write(tc.rs...)
		var det RunDetail
		get(t, srv.URL+"/api/runs/leaves-a", &det)
		benched := 0
		for _, f := range det.Figures {
			if !strings.Contains(f.Title, "(nasctl bench)") {
				continue
			}
			benched++
			if tc.note == "" && !strings.HasSuffix(f.Title, "(nasctl bench)") || tc.note != "" && !strings.Contains(f.Title, tc.note) {
				t.Errorf("%s: title %q, want the note %q", f.Name, f.Title, tc.note)
			}
		}
		if benched != 2 {
			t.Errorf("%d bench figures, want 2: %+v", benched, det.Figures)
		}
	}
}

// The final table gives nasctl bench's latency of each final model file
// it measured: matched by content, so that a file retrained since the bench
// gets none; by name in results of a bench without hashes.
func TestFinalBenchFigures(t *testing.T) {
	runs, _ := fixtureRuns(t)
	dir := filepath.Join(runs, "leaves-a")
	if err := os.MkdirAll(filepath.Join(dir, "bench"), 0o755); err != nil {
		t.Fatal(err)
	}
	one, err := os.ReadFile(filepath.Join(dir, rundir.WinnerName(1)))
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, Options{Runs: runs})
	for _, tc := range []struct {
		name string
		rs   []*bench.Result
		want map[int]*BenchFigures // by rank
	}{
		{"hashes", []*bench.Result{
			{Model: "somewhere/rank-01.onnx", SHA256: quantize.SHA256(one), LatencyMs: bench.Latency{P50: 0.08, P95: 0.09}, Pareto: true},
			{Model: "winners/rank-02.onnx", SHA256: quantize.SHA256([]byte("retrained since")), LatencyMs: bench.Latency{P50: 0.11, P95: 0.2}},
		}, map[int]*BenchFigures{1: {P50Ms: 0.08, P95Ms: 0.09, Pareto: true}}},
		{"names", []*bench.Result{
			{Model: "winners/rank-02.onnx", LatencyMs: bench.Latency{P50: 0.11, P95: 0.2}},
		}, map[int]*BenchFigures{2: {P50Ms: 0.11, P95Ms: 0.2}}},
	} {
		if err := bench.WriteCSV(filepath.Join(dir, benchCSV), tc.rs); err != nil {
			t.Fatal(err)
		}
		var finals []FinalModel
		get(t, srv.URL+"/api/runs/leaves-a/final", &finals)
		if len(finals) != 2 {
			t.Fatalf("%s: %d finals, want 2", tc.name, len(finals))
		}
		for _, f := range finals {
			if want := tc.want[f.Rank]; !reflect.DeepEqual(f.Bench, want) {
				t.Errorf("%s: rank %d's bench figures %+v, want %+v", tc.name, f.Rank, f.Bench, want)
			}
		}
	}
}
