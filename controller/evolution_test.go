package controller

import (
	"math/rand/v2"
	"testing"

	"github.com/nasctl/nasctl/genotype"
)

// layerDistance is the edit distance between two layer sequences (one
// layer replaced, inserted or removed per step).
func layerDistance(a, b genotype.Arch) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev = cur
	}
	return prev[len(b)]
}

// Mutations of 2,000 random architectures of the study's space are valid
// in it, never the parent, and mostly one edit away: the rest lost a later
// layer the rules no longer allowed (a pool after the new pool, a layer
// past the depth limit).
func TestMutationsValidAndClose(t *testing.T) {
	in := genotype.Input{Height: 32, Width: 32, Channels: 1}
	e, err := NewEvolution(genotype.Study, in, EvolutionConfig{}, QConfig{}, ScheduleStudy, 1)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	near := 0
	const n = 2000
	for range n {
		parent, _ := e.base.Sample(1, rng)
		child := e.mutate(parent, rng)
		if err := genotype.Study.Validate(child, in); err != nil {
			t.Fatalf("mutation of %s: %s is invalid: %v", parent, child, err)
		}
		if child.String() == parent.String() {
			t.Fatalf("mutation of %s returned the parent", parent)
		}
		if layerDistance(parent, child) == 1 {
			near++
		}
	}
	t.Logf("%d of %d mutations one edit away", near, n)
	if near < n*3/4 {
		t.Errorf("only %d of %d mutations are one edit away from the parent", near, n)
	}
}

// Evolution's first Population trials are the random baseline's (same seed,
// same redraws), and after them it climbs: on a reward that counts 64-filter
// convolutions, its last 60 trials score well above random search's.
func TestEvolutionStartsRandomThenClimbs(t *testing.T) {
	in := genotype.Input{Height: 32, Width: 32, Channels: 1}
	schedule := EpsilonSchedule{{1, 30}, {0.1, 120}}
	reward := func(a genotype.Arch) float64 {
		r := 0.0
		for _, l := range a {
			if l.Kind == genotype.Conv && l.Filters == 64 {
				r += 0.1
			}
		}
		return r
	}
	run := func(agent Agent) (keys []string, last float64) {
		for trial := 1; trial <= schedule.Total(); trial++ {
			p, err := agent.Propose(trial)
			if err != nil {
				t.Fatal(err)
			}
			arch := p.Genotype.(genotype.Arch)
			keys = append(keys, arch.String())
			if trial > schedule.Total()-60 {
				last += reward(arch) / 60
			}
			if _, err := agent.Observe(trial, p, reward(arch)); err != nil {
				t.Fatal(err)
			}
		}
		return keys, last
	}
	evo, err := NewEvolution(genotype.Study, in, EvolutionConfig{}, QConfig{Redraw: 20}, schedule, 5)
	if err != nil {
		t.Fatal(err)
	}
	if c := evo.Config(); c.Population != 30 || c.Sample != 5 {
		t.Errorf("defaults %+v, want population 30 (the first phase), sample 5", c)
	}
	random, err := NewMetaQNN(genotype.Study, in, QConfig{Redraw: 20}, schedule, 5)
	if err != nil {
		t.Fatal(err)
	}
	random.Random = true
	ek, elast := run(evo)
	rk, rlast := run(random)
	for i := range 30 {
		if ek[i] != rk[i] {
			t.Fatalf("trial %d: evolution %s, random %s", i+1, ek[i], rk[i])
		}
	}
	t.Logf("mean reward of the last 60 trials: evolution %.3f, random %.3f", elast, rlast)
	if elast < rlast+0.1 {
		t.Errorf("evolution's last 60 trials average %.3f, random search's %.3f", elast, rlast)
	}
}
