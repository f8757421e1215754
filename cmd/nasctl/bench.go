package main

import (
	"github.com/urfave/cli/v2"
)

// benchCommand measures speed on this machine: its own action benchmarks
// exported models ("nasctl bench MODEL.onnx...", bench_models.go), its
// subcommands training steps (bench_train.go: train-step) and the latency
// model of the latency-aware rewards (latency_table.go: latency-table).
func benchCommand() *cli.Command {
	return &cli.Command{
		Name:        "bench",
		Usage:       "measure the speed of exported models and training steps on this machine",
		ArgsUsage:   "MODEL.onnx... | RUN_DIR...",
		Description: benchModelsDescription,
		Flags:       append(benchModelsFlags(), deviceFlags()...),
		Subcommands: []*cli.Command{benchTrainStepCommand(), benchLatencyTableCommand()},
		Action:      benchModelsAction,
	}
}
