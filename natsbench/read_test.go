package natsbench

import (
	"fmt"
	"strings"
	"testing"
)

// table writes the CSV of a full table in which every cell has accuracy
// base on the three data sets but those of acc.
func table(base string, acc map[int]string) string {
	var b strings.Builder
	b.WriteString("CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,ImageNetTestAccuracy200Epochs,ArchitectureString\n")
	for i := range NumCells {
		v := base
		if a, ok := acc[i]; ok {
			v = a
		}
		fmt.Fprintf(&b, "%s,%s,%s,%s\n", v, v, v, CellAt(i))
	}
	return b.String()
}

// Optimum returns the first cell by Index that reaches the best accuracy:
// with cells 7 and 12000 tied at 95 (every other at 50), cell 7.
func TestOptimumFirstOfTies(t *testing.T) {
	tab, err := Read(strings.NewReader(table("50", map[int]string{7: "95", 12000: "95", 9000: "94.9"})))
	if err != nil {
		t.Fatal(err)
	}
	for d := range numDatasets {
		if c, best := tab.Optimum(Dataset(d)); c != CellAt(7) || best != 95 {
			t.Errorf("%v: optimum %v at %s (index %d), want 95 at %s (index 7)", Dataset(d), best, c, c.Index(), CellAt(7))
		}
	}
}

// An accuracy is a percentage: 100 is read, 100.5 and -1 are refused with
// the line that holds them (the header is line 1, cell i is on line i+2).
func TestReadAccuracyRange(t *testing.T) {
	if _, err := Read(strings.NewReader(table("100", nil))); err != nil {
		t.Errorf("accuracies of 100: %v", err)
	}
	for _, bad := range []string{"100.5", "-1"} {
		_, err := Read(strings.NewReader(table("50", map[int]string{3: bad})))
		want := fmt.Sprintf("line 5: CIFAR10TestAccuracy200Epochs %q is not an accuracy in percent", bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("accuracy %s: %v, want an error with %q", bad, err, want)
		}
	}
}
