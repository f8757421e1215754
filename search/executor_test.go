package search

import (
	"slices"
	"testing"

	"github.com/nasctl/nasctl/dataset"
)

// The trials' share of the training split names the classes it lacks and
// the whole split has; the whole split itself, or a share with every
// class, names none.
func TestFractionGaps(t *testing.T) {
	d := &dataset.Dataset{Classes: []string{"no_leaf", "leaf"}, Labels: []int{0, 1, 0, 1, 0, 0}}
	full := []int{0, 1, 2, 3}
	want := []string{`class "leaf" has no image among the 2 the trials train on (data_fraction 0.5 of 4 training images): the trials cannot learn it; add images, or raise --data-fraction`}
	if got := fractionGaps(d, full, []int{0, 2}, 0.5); !slices.Equal(got, want) {
		t.Errorf("a share without leaves: %q, want %q", got, want)
	}
	for _, train := range [][]int{{0, 1}, full} {
		if got := fractionGaps(d, full, train, 0.5); got != nil {
			t.Errorf("train %v: %q, want none", train, got)
		}
	}
}
