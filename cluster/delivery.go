package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// delivery is a job's message as a worker slot took it from the consumer.
//
// What a worker tells the broker about a delivery (in progress, done,
// handed back) names the message by its sequence in StreamTrials, and the
// broker applies it to whatever message the consumer has in flight under
// that sequence. A broker restarted on an empty store numbers its messages
// from 1 again: told there, an acknowledgement of a delivery taken before
// the restart would remove another job from the queue while its worker
// trains it, a hand-back would have that job trained twice. So before each,
// a delivery makes sure that the broker still holds its message, and once
// it does not, tells the broker nothing more about it. The job's result
// still counts: it is stored under the job's key, which does not depend on
// the broker.
type delivery struct {
	m    jetstream.Msg
	b    *Broker
	what string                        // the job, for the log
	n    uint64                        // its number among the job's deliveries, from 1
	log  func(format string, a ...any) // hears, once, that the broker lost it
	gone atomic.Bool                   // the broker no longer holds it: for good
	// kept, when set before an acknowledgement, says what of the job is
	// stored: the log says it too when the delivery is gone.
	kept string
}

// errGone is a delivery the broker no longer holds: acknowledged by
// another worker that took the job when this one's lease ran out, or lost
// by the broker.
var errGone = errors.New("the broker no longer holds this delivery (another worker took the job when this one's lease ran out, and finished it or failed it for good; or it was removed with nasctl jobs --drop, or the broker lost it, restarted on an empty store)")

// held reports whether the message at the delivery's sequence in
// StreamTrials is the delivery's own: the same message ID, stored at the
// same time (the ID alone would take for ours a copy of the same job
// published again by a restarted driver). An error is a broker that did
// not say.
func (d *delivery) held(ctx context.Context) (bool, error) {
	meta, err := d.m.Metadata()
	if err != nil {
		return false, err
	}
	stored, err := d.b.l.trials.GetMsg(ctx, meta.Sequence.Stream)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return stored.Header.Get(jetstream.MsgIDHeader) == d.m.Headers().Get(jetstream.MsgIDHeader) &&
		stored.Time.Equal(meta.Timestamp), nil
}

// tell sends the broker an acknowledgement, a hand-back or a heartbeat
// (send) about the delivery, if the broker still holds it. It returns
// errGone when it does not, or why it could not be made sure of, and then
// sends nothing: a job not acknowledged comes back after the AckWait, to a
// worker that finds its result. Nothing is sent while the connection is
// down: it would be sent on reconnection, unchecked.
func (d *delivery) tell(ctx context.Context, send func(jetstream.Msg) error) error {
	switch {
	case d.gone.Load():
		return errGone
	case !d.b.nc.IsConnected():
		return errors.New("the connection to the broker is down")
	}
	held, err := d.held(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("cannot make sure the broker still holds this delivery: %w", err)
	case !held:
		if !d.gone.Swap(true) {
			kept := ""
			if d.kept != "" {
				kept = "; " + d.kept
			}
			d.log("%s: %v: it will not be acknowledged, handed back or renewed, lest another job under its number be%s", d.what, errGone, kept)
		}
		return errGone
	}
	return send(d.m)
}

// ack acknowledges the delivery (its result stored), waiting for the
// broker's word.
func (d *delivery) ack(ctx context.Context) error {
	return d.tell(ctx, func(m jetstream.Msg) error { return m.DoubleAck(ctx) })
}

// inProgress renews the delivery's lease. While the connection is down
// it does not: the worker's next try, once it is back, does.
func (d *delivery) inProgress(ctx context.Context) {
	d.tell(ctx, jetstream.Msg.InProgress)
}
