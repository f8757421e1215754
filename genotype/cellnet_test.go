package genotype

import (
	"fmt"
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
	// A bare cell pair (what mock searches print) is told to take its network.
	if _, err := ParseGenotype(" " + testPair); err == nil || !strings.Contains(err.Error(), `is a cell pair without its network: put the network in front, e.g. "net(stem=8, filters=8, normal=1, reductions=1, style=nasnet) `+testPair+`"`) {
		t.Errorf("ParseGenotype of a bare pair: %v", err)
	}
	if _, err := ParseGenotype("normal: b0 = add(nope(h1), identity(h0)) | reduction: " + strings.SplitN(testPair, "reduction: ", 2)[1]); err == nil || !strings.Contains(err.Error(), `unknown cell operation "nope"`) {
		t.Errorf("ParseGenotype of a bad bare pair: %v", err)
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

// Apply sets only the keys given and leaves m unchanged on an error.
func TestCellMacroApply(t *testing.T) {
	m := StudyMacro
	if err := m.Apply("stem=8, style=nasnet"); err != nil {
		t.Fatal(err)
	}
	if want := (CellMacro{Stem: 8, Filters: 32, Normal: 2, Reductions: 1, Style: StyleNASNet}); m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	for bad, want := range map[string]string{
		"stem=8, stem=9":         "stem is given twice",
		"depth=3":                `unknown key "depth"`,
		"filters=x":              "not an integer",
		"normal=0, reductions=0": "make at least one cell",
		"style=fancy":            `unknown cell style "fancy"`,
		"stem":                   "not key=value",
	} {
		before := m
		if err := m.Apply(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Apply(%q): %v, want an error containing %q", bad, err, want)
		}
		if m != before {
			t.Errorf("Apply(%q) changed the macro to %+v", bad, m)
		}
	}
}

// A reduction cell that reads only h0 leaves the normal cell before it
// unread: the network is built without it, so it equals the network with no
// normal cell at all (same operations, parameters and MACs), and the
// normal cell's part has no nodes.
func TestCellNetUnreadCellLeftOut(t *testing.T) {
	pair := "normal: b0 = add(identity(h1), dil_conv_3x3(h0)); b1 = concat(avg_pool_3x3(h1), max_pool_3x3(h1)) | " +
		"reduction: b0 = concat(conv_1x1(h0), conv_1x1(h0)); b1 = add(conv_1x7_7x1(h0), conv_1x7_7x1(b0))"
	in := Input{Height: 32, Width: 32, Channels: 1}
	build := func(normal int) *Net {
		g, err := ParseCellNet(fmt.Sprintf("net(stem=8, filters=8, normal=%d, reductions=1, style=nasnet) %s", normal, pair))
		if err != nil {
			t.Fatal(err)
		}
		n, err := g.Build(in, 2)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	with, without := build(1), build(0)
	if with.Params() != without.Params() || with.MACs() != without.MACs() || len(with.Nodes) != len(without.Nodes) {
		t.Fatalf("with the unread cell: %d params, %d MACs, %d nodes; without it: %d, %d, %d",
			with.Params(), with.MACs(), len(with.Nodes), without.Params(), without.MACs(), len(without.Nodes))
	}
	for i, nd := range with.Nodes {
		if nd.Layer == 1 {
			t.Errorf("node %d (%s) belongs to the unread normal cell", i, nd.Op)
		}
		if o := without.Nodes[i]; nd.Op != o.Op || nd.Out != o.Out || fmt.Sprint(with.Sources(i)) != fmt.Sprint(without.Sources(i)) {
			t.Errorf("node %d: %s %v from %v, without the cell %s %v from %v", i, nd.Op, nd.Out, with.Sources(i), o.Op, o.Out, without.Sources(i))
		}
	}
}
