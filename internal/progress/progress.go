// Package progress draws the progress of long work on a terminal: a counter
// redrawn in place, and a status line kept at the bottom below the lines
// printed above it. Work reports through small callbacks, so that commands
// draw and tests and logs stay quiet.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal that a live display may
// redraw: not one whose TERM says it cannot move the cursor. w is a
// terminal when it is a file, or wraps one and says so with an Fd method,
// on a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(fder)
	return ok && term.IsTerminal(int(f.Fd())) && redraws(os.Getenv("TERM"))
}

// fder is a writer on a file descriptor: an *os.File, or a writer that
// wraps one.
type fder interface{ Fd() uintptr }

// redraws reports whether a terminal of this TERM takes the carriage
// return and erase-line codes the displays redraw with: "dumb" (Emacs'
// shell, some CI consoles) prints them.
func redraws(termName string) bool { return termName != "dumb" }

// Counter returns a callback that redraws one line on w, format filled with
// the work done and in all (e.g. "writing %d/%d files"), when w is a
// terminal; nil otherwise, so that logs and tests stay quiet.
func Counter(w io.Writer, format string) func(done, total int) {
	if !IsTerminal(w) {
		return nil
	}
	return CounterTo(w, format, time.Now)
}

// CounterTo is Counter on any writer with its own clock: it draws at most
// ten times a second, and always the last count, after which it erases the
// line for what follows.
func CounterTo(w io.Writer, format string, now func() time.Time) func(done, total int) {
	var last time.Time
	return func(done, total int) {
		if done < total && now().Sub(last) < 100*time.Millisecond {
			return
		}
		last = now()
		fmt.Fprintf(w, "\r"+format, done, total)
		if done == total {
			fmt.Fprint(w, "\r\x1b[K")
		}
	}
}

// Status keeps one status line at the bottom of a terminal: lines printed
// through it go above, and the status is redrawn after them and every
// second.
type Status struct {
	mu     sync.Mutex
	w      io.Writer
	status func() string
	stop   chan struct{}
	done   sync.WaitGroup
}

// NewStatus starts redrawing status() on w; Close stops it.
func NewStatus(w io.Writer, status func() string) *Status {
	s := &Status{w: w, status: status, stop: make(chan struct{})}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.mu.Lock()
				s.redraw()
				s.mu.Unlock()
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

func (s *Status) redraw() {
	line := s.status()
	if f, ok := s.w.(fder); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 1 && len(line) > w-1 {
			line = line[:w-1]
		}
	}
	fmt.Fprintf(s.w, "\r\x1b[K%s", line)
}

// Println prints a line above the status line.
func (s *Status) Println(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, "\r\x1b[K%s\n", strings.TrimRight(line, "\n"))
	s.redraw()
}

// Close stops redrawing and erases the status line.
func (s *Status) Close() {
	close(s.stop)
	s.done.Wait()
	s.mu.Lock()
	fmt.Fprint(s.w, "\r\x1b[K")
	s.mu.Unlock()
}

// Duration formats seconds as 1h02m03s, 4m05s or 6s.
func Duration(sec float64) string {
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}
