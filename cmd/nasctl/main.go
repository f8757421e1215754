// Command nasctl designs small convolutional networks by reinforcement learning,
// trains every candidate through ONNX Runtime and exports the winners as ONNX files.
//
// Exit codes: 0 success, 1 failure, 2 usage error (bad flags or arguments),
// 128 + the signal's number for work stopped by a signal before its end:
// 130 (SIGINT, Ctrl-C), 143 (SIGTERM), 129 (SIGHUP) and 141 (SIGPIPE's, when
// the output's reader went away); nasctl server, worker and ui, which run
// until stopped, exit 0 when they stop on one.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/nasctl/nasctl/internal/buildinfo"
	"github.com/nasctl/nasctl/search"
	"github.com/urfave/cli/v2"
	"github.com/xrash/smetrics"
)

// Exit codes, mapped once here. A command stopped by a signal exits with
// 128 + the signal's number, as a shell reports a process the signal
// killed (130 for SIGINT, 143 for SIGTERM), so that a script tells "stopped,
// resumable" from a failure without reading the messages.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// firstSignal is the signal that first asked nasctl to stop; nil before
// any did.
var firstSignal atomic.Value

// exitStopped is the exit code of work stopped by firstSignal (SIGINT's
// when none is recorded: a context cancelled in a test).
func exitStopped() int {
	if sig, ok := firstSignal.Load().(syscall.Signal); ok {
		return 128 + int(sig)
	}
	return 128 + int(syscall.SIGINT)
}

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	stops := []os.Signal{os.Interrupt, syscall.SIGTERM}
	// SIGHUP (a closed terminal, a dropped SSH session) stops as SIGTERM
	// does, unless nasctl started with it ignored (nohup): catching it
	// would undo that. SIGPIPE is not caught (that would catch it on the
	// network connections too): the output below says when its reader
	// went away.
	if !signal.Ignored(syscall.SIGHUP) {
		stops = append(stops, syscall.SIGHUP)
	}
	signal.Notify(sigs, stops...)
	signal.Ignore(syscall.SIGPIPE)
	gone := make(chan struct{})
	lost := sync.OnceFunc(func() { close(gone) }) // stdout and stderr are often one pipe
	stdout, stderr := &outputWatch{w: os.Stdout, gone: lost}, &outputWatch{w: os.Stderr, gone: lost}
	go handleSignals(ctx, cancel, sigs, gone)
	code := run(ctx, os.Args, stdout, stderr)
	cancel()
	os.Exit(code)
}

// handleSignals answers the stop signals: the first asks a command that can
// stop gracefully (a search finishes its trials in flight) to do so,
// otherwise it cancels; a further one cancels; one more quits at once.
// The output's reader going away (gone closed) stops as a first signal
// would, SIGPIPE's, unless a stop has begun: Ctrl-C at a shell ends the
// "| tee" beside nasctl too, and must not count twice.
func handleSignals(ctx context.Context, cancel func(), sigs <-chan os.Signal, gone <-chan struct{}) {
	n, stopping := 0, false
	firstStop := func() {
		stopping = true
		if stop := takeGracefulStop(); stop != nil {
			stop()
			return
		}
		cancel()
	}
	for {
		select {
		case <-gone:
			gone = nil // closed: it would be chosen again and again
			if !stopping {
				firstSignal.Store(syscall.SIGPIPE)
				firstStop()
			}
			continue
		case sig := <-sigs:
			n++
			if sig, ok := sig.(syscall.Signal); ok && n == 1 {
				firstSignal.Store(sig)
			}
			switch {
			case n == 1 && !stopping:
				firstStop()
			case n == 1: // the stop the output's loss began goes on
			case n >= 3 || ctx.Err() != nil && n >= 2:
				fmt.Fprintln(os.Stderr, "nasctl: interrupted again, quitting")
				os.Exit(exitStopped())
			default:
				cancel()
			}
		}
	}
}

// outputWatch writes to the terminal, a pipe or a file. When its reader
// went away it drops what is written from then on, so that the command is
// not cut short by write errors; a broken pipe ("| head", a pager quit)
// also calls gone, which asks a search to stop as Ctrl-C does (nothing
// finished is lost; exit 141, as SIGPIPE's). A terminal that is gone
// (EIO) sends SIGHUP itself.
type outputWatch struct {
	w    io.Writer
	gone func()
	lost atomic.Bool
}

