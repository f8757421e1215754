package genotype

import (
	"errors"
	"fmt"
)

// Genotype is an architecture of any kind a search agent proposes: a layer
// sequence (Arch) or a NASNet cell pair (CellPair); package natsbench adds its
// table cells. The search engine handles candidates only through it.
type Genotype interface {
	// String is the text form, which the kind's parser reads back.
	String() string
	// Key identifies the network: two genotypes with the same key are the
	// same network, so a search trains it once and reuses its result.
	Key() string
	// Build lays the genotype out for images of in and classes outputs, ready
	// for onnxgen to compile; a genotype that is not trained (a table cell)
	// or not yet compilable says so in its error.
	Build(in Input, classes int) (*Net, error)
}

// The kinds of this package are genotypes.
var (
	_ Genotype = Arch(nil)
	_ Genotype = CellPair{}
	_ Genotype = CellNet{}
)

// Key is the architecture's text form, which is canonical: one string per
// layer sequence.
func (a Arch) Key() string { return a.String() }

// Key is the cell pair's text form, which is canonical: one string per pair.
func (p CellPair) Key() string { return p.String() }

// ErrNotCompilable is returned by Build for a genotype that has no network
// to compile.
var ErrNotCompilable = errors.New("not compilable")

// Build reports that a cell pair alone is no network: stacked by a
// CellMacro (a CellNet) it is.
func (p CellPair) Build(Input, int) (*Net, error) {
	return nil, fmt.Errorf("cell pair %s: a cell pair needs its network to be built (a CellNet: net(...) before it) (%w)", p, ErrNotCompilable)
}
