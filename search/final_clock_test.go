package search

import (
	"testing"

	"github.com/nasctl/nasctl/runtime"
)

// A stop in the final phase says where each local retraining in flight is,
// in rank order: the last epoch it reported (a resumed one's number goes
// on), or that it is in its first.
func TestFlightClockWhere(t *testing.T) {
	c := newFlightClock(30)
	if got := c.where(); got != "" {
		t.Errorf("nothing in flight: %q", got)
	}
	tick := c.start(5)
	tick(runtime.EpochRecord{Epoch: 13}) // resumed after epoch 12
	tick(runtime.EpochRecord{Epoch: 14})
	c.start(3)
	if got, want := c.where(), " (#3 in its first epoch, #5 at epoch 14 of at most 30)"; got != want {
		t.Errorf("where: %q, want %q", got, want)
	}
	c.stop(5)
	if got, want := c.where(), " (#3 in its first epoch)"; got != want {
		t.Errorf("after #5 ended: %q, want %q", got, want)
	}
}
