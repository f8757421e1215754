package search

import (
	"slices"
	"testing"

	"github.com/nasctl/nasctl/search/rundir"
)

// The final table's every column, in CSV and Markdown, for two finals whose
// accuracies all differ (search validation 0.91, validation after
// retraining 0.935, test 0.8825), so that no two columns can be swapped
// unseen; the second failed, so its test column says so, and it has no
// int8 model.
func TestReportFinalTableColumns(t *testing.T) {
	int8 := 0.875
	finals := []rundir.FinalResult{
		{Rank: 1, Trial: 4, Arch: "C(8,3,1) - SM()", Params: 1234, MACs: 56789, SearchValAccuracy: 0.91, ValAccuracy: 0.935, TestAccuracy: 0.8825,
			Status: rundir.StatusOK, Model: "winners/rank-01.onnx", LatencyMs: 0.0425, Int8TestAccuracy: &int8, Int8Model: "winners/rank-01.int8.onnx"},
		{Rank: 2, Trial: 7, Arch: "SM()", Params: 5, MACs: 6, SearchValAccuracy: 0.5, ValAccuracy: 0.25, Status: rundir.StatusFailed, LatencyMs: 0.01},
		{Rank: 3, Trial: 9, Arch: "C(4,3,1) - SM()", Params: 40, MACs: 50, SearchValAccuracy: 0.52, ValAccuracy: 0.5, TestAccuracy: 0.49,
			Status: rundir.StatusOK, Model: "winners/rank-03.onnx", LatencyMs: 0.02, AtChance: true},
	}
	rows := reportCSV(t, Report{Finals: finals})
	want := [][]string{
		{"rank", "trial", "arch", "params", "macs", "search_val_accuracy", "val_accuracy", "test_accuracy", "status", "model", "latency_ms", "int8_test_accuracy", "int8_model", "at_chance", "timed_latency_ms"},
		{"1", "4", "C(8,3,1) - SM()", "1234", "56789", "0.91", "0.935", "0.8825", "ok", "winners/rank-01.onnx", "0.0425", "0.875", "winners/rank-01.int8.onnx", "false", ""},
		{"2", "7", "SM()", "5", "6", "0.5", "0.25", "0", "failed", "", "0.01", "", "", "false", ""},
		{"3", "9", "C(4,3,1) - SM()", "40", "50", "0.52", "0.5", "0.49", "ok", "winners/rank-03.onnx", "0.02", "", "", "true", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("csv %q, want %q", rows, want)
	}
	for i := range want {
		if !slices.Equal(rows[i], want[i]) {
			t.Errorf("csv row %d: %q\nwant %q", i, rows[i], want[i])
		}
	}
	markdownHas(t, Report{Kind: KindMetaQNN, Finals: finals}.Markdown(),
		"| rank | architecture | parameters | MACs | search val acc | val acc | test acc | model | latency ms | int8 test acc | int8 model |",
		"| 1 | C(8,3,1) - SM() | 1,234 | 56,789 | 91.00% | 93.50% | 88.25% | winners/rank-01.onnx | 0.0425 | 87.50% | winners/rank-01.int8.onnx |",
		"| 2 | SM() | 5 | 6 | 50.00% | 25.00% | failed |  | 0.0100 | - | - |")
}