// Fd is the descriptor of the file it writes to, for the terminal checks
// of the live displays (package progress); ^0 when it writes elsewhere.
func (o *outputWatch) Fd() uintptr {
	if f, ok := o.w.(*os.File); ok {
		return f.Fd()
	}
	return ^uintptr(0)
}

func (o *outputWatch) Write(p []byte) (int, error) {
	if o.lost.Load() {
		return len(p), nil
	}
	n, err := o.w.Write(p)
	switch {
	case errors.Is(err, syscall.EPIPE):
		o.lost.Store(true)
		o.gone()
		return len(p), nil
	case errors.Is(err, syscall.EIO):
		o.lost.Store(true)
		return len(p), nil
	}
	return n, err
}

// gracefulStop is the first-interrupt handler a long command registered.
var gracefulStop struct {
	sync.Mutex
	f func()
}

// onFirstInterrupt makes the first interrupt call f instead of cancelling
// the command's context; it returns a function that removes f.
func onFirstInterrupt(f func()) (remove func()) {
	gracefulStop.Lock()
	gracefulStop.f = f
	gracefulStop.Unlock()
	return func() {
		gracefulStop.Lock()
		gracefulStop.f = nil
		gracefulStop.Unlock()
	}
}

func takeGracefulStop() func() {
	gracefulStop.Lock()
	defer gracefulStop.Unlock()
	f := gracefulStop.f
	gracefulStop.f = nil
	return f
}

// newApp builds the command tree. Every command writes to app.Writer / app.ErrWriter
// so tests can capture output.
func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "nasctl",
		Usage: "design small CNNs by reinforcement learning, train them on ONNX Runtime, export them as ONNX",
		Description: "Exit codes: 0 success, 1 failure, 2 usage error, 130 stopped by Ctrl-C (SIGINT),\n" +
			"143 by SIGTERM, 129 by SIGHUP (a closed terminal) and 141 when the reader of the output\n" +
			"went away (| head): what was finished is saved, a search resumes; nasctl server,\n" +
			"worker and ui, which run until stopped, exit 0 then (a worker stopped by a second Ctrl-C,\n" +
			"which hands its trials back unfinished, exits 128 + the first signal's number).\n" +
			"Flags may be given before or after positional arguments.",
		Writer:    stdout,
		ErrWriter: stderr,
		Version:   version(),
		Commands: []*cli.Command{
			// Each command lives in its own file of this package.
			archCommand(),
			datasetCommand(),
			trainCommand(),
			evalCommand(),
			predictCommand(),
			searchCommand(),
			runsCommand(),
			rewardCommand(),
			benchmarkCommand(),
			benchCommand(),
			exportCommand(),
			uiCommand(),
			doctorCommand(),
			serverCommand(),
			workerCommand(),
			jobsCommand(),
		},
	}
	setUsageErrors(app.Commands)
	app.OnUsageError = flagError
	// urfave/cli exits the process itself on its own errors (code 3 for
	// "help NOSUCH"); run maps them to exit codes instead.
	app.ExitErrHandler = func(*cli.Context, error) {}
	app.Action = func(c *cli.Context) error {
		if c.NArg() > 0 {
			return usagef("unknown command %q (valid: %s)", c.Args().First(), strings.Join(commandNames(app.Commands), ", "))
		}
		return cli.ShowAppHelp(c)
	}
	return app
}

// version is the module version and the commit nasctl was built from, as
// the Go toolchain recorded them, and the Go release that built it.
func version() string {
	v := buildinfo.Version()
	if info, ok := debug.ReadBuildInfo(); ok {
		v += ", " + info.GoVersion
	}
	return v
}

// run executes nasctl with args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, interspersed(app, args))
	if err == nil {
		return exitOK
	}
	var u usageError
	var exit cli.ExitCoder
	if !errors.As(err, &u) && errors.As(err, &exit) {
		u = usageError{err.Error()} // urfave/cli's own: a help topic that does not exist
	}
	if u.msg != "" {
		fmt.Fprintf(stderr, "nasctl: %s\nRun \"nasctl help\" or add --help to a command for its usage.\n", u.msg)
		return exitUsage
	}
	// A stop that lets the trials in flight finish and one that abandons
	// them end with the same line, for scripts that read it.
	if errors.Is(err, context.Canceled) || errors.Is(err, search.ErrStopped) {
		fmt.Fprintln(stderr, "nasctl: interrupted")
		return exitStopped()
	}
	fmt.Fprintf(stderr, "nasctl: %v\n", withBadFileHint(err))
	return exitFailure
}

