// Package agentbench measures how fast search agents find good
// architectures on problems scored without training (package problem): each
// agent runs once per seed, and after every query the best score found so far
// is recorded. It draws the result as a regret plot.
package agentbench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/controller/problem"
	"golang.org/x/sync/errgroup"
)

// Benchmark runs agents on a problem.
type Benchmark struct {
	// Problem gives the space the agents propose in, the score of every
	// architecture, the reward the agents learn from and the optimum
	// (regret = Optimum - best found).
	Problem *problem.Problem
	// Budget is the number of queries per run; it must be positive.
	Budget int
	// Seeds is the number of runs per agent, with seeds FirstSeed,
	// FirstSeed+1, ...; it must be positive. Agent i of a run gets the same
	// seeds as every other agent.
	Seeds     int
	FirstSeed uint64
	// FreeRepeats makes only the first proposal of an architecture a query:
	// a repeat is answered from a cache (the agent still observes its reward)
	// and costs nothing, as in MetaQNN, which never trains an architecture
	// twice. By default every proposal is a query, as when every sample is
	// trained.
	FreeRepeats bool
	// MaxProposals bounds the proposals of a run with FreeRepeats, so that an
	// agent that keeps repeating itself stops; its best-so-far curve then
	// stays flat to the budget. 0 means 10*Budget.
	MaxProposals int
	// Workers is the number of runs at once; 0 means GOMAXPROCS. Results do
	// not depend on it.
	Workers int
	// Progress, if not nil, is called after every finished run with the
	// number of runs done and in all; calls do not overlap.
	Progress func(done, total int)
}

// NamedAgent is an agent factory with the name reports use ("random",
// "reinforce", "metaqnn").
type NamedAgent struct {
	Name string
	New  controller.AgentFactory
}

// AgentRuns is one agent's runs.
type AgentRuns struct {
	Agent string
	// Best[s][q] is the best score of run s after q+1 queries.
	Best [][]float64
	// Proposals[s] is the number of architectures run s proposed.
	Proposals []int
	// Stalled counts the runs that hit MaxProposals before the budget
	// (only with FreeRepeats).
	Stalled int
}

// Result is every run of every agent.
type Result struct {
	Optimum float64
	Budget  int
	Agents  []AgentRuns
}

