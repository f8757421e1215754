package quantize

import (
	"fmt"
	"math"
	"strings"
)

// Method is how an activation's range is chosen from its values on the
// calibration images.
type Method int

const (
	// Percentile clips the range to the Options.Percentile-th percentile of
	// the values seen at the top (and the complementary one at the bottom
	// for values that are not all positive), so that rare outliers do not
	// stretch the quantization step of every other value. At its default
	// 99.999 it kept the quantized winners of a search closest to their
	// float outputs (docs/edge.md, "INT8").
	Percentile Method = iota
	// MinMax takes the smallest and largest value seen.
	MinMax
)

var methodNames = []string{"percentile", "minmax"}

func (m Method) String() string {
	if int(m) >= 0 && int(m) < len(methodNames) {
		return methodNames[m]
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// ParseMethod reads a method's name: percentile or minmax.
func ParseMethod(s string) (Method, error) {
	for i, name := range methodNames {
		if strings.EqualFold(s, name) {
			return Method(i), nil
		}
	}
	return 0, fmt.Errorf("unknown calibration method %q (valid: %s)", s, strings.Join(methodNames, ", "))
}

// bins is the histogram resolution of Percentile: the range found by the
// first pass in this many equal bins (a step of 1/2048 of the range, 8
// times finer than the 8-bit step).
const bins = 2048

// collector accumulates the values of the calibrated tensors: their range
// in a first pass, a histogram over that range in a second.
type collector struct {
	lo, hi []float64
	seen   []bool
	hist   [][]uint64 // nil during the first pass
}

func newCollector(n int) *collector {
	c := &collector{lo: make([]float64, n), hi: make([]float64, n), seen: make([]bool, n)}
	for i := range c.lo {
		c.lo[i], c.hi[i] = math.Inf(1), math.Inf(-1)
	}
	return c
}

// observe records values of tensor i.
func (c *collector) observe(i int, values []float32) {
	if c.hist == nil {
		lo, hi := c.lo[i], c.hi[i]
		for _, v := range values {
			x := float64(v)
			lo, hi = min(lo, x), max(hi, x)
		}
		c.lo[i], c.hi[i], c.seen[i] = lo, hi, c.seen[i] || len(values) > 0
		return
	}
	h, lo, width := c.hist[i], c.lo[i], (c.hi[i]-c.lo[i])/bins
	for _, v := range values {
		b := bins - 1
		if width > 0 {
			b = min(int((float64(v)-lo)/width), bins-1)
		}
		h[max(b, 0)]++
	}
}

// histograms starts the second pass.
func (c *collector) histograms() {
	c.hist = make([][]uint64, len(c.lo))
	for i := range c.hist {
		c.hist[i] = make([]uint64, bins)
	}
}

// percentile returns tensor i's range clipped to the p-th percentile at the
// top, and to the (100 - p)-th at the bottom when it has negative values;
// the clipped ends are bin edges, the bins' values rounded outwards.
func (c *collector) percentile(i int, p float64) (lo, hi float64) {
	h := c.hist[i]
	var total uint64
	for _, n := range h {
		total += n
	}
	width := (c.hi[i] - c.lo[i]) / bins
	tail := uint64(math.Floor(float64(total) * (100 - p) / 100))
	lo, hi = c.lo[i], c.hi[i]
	var n uint64
	for b := bins - 1; b >= 0; b-- {
		if n += h[b]; n > tail {
			hi = c.lo[i] + float64(b+1)*width
			break
		}
	}
	if c.lo[i] < 0 {
		n = 0
		for b := 0; b < bins; b++ {
			if n += h[b]; n > tail {
				lo = c.lo[i] + float64(b)*width
				break
			}
		}
	}
	return lo, min(hi, c.hi[i])
}
