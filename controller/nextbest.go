package controller

import (
	"container/heap"
	"math/rand/v2"
	"slices"
)

// nextBest looks for a network not in seen, starting from w, a greedy
// network that is. Its candidates are departures: a prefix of a checked
// network followed by another action than the one it took there, ranked by
// Q(s, a) of that action, highest first (across steps), and completed
// greedily (ties broken by rng). A completion that is in seen adds its own
// departures after the departing step. The candidates partition the
// networks not yet checked, as in Lawler's k-best paths, so none comes up
// twice; the ranking is by the departing action's value, not by the whole
// network's. It checks at most limit completions and reports whether one
// was new; no layer of what it returns is drawn at random.
func (m *MetaQNN) nextBest(w walked, seen map[string]bool, rng *rand.Rand, limit int) (walked, bool) {
	start := layerNames(m.Space.Actions(m.Space.Start(m.Input)))
	var q departures
	depart := func(w walked, from int) {
		for j := from; j < len(w.traj); j++ {
			names := start
			if j > 0 {
				names = w.traj[j-1].NextActions
			}
			t := w.traj[j]
			base := make([]string, j, j+1)
			for k := range j {
				base[k] = w.traj[k].Action
			}
			for _, a := range names {
				if a == t.Action {
					continue
				}
				prefix := append(slices.Clone(base), a)
				heap.Push(&q, departure{prefix: prefix, value: m.Table.Value(t.State, a), seq: q.seq})
				q.seq++
			}
		}
	}
	depart(w, 0)
	for range limit {
		if q.Len() == 0 {
			break
		}
		d := heap.Pop(&q).(departure)
		c := m.walk(func(i int, s string, names []string) (string, bool) {
			if i < len(d.prefix) {
				return d.prefix[i], false
			}
			return m.Table.draw(s, names, 0, rng)
		})
		if !seen[trajectoryKey(c.traj)] {
			return c, true
		}
		depart(c, len(d.prefix))
	}
	return w, false
}

// departure is a prefix of actions whose last one departs from a network
// already checked, valued at Q(s, a) of that last action.
type departure struct {
	prefix []string
	value  float64
	seq    int
}

// departures is a max-heap of departures by value, first pushed first
// among equals.
type departures struct {
	d   []departure
	seq int
}

func (h departures) Len() int { return len(h.d) }
func (h departures) Less(i, j int) bool {
	if h.d[i].value != h.d[j].value {
		return h.d[i].value > h.d[j].value
	}
	return h.d[i].seq < h.d[j].seq
}
func (h departures) Swap(i, j int) { h.d[i], h.d[j] = h.d[j], h.d[i] }
func (h *departures) Push(x any)   { h.d = append(h.d, x.(departure)) }
func (h *departures) Pop() any {
	x := h.d[len(h.d)-1]
	h.d = h.d[:len(h.d)-1]
	return x
}
