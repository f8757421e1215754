package rundir

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/runtime"
)

func trial(id int, arch string) Trial {
	return Trial{Candidate: Candidate{ID: id, Arch: arch}, Status: StatusOK}
}

// A last line torn by kill -9 is dropped on opening, and what is appended
// after it reads back whole; readers that take no lock leave it out.
func TestTornLogLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	d, err := Create(dir, []byte("kind: metaqnn\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if err := d.AppendTrial(trial(i, "SM()")); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	f, _ := os.OpenFile(filepath.Join(dir, FileTrials), os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprint(f, `{"id":3,"arch":"C(8`) // a write cut by kill -9
	f.Close()
	if ts, err := ReadTrials(dir); err != nil || len(ts) != 2 {
		t.Errorf("reader: %d trials (%v), want the 2 whole ones", len(ts), err)
	}
	d, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.AppendTrial(trial(3, "GAP()")); err != nil {
		t.Fatal(err)
	}
	all, err := ReadTrials(dir)
	if err != nil || len(all) != 3 || all[2].Arch != "GAP()" {
		t.Errorf("log after append: %v %+v", err, all)
	}
}

// A run is created once and opened by one process at a time.
func TestCreateAndLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	d, err := Create(dir, []byte("kind: nasnet\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir, nil); !errors.Is(err, ErrExists) {
		t.Errorf("second Create: %v", err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "in use by another nasctl process") {
		t.Errorf("Open while locked: %v", err)
	}
	d.Close()
	if k, err := Kind(dir); err != nil || k != "nasnet" {
		t.Errorf("Kind: %q %v", k, err)
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a run directory") {
		t.Errorf("Open of an empty folder: %v", err)
	}
}

// The checkpoint and the agent's bytes read back as written, and notes
// after the checkpoint are dropped on resuming.
func TestCheckpointAndNotes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	d, err := Create(dir, []byte("kind: nasnet\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if cp, _, err := d.LoadAgent(); cp != nil || err != nil {
		t.Fatalf("a new run has a checkpoint: %+v %v", cp, err)
	}
	want := Checkpoint{Format: CheckpointFormat, Learned: 4, Outstanding: []Candidate{{ID: 5, Arch: "a", Actions: []int{1, 2}, Temperature: 4.5}}}
	state := []byte("the agent's own\nbytes\x00\xff")
	if err := d.SaveAgent(want, func(w io.Writer) error { _, err := w.Write(state); return err }); err != nil {
		t.Fatal(err)
	}
	cp, r, err := d.LoadAgent()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if cp.Learned != 4 || len(cp.Outstanding) != 1 || cp.Outstanding[0].Actions[1] != 2 || !bytes.Equal(got, state) {
		t.Errorf("checkpoint %+v, state %q", cp, got)
	}
	for i := 1; i <= 6; i++ {
		if err := d.AppendNote(Note{Trial: i, Learned: controller.Learned{Baseline: float64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.KeepNotes(4); err != nil {
		t.Fatal(err)
	}
	notes, err := ReadNotes(dir)
	if err != nil || len(notes) != 4 || notes[3].Baseline != 4 {
		t.Errorf("notes kept: %+v %v", notes, err)
	}
	os.WriteFile(filepath.Join(dir, FileAgent), []byte(`{"format":9}`+"\n"), 0o644)
	if _, _, err := d.LoadAgent(); err == nil || !strings.Contains(err.Error(), "format 9") {
		t.Errorf("a checkpoint of another format: %v", err)
	}
}

// The winners of a run are its ranks in order, or whatever winners/ holds.
func TestWinners(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, DirWinners), 0o755)
	for _, name := range []string{"rank-02.onnx", "best.onnx", "rank-01.onnx"} {
		os.WriteFile(filepath.Join(dir, DirWinners, name), nil, 0o644)
	}
	got := Winners(dir)
	if len(got) != 2 || filepath.Base(got[0]) != "rank-01.onnx" || filepath.Base(got[1]) != "rank-02.onnx" {
		t.Errorf("winners %v", got)
	}
	os.Remove(filepath.Join(dir, DirWinners, "rank-01.onnx"))
	os.Remove(filepath.Join(dir, DirWinners, "rank-02.onnx"))
	if got := Winners(dir); len(got) != 1 || filepath.Base(got[0]) != "best.onnx" {
		t.Errorf("winners without ranks %v", got)
	}
}

// Runs differ where a trial's record does, not where the clock does.
func TestFirstDifference(t *testing.T) {
	a := []Trial{trial(1, "SM()"), trial(2, "GAP()")}
	b := []Trial{trial(1, "SM()"), trial(2, "GAP()")}
	b[1].Seconds, b[1].ImagesPerSecond = 3, 900
	if i := FirstDifference(a, b); i != -1 {
		t.Errorf("timing made trial %d differ", i+1)
	}
	b[1].Reward = 0.5
	if i := FirstDifference(a, b); i != 1 {
		t.Errorf("a reward difference found at %d, want 1", i)
	}
	if i := FirstDifference(a, a[:1]); i != 1 {
		t.Errorf("a missing trial found at %d, want 1", i)
	}
}

// SetAside moves the names that exist into earlier/NAME, a second time
// into earlier/NAME.2, makes the run's folders again, and does nothing
// when none of the names exists.
func TestSetAside(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	d, err := Create(dir, []byte("kind: metaqnn\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, want := range []string{filepath.Join(DirEarlier, "x"), filepath.Join(DirEarlier, "x.2")} {
		if err := d.WriteFile(FileFinal, []byte(want+"\n")); err != nil {
			t.Fatal(err)
		}
		if err := d.WriteFile(WinnerName(1), []byte("model")); err != nil {
			t.Fatal(err)
		}
		got, err := d.SetAside("x", FileFinal, DirWinners, FileReport)
		if err != nil || got != want {
			t.Fatalf("SetAside: %q, %v; want %q", got, err, want)
		}
		if b, err := os.ReadFile(filepath.Join(dir, want, FileFinal)); err != nil || string(b) != want+"\n" {
			t.Errorf("%s: %q, %v", want, b, err)
		}
		if _, err := os.Stat(filepath.Join(dir, want, WinnerName(1))); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(filepath.Join(dir, FileFinal)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still in the run: %v", FileFinal, err)
		}
		if entries, err := os.ReadDir(filepath.Join(dir, DirWinners)); err != nil || len(entries) != 0 {
			t.Errorf("the run's winners/ after SetAside: %d entries, %v; want an empty folder", len(entries), err)
		}
	}
	if got, err := d.SetAside("x", FileFinal, FileReport); got != "" || err != nil {
		t.Errorf("nothing to set aside: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, DirEarlier, "x.3")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an empty folder made: %v", err)
	}
}

// Earlier lists the set-aside folders in the order SetAside makes them,
// trials-30 before trials-100 though "1" sorts before "3".
func TestEarlier(t *testing.T) {
	dir := t.TempDir()
	if got, err := Earlier(dir); got != nil || err != nil {
		t.Errorf("a run without earlier/: %q, %v", got, err)
	}
	for _, n := range []string{"trials-100", "trials-30.2", "trials-38", "trials-30", "trials-30.10"} {
		if err := os.MkdirAll(filepath.Join(dir, DirEarlier, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, DirEarlier, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, n := range []string{"trials-30", "trials-30.2", "trials-30.10", "trials-38", "trials-100"} {
		want = append(want, filepath.Join(DirEarlier, n))
	}
	if got, err := Earlier(dir); !slices.Equal(got, want) || err != nil {
		t.Errorf("Earlier: %q, %v; want %q", got, err, want)
	}
}

// trials.csv leaves a cell empty where the trial cannot have the value
// (not trained here, or scored instead of trained), writes the zeros it can
// have (epsilon 0, no restart, a score of 0), and writes seeds above int64's
// range as they are.
func TestTrialsCSVEmptyCells(t *testing.T) {
	d, err := Create(filepath.Join(t.TempDir(), "run"), []byte("kind: metaqnn\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ok := Trial{Candidate: Candidate{ID: 1, Arch: "C(8,3,1) - SM()"}, Params: 97, MACs: 800, Status: StatusOK,
		Reward: 0.75, ValAccuracy: 0.75, BestEpoch: 2, Seconds: 1.5, Seed: 14142573438532588651,
		Epochs: []runtime.EpochRecord{{Epoch: 1}, {Epoch: 2}}, ImagesPerSecond: 812.5}
	latency := ok
	latency.ID, latency.LatencyMs, latency.RewardAccuracy, latency.Reward, latency.WaitedSeconds, latency.Worker = 5, 0.0425, 0.7, 0.6513, 2.25, "gpu-1"
	refused := Trial{Candidate: Candidate{ID: 2, Arch: "C(64,3,1) - SM()", Epsilon: 1}, Params: 5000, Status: StatusRefused, Reason: "too big"}
	reused := ok
	reused.ID, reused.Status, reused.ReusedFrom, reused.AtChance = 3, StatusReused, 1, true
	controlled := ok
	controlled.ID, controlled.Temperature = 4, 2.5
	rows := func(trials []Trial, trains bool) [][]string {
		if err := d.WriteTrialsCSV(trials, nil, trains); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(d.Path, FileTrialsCSV))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rows, err := csv.NewReader(f).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	type cell struct {
		row        int
		name, want string
	}
	check := func(rows [][]string, cells []cell) {
		for _, c := range cells {
			if got := rows[c.row][slices.Index(rows[0], c.name)]; got != c.want {
				t.Errorf("row %d, %s: %q, want %q", c.row, c.name, got, c.want)
			}
		}
	}
	check(rows([]Trial{ok, refused, reused, controlled, latency}, true), []cell{
		{1, "epsilon", "0"}, {1, "temperature", ""}, {1, "val_accuracy", "0.75"}, {1, "seed", "14142573438532588651"},
		{1, "epochs", "2"}, {1, "restarts", "0"}, {1, "score", ""}, {1, "reused_from", ""}, {1, "at_chance", "false"},
		{2, "val_accuracy", ""}, {2, "params", "5000"}, {2, "best_epoch", ""}, {2, "epochs", ""}, {2, "restarts", ""},
		{2, "seed", ""}, {2, "reward", "0"},
		{3, "val_accuracy", "0.75"}, {3, "reused_from", "1"}, {3, "epochs", ""}, {3, "at_chance", "true"},
		{4, "epsilon", ""}, {4, "temperature", "2.5"},
		{1, "latency_ms", ""}, {1, "reward_accuracy", ""}, {1, "images_per_second", "812.5"}, {1, "waited_seconds", "0"}, {1, "worker", ""},
		{3, "images_per_second", ""}, {3, "waited_seconds", ""},
		{5, "latency_ms", "0.0425"}, {5, "reward_accuracy", "0.7"}, {5, "reward", "0.6513"}, {5, "waited_seconds", "2.25"}, {5, "worker", "gpu-1"},
	})
	scored := Trial{Candidate: Candidate{ID: 1, Arch: "C(8,3,1) - SM()", Epsilon: 1}, Status: StatusOK, Score: 0, Reward: 0}
	check(rows([]Trial{scored}, false), []cell{{1, "score", "0"}, {1, "val_accuracy", ""}, {1, "epochs", ""}})
}

// A run that exists is refused with the command to resume it, its path
// quoted for pasting; while a process searches it, with that process and
// the command to watch it instead.
func TestFreeSaysWhatToDo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "my runs", "x")
	if err := Free(path); err != nil {
		t.Fatalf("a new folder: %v", err)
	}
	d, err := Create(path, []byte("kind: metaqnn\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("nasctl process %d is searching it now; watch it with nasctl ui --runs '%s', then open http://127.0.0.1:8080/runs/%s;", os.Getpid(), filepath.Dir(path), filepath.Base(path))
	if err := Free(path); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), want) {
		t.Errorf("while open: %v, want %q", err, want)
	}
	if err := d.AppendTrial(Trial{Candidate: Candidate{ID: 1}}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := Free(path); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "resume it with --resume '"+path+"'") {
		t.Errorf("closed: %v", err)
	}
	// Without its config.yaml, the run's records are still there: a new
	// run is refused (it would append to them), and so is a resume, both
	// saying to put the file back.
	if err := os.Remove(filepath.Join(path, FileConfig)); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(path, []byte("kind: metaqnn\n")); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "it holds trials.jsonl but no config.yaml: put it back (from a copy") {
		t.Errorf("a new run over one without its config.yaml: %v", err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "holds a run's trials.jsonl but no config.yaml: put it back") {
		t.Errorf("a resume without its config.yaml: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(path, FileTrials)); strings.Count(string(b), "\n") != 1 {
		t.Errorf("the log after the refusals:\n%s", b)
	}
}

// A run folder that cannot be written is met with what to do; other
// errors pass as they are.
func TestUnwritable(t *testing.T) {
	ro := &os.PathError{Op: "open", Path: "run/.lock", Err: syscall.EROFS}
	if err := unwritable(ro); !errors.Is(err, syscall.EROFS) || !strings.Contains(err.Error(), "copy the run folder to a place you can write and resume it there") {
		t.Errorf("read-only: %v", err)
	}
	other := errors.New("no space")
	if err := unwritable(other); err != other {
		t.Errorf("another error: %v", err)
	}
}

// ModelID reads back the trial number of every name ModelName gives, past
// its four digits too (trial 10000 on), and nothing else.
func TestModelID(t *testing.T) {
	for _, id := range []int{1, 42, 9999, 10000, 12345, 1234567} {
		name := filepath.Base(ModelName(id))
		if got, ok := ModelID(name); !ok || got != id {
			t.Errorf("ModelID(%q) = %d, %v; want %d", name, got, ok, id)
		}
	}
	for _, name := range []string{"trial-1.onnx", "trial-00012.onnx", "trial-0000.onnx", "trial-12a4.onnx", "trial-0012.onnx.tmp", "rank-01.onnx", "trial-.onnx", "trial--012.onnx"} {
		if id, ok := ModelID(name); ok {
			t.Errorf("ModelID(%q) = %d, want no trial", name, id)
		}
	}
}

// Every trial an epsilon schedule drew has its epsilon in trials.jsonl, 0
// too (a greedy phase, an evolved child); a trial drawn at a temperature
// (REINFORCE) has none. Each reads back as it was written.
func TestTrialEpsilonKey(t *testing.T) {
	for _, tc := range []struct {
		c    Candidate
		want string // the epsilon key and value, "" for none
	}{
		{Candidate{ID: 1, Arch: "C(8,3,1) - SM()", Epsilon: 0}, `"epsilon":0`},
		{Candidate{ID: 2, Arch: "C(8,3,1) - SM()", Epsilon: 0.5}, `"epsilon":0.5`},
		{Candidate{ID: 3, Arch: "a", Actions: []int{1}, Temperature: 2.5}, ""},
	} {
		tr := Trial{Candidate: tc.c, Status: StatusOK, Reward: 0.9}
		b, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), `"epsilon"`); tc.want == "" && n != 0 || tc.want != "" && (n != 1 || !strings.Contains(string(b), tc.want)) {
			t.Errorf("trial %d: %s; want %q once", tc.c.ID, b, cmp.Or(tc.want, "no epsilon"))
		}
		var back Trial
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, tr) {
			t.Errorf("trial %d read back as %+v (%v)", tc.c.ID, back, err)
		}
	}
}
