package controller

import (
	"bytes"
	"io"
	"testing"

	"github.com/nasctl/nasctl/genotype"
)

// agentKind makes fresh agents of one implementation and restores saved ones.
type agentKind struct {
	name  string
	fresh func() (Agent, error)
	load  func(r io.Reader) (Agent, error)
}

func agentKinds() []agentKind {
	cells := CellSpace{B: 2}
	uniform := UniformSpace{N: 4, Type: DecisionType{Name: "x", Choices: 3}}
	qfactory := QLearningFactory(QConfig{Alpha: 0.3, Replay: 4}, EpsilonSchedule{{1, 10}, {0.3, 40}})
	rcfg := ReinforceConfig{Hidden: 6, Layers: 2, BatchSize: 3, EntropyWeight: 0.01, ClipNorm: 1, LearningRate: 0.01}
	study := ReinforceStudy
	study.Hidden, study.Layers = 5, 1
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	newMetaQNN := func() (*MetaQNN, error) {
		return NewMetaQNN(genotype.Study, in, QConfig{Alpha: 0.1, Replay: 4}, EpsilonSchedule{{1, 10}, {0.2, 40}}, 7)
	}
	newNextBest := func() (*MetaQNN, error) {
		return NewMetaQNN(genotype.Study, in, QConfig{Alpha: 0.3, Replay: 4, Target: TargetReturn, Redraw: 5, NextBest: 50}, EpsilonSchedule{{1, 10}, {0.05, 40}}, 7)
	}
	newEvolution := func() (*Evolution, error) {
		return NewEvolution(genotype.Study, in, EvolutionConfig{Sample: 3}, QConfig{Redraw: 5}, EpsilonSchedule{{1, 10}, {0.2, 40}}, 7)
	}
	return []agentKind{
		{"metaqnn", func() (Agent, error) { return newMetaQNN() },
			func(r io.Reader) (Agent, error) {
				m, err := newMetaQNN()
				if err != nil {
					return nil, err
				}
				return m, m.Load(r)
			}},
		{"metaqnn-next-best", func() (Agent, error) { return newNextBest() },
			func(r io.Reader) (Agent, error) {
				m, err := newNextBest()
				if err != nil {
					return nil, err
				}
				return m, m.Load(r)
			}},
		{"reinforce", func() (Agent, error) { return ReinforceFactory(rcfg)(cells, 3) },
			func(r io.Reader) (Agent, error) { return LoadReinforce(r, cells) }},
		{"reinforce-study", func() (Agent, error) { return ReinforceFactory(study)(cells, 42) },
			func(r io.Reader) (Agent, error) { return LoadReinforce(r, cells) }},
		{"qlearning", func() (Agent, error) { return qfactory(uniform, 5) },
			func(r io.Reader) (Agent, error) {
				a, err := qfactory(uniform, 99)
				if err != nil {
					return nil, err
				}
				return a, a.(*QAgent).Load(r)
			}},
		{"evolution", func() (Agent, error) { return newEvolution() },
			func(r io.Reader) (Agent, error) {
				e, err := newEvolution()
				if err != nil {
					return nil, err
				}
				return e, e.Load(r)
			}},
		{"evolution-cells", func() (Agent, error) { return EvolutionFactory(EvolutionConfig{Population: 8, Sample: 3})(cells, 6) },
			func(r io.Reader) (Agent, error) {
				a, err := EvolutionFactory(EvolutionConfig{Population: 8, Sample: 3})(cells, 66)
				if err != nil {
					return nil, err
				}
				return a, a.(*SpaceEvolution).Load(r)
			}},
		{"random", func() (Agent, error) { return NewRandomAgent(cells, 4) },
			func(r io.Reader) (Agent, error) { return LoadRandomAgent(r, cells) }},
	}
}

// contractReward is a deterministic reward of a proposal.
func contractReward(p Proposal) float64 {
	k := p.Genotype.Key()
	sum := 0
	for i := range len(k) {
		sum += int(k[i]) * (i + 1)
	}
	return 0.3 + 0.7*float64(sum%101)/100
}

// drive runs trials from..to of an agent the way the search engine does with
// a sampling lag of 3: trial i is proposed after trials 1..i-3 are learned,
// every fifth trial is forgotten (its evaluation failed). out is the
// proposals in flight, oldest first; it returns them after trial to is
// learned, together with every key proposed.
func drive(t *testing.T, a Agent, from, to int, out []Proposal) ([]Proposal, []string) {
	t.Helper()
	const lag = 3
	var keys []string
	next := from + len(out)
	for learn := from; learn <= to; learn++ {
		for ; next < learn+lag; next++ {
			p, err := a.Propose(next)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, p.Genotype.Key())
			out = append(out, p)
		}
		p := out[0]
		out = out[1:]
		if learn%5 == 0 {
			if err := a.Forget(learn, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := a.Observe(learn, p, contractReward(p)); err != nil {
			t.Fatal(err)
		}
	}
	return out, keys
}

// Every agent saved in the middle of a run, with proposals in flight (and,
// for the controller, an unfinished batch), and restored continues exactly
// as the uninterrupted agent: the same proposals and, at the end, the same
// saved state byte for byte. The controller runs with both baselines, the
// study's skip rule, clipping and an entropy bonus.
func TestAgentsSaveRestoreExactly(t *testing.T) {
	for _, k := range agentKinds() {
		t.Run(k.name, func(t *testing.T) {
			ref, err := k.fresh()
			if err != nil {
				t.Fatal(err)
			}
			_, want := drive(t, ref, 1, 40, nil)

			a, err := k.fresh()
			if err != nil {
				t.Fatal(err)
			}
			inFlight, got := drive(t, a, 1, 17, nil)
			if r, ok := a.(*Reinforce); ok && (r.cfg.BatchSize > 1 && len(r.batch) == 0 || len(r.pending) == 0) {
				t.Fatalf("the save should happen mid-batch with proposals pending (batch %d, pending %d)", len(r.batch), len(r.pending))
			}
			var buf bytes.Buffer
			if err := a.Save(&buf); err != nil {
				t.Fatal(err)
			}
			b, err := k.load(&buf)
			if err != nil {
				t.Fatal(err)
			}
			_, more := drive(t, b, 18, 40, inFlight)
			got = append(got, more...)
			if len(got) != len(want) {
				t.Fatalf("%d proposals, uninterrupted %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("proposal %d: %s, uninterrupted %s", i+1, got[i], want[i])
				}
			}
			var s1, s2 bytes.Buffer
			if err := ref.Save(&s1); err != nil {
				t.Fatal(err)
			}
			if err := b.Save(&s2); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s1.Bytes(), s2.Bytes()) {
				t.Error("final states differ")
			}
			if distinct := len(uniq(want)); distinct < 5 {
				t.Errorf("only %d distinct proposals in 42: the check says little", distinct)
			}
		})
	}
}

func uniq(xs []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}
