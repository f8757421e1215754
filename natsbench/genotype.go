package natsbench

import (
	"fmt"

	"github.com/nasctl/nasctl/genotype"
)

var _ genotype.Genotype = Cell{}

// Key is the cell's architecture string, which is canonical.
func (c Cell) Key() string { return c.String() }

// Build reports that a NATS-Bench cell is looked up in the table, not
// trained by nasctl.
func (c Cell) Build(genotype.Input, int) (*genotype.Net, error) {
	return nil, fmt.Errorf("NATS-Bench cell %s is scored from the benchmark's table, not trained (%w)", c, genotype.ErrNotCompilable)
}
