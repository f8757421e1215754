package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/internal/atomicfile"
	"github.com/nasctl/nasctl/runtime"
	"github.com/urfave/cli/v2"
)

// doctor train and doctor compare: one short, fixed training whose losses,
// weights and time are written to a file, and the comparison of two such
// files. They answer "does this library (or device) train as the CPU
// library does, and how much faster": the tests run them on the GPU build's
// CPU provider against the CPU build, scripts/gpu-check.sh on CUDA.

func doctorTrainCommand() *cli.Command {
	return &cli.Command{
		Name:      "train",
		Usage:     "train a small network briefly on generated leaves and write its losses, weights and time to --out",
		ArgsUsage: " ",
		Description: `Generates --count leaves images (seed 1) in memory, trains --arch on them for
--epochs on the chosen device with a fixed seed, and writes the losses per
epoch, the final weights and the time to --out: run it once per device (or
library) and compare the files with nasctl doctor compare.
Example: nasctl doctor train --device cuda --out gpu.json`,
		Flags: append(deviceFlags(),
			&cli.IntFlag{Name: "device-id", Usage: "the GPU with --device cuda"},
			&cli.StringFlag{Name: "arch", Value: "C(8,3,1) - P(2,2) - C(16,3,1) - P(2,2) - SM()", Usage: "the network"},
			&cli.IntFlag{Name: "size", Value: 32, Usage: "image width and height"},
			&cli.IntFlag{Name: "count", Value: 500, Usage: "images generated (seed 1): four fifths train, one fifth validate"},
			&cli.IntFlag{Name: "epochs", Value: 2, Usage: "epochs"},
			&cli.IntFlag{Name: "batch", Value: 16, Usage: "batch size"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the weights, the shuffle and dropout"},
			&cli.StringFlag{Name: "out", Usage: "JSON file to write (required)"},
		),
		Action: func(c *cli.Context) error {
			if err := noArgs(c, ""); err != nil {
				return err
			}
			if c.String("out") == "" {
				return usagef("doctor train needs --out FILE, the JSON file to write")
			}
			d, err := parseDevice(c)
			if err != nil {
				return err
			}
			arch, err := genotype.Parse(c.String("arch"))
			if err != nil {
				return usagef("--arch: %v", err)
			}
			if c.Int("count") < 10 || c.Int("epochs") < 1 || c.Int("batch") < 1 {
				return usagef("--count must be at least 10, --epochs and --batch at least 1")
			}
			cfg := runtime.TrainConfig{Epochs: c.Int("epochs"), BatchSize: c.Int("batch"), LR: 3e-3, Schedule: runtime.LRSchedule{Constant: true},
				Patience: -1, Seed: c.Uint64("seed"), Device: d, DeviceID: c.Int("device-id"), Threads: c.Int("threads")}
			return runDoctorTrain(c.Context, doctorTrainOptions{Arch: arch, Size: c.Int("size"), Count: c.Int("count"), Config: cfg, Out: c.String("out")}, c.App.Writer)
		},
	}
}

type doctorTrainOptions struct {
	Arch   genotype.Arch
	Size   int
	Count  int
	Config runtime.TrainConfig
	Out    string
}

// trainCheck is the file doctor train writes.
type trainCheck struct {
	Library         string      `json:"library"`
	Version         string      `json:"version"`
	Device          string      `json:"device"`
	Arch            string      `json:"arch"`
	Size            int         `json:"size"`
	Count           int         `json:"count"`
	Seed            uint64      `json:"seed"`
	Threads         int         `json:"threads"`
	Losses          []float64   `json:"losses"`     // training loss per epoch
	ValLosses       []float64   `json:"val_losses"` // validation loss per epoch
	Seconds         float64     `json:"seconds"`
	ImagesPerSecond float64     `json:"images_per_second"` // training steps alone
	Weights         [][]float32 `json:"weights"`           // of the best epoch, onnxgen.Params order
}

func runDoctorTrain(ctx context.Context, opts doctorTrainOptions, out io.Writer) error {
	cfg := opts.Config
	net, err := opts.Arch.Build(genotype.Input{Height: opts.Size, Width: opts.Size, Channels: 1}, 2)
	if err != nil {
		return usagef("--arch at %dx%d: %v", opts.Size, opts.Size, err)
	}
	if err := runtime.InitDevice(cfg.Device, cfg.DeviceID); err != nil {
		return err
	}
	defer runtime.Close()
	gen := dataset.Options{Count: opts.Count, Size: opts.Size, Seed: 1}
	var pixels []float32
	var labels []int
	for i := range opts.Count {
		img, leaf := dataset.Render(gen, i)
		for _, p := range img.Pix {
			pixels = append(pixels, float32(p)/255)
		}
		labels = append(labels, map[bool]int{false: 0, true: 1}[leaf])
	}
	cut := opts.Count * 4 / 5
	idx := func(lo, hi int) []int {
		s := make([]int, 0, hi-lo)
		for i := lo; i < hi; i++ {
			s = append(s, i)
		}
		return s
	}
	train := runtime.Examples{Pixels: pixels, Labels: labels, Indices: idx(0, cut)}
	val := runtime.Examples{Pixels: pixels, Labels: labels, Indices: idx(cut, opts.Count)}
	res, err := runtime.Train(ctx, net, train, val, cfg)
	if err != nil {
		return err
	}
	if res.Status != runtime.StatusOK {
		return fmt.Errorf("training %s: %s %s", opts.Arch, res.Status, res.Reason)
	}
	lib, _ := runtime.LibraryPath()
	rep := trainCheck{Library: lib, Version: runtime.Version(), Device: cfg.Device.String(), Arch: opts.Arch.String(), Size: opts.Size,
		Count: opts.Count, Seed: cfg.Seed, Threads: cfg.Threads, Seconds: res.Seconds, ImagesPerSecond: res.ImagesPerSecond, Weights: res.Weights}
	for _, e := range res.Epochs {
		rep.Losses, rep.ValLosses = append(rep.Losses, e.TrainLoss), append(rep.ValLosses, e.ValLoss)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(opts.Out, b); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s on %s (ONNX Runtime %s): %d epochs in %.2f s, %.0f images/s, last loss %.6f; wrote %s\n",
		rep.Device, rep.Library, rep.Version, len(rep.Losses), rep.Seconds, rep.ImagesPerSecond, rep.Losses[len(rep.Losses)-1], opts.Out)
	return nil
}

func doctorCompareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "compare two files of doctor train: losses, weights and speed",
		ArgsUsage: "A.json B.json",
		Description: `Reads two files written by nasctl doctor train and prints the largest
difference of their losses and weights (agreement within --tol) and the ratio of
their training times; exits 1 when they disagree or were not trained alike.
Example: nasctl doctor compare cpu.json gpu.json`,
		Flags: []cli.Flag{
			&cli.Float64Flag{Name: "tol", Value: 1e-5, Usage: "largest absolute difference of a loss or a weight that counts as agreement"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usagef("doctor compare takes two files written by doctor train")
			}
			if !(c.Float64("tol") >= 0) {
				return usagef("--tol %v: must be 0 or more", c.Float64("tol"))
			}
			return runDoctorCompare(c.Args().Get(0), c.Args().Get(1), c.Float64("tol"), c.App.Writer)
		},
	}
}

