package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/nasctl/nasctl/controller/problem"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/natsbench"
	"github.com/urfave/cli/v2"
)

func rewardCommand() *cli.Command {
	return &cli.Command{
		Name:  "reward",
		Usage: "compute the reward of one architecture without training it",
		Subcommands: []*cli.Command{
			{
				Name:  "mock",
				Usage: "the founding study's mock reward of a NASNet cell pair (docs/study.md, section 6)",
				Description: `--actions is the controller's action vector: 5 integers per block
(input1, input2, op1, op2, combine), the normal cell's B blocks first, then the
reduction cell's; 10*B integers in all. Block b's inputs are 0..b+1 (0 = h0,
1 = h1, 2+k = block k); ops 0..12 in the order identity, 1x3+3x1 conv,
1x7+7x1 conv, 3x3 dilated conv, 3x3 avg pool, 3x3/5x5/7x7 max pool, 1x1 conv,
3x3 conv, 3x3/5x5/7x7 separable conv; combine 0 = add, 1 = concat.
Over all blocks: high = share of ops > 8, low = share of ops < 4,
in_div = distinct inputs / (max input + 1), comb_var = distinct combines / blocks,
op_div = distinct ops / 13, mean = mean op;
r = 0.5 + 0.4 high - 0.1 low + 0.15 in_div + 0.1 comb_var + 0.15 op_div + 0.13 sin(mean pi/6.5);
reward = clamp(r^2, 0.5, 0.998).
Example: nasctl reward mock --actions 0,1,9,10,0,1,0,12,3,1 --explain`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "actions", Usage: "comma-separated action vector, 10*B integers (required)"},
					&cli.BoolFlag{Name: "explain", Usage: "also print the cells and every term of the formula"},
				},
				Action: func(c *cli.Context) error {
					if err := noArgs(c, "give the vector with --actions"); err != nil {
						return err
					}
					if !c.IsSet("actions") {
						return usagef("reward mock needs --actions, %s", genotype.CellActionsUsage)
					}
					actions, err := parseActions(c.String("actions"))
					if err == nil {
						_, err = genotype.CellPairFromActions(actions)
					}
					if err != nil {
						if strings.Contains(err.Error(), genotype.CellActionsUsage) {
							return usagef("--actions: %v", err)
						}
						return usagef("--actions: %v; want %s", err, genotype.CellActionsUsage)
					}
					return runRewardMock(c.Context, rewardMockOptions{Actions: actions, Explain: c.Bool("explain")}, c.App.Writer)
				},
			},
			{
				Name:  "natsbench",
				Usage: "the NATS-Bench (NAS-Bench-201 topology) test accuracy of a cell, in percent",
				Description: `--actions gives the 6 edges' operations in the benchmark's edge order
(1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2), each 0..4: none, skip_connect, nor_conv_1x1,
nor_conv_3x3, avg_pool_3x3. --cell takes the benchmark's architecture string instead.
Example: nasctl reward natsbench --actions 3,3,3,1,3,2 --dataset cifar10`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "actions", Usage: "comma-separated op indices of the 6 edges"},
					&cli.StringFlag{Name: "cell", Usage: `architecture string, e.g. "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"`},
					&cli.StringFlag{Name: "dataset", Value: "cifar10", Usage: "accuracy column: " + strings.Join(natsbench.DatasetNames(), ", ")},
				},
				Action: func(c *cli.Context) error {
					if err := noArgs(c, ""); err != nil {
						return err
					}
					ds, err := natsbench.ParseDataset(c.String("dataset"))
					if err != nil {
						return usagef("--dataset: %v", err)
					}
					var cell natsbench.Cell
					switch a, s := c.String("actions"), c.String("cell"); {
					case (a == "") == (s == ""):
						return usagef("give exactly one of --actions and --cell")
					case a != "":
						actions, err := parseActions(a)
						if err == nil {
							cell, err = natsbench.CellFromActions(actions)
						}
						if err != nil {
							return usagef("--actions: %v", err)
						}
					default:
						if cell, err = natsbench.ParseCell(s); err != nil {
							return usagef("--cell: %v", err)
						}
					}
					return runRewardNATSBench(c.Context, rewardNATSBenchOptions{Cell: cell, Dataset: ds}, c.App.Writer)
				},
			},
		},
	}
}

// parseActions parses "a,b,c" (spaces allowed) into integers.
func parseActions(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty vector")
	}
	var out []int
	for i, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("item %d %q is not an integer", i, strings.TrimSpace(f))
		}
		out = append(out, v)
	}
	return out, nil
}

type rewardMockOptions struct {
	Actions []int
	Explain bool
}

func runRewardMock(_ context.Context, opts rewardMockOptions, out io.Writer) error {
	t, err := problem.MockTerms(opts.Actions)
	if err != nil {
		return err
	}
	if opts.Explain {
		pair, _ := genotype.CellPairFromActions(opts.Actions)
		fmt.Fprintf(out, "cells     %s\n", pair)
		fmt.Fprintf(out, "high      %g\nlow       %g\nin_div    %g\ncomb_var  %g\nop_div    %g\nmean      %g\n",
			t.High, t.Low, t.InDiv, t.CombVar, t.OpDiv, t.Mean)
		fmt.Fprintf(out, "r         %s\nreward    ", strconv.FormatFloat(t.R, 'g', -1, 64))
	}
	fmt.Fprintln(out, strconv.FormatFloat(t.Reward, 'g', -1, 64))
	return nil
}

type rewardNATSBenchOptions struct {
	Cell    natsbench.Cell
	Dataset natsbench.Dataset
}

func runRewardNATSBench(_ context.Context, opts rewardNATSBenchOptions, out io.Writer) error {
	tab, err := natsbench.Embedded()
	if err != nil {
		return err
	}
	fmt.Fprintln(out, accuracyText(tab.Accuracy(opts.Cell, opts.Dataset)))
	return nil
}

// accuracyText writes a table accuracy to four decimals, without the
// zeros after the last digit: a mean of runs given to two decimals, such
// as 93.26 (not 93.25999999999999, its nearest float64) or 94.3733.
func accuracyText(v float64) string {
	return strconv.FormatFloat(math.Round(v*1e4)/1e4, 'f', -1, 64)
}
