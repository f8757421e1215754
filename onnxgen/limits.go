package onnxgen

import (
	"fmt"
	"math"

	"github.com/dustin/go-humanize"
	"github.com/nasctl/nasctl/genotype"
)

// MaxElements is the most values nasctl lets one tensor of its graphs hold:
// ONNX Runtime computed a longer one's length in 32 bits and failed at
// session creation (docs/limits.md, "Tensor sizes").
const MaxElements = math.MaxInt32

// checkSizes returns an error naming the first tensor of net's graphs that
// would hold more than MaxElements values: a parameter, one image's
// activation, or (training graphs) the vector of all trainable values that
// the optimizer updates at once.
func checkSizes(net *genotype.Net, params []Param, training bool) error {
	for i, nd := range net.Nodes {
		if n := nd.Out.Size(); n > MaxElements {
			return sizeError(fmt.Sprintf("the output of node %d (%s) for one image", i, nd.Out), n)
		}
	}
	var trainable int64
	for _, p := range params {
		if n := int64(p.Size()); n > MaxElements {
			return sizeError(fmt.Sprintf("parameter %s", p.Name), n)
		}
		if !p.State {
			trainable += int64(p.Size())
		}
	}
	if training && trainable > MaxElements {
		return sizeError("the training step's vector of all trainable values", trainable)
	}
	return nil
}

func sizeError(what string, n int64) error {
	return fmt.Errorf("%s would hold %s values, more than the %s a tensor may hold: use fewer units or filters, or pool earlier",
		what, humanize.Comma(n), humanize.Comma(MaxElements))
}
