// Command nasctl designs small convolutional networks by reinforcement learning,
// trains every candidate through ONNX Runtime and exports the winners as ONNX files.
//
// Exit codes: 0 success, 1 failure, 2 usage error (bad flags or arguments).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Exit codes, mapped once here.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// newApp builds the command tree. Every command writes to app.Writer / app.ErrWriter
// so tests can capture output.
func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "nasctl",
		Usage: "design small CNNs by reinforcement learning, train them on ONNX Runtime, export them as ONNX",
		Description: "Exit codes: 0 success, 1 failure, 2 usage error.\n" +
			"Flags may be given before or after positional arguments.",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideVersion:     true,
		HideHelpCommand: true,
		Commands: []*cli.Command{
			// Each command lives in its own file of this package.
			archCommand(),
			datasetCommand(),
			trainCommand(),
		},
	}
	setUsageErrors(app.Commands)
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{err.Error()} }
	return app
}

// run executes nasctl with args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, interspersed(app, args))
	if err == nil {
		return exitOK
	}
	var u usageError
	if errors.As(err, &u) {
		fmt.Fprintf(stderr, "nasctl: %s\nRun \"nasctl help\" or add --help to a command for its usage.\n", u.msg)
		return exitUsage
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "nasctl: interrupted")
		return exitFailure
	}
	fmt.Fprintf(stderr, "nasctl: %v\n", err)
	return exitFailure
}

// usageError is a mistake in how nasctl was called (exit code 2), as opposed to a
// failure of the work itself (exit code 1).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// setUsageErrors makes flag-parsing errors of every command usage errors.
func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{err.Error()} }
		setUsageErrors(c.Subcommands)
	}
}
