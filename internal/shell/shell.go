// Package shell quotes the paths that nasctl puts into commands it prints
// for pasting (resume a run, watch it, measure a table), so that a folder
// such as "my runs" still makes a working command.
package shell

import (
	"strconv"

	"mvdan.cc/sh/v3/syntax"
)

// Quote returns s as one word for bash: unchanged when it is one already,
// else quoted.
func Quote(s string) string {
	q, err := syntax.Quote(s, syntax.LangBash)
	if err != nil { // only a NUL byte, which no path holds; Go's form at least shows it
		return strconv.Quote(s)
	}
	return q
}
