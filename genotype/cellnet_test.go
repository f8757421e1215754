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
		"normal=0, reductions=0": "normal 0 and reductions 0 make no cell: give at least one of either",
		"normal=-1":              "normal -1 and reductions 1 must not be negative",
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

// Parameters and MACs of a separable convolution and of batch
// normalisation, worked by hand. The network is an 8x8x1 image, a 3x3 stem
// to 8 channels and one normal cell whose only block adds sep_conv_3x3(h1)
// to identity(h0) (both read the stem's 8 channels at 8x8, so neither is
// projected and the identity is the stem itself), then global average
// pooling and the dense classifier (2 classes: 1 logit). Conventions of the
// builder: a convolution has kh*kw*(C_in/groups) weights per filter, plus
// one bias per filter when it has a bias; its MACs are H_out*W_out*filters
// times that per-filter count; a batch normalisation has a scale and a
// shift per channel (its running mean and variance are state, not
// parameters); 'same' padding keeps 8x8 at stride 1.
//
// The depthwise 3x3 over 8 channels (groups = 8, 8 filters, one input
// channel each, no bias): 8*3*3*1 = 72 parameters and 8*8*8*9 = 4608 MACs.
// Counted as a dense convolution it would be 8*3*3*8 = 576 and 36864.
//
// study style (a bias on every convolution but the depthwise one, no batch
// normalisation):
//
//	stem 3x3, 1 -> 8:        8*9*1 + 8 = 80 params, 64*8*9  = 4608 MACs
//	depthwise 3x3 on 8:      8*9*1     = 72,        64*8*9  = 4608
//	pointwise 1x1, 8 -> 8:   8*8 + 8   = 72,        64*8*8  = 4096
//	dense 8 -> 1:            8*1 + 1   = 9,         8
//	total                                233                 13320
//
// nasnet style (no bias on any convolution; batch normalisation, 2*8 = 16
// parameters, after the stem and after the pointwise convolution; ReLUs
// count nothing):
//
//	stem 3x3, 1 -> 8:        8*9*1 = 72 params + BN 16, 4608 MACs
//	depthwise 3x3 on 8:      72,                        4608
//	pointwise 1x1, 8 -> 8:   64 + BN 16,                4096
//	dense 8 -> 1:            9,                         8
//	total                    249                        13320
func TestSeparableConvAndBatchNormCounts(t *testing.T) {
	const pair = "normal: b0 = add(sep_conv_3x3(h1), identity(h0)) | reduction: b0 = add(identity(h0), identity(h1))"
	in := Input{Height: 8, Width: 8, Channels: 1}
	for _, tc := range []struct {
		style               string
		params, macs, bns   int64
		convParams, bnTotal int64 // every convolution's parameters, every batch normalisation's
	}{
		{style: "study", params: 233, macs: 13320, bns: 0, convParams: 80 + 72 + 72, bnTotal: 0},
		{style: "nasnet", params: 249, macs: 13320, bns: 2, convParams: 72 + 72 + 64, bnTotal: 32},
	} {
		g, err := ParseCellNet("net(stem=8, filters=8, normal=1, reductions=0, style=" + tc.style + ") " + pair)
		if err != nil {
			t.Fatal(err)
		}
		n, err := g.Build(in, 2)
		if err != nil {
			t.Fatal(err)
		}
		if n.Params() != tc.params || n.MACs() != tc.macs {
			t.Errorf("%s: %d params, %d MACs; want %d and %d", tc.style, n.Params(), n.MACs(), tc.params, tc.macs)
		}
		var depthwise, bns int
		var convParams, bnTotal int64
		for i, nd := range n.Nodes {
			switch nd.Op {
			case OpConv:
				convParams += nd.Params
				if nd.Groups > 1 {
					depthwise++
					if nd.Groups != 8 || nd.Units != 8 || nd.In != (Shape{C: 8, H: 8, W: 8}) || nd.Params != 72 || nd.MACs != 4608 {
						t.Errorf("%s: node %d, depthwise conv of %d groups, %d filters on %v: %d params, %d MACs; want 8 groups, 8 filters on 8x8x8, 72 params, 4608 MACs",
							tc.style, i, nd.Groups, nd.Units, nd.In, nd.Params, nd.MACs)
					}
				}
			case OpBatchNorm:
				bns++
				bnTotal += nd.Params
				if nd.Params != 16 {
					t.Errorf("%s: node %d, batch normalisation of %d channels: %d params, want 16", tc.style, i, nd.In.C, nd.Params)
				}
			}
		}
		if depthwise != 1 || int64(bns) != tc.bns || convParams != tc.convParams || bnTotal != tc.bnTotal {
			t.Errorf("%s: %d depthwise convs, %d batch normalisations; convolutions hold %d params, batch normalisations %d; want 1, %d, %d, %d",
				tc.style, depthwise, bns, convParams, bnTotal, tc.bns, tc.convParams, tc.bnTotal)
		}
	}
}
