package search

import (
	"encoding/csv"
	"slices"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/search/rundir"
)

// The final table in CSV carries the latency the search saw, empty where it
// used none; Markdown adds the column only when some model has one.
func TestReportLatencyColumn(t *testing.T) {
	finals := []rundir.FinalResult{
		{Rank: 1, Trial: 4, Arch: "C(8,3,1) - SM()", Params: 10, MACs: 20, ValAccuracy: 0.9, TestAccuracy: 0.8, Status: rundir.StatusOK, Model: "winners/rank-01.onnx", LatencyMs: 0.0425},
		{Rank: 2, Trial: 7, Arch: "SM()", Params: 5, MACs: 6, ValAccuracy: 0.7, TestAccuracy: 0.6, Status: rundir.StatusOK, Model: "winners/rank-02.onnx"},
	}
	b, err := Report{Finals: finals}.CSV()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0][10] != "latency_ms" || rows[1][10] != "0.0425" || rows[2][10] != "" {
		t.Fatalf("csv %q", rows)
	}
	if md := (Report{Kind: KindMetaQNN, Finals: finals}).Markdown(); !strings.Contains(md, "| latency ms |") || !strings.Contains(md, "| 0.0425 |") {
		t.Errorf("markdown:\n%s", md)
	}
	if md := (Report{Kind: KindMetaQNN, Finals: finals[1:]}).Markdown(); strings.Contains(md, "latency") {
		t.Errorf("latency column without latencies:\n%s", md)
	}
}

// The best final model is chosen by the run's reward, and the report says
// by what: with T = 2 ms, MnasNet's reward prefers 0.88 at 1 ms (0.924) to
// 0.90 at 4 ms (0.857); the constraint reward, whose limits were applied
// before training, ranks by accuracy though the finals carry latencies.
func TestReportBestBy(t *testing.T) {
	finals := []rundir.FinalResult{
		{Rank: 1, Trial: 4, Arch: "C(8,3,1) - SM()", ValAccuracy: 0.90, TestAccuracy: 0.8, Status: rundir.StatusOK, Model: "winners/rank-01.onnx", LatencyMs: 4},
		{Rank: 2, Trial: 7, Arch: "SM()", ValAccuracy: 0.88, TestAccuracy: 0.7, Status: rundir.StatusOK, Model: "winners/rank-02.onnx", LatencyMs: 1},
	}
	for _, tc := range []struct {
		reward RewardSettings
		rank   int
		label  string
	}{
		{RewardSettings{Mode: RewardMnasNet, TargetMs: 2}, 2, "(by MnasNet's reward of validation accuracy and latency): rank 2"},
		{RewardSettings{Mode: RewardConstraint, MaxLatencyMs: 5}, 1, "(by validation accuracy): rank 1"},
		{RewardSettings{}, 1, "(by validation accuracy): rank 1"},
	} {
		cfg := Config{Kind: KindMetaQNN, Name: "run", Reward: tc.reward}
		r := BuildReport(cfg, "", nil, nil, slices.Clone(finals), 0.5)
		if r.Best == nil || r.Best.Rank != tc.rank {
			t.Errorf("%s: best %+v, want rank %d", tc.reward.Mode, r.Best, tc.rank)
		}
		if md := r.Markdown(); !strings.Contains(md, tc.label) {
			t.Errorf("%s: markdown lacks %q:\n%s", tc.reward.Mode, tc.label, md)
		}
	}
}
