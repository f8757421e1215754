package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nasctl/nasctl/cluster"
	"github.com/nasctl/nasctl/runtime"
	"github.com/urfave/cli/v2"
)

func workerCommand() *cli.Command {
	return &cli.Command{
		Name:      "worker",
		Usage:     "train the trials of searches run with --broker, until stopped",
		ArgsUsage: " ",
		Description: `Connects to the broker, takes the trials of its device one per slot, trains each
on the dataset of its search (fetched from the broker once, checked by content
hash, kept in --cache) and sends back the result; it prints what it is running.
Start one per machine (or per GPU, with --device-id), any time: trials wait in
the broker's queue until a worker takes them, and a worker started before the
broker waits for it. A trial finished while the broker is away is kept until
the broker is back, not trained again.

A worker that dies or stops answering loses nothing: after the broker's AckWait
(60 s by default) its trial goes to another worker, up to 3 deliveries, after
which the search records the trial as failed. Ctrl-C finishes the trials in
flight and stops (exit 0); a second Ctrl-C hands them back to the broker at
once (exit 128 + the first signal's number: 130 after Ctrl-C alone, 143 after a
first SIGTERM; a trial whose last delivery
was handed back is queued again, not failed). A worker that takes a trial
in another job format (sent by another nasctl version) hands it back and
stops (exit 1): run the same version on every machine. So does one whose disk
fails a write (full, out of quota, read-only): free space, then start it again.

Training is deterministic for a given thread count: keep --threads at 0 to use
the search's, so that the trials match those of a local run.

Examples:
  nasctl worker --broker nats://127.0.0.1:4222
  NASCTL_BROKER_TOKEN=... nasctl worker --broker nats://gpu-box:4222 --device cuda --slots 2`,
		Flags: append(brokerFlags("the broker's address, nats://HOST:4222 (tls://HOST:4222 for TLS); required"),
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "where trials train, and which trials are taken: cpu or cuda"},
			&cli.IntFlag{Name: "device-id", Usage: "the GPU to use, for --device cuda"},
			&cli.IntFlag{Name: "slots", Value: 1, Usage: "trials trained at once"},
			&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime threads per trial (0: the search's setting)"},
			&cli.StringFlag{Name: "name", Usage: "the worker's name in logs and results (default HOST-PID)"},
			&cli.StringFlag{Name: "cache", Usage: "folder of fetched datasets (default: the user cache folder's nasctl/datasets)"},
		),
		Action: func(c *cli.Context) error {
			if err := noArgs(c, ""); err != nil {
				return err
			}
			opts, err := workerOptions(c)
			if err != nil {
				return err
			}
			return runWorker(c.Context, opts, c.App.ErrWriter)
		},
	}
}

// workerOpts are a worker's settings, the broker's address among them.
type workerOpts struct {
	Client cluster.ClientOptions
	Worker *cluster.Worker // Broker and Log are set by runWorker
}

func workerOptions(c *cli.Context) (workerOpts, error) {
	b, err := brokerOptionsOf(c)
	if err != nil {
		return workerOpts{}, err
	}
	if b.URL == "" || b.embedded() {
		return workerOpts{}, usagef("--broker: give the broker's address, nats://HOST:4222")
	}
	dev, err := runtime.ParseDevice(c.String("device"))
	if err != nil {
		return workerOpts{}, usagef("--device: %v", err)
	}
	switch {
	case c.Int("slots") < 1:
		return workerOpts{}, usagef("--slots must be at least 1, got %d", c.Int("slots"))
	case c.Int("threads") < 0:
		return workerOpts{}, usagef("--threads must be at least 0 (0: the search's setting), got %d", c.Int("threads"))
	case c.Int("device-id") < 0:
		return workerOpts{}, usagef("--device-id must be at least 0, got %d", c.Int("device-id"))
	case c.IsSet("device-id") && dev != runtime.CUDA:
		return workerOpts{}, usagef("--device-id chooses a GPU: it goes with --device cuda")
	}
	cache := c.String("cache")
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return workerOpts{}, usagef("--cache: no user cache folder (%v); give one", err)
		}
		cache = filepath.Join(dir, "nasctl", "datasets")
	}
	if err := checkCache(cache); err != nil {
		return workerOpts{}, usagef("--cache: %v; give a folder this user can create and write", err)
	}
	b.Client.Name = strings.TrimSpace("nasctl worker " + c.String("name"))
	// Workers may start before the broker, as they may outlive it.
	b.Client.Wait = true
	return workerOpts{Client: b.Client, Worker: &cluster.Worker{Device: dev, DeviceID: c.Int("device-id"), Slots: c.Int("slots"),
		Threads: c.Int("threads"), Name: c.String("name"), Cache: cache}}, nil
}

// checkCache makes the cache folder and writes a file in it: a worker that
// cannot would take every trial only to fail it.
func checkCache(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".probe-")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// runWorker runs trials until ctx is cancelled or the first interrupt.
func runWorker(ctx context.Context, opts workerOpts, errOut io.Writer) error {
	// The device's checks first: a worker that cannot train stops here,
	// saying why, instead of failing every trial it takes.
	if err := runtime.InitDevice(opts.Worker.Device, opts.Worker.DeviceID); err != nil {
		return err
	}
	defer runtime.Close()
	log := lineLogger(errOut, "")
	// A worker on another build of ONNX Runtime may give other numbers:
	// said, for the one who compares workers' results (docs/cluster.md).
	lib, _ := runtime.LibraryPath()
	log("ONNX Runtime %s (%s), device %s", runtime.Version(), lib, opts.Worker.Device)
	opts.Client.Log = log
	b, err := cluster.Connect(ctx, opts.Client)
	if err != nil && ctx.Err() != nil { // stopped while waiting for the broker: a stop like any other
		log("stopped before the broker answered")
		return nil
	}
	if err != nil {
		return err
	}
	defer b.Close()
	w := opts.Worker
	w.Broker, w.Log = b, log
	stop := make(chan struct{})
	var once sync.Once
	remove := onFirstInterrupt(func() {
		once.Do(func() {
			w.Log("finishing the trials in flight; interrupt again to hand them back")
			close(stop)
		})
	})
	defer remove()
	return w.Run(ctx, stop)
}

// lineLogger prints whole lines to w, each with the time and prefix; lines
// from several goroutines do not interleave.
func lineLogger(w io.Writer, prefix string) func(format string, args ...any) {
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%s %s%s\n", time.Now().Format("15:04:05"), prefix, fmt.Sprintf(format, args...))
	}
}
