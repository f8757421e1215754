package search

import (
	"testing"
	"time"

	"github.com/nasctl/nasctl/runtime"
)

// A stop in the final phase says where each retraining in flight is and how
// long the rest of its epochs take at most at its pace: the slowest's.
func TestFlightClockLeft(t *testing.T) {
	c := newFlightClock(30)
	if got := c.left(time.Now()); got != "" {
		t.Errorf("nothing in flight: %q", got)
	}
	tick := c.start(3)
	tick(runtime.EpochRecord{Epoch: 13}) // a resumed retraining: its epochs go on
	tick(runtime.EpochRecord{Epoch: 14})
	c.start(5)
	if e := c.at[3]; e.epoch != 14 || e.count != 2 {
		t.Errorf("two epochs reported, 13 and 14: epoch %d, count %d", e.epoch, e.count)
	}
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	c.at[3] = &flightTime{began: t0.Add(200 * time.Second), count: 4, epoch: 4, last: t0.Add(296 * time.Second)} // 24 s an epoch, 26 to go
	c.at[5] = &flightTime{began: t0, count: 8, epoch: 28, last: t0.Add(80 * time.Second)}                        // resumed at 20: 10 s an epoch, 2 to go
	now := t0.Add(300 * time.Second)
	if got, want := c.left(now), " (#3 at epoch 4 of at most 30, #5 at epoch 28 of at most 30; at most about 10m20s)"; got != want {
		t.Errorf("left: %q, want %q", got, want)
	}
	c.stop(3)
	if got, want := c.left(now), " (#5 at epoch 28 of at most 30; about to end)"; got != want {
		t.Errorf("left after #3 ended: %q, want %q", got, want)
	}
	c.start(7) // no epoch yet: no estimate
	if got, want := c.left(now), " (#5 at epoch 28 of at most 30, #7 with no epoch reported yet)"; got != want {
		t.Errorf("left with one not begun: %q, want %q", got, want)
	}
}
