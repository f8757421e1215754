package controller

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Replay draws its trajectories uniformly, with replacement, from the
// whole memory, the new one included. The memory holds a (reward 0) and
// then b (reward 1), each a one-step trajectory from state s, so every
// replay moves exactly one of Q(s,a) and Q(s,b) by alpha 0.1 from Q0 0.5:
//
//	Q(s,a) = 0.5 * 0.9^ka            after ka replays of a,
//	Q(s,b) = 1 - 0.5 * 0.9^(kb + 1)  after the learning of b and kb replays.
//
// The test recovers ka and kb from the values: they must add up to the 200
// replays, and each is Binomial(200, 1/2), 100 ± 7 (more than 6 sd away,
// below 40 or above 160, has a probability under 1e-9). Replaying only the
// newest trajectory gives ka = 0; never the newest, kb = 0.
func TestReplayDrawsFromTheWholeMemory(t *testing.T) {
	a := []Transition{{State: "s", Action: "a", Terminal: true}}
	b := []Transition{{State: "s", Action: "b", Terminal: true}}
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 7))
		q := NewQTable(QConfig{Alpha: 0.1, Replay: 200})
		q.Memory = []Experience{{Trajectory: a, Reward: 0}} // remembered earlier
		q.set("s", "a", 0.5)
		q.Remember(b, 1, rng)
		ka := math.Log(q.Value("s", "a")/0.5) / math.Log(0.9)
		kb := math.Log((1-q.Value("s", "b"))/0.5)/math.Log(0.9) - 1
		na, nb := int(math.Round(ka)), int(math.Round(kb))
		if math.Abs(ka-float64(na)) > 1e-6 || math.Abs(kb-float64(nb)) > 1e-6 || na+nb != 200 {
			t.Fatalf("seed %d: Q(s,a) %v and Q(s,b) %v are %.4f and %.4f replays, want whole numbers adding up to 200",
				seed, q.Value("s", "a"), q.Value("s", "b"), ka, kb)
		}
		if na < 40 || nb < 40 {
			t.Errorf("seed %d: %d replays of the earlier trajectory and %d of the new one, want each about 100 (uniform over the memory)", seed, na, nb)
		}
	}
}
