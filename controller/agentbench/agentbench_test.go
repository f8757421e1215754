package agentbench

import (
	"context"
	"errors"
	"io"
	"math"
	"reflect"
	"sync"
	"testing"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/controller/problem"
)

// scripted proposes a fixed sequence of one-decision architectures.
type scripted struct {
	seq []int
	i   int
}

func (s *scripted) Propose(int) (controller.Proposal, error) {
	a := s.seq[s.i%len(s.seq)]
	s.i++
	return controller.Proposal{Genotype: controller.Decisions{a}, Actions: []int{a}}, nil
}

func (s *scripted) Observe(int, controller.Proposal, float64) (controller.Learned, error) {
	return controller.Learned{}, nil
}

func (s *scripted) Forget(int, controller.Proposal) error { return nil }

func (s *scripted) Save(io.Writer) error { return nil }

// cancelling is an agent that calls propose before every proposal.
type cancelling struct {
	*scripted
	propose func()
}

func (c cancelling) Propose(trial int) (controller.Proposal, error) {
	c.propose()
	return c.scripted.Propose(trial)
}

func scriptedBench(free bool) (Benchmark, []NamedAgent) {
	scripts := map[uint64][]int{1: {0, 2, 2, 1, 3}, 2: {1, 1, 0, 3, 2}}
	b := Benchmark{
		Problem: &problem.Problem{
			Space:   controller.UniformSpace{N: 1, Type: controller.DecisionType{Name: "x", Choices: 4}},
			Score:   func(a []int) (float64, error) { return float64(a[0]), nil },
			Optimum: 3,
		},
		Budget:      4,
		Seeds:       2,
		FirstSeed:   1,
		FreeRepeats: free,
	}
	agents := []NamedAgent{{Name: "script", New: func(_ controller.Space, seed uint64) (controller.Agent, error) {
		return &scripted{seq: scripts[seed]}, nil
	}}}
	return b, agents
}

// Summaries by hand. Every proposal a query: seed 1 proposes 0,2,2,1 -> best
// 0,2,2,2; seed 2 proposes 1,1,0,3 -> best 1,1,1,3. After 2 queries: 2 and 1,
// mean 1.5, sample SD sqrt((0.25+0.25)/1) = 0.7071, regret 3-1.5 = 1.5. After
// 4: 2 and 3, mean 2.5, SD 0.7071, one run optimal.
// Free repeats: seed 1 queries 0,2,1,3 (the second 2 is free) -> best
// 0,2,2,3; seed 2 queries 1,0,3,2 -> best 1,1,3,3; after 4: mean 3, SD 0.
func TestBenchmarkSummaries(t *testing.T) {
	sd := math.Sqrt(0.5)
	for _, tc := range []struct {
		free  bool
		want  []Summary
		props []int
	}{
		{false, []Summary{
			{Agent: "script", Queries: 2, Seeds: 2, MeanBest: 1.5, SDBest: sd, MeanRegret: 1.5},
			{Agent: "script", Queries: 4, Seeds: 2, MeanBest: 2.5, SDBest: sd, MeanRegret: 0.5, Optimal: 1},
		}, []int{4, 4}},
		{true, []Summary{
			{Agent: "script", Queries: 2, Seeds: 2, MeanBest: 1.5, SDBest: sd, MeanRegret: 1.5},
			{Agent: "script", Queries: 4, Seeds: 2, MeanBest: 3, SDBest: 0, MeanRegret: 0, Optimal: 2},
		}, []int{5, 5}},
	} {
		b, agents := scriptedBench(tc.free)
		res, err := b.Run(context.Background(), agents)
		if err != nil {
			t.Fatal(err)
		}
		got := res.Summarize([]int{2, 4, 5})
		if len(got) != len(tc.want) {
			t.Fatalf("free=%v: %d summaries, want %d", tc.free, len(got), len(tc.want))
		}
		for i := range got {
			g, w := got[i], tc.want[i]
			if g.Agent != w.Agent || g.Queries != w.Queries || g.Seeds != w.Seeds || g.Optimal != w.Optimal ||
				math.Abs(g.MeanBest-w.MeanBest) > 1e-12 || math.Abs(g.SDBest-w.SDBest) > 1e-12 || math.Abs(g.MeanRegret-w.MeanRegret) > 1e-12 {
				t.Errorf("free=%v: summary %d = %+v, want %+v", tc.free, i, g, w)
			}
		}
		if !reflect.DeepEqual(res.Agents[0].Proposals, tc.props) {
			t.Errorf("free=%v: proposals %v, want %v", tc.free, res.Agents[0].Proposals, tc.props)
		}
		mean, _ := res.RegretCurve(0)
		if len(mean) != 4 || mean[0] != 3-0.5 {
			t.Errorf("free=%v: regret curve %v", tc.free, mean)
		}
	}
}

