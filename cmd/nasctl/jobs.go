package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/cluster"
	"github.com/urfave/cli/v2"
)

func jobsCommand() *cli.Command {
	return &cli.Command{
		Name:      "jobs",
		Usage:     "list the trials waiting on a broker, per run; --drop removes a run's",
		ArgsUsage: " ",
		Description: `Lists the jobs the broker holds, summed up per run and device: those no worker
has taken yet (WAITING) and those a worker took, in training or back in the
queue for another delivery (TAKEN), with their trial numbers and when the oldest
was published.

Jobs outlive the search that published them: a search stopped with a second
Ctrl-C leaves its trials queued, so that a resume collects their results, and
any worker of their device trains them meanwhile. When no resume is coming,
--drop RUN removes that run's jobs (a worker training one finishes it; its
result is kept for 7 days). Dropping the jobs of a search that is still
running does not stop it: it publishes them again within 30 s. Runs are told
apart by name only: two searches of one name on one broker (two machines'
runs/leaves-cpu, say) share a line, and --drop removes the jobs of both.

Examples:
  nasctl jobs --broker nats://gpu-box:4222
  nasctl jobs --broker nats://gpu-box:4222 --drop leaves-gpu`,
		Flags: append(brokerFlags("the broker's address, nats://HOST:4222 (tls://HOST:4222 for TLS); required"),
			&cli.StringFlag{Name: "drop", Usage: "remove the jobs of this run (its name, as the list shows it)"},
			&cli.BoolFlag{Name: "json", Usage: "print the list as JSON"},
		),
		Action: func(c *cli.Context) error {
			if err := noArgs(c, ""); err != nil {
				return err
			}
			b, err := brokerOptionsOf(c)
			if err != nil {
				return err
			}
			if b.URL == "" || b.embedded() {
				return usagef("--broker: give the broker's address, nats://HOST:4222 (a search's embedded broker is reached at the address it printed, while it runs)")
			}
			b.Client.Name = "nasctl jobs"
			return runJobs(c.Context, b.Client, b.jobsCommand(), c.String("drop"), c.Bool("json"), c.App.Writer)
		},
	}
}

// runJobs lists the jobs on the broker of o, or drops run drop's;
// listCommand is the command that lists them, for errors.
func runJobs(ctx context.Context, o cluster.ClientOptions, listCommand, drop string, asJSON bool, out io.Writer) error {
	b, err := cluster.Connect(ctx, o)
	if err != nil {
		return err
	}
	defer b.Close()
	if drop != "" {
		n, err := b.Drop(ctx, drop)
		if err != nil {
			return err
		}
		if asJSON {
			if err := printJSON(out, map[string]any{"run": drop, "dropped": n}); err != nil {
				return err
			}
		} else if n > 0 {
			fmt.Fprintf(out, "removed %s of run %s\n", english.Plural(n, "job", ""), drop)
		}
		if n == 0 { // a misspelt name, in either mode
			return fmt.Errorf("the broker holds no job of a run called %q: %s lists the runs it holds", drop, listCommand)
		}
		return nil
	}
	q, err := b.Queue(ctx)
	if err != nil {
		return err
	}
	runs := cluster.ByRun(q)
	if asJSON {
		if runs == nil {
			runs = []cluster.QueuedRun{}
		}
		return printJSON(out, runs)
	}
	if len(runs) == 0 {
		fmt.Fprintln(out, "no jobs on the broker")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tDEVICE\tWAITING\tTAKEN\tOLDEST\tTRIALS")
	for _, r := range runs {
		trials := spans(r.Trials)
		if r.Final > 0 {
			trials += fmt.Sprintf(" (%d of the final phase)", r.Final)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", r.Run, r.Device, r.Waiting, r.Taken, r.Oldest.Local().Format("2006-01-02 15:04"), trials)
	}
	return tw.Flush()
}

// spans writes ascending numbers as runs of consecutive ones: 1-3, 7, 9-10.
func spans(ns []int) string {
	var parts []string
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] <= ns[j]+1 {
			j++
		}
		part := strconv.Itoa(ns[i])
		if ns[j] != ns[i] {
			part += "-" + strconv.Itoa(ns[j])
		}
		parts = append(parts, part)
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
