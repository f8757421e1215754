package benchplot

import (
	"os"
	"testing"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/internal/plottest"
)

// synthetic is a fixed benchmark result: two agents, three seeds, budget 40,
// curves from closed forms so the figure never changes.
func synthetic() *controller.BenchmarkResult {
	res := &controller.BenchmarkResult{Optimum: 10, Budget: 40}
	for a, name := range []string{"random", "reinforce"} {
		runs := controller.AgentRuns{Agent: name}
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

func TestSave(t *testing.T) {
	p, err := Regret(synthetic(), "t", "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths, err := Save(p, dir, "regret")
	if err != nil || len(paths) != 2 {
		t.Fatalf("Save: %v %v", paths, err)
	}
	for _, path := range paths {
		if st, err := os.Stat(path); err != nil || st.Size() < 1000 {
			t.Errorf("%s: %v", path, err)
		}
	}
}
