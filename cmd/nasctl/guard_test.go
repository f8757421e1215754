package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
)

// runBin runs the nasctl binary bin and returns its exit code and output.
func runBin(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

// The found items of the hardening issue, as a user meets them: a network
// too large for memory or for a tensor, an output that cannot be written, a
// corrupt image; each ends with a message that says what to do, before any
// training where it can. The huge network on 16x16x1 has 1,000,259,000,001
// trainable values (256e6 + 1e6, 1e12 + 1e6, 1e6 + 1), each counted at 64
// bytes at least (two sets of weights 8, gradient 4, two sets of Adam's two
// moments 16, the update's copies 36): 64.0e12 bytes, 58 TiB.
func TestGuardsAsProcesses(t *testing.T) {
	bin := buildNasctl(t)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "leaves")
	generateLeaves(t, data, 100, 16, 4)
	huge := "FC(1000000) - FC(1000000) - SM()"
	out := filepath.Join(tmp, "models", "m.onnx") // a folder that train makes
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"train", "--arch", huge, "--data", data}, 1,
			[]string{"refused: training at batch 128 needs at least 58 TiB", "the memory this machine has available", "--max-memory"}},
		{[]string{"train", "--arch", huge, "--data", data, "--max-memory", "none"}, 1,
			[]string{"parameter fc2.weight would hold 1,000,000,000,000 values, more than the 2,147,483,647 a tensor may hold"}},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", data, "--max-memory", "1KiB", "--out", out}, 1,
			[]string{"more than the limit of 1.0 KiB"}},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", data, "--max-memory", "lots"}, 2,
			[]string{`--max-memory "lots": give a size such as 6GiB`}},
		{[]string{"bench", "train-step", "--arch", huge, "--input", "16x16x1", "--max-memory", "2GiB"}, 1,
			[]string{"refused: training at batch 128 needs at least 58 TiB", "the limit of 2.0 GiB"}},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", data, "--out", "/proc/nasctl-test/m.onnx"}, 2,
			[]string{"--out /proc/nasctl-test/m.onnx: cannot write in /proc", "choose another path"}},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", data, "--out", tmp}, 2,
			[]string{"is a folder; give a file name"}},
		// A folder to make is made when the file is written: a command
		// refused before leaves none.
		{[]string{"export", "m.onnx", "--pure-go", "--int8", "--out", filepath.Join(tmp, "new", "a", "q.onnx")}, 2,
			[]string{"m.onnx: no such file"}},
	} {
		code, stdout, stderr := runBin(t, bin, tc.args...)
		if _, err := os.Stat(filepath.Join(tmp, "new")); err == nil {
			t.Errorf("%q made the folder of its --out, then was refused", tc.args)
		}
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d\n%s%s", tc.args, code, tc.code, stdout, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q: stderr lacks %q:\n%s", tc.args, w, stderr)
			}
		}
		if strings.Contains(stderr, "epoch ") {
			t.Errorf("%q: trained before failing:\n%s", tc.args, stderr)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused training wrote %s (%v)", out, err)
	}

	// A corrupt image: every command that reads it names it and says
	// --skip-bad exists; with --skip-bad each lists it and goes on.
	bad := filepath.Join(data, "LEAF_9999.png")
	if err := os.WriteFile(bad, []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	train := []string{"train", "--arch", "C(4,3,1) - P(2,2) - SM()", "--data", data, "--epochs", "1", "--out", out}
	code, _, stderr := runBin(t, bin, train...)
	if code != 1 || !strings.Contains(stderr, bad+": not a decodable image") || !strings.Contains(stderr, "add --skip-bad") {
		t.Errorf("train on a corrupt image: exit %d\n%s", code, stderr)
	}
	code, _, stderr = runBin(t, bin, append(train, "--skip-bad")...)
	if code != 0 || !strings.Contains(stderr, "skipped 1 bad file (--skip-bad):\n  "+bad+": not a decodable image") {
		t.Fatalf("train --skip-bad: exit %d\n%s", code, stderr)
	}
	// A --json search's failed event says it too, as its last line.
	code, stdout, _ := runBin(t, bin, "search", "metaqnn", "--data", data, "--dir", filepath.Join(tmp, "runs"), "--trials", "1", "--json")
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); code != 1 || !strings.Contains(lines[len(lines)-1], `"event":"failed"`) ||
		!strings.Contains(lines[len(lines)-1], "add --skip-bad") {
		t.Errorf("search --json on a corrupt image: exit %d\n%s", code, stdout)
	}
	// The model trained on the other images: eval reads the folder as its
	// training did, and says so.
	code, _, stderr = runBin(t, bin, "eval", out, "--data", data)
	if code != 0 || !strings.Contains(stderr, "note: "+data+" without its 1 bad file, as the model's training read it") ||
		!strings.Contains(stderr, "\n  "+bad+": not a decodable image") {
		t.Errorf("eval on the model's folder with its corrupt image: exit %d\n%s", code, stderr)
	}
	code, _, stderr = runBin(t, bin, "export", out, "--int8", "--calibration", data, "--out", filepath.Join(tmp, "m8.onnx"))
	if code != 0 || !strings.Contains(stderr, "note: "+data+" without its 1 bad file, as the model's training read it") {
		t.Errorf("export --int8 calibrated on the model's folder with its corrupt image: exit %d\n%s", code, stderr)
	}
	if code, _, stderr = runBin(t, bin, "eval", out, "--data", data, "--skip-bad"); code != 0 || !strings.Contains(stderr, bad) {
		t.Errorf("eval --skip-bad: exit %d\n%s", code, stderr)
	}
	bench := []string{"bench", out, "--data", data, "--runs", "3", "--warmup", "1"}
	if code, _, stderr = runBin(t, bin, bench...); code != 1 || !strings.Contains(stderr, "add --skip-bad") {
		t.Errorf("bench on a corrupt image: exit %d\n%s", code, stderr)
	}
	if code, _, stderr = runBin(t, bin, append(bench, "--skip-bad")...); code != 0 || !strings.Contains(stderr, bad) {
		t.Errorf("bench --skip-bad: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(tmp, "models", "m-bench", "bench.csv")); err != nil {
		t.Errorf("bench wrote no bench.csv beside the model: %v", err)
	}
	good := filepath.Join(data, "LEAF_0001.png")
	if code, _, stderr = runBin(t, bin, "predict", out, good, bad); code != 1 || !strings.Contains(stderr, "add --skip-bad") {
		t.Errorf("predict of a corrupt image: exit %d\n%s", code, stderr)
	}
	// A path that is not there is a typo to mend, not a file to skip.
	missing := filepath.Join(data, "LEAF_nosuch.png")
	if code, _, stderr = runBin(t, bin, "predict", out, missing); code != 1 || !strings.Contains(stderr, missing+": cannot read") || strings.Contains(stderr, "--skip-bad") {
		t.Errorf("predict of a missing file: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr = runBin(t, bin, "predict", out, good, bad, "--skip-bad")
	if code != 0 || !strings.HasPrefix(stdout, good+"\t") || strings.Count(stdout, "\n") != 1 || !strings.Contains(stderr, bad) {
		t.Errorf("predict --skip-bad: exit %d\n%s%s", code, stdout, stderr)
	}
	// With an image the model did not train on, the folder is other data:
	// eval does not skip on its own.
	if b, err := os.ReadFile(good); err != nil || os.WriteFile(filepath.Join(data, "LEAF_9998.png"), b, 0o644) != nil {
		t.Fatal(err)
	}
	code, _, stderr = runBin(t, bin, "eval", out, "--data", data)
	if code != 1 || !strings.Contains(stderr, "add --skip-bad") || strings.Contains(stderr, "as the model's training read it") {
		t.Errorf("eval on other images with a corrupt one: exit %d\n%s", code, stderr)
	}
}

// A model whose file cannot be written after training is saved in the
// temporary folder, and the error says where.
func TestSaveOrRescue(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	model := []byte("finished work")
	if err := os.WriteFile(filepath.Join(tmp, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(tmp, "file", "m.onnx") // its folder cannot be made: a file is there
	err := saveOrRescue(gone, model)
	if err == nil || !strings.Contains(err.Error(), "writing "+gone) || !strings.Contains(err.Error(), "the model is saved in "+tmp) {
		t.Fatalf("err = %v", err)
	}
	rescued, _ := filepath.Glob(filepath.Join(tmp, "nasctl-*-m.onnx"))
	if len(rescued) != 1 {
		t.Fatalf("rescued files: %v", rescued)
	}
	if b, _ := os.ReadFile(rescued[0]); !bytes.Equal(b, model) || !strings.Contains(err.Error(), rescued[0]) {
		t.Errorf("%s holds %q; error %v", rescued[0], b, err)
	}
	ok := filepath.Join(tmp, "new", "ok.onnx") // its folder is made
	if err := saveOrRescue(ok, model); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(ok); !bytes.Equal(b, model) {
		t.Errorf("%s holds %q", ok, b)
	}
}

// The --skip-bad hint goes with a file that is there but unusable, a
// dangling link included (--skip-bad skips it), not with a path where
// nothing is: that one is a typo.
func TestBadFileHint(t *testing.T) {
	dir := t.TempDir()
	link, corrupt := filepath.Join(dir, "LEAF_1.png"), filepath.Join(dir, "LEAF_2.png")
	if err := os.Symlink(filepath.Join(dir, "nowhere.png"), link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(corrupt, []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path  string
		cause error
		hint  bool
	}{
		{link, os.ErrNotExist, true},
		{corrupt, errors.New("not a decodable image"), true},
		{filepath.Join(dir, "typo.png"), os.ErrNotExist, false},
	} {
		err := withBadFileHint(&dataset.BadFile{Path: tc.path, Err: tc.cause})
		if strings.Contains(err.Error(), badFileHint) != tc.hint {
			t.Errorf("%s: %v; want the hint %v", tc.path, err, tc.hint)
		}
	}
}

// A search's run folder given for images is refused with the folder of its
// images: read as classes, its models/ and winners/ would be, and the
// advice to empty one would damage the run.
func TestRunFolderAsImages(t *testing.T) {
	dir, data := tinySearch(t, "r")
	run := filepath.Join(dir, "r")
	model := filepath.Join(t.TempDir(), "m.onnx")
	writeModel(t, model, "C(4,3,1) - SM()", genotype.Input{Height: 8, Width: 8, Channels: 3})
	for _, args := range [][]string{
		{"eval", model, "--data", run},
		{"export", model, "--int8", "--calibration", run, "--out", filepath.Join(t.TempDir(), "m8.onnx")},
		{"train", "--arch", "C(4,3,1) - SM()", "--data", run, "--out", filepath.Join(t.TempDir(), "t.onnx")},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, run+" is a search's run folder, not an image folder: its images are in "+data) {
			t.Errorf("%q: exit %d, %s", args, code, errOut)
		}
	}
}
