package cluster

import (
	"slices"
	"testing"
	"time"

	"github.com/nasctl/nasctl/runtime"
)

// ByRun on jobs listed as Queue lists them (device by device, oldest
// first within a device), worked by hand. Run "a" has jobs on both
// devices: trials 5 (taken, minute 4) and 2 (waiting, final, minute 1) on
// the CPU, and trial 9 on CUDA (minute 2); run "b" has trial 3 on the CPU
// (waiting, minute 3). A run's jobs on each device are one row, its trials
// ascending (2, 5, not the listing's 5, 2), dated by its oldest job (trial
// 2's minute 1, though trial 5 comes first), and the rows go oldest first:
// a on the CPU (minute 1), a on CUDA (2), then b (3).
func TestByRun(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	jobs := []Queued{
		{Run: "a", Trial: 5, Device: runtime.CPU, Taken: true, Published: at(4)},
		{Run: "b", Trial: 3, Device: runtime.CPU, Published: at(3)},
		{Run: "a", Trial: 2, Device: runtime.CPU, Final: true, Published: at(1)},
		{Run: "a", Trial: 9, Device: runtime.CUDA, Published: at(2)},
	}
	want := []QueuedRun{
		{Run: "a", Device: runtime.CPU, Waiting: 1, Taken: 1, Final: 1, Trials: []int{2, 5}, Oldest: at(1)},
		{Run: "a", Device: runtime.CUDA, Waiting: 1, Trials: []int{9}, Oldest: at(2)},
		{Run: "b", Device: runtime.CPU, Waiting: 1, Trials: []int{3}, Oldest: at(3)},
	}
	got := ByRun(jobs)
	if len(got) != len(want) {
		t.Fatalf("by run: %+v\nwant %+v", got, want)
	}
	for i, w := range want {
		g := got[i]
		if g.Run != w.Run || g.Device != w.Device || g.Waiting != w.Waiting || g.Taken != w.Taken || g.Final != w.Final ||
			!slices.Equal(g.Trials, w.Trials) || !g.Oldest.Equal(w.Oldest) {
			t.Errorf("row %d: %+v, want %+v", i, g, w)
		}
	}
}
