package controller

import (
	"math/rand/v2"
	"testing"

	"github.com/nasctl/nasctl/genotype"
)

// From its own samples alone, under the study's epsilon schedule, the agent
// learns what a reward landscape favours: networks whose first layer is a
// 1x1 convolution earn 0.9, every other one 0.3. Its greedy network starts
// with a 1x1 convolution for each of five seeds; an agent that learnt
// nothing would pick that first layer by chance with the share of 1x1
// convolutions among the first layers (checked below to be at most a third),
// for all five seeds with probability under 1%.
func TestMetaQNNLearnsFromItsSamples(t *testing.T) {
	space := genotype.Study
	in := genotype.Input{Height: 8, Width: 8, Channels: 1}
	first := space.Actions(space.Start(in))
	ones := 0
	for _, l := range first {
		if l.Kind == genotype.Conv && l.Kernel == 1 {
			ones++
		}
	}
	if ones == 0 || 3*ones > len(first) {
		t.Fatalf("%d of %d first layers are 1x1 convolutions", ones, len(first))
	}
	reward := func(a genotype.Arch) float64 {
		if a[0].Kind == genotype.Conv && a[0].Kernel == 1 {
			return 0.9
		}
		return 0.3
	}
	for seed := range uint64(5) {
		m, err := NewMetaQNN(space, in, QConfig{Alpha: 0.1}, ScheduleStudy, seed)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, 7))
		for i := range ScheduleStudy.Total() {
			eps, _ := ScheduleStudy.At(i)
			arch, traj := m.Sample(eps, rng)
			m.Table.Remember(traj, reward(arch), rng)
		}
		if greedy, _ := m.Sample(0, rng); reward(greedy) != 0.9 {
			t.Errorf("seed %d: greedy network %s", seed, greedy)
		}
	}
}
