package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal (a live display may redraw it).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// statusLine keeps one status line at the bottom of a terminal: lines printed
// through it go above, and the status is redrawn after them and every second.
type statusLine struct {
	mu     sync.Mutex
	w      io.Writer
	status func() string
	stop   chan struct{}
	done   sync.WaitGroup
}

func newStatusLine(w io.Writer, status func() string) *statusLine {
	s := &statusLine{w: w, status: status, stop: make(chan struct{})}
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

func (s *statusLine) redraw() {
	line := s.status()
	if w, _, err := term.GetSize(int(os.Stderr.Fd())); err == nil && w > 1 && len(line) > w-1 {
		line = line[:w-1]
	}
	fmt.Fprintf(s.w, "\r\x1b[K%s", line)
}

// Println prints a line above the status line.
func (s *statusLine) Println(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, "\r\x1b[K%s\n", strings.TrimRight(line, "\n"))
	s.redraw()
}

// Close stops redrawing and erases the status line.
func (s *statusLine) Close() {
	close(s.stop)
	s.done.Wait()
	s.mu.Lock()
	fmt.Fprint(s.w, "\r\x1b[K")
	s.mu.Unlock()
}

// duration formats seconds as 1h02m03s, 4m05s or 6s.
func duration(sec float64) string {
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
