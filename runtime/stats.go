package runtime

import (
	"math"
	"slices"
)

// Percentile returns the p-th percentile (0 <= p <= 100) of sorted values by
// linear interpolation between the closest ranks (the definition of NumPy's
// default and of Excel's PERCENTILE.INC): rank r = p/100*(n-1), and the
// result lies between sorted[floor(r)] and sorted[ceil(r)]. It is NaN for no
// values. Every percentile and median of timings in nasctl is this one.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	r := p / 100 * float64(n-1)
	lo := int(math.Floor(r))
	hi := min(lo+1, n-1)
	return sorted[lo] + (r-float64(lo))*(sorted[hi]-sorted[lo])
}

// median returns the median of xs, Percentile 50 (the mean of the middle two
// for an even count); xs must not be empty. It does not reorder xs.
func median(xs []float64) float64 {
	return Percentile(sortedCopy(xs), 50)
}

func sortedCopy(xs []float64) []float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s
}
