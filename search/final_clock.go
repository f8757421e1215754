package search

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/nasctl/nasctl/runtime"
)

// flightClock follows the local retrainings in flight, epoch by epoch, so
// that a stop can say where each is as it pauses them (remote workers
// report no epochs here).
type flightClock struct {
	most int // epochs of a retraining at most
	mu   sync.Mutex
	at   map[int]int // rank: the number of its last epoch reported, 0 for none
}

func newFlightClock(most int) *flightClock {
	return &flightClock{most: most, at: map[int]int{}}
}

// start begins rank's retraining and returns its per-epoch callback (run
// on the training's goroutine).
func (c *flightClock) start(rank int) func(runtime.EpochRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at[rank] = 0
	return func(r runtime.EpochRecord) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.at[rank] = r.Epoch // in its attempt: a resumed retraining's go on
	}
}

// stop forgets rank's retraining, which ended.
func (c *flightClock) stop(rank int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.at, rank)
}

// where says where the retrainings in flight are, in rank order: " (#3 at
// epoch 12 of at most 30, #4 in its first epoch)"; "" when none is.
func (c *flightClock) where() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, rank := range slices.Sorted(maps.Keys(c.at)) {
		if e := c.at[rank]; e > 0 {
			parts = append(parts, fmt.Sprintf("#%d at epoch %d of at most %d", rank, e, c.most))
		} else {
			parts = append(parts, fmt.Sprintf("#%d in its first epoch", rank))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
