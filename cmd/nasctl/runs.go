package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/internal/shell"
	"github.com/nasctl/nasctl/search"
	"github.com/urfave/cli/v2"
)

func runsCommand() *cli.Command {
	return &cli.Command{
		Name:  "runs",
		Usage: "list, show and compare search runs",
		Subcommands: []*cli.Command{{
			Name:      "list",
			Usage:     "list the runs under --dir",
			ArgsUsage: " ",
			Description: `Lists every run directory under --dir: its kind (metaqnn or nasnet), its
status (running: a process holds it; stopped: it can be resumed, as planned
trials or final models are missing, its trials.jsonl ends in a half-written line
that no search is writing (a crash or a full disk: named in place of the winner,
JSON error; a resume drops the line), or in a latency-aware run the final models
are retrained but not yet timed (JSON final_models_untimed); finished;
failed: its search ended with an error, such as trials failing one after
another (the JSON's "failed" says which; a resume goes on), or no trial was
evaluated, every one refused, failed or diverged),
trials done of planned, best reward in the search, the final phase's winner
(winners/best.onnx, picked by validation, and in a latency-aware run by the
latency timed after the final phase too): its test accuracy and architecture,
and when it last changed. Until a winner is picked (the final phase or its
timings incomplete, or a --max-latency-ms run whose finals were all timed over
the limit: finished, no winner, JSON final_models_over_latency_limit) the
architecture shown is the best reward's, marked "search:". A run that cannot be read is
listed with its error; one whose trials.jsonl has a damaged line, with the
trials before it and the damage. A run linked into --dir from elsewhere (a
symbolic link) is listed too (nasctl ui leaves links out).
Example: nasctl runs list --dir runs --json`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "dir", Aliases: []string{"runs"}, Value: "runs", Usage: "directory of runs (--runs, as ui calls it, works too)"},
				&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			},
			Action: func(c *cli.Context) error {
				if err := noArgs(c, ""); err != nil {
					return err
				}
				return runRunsList(c.String("dir"), c.Bool("json"), c.App.Writer)
			},
		}, {
			Name:      "show",
			Usage:     "show a run's report (best architectures, reward per epsilon or per window of 10 to 100 trials)",
			ArgsUsage: "NAME|DIR",
			Description: `Prints the report of a run, by its name under --dir or by its directory, built
from its files without taking its lock (so a running search can be shown): the
final table, the statistics per epsilon (MetaQNN) or per window of trials
(NASNet), and the best architectures of the search; --json prints the same
report as JSON (report.md's figures, as the dashboard's /api/runs/NAME has them, with
the run's dir, to which its model paths are relative, and its status). When nasctl
bench RUN has measured the winners, their results follow (bench/bench.csv), with
those over the run's latency limit and a note naming the winners that bench did
not measure (retrained or added since: by bench.csv's sha256 column, or by file
name in a bench.csv of an older nasctl); --json carries them as bench and
bench_stale.
Example: nasctl runs show leaves-cpu`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "dir", Aliases: []string{"runs"}, Value: "runs", Usage: "directory of runs, for a NAME (--runs works too)"},
				&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return usagef("runs show takes one run name or directory")
				}
				return runRunsShow(c.String("dir"), c.Args().First(), c.Bool("json"), c.App.Writer)
			},
		}, runsCompareCommand()},
	}
}

