package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nasctl/nasctl/runtime"
	"github.com/nats-io/nats.go/jetstream"
)

// Queued is a job the broker still holds: waiting for a worker, in
// training, or handed back for another delivery. A job leaves the queue
// when a worker acknowledges it, after writing its result.
type Queued struct {
	Run    string         `json:"run"`
	Trial  int            `json:"trial"`
	Final  bool           `json:"final,omitempty"`
	Device runtime.Device `json:"device"`
	// Taken says that a worker was handed the job at least once: it is in
	// training, or waits for its next delivery. Otherwise no worker has
	// seen it yet.
	Taken     bool      `json:"taken"`
	Published time.Time `json:"published"`
	// Version is the job's wire format; a worker of another format refuses
	// it.
	Version int `json:"version"`
	seq     uint64
}

// Queue lists the jobs the broker holds, device by device, oldest first.
// Jobs outlive the search that published them: a search stopped with a
// second Ctrl-C leaves its trials here, for a resume to collect, and any
// worker trains them meanwhile; Drop removes them.
func (b *Broker) Queue(ctx context.Context) ([]Queued, error) {
	var all []Queued
	for _, dev := range devices {
		taken, err := b.deliveredUpTo(ctx, dev)
		if err != nil {
			return nil, err
		}
		for seq := uint64(1); ; {
			msg, err := b.l.trials.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(Subject(dev)))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading the %s jobs on %s: %w", dev, b.url, err)
			}
			var j job // of any version: decodeJob would refuse another
			if err := json.Unmarshal(msg.Data, &j); err != nil {
				j.Run = "(unreadable job)"
			}
			all = append(all, Queued{Run: j.Run, Trial: j.Trial, Final: j.Full, Device: dev,
				Taken: msg.Sequence <= taken, Published: msg.Time, Version: j.Version, seq: msg.Sequence})
			seq = msg.Sequence + 1
		}
	}
	return all, nil
}

// deliveredUpTo is the stream sequence of the last job device's workers
// were handed (0 when the device has no consumer yet): jobs up to it were
// taken once at least.
func (b *Broker) deliveredUpTo(ctx context.Context, dev runtime.Device) (uint64, error) {
	c, err := b.l.trials.Consumer(ctx, ConsumerName(dev))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the %s workers' consumer on %s: %w", dev, b.url, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the %s workers' consumer on %s: %w", dev, b.url, err)
	}
	return info.Delivered.Stream, nil
}

// Drop removes run's jobs from the broker, those in training too (their
// worker finishes, and its result is kept for a resume), and returns how
// many it removed. A search still running publishes its own again when it
// next looks for them (within 30 s).
func (b *Broker) Drop(ctx context.Context, run string) (int, error) {
	jobs, err := b.Queue(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, j := range jobs {
		if j.Run != run {
			continue
		}
		err := b.l.trials.DeleteMsg(ctx, j.seq)
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) { // one done meanwhile is gone already
			return n, fmt.Errorf("removing trial %d of %s from %s: %w", j.Trial, run, b.url, err)
		}
		if err == nil {
			n++
		}
	}
	return n, nil
}

// QueuedRun sums up one run's jobs on one device.
type QueuedRun struct {
	Run    string         `json:"run"`
	Device runtime.Device `json:"device"`
	// Waiting and Taken count the jobs no worker has seen and those handed
	// out (see Queued.Taken); Final those of the final phase among them.
	Waiting int `json:"waiting"`
	Taken   int `json:"taken"`
	Final   int `json:"final"`
	// Trials are the jobs' trial numbers, ascending.
	Trials []int     `json:"trials"`
	Oldest time.Time `json:"oldest"`
}

// ByRun sums jobs up per run and device, the run with the oldest job first.
func ByRun(jobs []Queued) []QueuedRun {
	var runs []QueuedRun
	for _, j := range jobs {
		i := slices.IndexFunc(runs, func(r QueuedRun) bool { return r.Run == j.Run && r.Device == j.Device })
		if i < 0 {
			runs = append(runs, QueuedRun{Run: j.Run, Device: j.Device, Oldest: j.Published})
			i = len(runs) - 1
		}
		r := &runs[i]
		if j.Taken {
			r.Taken++
		} else {
			r.Waiting++
		}
		if j.Final {
			r.Final++
		}
		r.Trials = append(r.Trials, j.Trial)
		if j.Published.Before(r.Oldest) {
			r.Oldest = j.Published
		}
	}
	for i := range runs {
		slices.Sort(runs[i].Trials)
	}
	slices.SortStableFunc(runs, func(a, b QueuedRun) int { return cmp.Compare(a.Oldest.UnixNano(), b.Oldest.UnixNano()) })
	return runs
}
