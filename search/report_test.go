package search

import (
	"encoding/csv"
	"strings"
	"testing"
)

// The final table in CSV carries the latency the search saw, empty where it
// used none; Markdown adds the column only when some model has one.
func TestReportLatencyColumn(t *testing.T) {
	finals := []FinalResult{
		{Rank: 1, Trial: 4, Arch: "C(8,3,1) - SM()", Params: 10, MACs: 20, ValAccuracy: 0.9, TestAccuracy: 0.8, Status: StatusOK, Model: "winners/rank-01.onnx", LatencyMs: 0.0425},
		{Rank: 2, Trial: 7, Arch: "SM()", Params: 5, MACs: 6, ValAccuracy: 0.7, TestAccuracy: 0.6, Status: StatusOK, Model: "winners/rank-02.onnx"},
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
	if md := (Report{Finals: finals}).Markdown(); !strings.Contains(md, "| latency ms |") || !strings.Contains(md, "| 0.0425 |") {
		t.Errorf("markdown:\n%s", md)
	}
	if md := (Report{Finals: finals[1:]}).Markdown(); strings.Contains(md, "latency") {
		t.Errorf("latency column without latencies:\n%s", md)
	}
}