func runRunsList(dir string, asJSON bool, out io.Writer) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s does not exist: give the directory of the runs with --dir (searches write to runs/ by default)", dir)
	}
	runs, err := search.ListRuns(dir)
	if err != nil {
		return err
	}
	if asJSON {
		if runs == nil {
			runs = []*search.RunSummary{}
		}
		return printJSON(out, runs)
	}
	if len(runs) == 0 {
		fmt.Fprintf(out, "no runs in %s", dir)
		sub := filepath.Join(dir, "runs") // given the folder above the runs?
		if inner, err := search.ListRuns(sub); err == nil && len(inner) > 0 {
			fmt.Fprintf(out, "; %s holds %d: nasctl runs list --dir %s", sub, len(inner), shell.Quote(sub))
		}
		fmt.Fprintln(out)
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSTATUS\tTRIALS\tBEST REWARD\tFINAL\tWINNER TEST\tUPDATED\tWINNER")
	for _, r := range runs {
		if r.Error != "" && r.Kind == "" {
			fmt.Fprintf(tw, "%s\t?\t%s\t\t\t\t\t\tunreadable: %s\n", r.Name, r.Status, r.Error)
			continue
		}
		best, test, finals, arch := "-", "-", strconv.Itoa(r.Finals), "-"
		if r.BestArch != "" { // else no trial was evaluated yet, or none could be
			best, arch = fmt.Sprintf("%.4f", r.Best), "search: "+r.BestArch
			if r.Metric != "" { // not comparable with the others' accuracies
				best += " (" + strings.TrimSuffix(r.Metric, "_accuracy") + ")"
			}
		}
		if r.WinnerArch != "" && r.Finals >= r.FinalsPlanned { // else no final model trained
			test, arch = fmt.Sprintf("%.4f", r.BestTest), r.WinnerArch
			if r.WinnerAtChance {
				test += " (at chance)"
			}
		}
		if r.Finals < r.FinalsPlanned {
			finals = fmt.Sprintf("%d/%d", r.Finals, r.FinalsPlanned) // the final phase is incomplete
		}
		if r.Error != "" { // a damaged line: the counts are of the trials before it
			arch = "damaged: " + r.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Kind, r.Status, r.Trials, r.Planned, best, finals, test, r.Updated.Local().Format("2006-01-02 15:04"), arch)
	}
	return tw.Flush()
}

// runRunsShow shows the run at name when that is a run directory or a path
// (a name with a separator), else the run called name under dir.
func runRunsShow(dir, name string, asJSON bool, out io.Writer) error {
	path, err := runShowPath(dir, name)
	if err != nil {
		return err
	}
	rep, err := search.ReadReport(path)
	if err != nil {
		return err
	}
	if asJSON {
		// Where the run is and how it stands, as runs list gives them: the
		// report's model paths are relative to Dir.
		shown := struct {
			Dir    string           `json:"dir"`
			Status search.RunStatus `json:"status,omitempty"` // none when the run cannot be summed up
			search.Report
			// Bench is what nasctl bench RUN measured of its winners, when
			// it has; BenchStale names the winners it did not measure.
			Bench      []*bench.Result `json:"bench,omitempty"`
			BenchStale string          `json:"bench_stale,omitempty"`
		}{Dir: path, Report: rep, Bench: benchOfRun(path)}
		if shown.Bench != nil {
			shown.BenchStale = search.BenchStale(path, shown.Bench)
		}
		if sum, err := search.Summarize(path); err == nil {
			shown.Status = sum.StatusOf(rep.Running)
		}
		return printJSON(out, shown)
	}
	fmt.Fprint(out, rep.Markdown())
	printRunBench(out, path)
	return nil
}

// printRunBench prints, after a run's report, what nasctl bench measured of
// its winners, when it has, and which exceed the run's latency limit.
func printRunBench(out io.Writer, path string) {
	rs := benchOfRun(path)
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(out, "\n## Measured by nasctl bench\n\n%s (batch-1 latency on the machine and threads of that bench):\n\n", filepath.Join(path, "bench", "bench.csv"))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tPARAMS\tP50 ms\tP95 ms\tACCURACY\tPARETO")
	for _, r := range rs {
		acc, front := "-", ""
		if r.Accuracy != nil {
			acc = fmt.Sprintf("%.4f", *r.Accuracy)
		}
		if r.Pareto {
			front = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.4f\t%.4f\t%s\t%s\n", r.Model, humanize.Comma(r.Params), r.LatencyMs.P50, r.LatencyMs.P95, acc, front)
	}
	tw.Flush()
	l := runLatencyLimit(path)
	var over []string
	for _, r := range l.overs(rs) {
		over = append(over, r.Model)
	}
	if len(over) > 0 {
		fmt.Fprintf(out, "\nOver the run's latency limit of %g ms: %s (nasctl bench RUN says why).\n", l.Ms, strings.Join(over, ", "))
	}
	if stale := search.BenchStale(path, rs); stale != "" {
		fmt.Fprintf(out, "\nNote: %s.\n", stale)
	}
}

// benchOfRun reads what nasctl bench measured of the run in dir's winners
// (its bench/bench.csv); nil when it has not, or the file cannot be read.
func benchOfRun(dir string) []*bench.Result {
	rs, err := bench.ReadCSV(filepath.Join(dir, "bench", "bench.csv"))
	if err != nil {
		return nil
	}
	return rs
}
