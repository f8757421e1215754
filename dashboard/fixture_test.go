package dashboard

import (
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
)

// The fixture runs are written through package rundir, as a search writes
// them: config.yaml, trials.jsonl (in the order trials finish), data.json,
// final.jsonl and winners/. No ONNX Runtime is needed.

// fixtureStart is when the fixture runs' first trial finished.
var fixtureStart = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// fixtureArchs are architectures of the CPU preset's space.
var fixtureArchs = []string{
	"C(8,3,1) - P(2,2) - SM()",
	"C(16,3,1) - C(16,3,1) - P(2,2) - GAP()",
	"C(8,5,1) - P(2,2) - C(32,3,1) - GAP()",
	"C(32,3,1) - P(4,4) - FC(64) - SM()",
	"C(16,1,1) - C(8,3,1) - P(2,2) - C(16,3,1) - GAP()",
	"C(64,3,1) - P(2,2) - C(64,3,1) - P(2,2) - GAP()",
	"C(8,3,1) - C(8,3,1) - C(8,3,1) - SM()",
	"C(24,5,1) - P(2,2) - FC(32) - SM()",
}

// fixtureRun is a run being written, as a search holds it.
type fixtureRun struct {
	*rundir.Dir
	seed uint64
}

// newRun makes the MetaQNN run name under runs, planned trials of which
// the final phase retrains the best 2, and records the trials ids in that
// order. The run stays open, as a running search holds it, until finish or
// the end of the test.
func newRun(t *testing.T, runs, name string, planned int, seed uint64, ids ...int) *fixtureRun {
	t.Helper()
	d := create(t, search.Config{Kind: search.KindMetaQNN, Name: name, Dir: runs, Seed: seed, Trials: planned, Data: "data/leaves",
		Final: search.FinalSettings{TopK: 2}})
	if err := d.WriteJSON(rundir.FileData, search.Data{Train: 840, Full: 1680, Val: 420, Test: 900, ValMajority: 0.5}); err != nil {
		t.Fatal(err)
	}
	f := &fixtureRun{Dir: d, seed: seed}
	f.add(t, ids...)
	return f
}

