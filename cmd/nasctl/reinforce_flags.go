package main

import (
	"github.com/nasctl/nasctl/controller"
	"github.com/urfave/cli/v2"
)

// reinforceFlags are the REINFORCE controller's settings, which search
// nasnet and benchmark agents share; unset, each is the preset's.
func reinforceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "controller-batch", Usage: "controller: architectures per policy update"},
		&cli.Float64Flag{Name: "temperature", Usage: "controller: softmax temperature of the first episode"},
		&cli.Float64Flag{Name: "temperature-decay", Usage: "controller: factor applied to the temperature after every episode"},
		&cli.Float64Flag{Name: "min-temperature", Usage: "controller: floor of the temperature"},
		&cli.StringFlag{Name: "baseline", Usage: "controller: baseline, ema or study"},
		&cli.Float64Flag{Name: "baseline-decay", Usage: "controller: ema baseline's decay d of b <- d b + (1-d) R"},
		&cli.Float64Flag{Name: "skip-below", Usage: "controller: leave out episodes with |R - b| below this (0: none)"},
		&cli.Float64Flag{Name: "controller-lr", Usage: "controller: Adam learning rate"},
		&cli.Float64Flag{Name: "entropy", Usage: "controller: entropy bonus weight (0: none)"},
	}
}

// reinforceFlagNames are the names of reinforceFlags.
func reinforceFlagNames() []string {
	var names []string
	for _, f := range reinforceFlags() {
		names = append(names, f.Names()[0])
	}
	return names
}

// applyReinforceFlags sets the settings of r whose flags were given.
func applyReinforceFlags(c *cli.Context, r *controller.ReinforceConfig) error {
	set(c, "controller-batch", func() { r.BatchSize = c.Int("controller-batch") })
	set(c, "temperature", func() { r.Temperature = c.Float64("temperature") })
	set(c, "temperature-decay", func() { r.TemperatureDecay = c.Float64("temperature-decay") })
	set(c, "min-temperature", func() { r.MinTemperature = c.Float64("min-temperature") })
	set(c, "baseline-decay", func() { r.BaselineDecay = c.Float64("baseline-decay") })
	set(c, "skip-below", func() { r.SkipBelow = c.Float64("skip-below") })
	set(c, "controller-lr", func() { r.LearningRate = c.Float64("controller-lr") })
	set(c, "entropy", func() { r.EntropyWeight = c.Float64("entropy") })
	if c.IsSet("baseline") {
		b, err := controller.ParseBaselineKind(c.String("baseline"))
		if err != nil {
			return usagef("--baseline: %v", err)
		}
		r.Baseline = b
	}
	// A zero in the controller's settings stands for its default
	// (controller.ReinforceConfig), so a zero given here would be replaced
	// without a word.
	for _, name := range []string{"temperature", "temperature-decay", "min-temperature", "controller-lr"} {
		if c.IsSet(name) && !(c.Float64(name) > 0) {
			return usagef("--%s %g: must be positive", name, c.Float64(name))
		}
	}
	if c.IsSet("baseline-decay") && c.Float64("baseline-decay") == 0 {
		return usagef("--baseline-decay 0 would stand for the default, 0.95: give a value in (0, 1), e.g. 0.01 for a baseline that follows the last rewards")
	}
	if c.IsSet("controller-batch") && c.Int("controller-batch") < 1 {
		return usagef("--controller-batch must be at least 1, got %d", c.Int("controller-batch"))
	}
	return nil
}
