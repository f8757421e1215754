package search

import (
	"slices"
	"testing"
)

// Halving's documented zero values: Eta 0 is 3, so with First 1 and 10
// epochs the rungs are 1, 3 and 9 (27 is past the end), whether the
// setting went through Config.WithDefaults (which writes the 3) or not.
func TestHalvingDefaultEta(t *testing.T) {
	if r := (Halving{First: 1}).rungs(10); !slices.Equal(r, []int{1, 3, 9}) {
		t.Errorf("first 1, eta unset, 10 epochs: rungs %v, want [1 3 9]", r)
	}
	cfg := Config{Train: TrainSettings{Halving: Halving{First: 1}}}.WithDefaults()
	if h := cfg.Train.Halving; h.Eta != 3 || !slices.Equal(h.rungs(10), []int{1, 3, 9}) {
		t.Errorf("with defaults: eta %d, rungs %v; want 3, [1 3 9]", h.Eta, h.rungs(10))
	}
}
