package main

import (
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves the flags of the command that args select in front of its
// positional arguments, so "nasctl arch inspect ARCH --json" means the same as
// "nasctl arch inspect --json ARCH". urfave/cli v2 stops parsing flags at the
// first positional argument; users expect both orders. Everything after "--"
// stays positional.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	if len(args) > 2 && (args[1] == "help" || args[1] == "h") && findCommand(app.Commands, args[2]) != nil {
		// "nasctl help search metaqnn" is "nasctl search metaqnn --help":
		// urfave/cli's help command would show the first command's help.
		// A name that is no subcommand ("help search nosuch") is left
		// without --help, to be refused as "search nosuch" is.
		topic := args[2:]
		cmds := app.Commands
		for _, name := range topic {
			c := findCommand(cmds, name)
			if c == nil {
				return append([]string{args[0]}, topic...)
			}
			cmds = c.Subcommands
		}
		return interspersed(app, append(append([]string{args[0]}, topic...), "--help"))
	}
	out := []string{args[0]}
	rest := args[1:]
	// Walk down the command path: global flags come first, then command names.
	cmds := app.Commands
	var leaf *cli.Command
	for len(rest) > 0 {
		a := rest[0]
		if strings.HasPrefix(a, "-") {
			break
		}
		c := findCommand(cmds, a)
		if c == nil {
			break
		}
		out = append(out, a)
		rest = rest[1:]
		leaf = c
		cmds = c.Subcommands
	}
	if leaf == nil || leaf.SkipFlagParsing {
		return append(out, rest...)
	}
	var flags, positional []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			if helps(flags) {
				return append(out, flags...)
			}
			// The terminator goes right after the flags, where the flag
			// parser consumes it; every argument after it stays positional.
			out = append(append(out, flags...), "--")
			return append(append(out, positional...), rest[i+1:]...)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		if strings.Contains(a, "=") {
			continue
		}
		if takesValue(leaf, strings.TrimLeft(a, "-")) && i+1 < len(rest) {
			i++
			flags = append(flags, rest[i])
		}
	}
	out = append(out, flags...)
	if helps(flags) {
		return out
	}
	return append(out, positional...)
}

// helps reports whether flags (with their values) ask for help: --help,
// -h, -help, --h or --help=true, as Go's flag package reads them. The
// positional arguments are then dropped, or urfave/cli would take the
// first for a help topic.
func helps(flags []string) bool {
	return slices.ContainsFunc(flags, func(f string) bool {
		if !strings.HasPrefix(f, "-") {
			return false // a value, such as --data h
		}
		name, value, set := strings.Cut(strings.TrimLeft(f, "-"), "=")
		on, err := strconv.ParseBool(value)
		return (name == "help" || name == "h") && (!set || err == nil && on)
	})
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue reports whether the named flag of c consumes the next argument.
func takesValue(c *cli.Command, name string) bool {
	for _, f := range c.Flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if v, ok := f.(cli.DocGenerationFlag); ok {
				return v.TakesValue()
			}
			return true
		}
	}
	return false
}
