package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/nasctl/nasctl/dashboard"
	"github.com/urfave/cli/v2"
)

const uiDescription = `nasctl ui serves a live, read-only web dashboard of the runs under --runs:
every run with its status (running, stopped, finished, failed) and counts; a run's trials,
figures, learning curves, final models (to download) and configuration, updated
within a second of the search writing them; two or more runs compared.

It only reads the run directories, so it can watch a search while it runs. It
serves the folders inside --runs only: a run linked in from elsewhere (a symbolic
link) is left out, and nothing of a run holding links (a winner, winners/, a
log) is read or served, so that no address reaches outside the folder; serve its
own folder with a second nasctl ui, or copy it in.
On a loopback address (the default) it needs no token, and every user of the
machine can open it; on any other address it requires one: --token, or one it
makes and prints in the address to open.
Example: nasctl ui --runs runs --addr 0.0.0.0:8080`

func uiCommand() *cli.Command {
	return &cli.Command{
		Name:        "ui",
		Usage:       "serve a live web dashboard of the runs (read-only)",
		Description: uiDescription,
		ArgsUsage:   " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "runs", Aliases: []string{"dir"}, Value: "runs", Usage: "directory of runs (--dir, as search and runs call it, works too)"},
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "address to listen on (host:port); any but loopback requires a token"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"NASCTL_UI_TOKEN"}, Usage: "token that browsers and scripts must give, on loopback too; from the environment, it stays out of ps (default: none on loopback, else one made and printed)"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c, "name the folder of runs with --runs"); err != nil {
				return err
			}
			if st, err := os.Stat(c.String("runs")); err == nil && !st.IsDir() {
				return usagef("--runs %s is a file: give the folder the searches write their runs to (runs/ by default)", c.String("runs"))
			}
			// A malformed address is the user's to fix, as for nasctl server.
			if _, port, err := net.SplitHostPort(c.String("addr")); err != nil {
				return usagef("--addr %q: %v; give host:port, e.g. 127.0.0.1:8080", c.String("addr"), err)
			} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				return usagef("--addr %q: bad port %q (0 to 65535)", c.String("addr"), port)
			}
			return runUI(c.Context, uiOptions{Runs: c.String("runs"), Addr: c.String("addr"), Token: c.String("token")}, c.App.Writer)
		},
	}
}

// uiOptions run the dashboard.
type uiOptions struct {
	Runs, Addr, Token string
}

// runUI serves the dashboard until ctx is cancelled, after printing the
// address to open.
func runUI(ctx context.Context, opts uiOptions, out io.Writer) error {
	ln, token, err := dashboard.Listen(opts.Addr, opts.Token)
	if errors.Is(err, syscall.EADDRINUSE) {
		other := "another port"
		if host, port, perr := net.SplitHostPort(opts.Addr); perr == nil {
			if p, perr := strconv.Atoi(port); perr == nil && p < 65535 {
				other = "--addr " + net.JoinHostPort(host, strconv.Itoa(p+1))
			}
		}
		return fmt.Errorf("%w: another program (another nasctl ui?) listens on %s; give another address, such as %s", err, opts.Addr, other)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "dashboard of %s: open %s\n", opts.Runs, dashboard.URL(ln, token))
	if token != "" && opts.Token == "" {
		fmt.Fprintln(out, "not a loopback address: the token in that address was made for this session (--token chooses one)")
	}
	if _, err := os.Stat(opts.Runs); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(out, "%s does not exist yet: runs appear as searches start in it\n", opts.Runs)
	}
	fmt.Fprintln(out, "Ctrl-C stops it.")
	err = dashboard.Serve(ctx, ln, dashboard.New(dashboard.Options{Runs: opts.Runs, Token: token}))
	if err == nil {
		fmt.Fprintln(out, "dashboard stopped")
	}
	return err
}
