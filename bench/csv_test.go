package bench

import (
	"path/filepath"
	"testing"
)

// What WriteCSV writes, ReadCSV reads back: the fields the CSV holds, the
// latencies to its four decimals.
func TestCSVRoundTrip(t *testing.T) {
	want := syntheticResults()
	want[0].Arch, want[0].MACs, want[0].AccuracySource = "C(8,3,1) - SM()", 1234, "metadata: test accuracy"
	path := filepath.Join(t.TempDir(), "bench.csv")
	if err := WriteCSV(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCSV(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d results read, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Model != w.Model || g.Arch != w.Arch || g.Params != w.Params || g.MACs != w.MACs || g.Pareto != w.Pareto ||
			g.LatencyMs.P50 != w.LatencyMs.P50 || g.AccuracySource != w.AccuracySource || (g.Accuracy == nil) != (w.Accuracy == nil) {
			t.Errorf("result %d: read %+v, wrote %+v", i, g, w)
			continue
		}
		if w.Accuracy != nil && *g.Accuracy != *w.Accuracy {
			t.Errorf("result %d: accuracy %v, wrote %v", i, *g.Accuracy, *w.Accuracy)
		}
	}
}
