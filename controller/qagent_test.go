package controller

import (
	"strings"
	"testing"
)

func TestQAgentOnUniformSpace(t *testing.T) {
	space := UniformSpace{N: 3, Type: DecisionType{Name: "op", Choices: 4}}
	agent, err := QLearningFactory(QConfig{Alpha: 0.3, Replay: 8}, EpsilonSchedule{{1, 30}, {0, 10}})(space, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Reward: number of decisions equal to 2, over 3.
	reward := func(a []int) float64 {
		n := 0
		for _, x := range a {
			if x == 2 {
				n++
			}
		}
		return float64(n) / 3
	}
	var last []int
	for trial := 1; trial <= 40; trial++ {
		p, err := agent.Propose(trial)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := agent.Observe(trial, p, reward(p.Actions)); err != nil {
			t.Fatal(err)
		}
		last = p.Actions
	}
	if reward(last) < 2.0/3 {
		t.Errorf("greedy proposal %v after 30 explorations", last)
	}
	if _, err := agent.Observe(41, Proposal{Actions: []int{9, 0, 0}}, 1); err == nil {
		t.Error("invalid actions accepted")
	}
}

// NextBest walks layer sequences; the fixed-length agent refuses it rather
// than ignore it.
func TestQAgentRefusesNextBest(t *testing.T) {
	space := UniformSpace{N: 3, Type: DecisionType{Name: "op", Choices: 4}}
	_, err := QLearningFactory(QConfig{NextBest: 10}, EpsilonSchedule{{1, 30}})(space, 1)
	if err == nil || !strings.Contains(err.Error(), "next_best 10") {
		t.Errorf("QConfig{NextBest: 10}: err %v, want one naming next_best", err)
	}
}