// Run runs every agent Seeds times. Runs execute in parallel on Workers
// goroutines, each with its own agent and seed, so the result is the same
// whatever the scheduling.
func (b Benchmark) Run(ctx context.Context, agents []NamedAgent) (*Result, error) {
	if b.Budget < 1 || b.Seeds < 1 {
		return nil, fmt.Errorf("benchmark: budget %d and seeds %d must be positive", b.Budget, b.Seeds)
	}
	if b.Problem == nil || b.Problem.Space == nil || b.Problem.Score == nil {
		return nil, errors.New("benchmark: no problem, space or score")
	}
	if len(agents) == 0 {
		return nil, errors.New("benchmark: no agents")
	}
	res := &Result{Optimum: b.Problem.Optimum, Budget: b.Budget}
	for _, a := range agents {
		res.Agents = append(res.Agents, AgentRuns{
			Agent:     a.Name,
			Best:      make([][]float64, b.Seeds),
			Proposals: make([]int, b.Seeds),
		})
	}
	workers := b.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	var (
		mu   sync.Mutex
		done int
	)
	for a := range agents {
		for s := range b.Seeds {
			seed := b.FirstSeed + uint64(s)
			g.Go(func() error {
				best, props, stall, err := b.runOne(gctx, agents[a], seed)
				if err != nil {
					return fmt.Errorf("benchmark: agent %s, seed %d: %w", agents[a].Name, seed, err)
				}
				mu.Lock()
				defer mu.Unlock()
				runs := &res.Agents[a]
				runs.Best[s], runs.Proposals[s] = best, props
				if stall {
					runs.Stalled++
				}
				done++
				if b.Progress != nil {
					b.Progress(done, len(agents)*b.Seeds)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// runOne runs one agent with one seed and returns its best-so-far curve.
func (b Benchmark) runOne(ctx context.Context, na NamedAgent, seed uint64) (best []float64, proposals int, stalled bool, err error) {
	space := b.Problem.Space
	agent, err := na.New(space, seed)
	if err != nil {
		return nil, 0, false, err
	}
	maxProps := b.MaxProposals
	if maxProps <= 0 {
		maxProps = 10 * b.Budget
	}
	cache := map[string]float64{}
	best = make([]float64, 0, b.Budget)
	cur := math.Inf(-1)
	for len(best) < b.Budget {
		// Every proposal: one can take seconds (a large controller), and an
		// interrupt should not wait for many.
		if err := ctx.Err(); err != nil {
			return nil, 0, false, err
		}
		if b.FreeRepeats && proposals >= maxProps {
			for len(best) < b.Budget {
				best = append(best, cur)
			}
			return best, proposals, true, nil
		}
		p, err := agent.Propose(proposals + 1)
		if err != nil {
			return nil, 0, false, err
		}
		proposals++
		key := p.Genotype.Key()
		score, seen := cache[key]
		if !seen {
			if err := controller.CheckActions(space, p.Actions); err != nil {
				return nil, 0, false, fmt.Errorf("proposal %d: %w", proposals, err)
			}
			if score, err = b.Problem.Score(p.Actions); err != nil {
				return nil, 0, false, err
			}
			cache[key] = score
		}
		if !seen || !b.FreeRepeats {
			cur = max(cur, score)
			best = append(best, cur)
		}
		if _, err := agent.Observe(proposals, p, b.Problem.RewardOf(score)); err != nil {
			return nil, 0, false, err
		}
	}
	return best, proposals, false, nil
}

// Summary is one agent's best score after a number of queries, over seeds.
type Summary struct {
	Agent   string
	Queries int
	Seeds   int
	// MeanBest and SDBest are the mean and the sample standard deviation
	// (n-1) over seeds of the best score found within Queries queries.
	MeanBest, SDBest float64
	// MeanRegret is Optimum - MeanBest; Optimal counts the runs that found the optimum.
	MeanRegret float64
	Optimal    int
}

// Summarize returns one Summary per agent and query count (queries above
// the budget are left out), agents in order, then queries in order.
func (r *Result) Summarize(queries []int) []Summary {
	var out []Summary
	for _, a := range r.Agents {
		for _, q := range queries {
			if q < 1 || q > r.Budget {
				continue
			}
			vals := make([]float64, len(a.Best))
			s := Summary{Agent: a.Agent, Queries: q, Seeds: len(a.Best)}
			for i, curve := range a.Best {
				vals[i] = curve[q-1]
				if vals[i] >= r.Optimum {
					s.Optimal++
				}
			}
			s.MeanBest, s.SDBest = meanSD(vals)
			s.MeanRegret = r.Optimum - s.MeanBest
			out = append(out, s)
		}
	}
	return out
}

// RegretCurve returns agent a's mean regret (Optimum minus best found) over
// seeds after 1, 2, ..., Budget queries, and its standard error.
func (r *Result) RegretCurve(a int) (mean, stderr []float64) {
	runs := r.Agents[a].Best
	vals := make([]float64, len(runs))
	for q := range r.Budget {
		for i, curve := range runs {
			vals[i] = r.Optimum - curve[q]
		}
		m, sd := meanSD(vals)
		mean = append(mean, m)
		stderr = append(stderr, sd/math.Sqrt(float64(len(vals))))
	}
	return mean, stderr
}

// meanSD returns the mean and the sample standard deviation (0 for one value).
func meanSD(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	m := 0.0
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	if len(xs) == 1 {
		return m, 0
	}
	ss := 0.0
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return m, math.Sqrt(ss / float64(len(xs)-1))
}
