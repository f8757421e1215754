package main

import (
	"context"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The output's reader going away stops a command as a first signal does,
// and only then: after Ctrl-C it changes nothing (the shell ended the
// "| tee" too), and a Ctrl-C after it does not cancel the graceful stop it
// began. The exit code is the first real signal's, else SIGPIPE's.
func TestHandleSignalsOutputGone(t *testing.T) {
	for _, tc := range []struct {
		name        string
		events      []string // "gone" or "int", in order
		cancelled   bool
		firstSignal syscall.Signal
	}{
		{"gone", []string{"gone"}, false, syscall.SIGPIPE},
		{"gone, then Ctrl-C", []string{"gone", "int"}, false, syscall.SIGINT},
		{"Ctrl-C, then gone", []string{"int", "gone"}, false, syscall.SIGINT},
		{"gone, then Ctrl-C twice", []string{"gone", "int", "int"}, true, syscall.SIGINT},
		{"Ctrl-C twice", []string{"int", "int"}, true, syscall.SIGINT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved := firstSignal.Load()
			t.Cleanup(func() { // as it was: the tests after this read it for their exit codes
				firstSignal = atomic.Value{}
				if saved != nil {
					firstSignal.Store(saved)
				}
			})
			firstSignal = atomic.Value{}
			var stops atomic.Int32
			remove := onFirstInterrupt(func() { stops.Add(1) })
			defer remove()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sigs, gone := make(chan os.Signal, 2), make(chan struct{})
			go handleSignals(ctx, cancel, sigs, gone)
			for _, e := range tc.events {
				if e == "gone" {
					close(gone)
				} else {
					sigs <- syscall.SIGINT
				}
				time.Sleep(20 * time.Millisecond) // one event at a time
			}
			if stops.Load() != 1 || (ctx.Err() != nil) != tc.cancelled {
				t.Errorf("%d graceful stops, cancelled %v; want 1, %v", stops.Load(), ctx.Err() != nil, tc.cancelled)
			}
			if sig, _ := firstSignal.Load().(syscall.Signal); sig != tc.firstSignal {
				t.Errorf("exit by %v, want %v", sig, tc.firstSignal)
			}
		})
	}
}