// agreement is the outcome of doctor compare.
type agreement struct {
	Loss    float64 // largest |difference| of a training or validation loss
	Weight  float64 // largest |difference| of a weight
	Weights int     // weights compared
	SpeedUp float64 // B's training images per second over A's
}

func runDoctorCompare(pathA, pathB string, tol float64, out io.Writer) error {
	var a, b trainCheck
	for _, f := range []struct {
		path string
		into *trainCheck
	}{{pathA, &a}, {pathB, &b}} {
		data, err := os.ReadFile(f.path)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, f.into); err != nil {
			return fmt.Errorf("%s: %w (not a file of doctor train?)", f.path, err)
		}
	}
	ag, err := compareChecks(a, b)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		t    trainCheck
	}{{"A", a}, {"B", b}} {
		fmt.Fprintf(out, "%s: %s on %s (ONNX Runtime %s): %d epochs in %.2f s, %.0f images/s\n",
			c.name, c.t.Device, c.t.Library, c.t.Version, len(c.t.Losses), c.t.Seconds, c.t.ImagesPerSecond)
	}
	fmt.Fprintf(out, "losses: largest difference %.3g (tolerance %.3g)\n", ag.Loss, tol)
	fmt.Fprintf(out, "weights: largest difference %.3g over %d weights (tolerance %.3g)\n", ag.Weight, ag.Weights, tol)
	fmt.Fprintf(out, "speed-up of B over A: %.2fx (training steps, images per second)\n", ag.SpeedUp)
	if ag.Loss > tol || ag.Weight > tol || math.IsNaN(ag.Loss) || math.IsNaN(ag.Weight) {
		return fmt.Errorf("B differs from A by more than %.3g", tol)
	}
	fmt.Fprintln(out, "agreement: yes")
	return nil
}

// compareChecks compares two trainings of the same network and settings.
func compareChecks(a, b trainCheck) (agreement, error) {
	if a.Arch != b.Arch || a.Size != b.Size || a.Count != b.Count || a.Seed != b.Seed || len(a.Losses) != len(b.Losses) || len(a.Weights) != len(b.Weights) {
		return agreement{}, errors.New("the two files are not of the same training (network, size, count, seed, epochs)")
	}
	ag := agreement{SpeedUp: b.ImagesPerSecond / a.ImagesPerSecond}
	for i := range a.Losses {
		ag.Loss = max(ag.Loss, math.Abs(a.Losses[i]-b.Losses[i]), math.Abs(a.ValLosses[i]-b.ValLosses[i]))
	}
	for i := range a.Weights {
		if len(a.Weights[i]) != len(b.Weights[i]) {
			return agreement{}, fmt.Errorf("parameter %d has %d values in A and %d in B", i, len(a.Weights[i]), len(b.Weights[i]))
		}
		for j := range a.Weights[i] {
			ag.Weight = max(ag.Weight, math.Abs(float64(a.Weights[i][j]-b.Weights[i][j])))
			ag.Weights++
		}
	}
	return ag, nil
}
