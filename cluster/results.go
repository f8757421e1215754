package cluster

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// A job's entry in the results bucket is written by whoever finishes the
// job first and is final once it holds a result; a failure (every delivery
// failed) holds only until the job is tried again: a later driver retries
// a failure it finds, as the workers may have been fixed meanwhile.

// failed reports whether a result entry records a failure.
func failed(value []byte) bool {
	var r result
	return json.Unmarshal(value, &r) == nil && r.Failed != ""
}

// settled reports whether the job has its final result.
func (b *Broker) settled(ctx context.Context, key string) bool {
	e, err := b.l.results.Get(ctx, resultKey(key))
	return err == nil && !failed(e.Value())
}

// putResult writes the job's entry unless it is settled: created when
// there is none, or replacing a failure, by revision, so that of two
// writers at once one wins and the other is told. It reports whether it
// wrote.
func (b *Broker) putResult(ctx context.Context, key string, value []byte) (bool, error) {
	k := resultKey(key)
	for {
		e, err := b.l.results.Get(ctx, k)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = b.l.results.Create(ctx, k, value)
		case err != nil:
			return false, err
		case !failed(e.Value()):
			return false, nil // settled by someone else
		default:
			_, err = b.l.results.Update(ctx, k, value, e.Revision())
		}
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return false, err
		}
		// Written by another in between: look again.
	}
}
