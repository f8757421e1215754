package natsbench

import (
	"math"
	"strings"
	"testing"
)

func TestEmbeddedTable(t *testing.T) {
	tab, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	// Values from the table's rows (data/natsbench-tss-200ep.csv.gz; see data/README.md).
	for _, tc := range []struct {
		arch string
		acc  [3]float64
	}{
		{"|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
			[3]float64{85.86333333333334, 52.913333294677734, 26.6333332739936}},
		{"|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
			[3]float64{94.37333333333333, 73.21999999999998, 46.71111101277669}},
	} {
		c, err := ParseCell(tc.arch)
		if err != nil {
			t.Fatal(err)
		}
		if c.String() != tc.arch {
			t.Errorf("String %q, want %q", c, tc.arch)
		}
		for d := range numDatasets {
			if got := tab.Accuracy(c, Dataset(d)); got != tc.acc[d] {
				t.Errorf("%s on %v: %v, want %v", tc.arch, Dataset(d), got, tc.acc[d])
			}
		}
	}
	// The data README's optimum: 94.37 on CIFAR-10.
	c, best := tab.Optimum(CIFAR10)
	if math.Abs(best-94.37) > 0.005 || tab.Accuracy(c, CIFAR10) != best {
		t.Errorf("CIFAR-10 optimum %v at %s", best, c)
	}
	for d := range numDatasets {
		_, b := tab.Optimum(Dataset(d))
		t.Logf("optimum on %v: %.4f", Dataset(d), b)
	}
	// All-none cell: no path from input to output, chance accuracy.
	if acc := tab.Accuracy(Cell{}, CIFAR10); acc > 11 {
		t.Errorf("all-none cell: %v", acc)
	}
}

func TestCellEncoding(t *testing.T) {
	for i := range NumCells {
		c := CellAt(i)
		if c.Index() != i {
			t.Fatalf("CellAt(%d).Index() = %d", i, c.Index())
		}
		back, err := CellFromActions(c.Actions())
		if err != nil || back != c {
			t.Fatalf("actions round trip of %v: %v %v", c, back, err)
		}
		p, err := ParseCell(c.String())
		if err != nil || p != c {
			t.Fatalf("string round trip of %v: %v %v", c, p, err)
		}
	}
	if _, err := CellFromActions([]int{0, 1, 2, 3, 4}); err == nil || !strings.Contains(err.Error(), "want 6") {
		t.Errorf("short vector: %v", err)
	}
	if _, err := CellFromActions([]int{0, 1, 2, 3, 4, 5}); err == nil || !strings.Contains(err.Error(), "edge 5: op index 5") {
		t.Errorf("bad op: %v", err)
	}
	if _, err := ParseCell("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"); err == nil || !strings.Contains(err.Error(), "valid: none, skip_connect") {
		t.Errorf("bad op name: %v", err)
	}
	if _, err := ParseDataset("cifar-10"); err == nil || !strings.Contains(err.Error(), "cifar10, cifar100, imagenet16-120") {
		t.Errorf("bad data set: %v", err)
	}
}

func TestReadErrors(t *testing.T) {
	_, err := Read(strings.NewReader("a,b\n1,2\n"))
	if err == nil || !strings.Contains(err.Error(), "no column CIFAR10TestAccuracy200Epochs") {
		t.Errorf("missing column: %v", err)
	}
	head := "CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,ImageNetTestAccuracy200Epochs,ArchitectureString\n"
	row := "90,70,40,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n"
	_, err = Read(strings.NewReader(head + row + row))
	if err == nil || !strings.Contains(err.Error(), "line 3: cell") {
		t.Errorf("duplicate: %v", err)
	}
	_, err = Read(strings.NewReader(head + row))
	if err == nil || !strings.Contains(err.Error(), "lacks cell") {
		t.Errorf("incomplete: %v", err)
	}
}
