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

// Regularized evolution ages its members out: the population is the
// Population members observed last, not the best ever. With Population =
// Sample = 2 a tournament draws the whole population and its parent is the
// better of the last two. Observing A (0.9), B (0.1), then C (0.2) leaves B
// and C: the parent of every later child is C, and none is A, however good
// A was. A and C are far apart, so every child's nearest parent tells which
// it mutated: one layer replaced, inserted or removed from C (the edit
// distance, computed independently by layerDistance; a mutation that also
// drops later layers the rules no longer allow is two or more edits, but
// never nearer A than C).
func TestEvolutionAgesOutTheOldest(t *testing.T) {
	in := genotype.Input{Height: 32, Width: 32, Channels: 1}
	archs := map[string]genotype.Arch{
		"A": genotype.MustParse("C(512,5,1) - C(512,5,1) - P(2,2) - C(256,5,1) - C(256,5,1) - P(3,3) - C(128,1,1) - GAP()"),
		"B": genotype.MustParse("C(128,3,1) - C(128,3,1) - C(128,3,1) - SM()"),
		"C": genotype.MustParse("C(64,3,1) - SM()"),
	}
	for name, a := range archs {
		if err := genotype.Study.Validate(a, in); err != nil {
			t.Fatalf("%s = %s: %v", name, a, err)
		}
	}
	if d := layerDistance(archs["A"], archs["C"]); d < 7 {
		t.Fatalf("A and C are %d edits apart: too near to tell their children apart", d)
	}
	e, err := NewEvolution(genotype.Study, in, EvolutionConfig{Population: 2, Sample: 2}, QConfig{}, ScheduleStudy, 7)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range []struct {
		name   string
		reward float64
	}{{"A", 0.9}, {"B", 0.1}, {"C", 0.2}} {
		if _, err := e.Observe(i+1, Proposal{Genotype: archs[o.name], Epsilon: 1}, o.reward); err != nil {
			t.Fatal(err)
		}
	}
	oneEdit := 0
	for trial := 4; trial < 24; trial++ {
		p, err := e.Propose(trial)
		if err != nil {
			t.Fatal(err)
		}
		child := p.Genotype.(genotype.Arch)
		dc, da := layerDistance(child, archs["C"]), layerDistance(child, archs["A"])
		if p.Epsilon != 0 || dc >= da {
			t.Errorf("trial %d: %s (epsilon %v) is %d edits from C and %d from A: want a mutation of C, A aged out", trial, child, p.Epsilon, dc, da)
		}
		if dc == 1 {
			oneEdit++
		}
	}
	// Seed 7 gives 18 of 20 one edit from C; the floor leaves room for other
	// draws of the same rule, not for children of anything but C.
	if oneEdit < 15 {
		t.Errorf("%d of 20 children one edit from C", oneEdit)
	}
}

// The same for SpaceEvolution over NASNet cells (CellSpace, whose valid
// choices never depend on earlier ones, so a mutation changes exactly one
// decision): after A (0.9), B (0.1) and C (0.2) with Population = Sample = 2,
// every proposal differs from C in exactly one decision. A differs from C
// in all 20, so a mutation of A would differ from C in at least 19.
func TestSpaceEvolutionAgesOutTheOldest(t *testing.T) {
	space := CellSpace{B: 2}
	// Per block: input1, input2, op1, op2, combine; block 0's inputs are
	// 0..1, block 1's 0..2.
	vectors := map[string][]int{
		"A": {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		"B": {0, 1, 2, 2, 0, 2, 2, 2, 2, 0, 1, 0, 2, 2, 0, 2, 0, 2, 2, 1},
		"C": {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	diff := func(a, b []int) int {
		n := 0
		for i := range a {
			if a[i] != b[i] {
				n++
			}
		}
		return n
	}
	agent, err := EvolutionFactory(EvolutionConfig{Population: 2, Sample: 2})(space, 7)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range []struct {
		name   string
		reward float64
	}{{"A", 0.9}, {"B", 0.1}, {"C", 0.2}} {
		p, err := propose(space, vectors[o.name])
		if err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		if _, err := agent.Observe(i+1, p, o.reward); err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
	}
	for trial := 4; trial < 24; trial++ {
		p, err := agent.Propose(trial)
		if err != nil {
			t.Fatal(err)
		}
		if dc, da := diff(p.Actions, vectors["C"]), diff(p.Actions, vectors["A"]); dc != 1 || p.Epsilon != 0 {
			t.Errorf("trial %d: %v (epsilon %v) differs from C in %d decisions and from A in %d: want one from C, A aged out", trial, p.Actions, p.Epsilon, dc, da)
		}
	}
}
