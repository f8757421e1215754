package genotype

import (
	"strings"
	"testing"
)

const testPair = "normal: b0 = add(sep_conv_3x3(h1), identity(h0)); b1 = concat(max_pool_3x3(b0), conv_1x3_3x1(h0)) | " +
	"reduction: b0 = add(dil_conv_3x3(h0), avg_pool_3x3(h1)); b1 = add(identity(b0), sep_conv_5x5(h1))"

// The text form reads back, and bad forms are refused with what is wrong.
func TestCellNetRoundTrip(t *testing.T) {
	s := "net(stem=16, filters=8, normal=2, reductions=1, style=study) " + testPair
	c, err := ParseCellNet(s)
	if err != nil {
		t.Fatal(err)
	}
	if c.String() != s || c.Macro != (CellMacro{Stem: 16, Filters: 8, Normal: 2, Reductions: 1, Style: StyleStudy}) {
		t.Errorf("round trip: %q, macro %+v", c.String(), c.Macro)
	}
	g, err := ParseGenotype(s)
	if err != nil || g.Key() != s {
		t.Errorf("ParseGenotype: %v %v", g, err)
	}
	if g, err := ParseGenotype("C(8,3,1) - SM()"); err != nil || g.String() != "C(8,3,1) - SM()" {
		t.Errorf("ParseGenotype of a layer sequence: %v %v", g, err)
	}
	for bad, want := range map[string]string{
		"net(stem=16, filters=8, normal=2) " + testPair:                                    "want all of",
		"net(stem=16, filters=8, normal=2, reductions=1, style=keras) " + testPair:         "unknown cell style",
		"net(stem=0, filters=8, normal=2, reductions=1, style=study) " + testPair:          "stem 0",
		"net(stem=16, filters=8, normal=2, reductions=1, size=3, style=study) " + testPair: "unknown key",
		"stem=16 " + testPair: "want",
	} {
		if _, err := ParseCellNet(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", bad, err, want)
		}
	}
}
