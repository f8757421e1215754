package main

import (
	"encoding/json"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
)

// barFolders writes 16x16 gray images of three classes of 60, 24 and 12
// images (big, mid, rare): a faint vertical bar in the class's columns
// over noise, which small networks learn in an epoch or two.
func barFolders(t *testing.T, dir string) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 8))
	for c, class := range []struct {
		name string
		n    int
	}{{"big", 60}, {"mid", 24}, {"rare", 12}} {
		for i := range class.n {
			m := image.NewGray(image.Rect(0, 0, 16, 16))
			at := 5*c + r.IntN(4)
			for p := range m.Pix {
				m.Pix[p] = uint8(r.IntN(120))
				if p%16 == at {
					m.Pix[p] += 100
				}
			}
			writeDatasetPNG(t, filepath.Join(dir, class.name, fmt.Sprintf("%02d.png", i)), m)
		}
	}
}

// evalMeanRecall is the mean recall of the three classes of model on split
// of data, from the confusion matrix that nasctl eval --json gives.
func evalMeanRecall(t *testing.T, model, data, split string) float64 {
	t.Helper()
	code, out, errOut := runCLI(t, "eval", model, "--data", data, "--split", split, "--json")
	var ev struct {
		Confusion [][]int `json:"confusion"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &ev) != nil || len(ev.Confusion) != 3 {
		t.Fatalf("eval: exit %d, %s%s", code, out, errOut)
	}
	var recall float64
	for c, row := range ev.Confusion {
		n := 0
		for _, x := range row {
			n += x
		}
		recall += float64(row[c]) / float64(n) / 3
	}
	return recall
}

// A search with --metric balanced_accuracy: the chance level is 1/3 for
// three classes of unequal sizes, the settings and the report say which
// accuracy ranked the models, and each
// final's validation accuracy is the mean recall that nasctl eval's
// confusion matrix gives for its model on the validation images. A bad
// metric is a usage error.
func TestSearchBalancedMetric(t *testing.T) {
	tmp := t.TempDir()
	data, runs := filepath.Join(tmp, "bars"), filepath.Join(tmp, "runs")
	barFolders(t, data)
	code, out, errOut := runCLI(t, "search", "metaqnn", "--data", data, "--dir", runs, "--name", "bal", "--plan", "metaqnn-stratified",
		"--trials", "4", "--epochs", "3", "--top-k", "2", "--threads", "1", "--metric", "balanced_accuracy")
	dir := filepath.Join(runs, "bal")
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	// The metric alone does not teach the small class: still warned.
	if !strings.Contains(errOut, "the classes are imbalanced") {
		t.Errorf("no imbalance warning under balanced accuracy alone:\n%s", errOut)
	}
	cfg, err := search.ReadConfig(dir)
	if err != nil || cfg.Train.Metric != "balanced_accuracy" {
		t.Errorf("config: metric %q, %v", cfg.Train.Metric, err)
	}
	var d struct {
		ValMajority float64 `json:"val_majority"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, rundir.FileData)); err != nil || json.Unmarshal(b, &d) != nil || math.Abs(d.ValMajority-1.0/3) > 1e-12 {
		t.Errorf("data.json's chance %v (%v), want 1/3", d.ValMajority, err)
	}
	finals, err := rundir.ReadFinalRecords(dir)
	if err != nil || len(finals) != 2 {
		t.Fatalf("%d finals, %v", len(finals), err)
	}
	b, err := os.ReadFile(filepath.Join(dir, rundir.FileReport))
	if err != nil {
		t.Fatal(err)
	}
	report, bestSeen := string(b), false
	for _, want := range []string{"Validation accuracy in this run is balanced accuracy (train.metric: balanced_accuracy)",
		"Best after retraining (by validation balanced accuracy, ties by validation loss)", "at most one point over one over the number of classes (33.33%)"} {
		if !strings.Contains(report, want) {
			t.Errorf("report.md lacks %q:\n%s", want, report)
		}
	}
	for _, f := range finals {
		recall := evalMeanRecall(t, filepath.Join(dir, f.Model), data, "val")
		t.Logf("final %d: validation %.4f, mean recall from eval %.4f", f.Rank, f.ValAccuracy, recall)
		if math.Abs(recall-f.ValAccuracy) > 1e-9 {
			t.Errorf("final %d: validation accuracy %.6f, the mean recall of its model on the validation images %.6f", f.Rank, f.ValAccuracy, recall)
		}
		var test float64
		for _, c := range f.TestByClass {
			test += c.Recall() / 3
		}
		if strings.Contains(report, fmt.Sprintf("rank %d, %s, copied", f.Rank, f.Model)) {
			bestSeen = true
			if want := fmt.Sprintf("; their mean, its balanced accuracy on the test images: %.2f%%.", 100*test); !strings.Contains(report, want) {
				t.Errorf("report.md lacks the best's %q:\n%s", want, report)
			}
		}
	}
	if !bestSeen {
		t.Errorf("report.md names no final as the best:\n%s", report)
	}
	// runs list marks a reward of balanced accuracy, not comparable with
	// plain accuracies.
	if code, out, errOut := runCLI(t, "runs", "list", "--dir", runs); code != 0 || !regexp.MustCompile(`(?m)^bal .* 0\.\d{4} \(balanced\) `).MatchString(out) {
		t.Errorf("runs list: exit %d:\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "search", "metaqnn", "--data", data, "--dir", runs, "--name", "bad", "--metric", "f1"); code != 2 ||
		!strings.Contains(errOut, `--metric: unknown metric "f1" (valid: accuracy, balanced_accuracy)`) {
		t.Errorf("--metric f1: exit %d, %s", code, errOut)
	}
	// --sampling balanced reaches the settings, the report and the models'
	// training records; with the metric, the imbalance warning is left out.
	code, out, errOut = runCLI(t, "search", "metaqnn", "--data", data, "--dir", runs, "--name", "sam", "--plan", "metaqnn-stratified",
		"--trials", "2", "--epochs", "1", "--top-k", "1", "--threads", "1", "--sampling", "balanced", "--metric", "balanced_accuracy")
	dir = filepath.Join(runs, "sam")
	if cfg, err := search.ReadConfig(dir); code != 0 || err != nil || cfg.Train.Sampling != "balanced" {
		t.Fatalf("--sampling balanced: exit %d, config %q (%v):\n%s%s", code, cfg.Train.Sampling, err, out, errOut)
	}
	if strings.Contains(errOut, "imbalanced") {
		t.Errorf("the imbalance warning under balanced sampling and accuracy:\n%s", errOut)
	}
	if b, err := os.ReadFile(filepath.Join(dir, rundir.FileReport)); err != nil ||
		!strings.Contains(string(b), "Every trial and retraining drew its training images class by class, every class as often as the others, the small classes' images repeated (train.sampling: balanced)") {
		t.Errorf("report.md (%v):\n%s", err, b)
	}
	if code, out, errOut := runCLI(t, "arch", "inspect", filepath.Join(dir, rundir.BestName)); code != 0 || !strings.Contains(out, `"sampling":"balanced"`) {
		t.Errorf("the best model's training record: exit %d:\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "search", "metaqnn", "--data", data, "--dir", runs, "--name", "bad", "--sampling", "weighted"); code != 2 ||
		!strings.Contains(errOut, `--sampling: unknown sampling "weighted" (valid: shuffle, balanced)`) {
		t.Errorf("--sampling weighted: exit %d, %s", code, errOut)
	}
}

// nasctl train --metric balanced_accuracy --sampling balanced records both
// in the model's training record, labels the validation score so, and gives the
// test images' balanced accuracy: the mean recall of nasctl eval's
// confusion matrix on them.
func TestTrainBalancedMetric(t *testing.T) {
	tmp := t.TempDir()
	data, model := filepath.Join(tmp, "bars"), filepath.Join(tmp, "m.onnx")
	barFolders(t, data)
	args := []string{"train", "--arch", "C(8,3,1) - P(2,2) - FC(16) - SM()", "--data", data, "--plan", "metaqnn-stratified", "--epochs", "4",
		"--batch", "16", "--lr", "0.003", "--threads", "1", "--out", model, "--metric", "balanced_accuracy", "--sampling", "balanced"}
	code, out, errOut := runCLI(t, append(args, "--json")...)
	var rep struct {
		TestAccuracy *float64 `json:"test_accuracy"`
		TestBalanced *float64 `json:"test_balanced_accuracy"`
		Training     struct {
			Metric   string `json:"metric"`
			Sampling string `json:"sampling"`
		} `json:"training"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.TestBalanced == nil || rep.Training.Metric != "balanced_accuracy" || rep.Training.Sampling != "balanced" {
		t.Fatalf("exit %d, %+v:\n%s%s", code, rep, out, errOut)
	}
	// With both flags, as search, no imbalance warning.
	if strings.Contains(errOut, "imbalanced") {
		t.Errorf("the imbalance warning under balanced sampling and accuracy:\n%s", errOut)
	}
	recall := evalMeanRecall(t, model, data, "test")
	t.Logf("test accuracy %.4f, balanced %.4f; eval's mean recall %.4f", *rep.TestAccuracy, *rep.TestBalanced, recall)
	if math.Abs(recall-*rep.TestBalanced) > 1e-9 {
		t.Errorf("test balanced accuracy %.6f, eval's mean recall %.6f", *rep.TestBalanced, recall)
	}
	code, out, errOut = runCLI(t, append(args, "--quiet")...)
	if code != 0 || !strings.Contains(out, "validation balanced accuracy ") || !strings.Contains(out, fmt.Sprintf("(balanced %.4f)", recall)) {
		t.Errorf("text: exit %d:\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "train", "--arch", "SM()", "--data", data, "--metric", "recall"); code != 2 || !strings.Contains(errOut, `--metric: unknown metric "recall"`) {
		t.Errorf("--metric recall: exit %d, %s", code, errOut)
	}
}
