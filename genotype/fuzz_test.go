package genotype

import (
	"testing"
)

// FuzzParseGenotype: whatever ParseGenotype reads (a layer sequence or a cell
// network) prints to a text that reads back to the same genotype and prints
// identically; a cell network then builds on a small image or says why not,
// and a built network's parameters add up over its nodes. Nothing panics.
func FuzzParseGenotype(f *testing.F) {
	for _, s := range []string{
		"C(8,3,1) - P(2,2) - SM()",
		"net(stem=8, filters=8, normal=1, reductions=1, style=nasnet) " + studyLike,
		"net(stem=2, filters=3, normal=0, reductions=2, style=study) " + studyLike,
		"net(stem=2, filters=3, normal=0, reductions=0, style=study) " + studyLike,
		"net(stem=1, filters=1, normal=3, reductions=1, style=nasnet) normal: b0 = add(identity(h0), identity(h1)) | reduction: b0 = add(identity(h0), identity(h1))",
		"net(stem=1 filters=1) normal:", "net(", "net()", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGenotype(s)
		if err != nil {
			return
		}
		text := g.String()
		h, err := ParseGenotype(text)
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, text, err)
		}
		if h.Key() != g.Key() || h.String() != text {
			t.Fatalf("round trip %q -> %q -> %q", s, text, h)
		}
		c, ok := g.(CellNet)
		if !ok || c.Macro.Stem > 64 || c.Macro.Filters > 64 || c.Macro.Normal+c.Macro.Reductions > 6 {
			return // layer sequences are FuzzParse's; keep cell networks small enough to build fast
		}
		net, err := c.Build(Input{Height: 9, Width: 9, Channels: 1}, 2)
		if err != nil {
			return
		}
		var sum int64
		for i, nd := range net.Nodes {
			sum += nd.Params
			for _, src := range net.Sources(i) {
				if src >= i {
					t.Fatalf("%q: node %d reads node %d, not an earlier one", text, i, src)
				}
			}
		}
		if sum != net.Params() || len(net.Nodes) == 0 || !net.Nodes[len(net.Nodes)-1].Classifier {
			t.Fatalf("%q: %d parameters over the nodes, Params() %d; %d nodes", text, sum, net.Params(), len(net.Nodes))
		}
	})
}
