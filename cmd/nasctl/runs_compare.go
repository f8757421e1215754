package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/search"
	"github.com/urfave/cli/v2"
)

func runsCompareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "set runs of one search side by side by agent: what the agent buys over random search",
		ArgsUsage: "NAME|DIR NAME|DIR...",
		Description: `Compares two or more runs, by their names under --dir or their directories:
the same search with other agents or seeds, such as a Q-learning run and the
same command with --agent random. For each run: its agent and seed, the trials
that trained and the constant predictors among them, the gain (the mean
validation accuracy of the schedule's last two phases less the first phase's),
the best validation accuracy of the search, the mean test accuracy of the five
best final models by validation, and the winner's test accuracy. Then, per
agent over its runs, that five-best mean and its standard deviation between
runs, and each agent's lead over random search, per seed too, with whether it
exceeds the spread between seeds (both agents' standard deviations, from two
runs of each): docs/search-quality.md's test of an agent, ahead of, within or
behind the spread. A run without its figures says where its final phase stands
(searching, not started, not complete, skipped, ...) and is left out of its
agent's; its gain is "-" until all its trials are recorded. Runs that differ in
more than name, seed and agent (their images, training or space, say) are
compared all the same, with a warning naming the settings that differ.
Example: nasctl runs compare qlearning-s1 qlearning-s2 random-s1 random-s2`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Aliases: []string{"runs"}, Value: "runs", Usage: "directory of runs, for NAMEs (--runs works too)"},
			&cli.BoolFlag{Name: "json", Usage: "print the comparison as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return usagef("runs compare takes two or more run names or directories, got %d", c.NArg())
			}
			var dirs []string
			for _, name := range c.Args().Slice() {
				path, err := runShowPath(c.String("dir"), name)
				if err != nil {
					return err
				}
				for _, d := range dirs {
					if sameFolder(d, path) {
						return usagef("runs compare: %s is named twice (as %s too)", name, d)
					}
				}
				dirs = append(dirs, path)
			}
			cmp, err := search.CompareRuns(dirs)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, cmp)
			}
			return printComparison(c.App.Writer, cmp)
		},
	}
}

// printComparison prints c: a table of the runs, the agents' figures, and
// the leads.
func printComparison(out io.Writer, c search.Comparison) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tAGENT\tSEED\tTRAINED\tCONSTANT\tGAIN\tBEST VAL\tFIVE BEST TEST\tWINNER TEST (PARAMS)")
	for _, r := range c.Runs {
		constant, gain, best, five, winner := "-", "-", "-", cmp.Or(search.FinalWords[r.FinalPhase], r.FinalPhase), "-"
		if r.Trained > 0 {
			constant = fmt.Sprintf("%d (%.1f%%)", r.Constant, 100*float64(r.Constant)/float64(r.Trained))
		}
		if r.Gain != nil {
			gain = fmt.Sprintf("%+.4f", *r.Gain)
		}
		if r.BestVal > 0 {
			best = fmt.Sprintf("%.2f%%", 100*r.BestVal)
			if r.Metric != "" {
				best += " (" + strings.TrimSuffix(r.Metric, "_accuracy") + ")"
			}
		}
		if r.BestFive > 0 {
			five = fmt.Sprintf("%.3f%%", 100*r.BestFiveTest)
			if r.BestFive < 5 {
				five += fmt.Sprintf(" (of %d)", r.BestFive)
			}
		}
		if r.Winner != nil {
			winner = fmt.Sprintf("%.2f%% (%s)", 100*r.Winner.TestAccuracy, humanize.Comma(r.Winner.Params))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Agent, r.Seed, r.Trained, constant, gain, best, five, winner)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	for _, g := range c.Groups {
		fmt.Fprintln(out, groupLine(g, fewestFinals(c, g.Agent)))
	}
	for _, l := range c.Leads {
		fmt.Fprintln(out, leadLine(c, l))
	}
	if len(c.Leads) == 0 {
		fmt.Fprintln(out, noLead(c))
	}
	if c.TestImages > 0 && slices.ContainsFunc(c.Groups, func(g search.AgentGroup) bool { return g.Finals > 0 }) {
		fmt.Fprintf(out, "One test image of %s is %.3f points of a model's accuracy (docs/search-quality.md, \"What the final test accuracy can resolve\").\n",
			humanize.Comma(int64(c.TestImages)), 100/float64(c.TestImages))
	}
	if len(c.Differ) > 0 {
		fmt.Fprintf(out, "warning: the runs differ in %s besides name, seed and agent: not a matched comparison\n", strings.Join(c.Differ, ", "))
	}
	return nil
}

// fewestFinals is the smallest count of finals behind a five-best mean
// among agent's runs with figures: below five when a run had fewer finals.
func fewestFinals(c search.Comparison, agent string) int {
	fewest := 5
	for _, r := range c.Runs {
		if r.Agent == agent && r.BestFive > 0 {
			fewest = min(fewest, r.BestFive)
		}
	}
	return fewest
}

// groupLine is an agent's figures over its runs; fewest, the fewest finals
// behind one run's mean, words it as other than "five best" when below five.
func groupLine(g search.AgentGroup, fewest int) string {
	best := "five best"
	if fewest < 5 {
		best = fmt.Sprintf("best finals (as few as %d a run)", fewest)
	}
	var line string
	switch {
	case g.Finals == 0:
		return fmt.Sprintf("%s: %s, none with its final phase complete", g.Agent, plural(g.Runs, "run"))
	case g.SD == nil:
		line = fmt.Sprintf("%s: %s %.3f%% (one run)", g.Agent, best, 100*g.Mean)
	default:
		line = fmt.Sprintf("%s: %s %.3f%% on average over %d runs (sd %.3f between them)", g.Agent, best, 100*g.Mean, g.Finals, 100**g.SD)
	}
	if n := g.Runs - g.Finals; n > 0 {
		line += fmt.Sprintf("; %d more without a complete final phase", n)
	}
	return line
}

// leadLine is l in words: the lead, per seed, against the spread.
func leadLine(c search.Comparison, l search.Lead) string {
	line := fmt.Sprintf("%s minus %s: %+.3f points", l.Agent, l.Over, 100*l.Mean)
	if len(l.PerSeed) > 0 {
		var seeds []string
		for _, s := range slices.Sorted(maps.Keys(l.PerSeed)) {
			seeds = append(seeds, fmt.Sprintf("seed %d %+.3f", s, 100*l.PerSeed[s]))
		}
		line += " (" + strings.Join(seeds, ", ") + ")"
	}
	g, _ := c.Group(l.Agent)
	o, _ := c.Group(l.Over)
	if g.SD == nil || o.SD == nil {
		return line + "; the spread between seeds needs two runs of each with finals"
	}
	sds := fmt.Sprintf("(sds %.3f and %.3f)", 100**g.SD, 100**o.SD)
	switch {
	case !l.Beyond:
		return line + ": within the spread between seeds " + sds
	case l.Mean > 0:
		return line + ": ahead by more than the spread between seeds " + sds
	}
	return line + ": behind by more than the spread between seeds " + sds
}

// noLead says why c has no lead.
func noLead(c search.Comparison) string {
	if len(c.Groups) < 2 {
		return "one agent only: no lead to give"
	}
	var none []string
	for _, g := range c.Groups {
		if g.Finals == 0 {
			none = append(none, g.Agent)
		}
	}
	return fmt.Sprintf("no lead: %s %s no run with a complete final phase", english.OxfordWordSeries(none, "and"), map[bool]string{true: "has", false: "have"}[len(none) == 1])
}

// sameFolder reports whether a and b are one folder, however written.
func sameFolder(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}