// With free repeats an agent that only repeats itself stops at MaxProposals
// with a flat curve.
func TestBenchmarkStall(t *testing.T) {
	b, _ := scriptedBench(true)
	b.MaxProposals = 3
	agents := []NamedAgent{{Name: "stuck", New: func(controller.Space, uint64) (controller.Agent, error) { return &scripted{seq: []int{1}}, nil }}}
	res, err := b.Run(context.Background(), agents)
	if err != nil {
		t.Fatal(err)
	}
	if res.Agents[0].Stalled != 2 || !reflect.DeepEqual(res.Agents[0].Best[0], []float64{1, 1, 1, 1}) {
		t.Errorf("stalled %d, curve %v", res.Agents[0].Stalled, res.Agents[0].Best[0])
	}
}

// Results do not depend on the number of workers; progress is reported once
// per run.
func TestBenchmarkReproducible(t *testing.T) {
	b := Benchmark{
		Problem: &problem.Problem{
			Space:   controller.UniformSpace{N: 4, Type: controller.DecisionType{Name: "x", Choices: 3}},
			Score:   func(a []int) (float64, error) { return float64(a[0] + a[1] + a[2] + a[3]), nil },
			Optimum: 8,
		},
		Budget:    30,
		Seeds:     5,
		FirstSeed: 11,
	}
	agents := []NamedAgent{
		{Name: "random", New: controller.NewRandomAgent},
		{Name: "reinforce", New: controller.ReinforceFactory(controller.ReinforceConfig{Hidden: 8, Layers: 1, LearningRate: 0.01})},
	}
	var results []*Result
	for _, w := range []int{1, 3} {
		b.Workers = w
		var mu sync.Mutex
		var calls []int
		b.Progress = func(done, total int) {
			mu.Lock()
			calls = append(calls, done)
			mu.Unlock()
			if total != 10 {
				t.Errorf("total %d, want 10", total)
			}
		}
		res, err := b.Run(context.Background(), agents)
		if err != nil {
			t.Fatal(err)
		}
		if len(calls) != 10 || calls[9] != 10 {
			t.Errorf("workers %d: progress calls %v", w, calls)
		}
		results = append(results, res)
	}
	if !reflect.DeepEqual(results[0], results[1]) {
		t.Error("results differ between 1 and 3 workers")
	}
	if reflect.DeepEqual(results[0].Agents[0].Best, results[0].Agents[1].Best) {
		t.Error("random and reinforce gave identical curves")
	}
}

func TestBenchmarkErrors(t *testing.T) {
	b, agents := scriptedBench(false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Run(ctx, agents); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// An interrupt stops a run at its next proposal, however slow proposals
	// are: the scripted agent cancels at its third, and makes no fourth.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	made := 0
	b.Budget, b.Seeds, b.Workers = 100, 1, 1
	slow := []NamedAgent{{Name: "slow", New: func(controller.Space, uint64) (controller.Agent, error) {
		return cancelling{&scripted{seq: []int{0, 1}}, func() {
			mu.Lock()
			defer mu.Unlock()
			if made++; made == 3 {
				cancel()
			}
		}}, nil
	}}}
	if _, err := b.Run(ctx, slow); !errors.Is(err, context.Canceled) || made != 3 {
		t.Errorf("cancelled at the third proposal: %v after %d proposals, want 3", err, made)
	}
	b, agents = scriptedBench(false)
	b.Problem.Score = func([]int) (float64, error) { return 0, errors.New("boom") }
	if _, err := b.Run(context.Background(), agents); err == nil || err.Error() != "benchmark: agent script, seed 1: boom" && err.Error() != "benchmark: agent script, seed 2: boom" {
		t.Errorf("score error: %v", err)
	}
	b, _ = scriptedBench(false)
	bad := []NamedAgent{{Name: "bad", New: func(controller.Space, uint64) (controller.Agent, error) { return &scripted{seq: []int{7}}, nil }}}
	if _, err := b.Run(context.Background(), bad); err == nil {
		t.Error("an out-of-range proposal was scored")
	}
	b.Budget = 0
	if _, err := b.Run(context.Background(), agents); err == nil {
		t.Error("budget 0 accepted")
	}
}