// create makes the run of cfg (with its defaults) in cfg.Dir, as a search
// does; it is closed at the end of the test at the latest.
func create(t *testing.T, cfg search.Config) *rundir.Dir {
	t.Helper()
	b, err := cfg.WithDefaults().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d, err := rundir.Create(filepath.Join(cfg.Dir, cfg.Name), b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// add records trials ids, in that order.
func (f *fixtureRun) add(t *testing.T, ids ...int) {
	t.Helper()
	for _, id := range ids {
		if err := f.AppendTrial(fakeTrial(id, f.seed)); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeTrial is trial id of a fixture run of seed: epsilon 1 for the first
// 12 trials, then 0.5, then 0.1 (accuracies rise as it falls), where the
// even trials are greedy; trial 3 reuses trial 1's result, trial 5 is
// refused and trial 7 stopped after 3 epochs by the median rule, as a
// search's are.
func fakeTrial(id int, seed uint64) rundir.Trial {
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	eps := 1.0
	switch {
	case id > 20:
		eps = 0.1
	case id > 12:
		eps = 0.5
	}
	t := rundir.Trial{Candidate: rundir.Candidate{ID: id, Arch: fixtureArchs[rng.IntN(len(fixtureArchs))], Epsilon: eps,
		Greedy: eps == 0.1 && id%2 == 0},
		Params: 2000 + rng.Int64N(60000), MACs: 100_000 + rng.Int64N(3_000_000), Status: rundir.StatusOK,
		Seed: runtime.Seed(id), Finished: fixtureStart.Add(time.Duration(id) * 37 * time.Second)}
	switch id {
	case 3:
		first := fakeTrial(1, seed)
		t.Arch, t.Params, t.MACs, t.Reward, t.ValAccuracy = first.Arch, first.Params, first.MACs, first.Reward, first.ValAccuracy
		t.Status, t.ReusedFrom = rundir.StatusReused, 1
		return t
	case 5:
		t.Status, t.Reason = rundir.StatusRefused, "4,210,688 MACs over the budget of 4,000,000"
		return t
	}
	final := 0.5 + (0.25+0.2*rng.Float64())*(1.1-0.6*eps)
	for e := 1; e <= 6; e++ {
		rise := 1 - math.Exp(-float64(e)/1.6)
		val := 0.5 + (final-0.5)*rise + 0.01*rng.NormFloat64()
		t.Epochs = append(t.Epochs, runtime.EpochRecord{Epoch: e, LR: 3e-3, TrainLoss: 0.7 - 0.5*rise + 0.02*rng.Float64(),
			TrainAccuracy: val - 0.02 + 0.03*rng.Float64(), ValLoss: 0.72 - 0.45*rise, ValAccuracy: val, Seconds: 4 + rng.Float64()})
		if val > t.ValAccuracy {
			t.ValAccuracy, t.BestEpoch = val, e
		}
		t.Seconds += t.Epochs[e-1].Seconds
		if id == 7 && e == 3 {
			t.Pruned = true
			break
		}
	}
	t.Reward = t.ValAccuracy
	if id == 2 {
		t.Worker = "gpu-1" // trained by a remote worker
	}
	return t
}

// finish records the final phase (the 2 best distinct architectures that
// trained, as the search picks them, with their models) and closes the run.
func (f *fixtureRun) finish(t *testing.T) {
	t.Helper()
	trials, err := rundir.ReadTrials(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(trials, func(i, j int) bool { return trials[i].Reward > trials[j].Reward })
	seen := map[string]bool{}
	rank := 0
	for _, tr := range trials {
		if tr.Status != rundir.StatusOK || seen[tr.Arch] || rank == 2 {
			continue
		}
		seen[tr.Arch] = true
		rank++
		r := rundir.FinalResult{Rank: rank, Trial: tr.ID, Arch: tr.Arch, Params: tr.Params, MACs: tr.MACs, SearchValAccuracy: tr.ValAccuracy,
			ValAccuracy: tr.ValAccuracy + 0.012, TestAccuracy: tr.ValAccuracy + 0.004, Status: rundir.StatusOK, Seconds: 95,
			Model: rundir.WinnerName(rank), Epochs: tr.Epochs,
			TestByClass: []rundir.ClassRecall{{Class: "no_leaf", Right: 600, Images: 620}, {Class: "leaf", Right: 550 + rank, Images: 580}}}
		if err := f.WriteFile(r.Model, []byte("not really onnx "+r.Model)); err != nil {
			t.Fatal(err)
		}
		if err := f.AppendFinal(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// seq returns the ids from to to.
func seq(from, to int) []int {
	var ids []int
	for i := from; i <= to; i++ {
		ids = append(ids, i)
	}
	return ids
}

// fixtureRuns writes the runs most tests look at, under a new folder:
//
//	leaves-a  finished: 24 of 24 trials, recorded two by two out of order
//	          (2, 1, 4, 3, ...) as two workers finish them, and its 2 final models
//	leaves-b  running: 10 of 30 trials, open as a search holds it
//	leaves-c  stopped: 2 of 8 trials, closed
//
// It returns the folder and leaves-b, to append to.
func fixtureRuns(t *testing.T) (string, *fixtureRun) {
	t.Helper()
	runs := filepath.Join(t.TempDir(), "runs")
	var swapped []int
	for id := 1; id <= 24; id += 2 {
		swapped = append(swapped, id+1, id)
	}
	newRun(t, runs, "leaves-a", 24, 1, swapped...).finish(t)
	b := newRun(t, runs, "leaves-b", 30, 2, seq(1, 10)...)
	if err := newRun(t, runs, "leaves-c", 8, 3, 1, 2).Close(); err != nil {
		t.Fatal(err)
	}
	return runs, b
}

// serve starts a dashboard on a loopback port for the test.
func serve(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(opts))
	// An open event stream would keep Close waiting: end it first.
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return srv
}

// damageLine2 cuts the second line of the trials log of the run in dir
// short, as a damaged disk or a bad edit leaves it.
func damageLine2(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, rundir.FileTrials)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if err := os.WriteFile(path, []byte(lines[0]+"{\"id\": 2, \"ar\n"+strings.Join(lines[2:], "")), 0o644); err != nil {
		t.Fatal(err)
	}
}
