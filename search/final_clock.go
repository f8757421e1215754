package search

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nasctl/nasctl/internal/progress"
	"github.com/nasctl/nasctl/runtime"
)

// flightClock follows the retrainings in flight, epoch by epoch, so that a
// stop can say how long finishing them may take: a final phase's
// retraining runs many epochs, and the first interrupt waits for it.
type flightClock struct {
	most int // epochs of a retraining at most
	mu   sync.Mutex
	at   map[int]*flightTime // by rank
}

type flightTime struct {
	began time.Time
	count int // epochs finished since it began
	epoch int // the last one's number in its attempt (a resumed retraining's go on)
	last  time.Time
}

func newFlightClock(most int) *flightClock {
	return &flightClock{most: most, at: map[int]*flightTime{}}
}

// start begins rank's retraining and returns its per-epoch callback (run
// on the training's goroutine).
func (c *flightClock) start(rank int) func(runtime.EpochRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &flightTime{began: time.Now()}
	c.at[rank] = t
	return func(r runtime.EpochRecord) {
		c.mu.Lock()
		defer c.mu.Unlock()
		t.count++
		t.epoch, t.last = r.Epoch, time.Now()
	}
}

// stop forgets rank's retraining, which ended.
func (c *flightClock) stop(rank int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.at, rank)
}

// left says where the retrainings in flight are at now, and how long the
// rest of their epochs take at most at their pace so far (early stopping
// may end them sooner): " (#3 at epoch 12 of at most 30, ...; at most
// about 2m10s)". A retraining with no epoch reported (none finished yet,
// or on a remote worker, whose epochs do not come back) gives no estimate.
func (c *flightClock) left(now time.Time) string {
	parts, most, known := c.look(now)
	if len(parts) == 0 {
		return ""
	}
	s := " (" + strings.Join(parts, ", ")
	switch {
	case known && most < time.Second:
		s += "; about to end"
	case known:
		s += fmt.Sprintf("; at most about %s", progress.Duration(most.Seconds()))
	}
	return s + ")"
}

// where says where the retrainings in flight are: " (#3 at epoch 12 of at
// most 30, ...)".
func (c *flightClock) where() string {
	parts, _, _ := c.look(time.Now())
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// look returns where each retraining in flight is, in rank order, and the
// longest that one of them may take from now; known is false when one
// reported no epoch.
func (c *flightClock) look(now time.Time) (parts []string, most time.Duration, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	known = true
	for _, rank := range slices.Sorted(maps.Keys(c.at)) {
		t := c.at[rank]
		if t.count == 0 {
			parts = append(parts, fmt.Sprintf("#%d with no epoch reported yet", rank))
			known = false
			continue
		}
		parts = append(parts, fmt.Sprintf("#%d at epoch %d of at most %d", rank, t.epoch, c.most))
		per := t.last.Sub(t.began) / time.Duration(t.count)
		most = max(most, per*time.Duration(max(c.most-t.epoch, 0))-now.Sub(t.last))
	}
	return parts, most, known
}
