package bench

// Point is one model in the objective space: fewer parameters, lower latency
// and higher accuracy are better.
type Point struct {
	Params    int64
	LatencyMs float64
	Accuracy  float64
}

// dominates reports whether a is at least as good as b in every objective and
// strictly better in one.
func dominates(a, b Point) bool {
	noWorse := a.Params <= b.Params && a.LatencyMs <= b.LatencyMs && a.Accuracy >= b.Accuracy
	better := a.Params < b.Params || a.LatencyMs < b.LatencyMs || a.Accuracy > b.Accuracy
	return noWorse && better
}

// ParetoFront marks the points that no other point dominates: the models
// among which a user chooses by trading size and latency against accuracy.
// Equal points are all on the front.
func ParetoFront(points []Point) []bool {
	front := make([]bool, len(points))
	for i, p := range points {
		front[i] = true
		for j, q := range points {
			if i != j && dominates(q, p) {
				front[i] = false
				break
			}
		}
	}
	return front
}
