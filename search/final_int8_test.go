package search

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/quantize"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
)

// calibratingExecutor is a fakeExecutor that holds calibration images (24
// random ones), as a LocalExecutor does.
type calibratingExecutor struct {
	*fakeExecutor
	asked int
}

func (c *calibratingExecutor) CalibrationImages(n int) ([]float32, int) {
	c.asked = n
	in := c.Data().Input
	r := rand.New(rand.NewPCG(9, 9))
	px := make([]float32, 24*in.Channels*in.Height*in.Width)
	for i := range px {
		px[i] = r.Float32()
	}
	return px, 24
}

// withRuntime initialises ONNX Runtime for the test and closes it after:
// the other tests of this package run without it (a latency they cannot
// measure is part of what they check).
func withRuntime(t *testing.T) {
	t.Helper()
	if err := runtime.Init(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := runtime.Close(); err != nil {
			t.Error(err)
		}
	})
}

// With final.int8, every winner also gets its int8 model in winners/int8/
// (or a reason in final.jsonl when it has no layer to quantize): quantized
// from the float winner of the same rank (the SHA-256 its settings record),
// calibrated on the executor's images, its test accuracy the executor's
// figure for it, written into its metadata.
func TestFinalInt8(t *testing.T) {
	withRuntime(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Int8 = true
	cfg.Data = filepath.Join(t.TempDir(), "leaves") // a path on this machine, which the models must not carry
	exec := &calibratingExecutor{fakeExecutor: &fakeExecutor{}}
	s := newSearch(t, cfg, exec)
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if exec.asked != finalCalibrationImages {
		t.Errorf("asked for %d calibration images, want %d", exec.asked, finalCalibrationImages)
	}
	finals := read(t, rundir.ReadFinals, s.Dir())
	quantized := 0
	for _, f := range finals {
		fb, err := os.ReadFile(filepath.Join(s.Dir(), f.Model))
		if err != nil {
			t.Fatal(err)
		}
		qb, err := os.ReadFile(filepath.Join(s.Dir(), Int8WinnerName(f.Rank)))
		if err != nil {
			if !strings.Contains(f.Reason, "final.int8") {
				t.Errorf("rank %d: no int8 model (%v) and no reason", f.Rank, err)
			}
			continue
		}
		quantized++
		info, err := onnxgen.ReadModelInfo(qb)
		if err != nil {
			t.Fatal(err)
		}
		st, err := quantize.ReadSettings(info)
		if err != nil || st == nil || st.Source != quantize.SHA256(fb) || st.Images != 24 || st.Data != "leaves (sha256:test), the first 24 training images" {
			t.Errorf("rank %d: settings %+v (%v)", f.Rank, st, err)
		}
		// The metadata holds accuracies with 6 decimals.
		if got, want := info.Meta[onnxgen.MetaTestAccuracy], strconv.FormatFloat(fakeReward(info.Arch), 'f', 6, 64); got != want {
			t.Errorf("rank %d: int8 test accuracy %q, want %q", f.Rank, got, want)
		}
		if info.Arch.String() != f.Arch {
			t.Errorf("rank %d: int8 model of %s, winner %s", f.Rank, info.Arch, f.Arch)
		}
		// final.jsonl and the report name it, with its test accuracy.
		if f.Int8Model != Int8WinnerName(f.Rank) || f.Int8TestAccuracy == nil || *f.Int8TestAccuracy != fakeReward(info.Arch) {
			t.Errorf("rank %d: final.jsonl's int8 model %q, accuracy %v", f.Rank, f.Int8Model, f.Int8TestAccuracy)
		}
		row := fmt.Sprintf("| %.2f%% | %s | b 72.00%% (18 of 25) |\n", 100*fakeReward(info.Arch), Int8WinnerName(f.Rank)) // then the float model's lowest recall
		b, _ := os.ReadFile(filepath.Join(s.Dir(), rundir.FileReport))
		if report := string(b); !strings.Contains(report, "| int8 test acc | int8 model | lowest class recall |") || !strings.Contains(report, row) {
			t.Errorf("rank %d: the report lacks %q:\n%s", f.Rank, row, report)
		}
		c, _ := os.ReadFile(filepath.Join(s.Dir(), rundir.FileReportCSV))
		if want := fmt.Sprintf(",%s,%s,false,\n", strconv.FormatFloat(fakeReward(info.Arch), 'g', 6, 64), Int8WinnerName(f.Rank)); !strings.Contains(string(c), want) {
			t.Errorf("rank %d: report.csv lacks %q:\n%s", f.Rank, want, c)
		}
	}
	t.Logf("%d of %d winners quantized", quantized, len(finals))
	if quantized == 0 {
		t.Errorf("no winner was quantized: %+v", finals)
	}
	// winners/int8/best.onnx is the best's int8 model, as best.onnx is the
	// best's float one; none when the best has no int8 model.
	rep, err := ReadReport(s.Dir())
	if err != nil || rep.Best == nil {
		t.Fatalf("report: %v, best %v", err, rep.Best)
	}
	got, gerr := os.ReadFile(filepath.Join(s.Dir(), rundir.BestInt8Name))
	if rep.Best.Int8Model == "" {
		if !errors.Is(gerr, os.ErrNotExist) {
			t.Errorf("the best (rank %d) has no int8 model, but %s: %v", rep.Best.Rank, rundir.BestInt8Name, gerr)
		}
		return
	}
	want, err := os.ReadFile(filepath.Join(s.Dir(), rep.Best.Int8Model))
	if err != nil || gerr != nil || !bytes.Equal(got, want) {
		t.Errorf("%s is not %s, the best's int8 model (%v, %v)", rundir.BestInt8Name, rep.Best.Int8Model, err, gerr)
	}
}

// final.int8 with an executor that keeps no images here is refused before
// the first trial, saying what to do instead; with --skip-final the trials
// run, and a resume with an executor that keeps the images runs the final
// phase.
func TestFinalInt8NeedsImages(t *testing.T) {
	withRuntime(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Int8 = true
	const want = "keeps no training images in this process to calibrate the int8 models on"
	if _, err := New(cfg, &fakeExecutor{}); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "nasctl export --int8") {
		t.Fatalf("New: %v, want a refusal naming nasctl export --int8", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, cfg.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused search made its run directory: %v", err)
	}
	cfg.Final.Skip = true
	dir := finishedRun(t, cfg, &fakeExecutor{})
	// A resume that would run the final phase on such an executor.
	exec := &fakeExecutor{}
	r, err := Resume(dir, ResumeOptions{Trials: cfg.Trials + 2, SkipFinal: new(false)}, func(Config) (Executor, error) { return exec, nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("resume: %v, want the refusal", err)
	}
	r.Close()
	if len(exec.jobs) != 0 {
		t.Errorf("%d trials ran before the refusal", len(exec.jobs))
	}
	runResumed(t, dir, ResumeOptions{SkipFinal: new(false)}, func(Config) (Executor, error) { return &calibratingExecutor{fakeExecutor: &fakeExecutor{}}, nil })
	if _, err := os.Stat(filepath.Join(dir, rundir.BestInt8Name)); err != nil {
		t.Errorf("the resume here wrote no int8 winner: %v", err)
	}
}

// A final taken from an earlier plan under another rank gets this phase's
// rank in the metadata of both its models, float and int8.
func TestEarlierInt8FinalRanked(t *testing.T) {
	withRuntime(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Int8 = true
	newExec := func(Config) (Executor, error) { return &calibratingExecutor{fakeExecutor: &fakeExecutor{}}, nil }
	exec, _ := newExec(cfg)
	dir := finishedRun(t, cfg, exec)
	s, err := Resume(dir, ResumeOptions{Trials: cfg.Trials + 2}, newExec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	from := filepath.Join(rundir.DirEarlier, fmt.Sprintf("trials-%d", cfg.Trials))
	f := read(t, rundir.ReadFinalRecords, filepath.Join(dir, from))[0]
	trials := read(t, rundir.ReadTrials, dir)
	trial := trials[slices.IndexFunc(trials, func(t rundir.Trial) bool { return t.ID == f.Trial })]
	if f.Rank != 1 || f.Int8Model == "" {
		t.Fatalf("the earlier plan's first final: rank %d, int8 model %q", f.Rank, f.Int8Model)
	}
	e, err := s.earlierFinal(2, trial, f, from)
	if err != nil || e == nil {
		t.Fatalf("not taken: %v", err)
	}
	for name, model := range map[string][]byte{"float": e.model, "int8": e.int8} {
		info, err := onnxgen.ReadModelInfo(model)
		if err != nil {
			t.Fatal(err)
		}
		if info.Meta[onnxgen.MetaRank] != "3" || info.Meta[onnxgen.MetaRun] != cfg.Name {
			t.Errorf("%s model: rank %q, run %q; want 3 and %q", name, info.Meta[onnxgen.MetaRank], info.Meta[onnxgen.MetaRun], cfg.Name)
		}
	}
}