// usageError is a mistake in how nasctl was called (exit code 2), as opposed to a
// failure of the work itself (exit code 1).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// noArgs returns a usage error when a command that takes only flags got
// positional arguments; hint says where the value goes instead ("" for
// none).
func noArgs(c *cli.Context, hint string) error {
	if c.NArg() == 0 {
		return nil
	}
	if hint != "" {
		hint = "; " + hint
	}
	return usagef("%s takes no arguments (got %q)%s", strings.TrimPrefix(c.Command.HelpName, c.App.Name+" "), c.Args().Slice(), hint)
}

// commandNames lists cmds' names, without the help command.
func commandNames(cmds []*cli.Command) []string {
	var names []string
	for _, c := range cmds {
		if c.Name != "help" {
			names = append(names, c.Name)
		}
	}
	return names
}

// setUsageErrors makes flag-parsing errors of every command usage errors.
// A command group without an action of its own answers an unknown
// subcommand with a usage error that lists the valid ones.
func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = flagError
		if c.Action == nil && len(c.Subcommands) > 0 {
			c.Action = func(ctx *cli.Context) error {
				if ctx.NArg() > 0 {
					return usagef("unknown command \"%s %s\" (valid: %s)", ctx.Command.Name, ctx.Args().First(), strings.Join(commandNames(ctx.Command.Subcommands), ", "))
				}
				return cli.ShowSubcommandHelp(ctx)
			}
		}
		setUsageErrors(c.Subcommands)
	}
}

// goFlagName is a flag as Go's flag package names it in its errors ("for
// flag -seed", "for -rotate", "argument: -out").
var goFlagName = regexp.MustCompile(`(for|argument:) (?:flag )?-([A-Za-z][\w-]*)`)

// flagError is a usage error for what Go's flag package found wrong with a
// command's flags, in nasctl's words: flags written --name, and a flag
// not defined answered with the nearest one defined.
func flagError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	if m := goFlagName.FindAllStringSubmatchIndex(msg, -1); len(m) > 0 { // the last: the flag follows any value quoted
		last := m[len(m)-1]
		msg = msg[:last[0]] + msg[last[2]:last[3]] + " --" + msg[last[4]:last[5]] + msg[last[1]:]
	}
	if m := badFlagValue.FindStringSubmatch(msg); m != nil && c != nil && c.Command != nil {
		if want := flagValueKind(c.Command.Flags, m[2]); want != "" {
			msg = fmt.Sprintf("--%s %s: want %s", m[2], m[1], want)
		}
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		msg = "unknown flag --" + strings.TrimPrefix(name, "-")
		if c != nil && c.Command != nil && cli.SuggestFlag != nil {
			// The nearest flag only when it is near: a typo, not a guess.
			name = strings.TrimPrefix(name, "-")
			if near := cli.SuggestFlag(c.Command.Flags, name, false); near != "" && smetrics.JaroWinkler(strings.TrimLeft(near, "-"), name, 0.7, 4) >= 0.85 {
				msg += " (did you mean " + near + "?)"
			}
		}
	}
	return usageError{msg}
}

// badFlagValue is Go's flag package's error for a value of the wrong type,
// as flagError has rewritten its flag: the value and the flag's name.
var badFlagValue = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for --([\w-]+): parse error$`)

// flagValueKind says what a value of the flag named name in flags must be,
// for its error's "parse error"; "" for a flag of another kind.
func flagValueKind(flags []cli.Flag, name string) string {
	for _, f := range flags {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		switch f.(type) {
		case *cli.UintFlag, *cli.Uint64Flag:
			return "a whole number, 0 or more"
		case *cli.IntFlag, *cli.Int64Flag:
			return "a whole number"
		case *cli.Float64Flag:
			return "a number"
		case *cli.DurationFlag:
			return "a duration such as 90s, 5m or 1h30m"
		case *cli.BoolFlag:
			return "true or false"
		}
	}
	return ""
}

// printJSON writes v as indented JSON, as every command's --json does.
func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
