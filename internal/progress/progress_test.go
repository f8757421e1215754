package progress

import (
	"bytes"
	"testing"
	"time"
)

// The counter draws the first count, skips counts within a tenth of a
// second, always draws the last and then erases the line.
func TestCounter(t *testing.T) {
	var b bytes.Buffer
	clock := time.Unix(0, 0)
	p := CounterTo(&b, "writing %d/%d files", func() time.Time { return clock })
	p(1, 3) // first call draws
	p(2, 3) // same instant: skipped
	clock = clock.Add(time.Second)
	p(3, 3) // the last always draws, then erases the line
	if want := "\rwriting 1/3 files\rwriting 3/3 files\r\x1b[K"; b.String() != want {
		t.Errorf("progress output %q, want %q", b.String(), want)
	}
	if Counter(&b, "x %d %d") != nil {
		t.Error("progress drawn on a writer that is not a terminal")
	}
}

// Lines printed through a status line go above it, and Close erases it.
func TestStatus(t *testing.T) {
	var b bytes.Buffer
	s := NewStatus(&b, func() string { return "3 of 9" })
	s.Println("trial 3 done\n")
	s.Close()
	// No redraw by the ticker: the test takes well under its second.
	if want := "\r\x1b[Ktrial 3 done\n\r\x1b[K3 of 9\r\x1b[K"; b.String() != want {
		t.Errorf("status output %q, want %q", b.String(), want)
	}
}

func TestDuration(t *testing.T) {
	for sec, want := range map[float64]string{6.4: "6s", 245: "4m05s", 3723: "1h02m03s"} {
		if got := Duration(sec); got != want {
			t.Errorf("Duration(%v) = %q, want %q", sec, got, want)
		}
	}
}

// A terminal whose TERM is dumb gets plain lines, not redraws.
func TestRedraws(t *testing.T) {
	for name, want := range map[string]bool{"dumb": false, "xterm-256color": true, "": true} {
		if got := redraws(name); got != want {
			t.Errorf("TERM=%q: redraws %v, want %v", name, got, want)
		}
	}
}
