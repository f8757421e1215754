package bench

// Unexported parts of the latency model, for the external latency experiment
// (stats_latency_experiment_test.go), which imports search and so cannot be
// in package bench.
var (
	FeaturesOf = features
	Fit        = fit
	PredictMs  = predict
)
