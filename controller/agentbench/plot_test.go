package agentbench

import (
	"testing"

	"github.com/nasctl/nasctl/internal/plottest"
)

// synthetic is a fixed benchmark result: two agents, three seeds, budget 40,
// curves from closed forms so the figure never changes.
func synthetic() *Result {
	res := &Result{Optimum: 10, Budget: 40}
	for a, name := range []string{"random", "reinforce"} {
		runs := AgentRuns{Agent: name}
		for s := range 3 {
			curve := make([]float64, 40)
			for q := range curve {
				curve[q] = 10 - 8/float64(q+1+a*q+s)
			}
			runs.Best = append(runs.Best, curve)
		}
		res.Agents = append(res.Agents, runs)
	}
	return res
}

// The regret figure matches the golden images (see plottest.Golden;
// regenerate with go test -regen-golden).
func TestRegretGolden(t *testing.T) {
	p, err := Regret(synthetic(), "synthetic benchmark", "points")
	if err != nil {
		t.Fatal(err)
	}
	plottest.Golden(t, p, "regret")
}
