package cluster

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nasctl/nasctl/search"
)

// waitQueue polls the broker's queue until ok accepts it, and returns it;
// it fails the test after a minute (a bound on a hang, not a speed check).
func waitQueue(t *testing.T, b *Broker, ok func([]Queued) bool) []Queued {
	t.Helper()
	var q []Queued
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if q, err = b.Queue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if ok(q) {
			return q
		}
	}
	t.Fatalf("the queue did not come to the state wanted in a minute: %+v", q)
	return nil
}

// The queue lists each run's jobs, telling those a worker took from those
// waiting; Drop removes one run's jobs, those in training too, and leaves
// the others. A search still waiting for a dropped job publishes it again.
func TestQueueAndDrop(t *testing.T) {
	defer func(c time.Duration) { checkEvery = c }(checkEvery)
	checkEvery = 100 * time.Millisecond
	srv := startServer(t, Settings{})
	gate := make(chan struct{}) // trial 1 trains until it is closed
	st := &stand{fail: func(j search.Job) error {
		if j.Trial == 1 {
			<-gate
		}
		return nil
	}}
	startWorker(t, srv, "w1", 1, st) // one slot, kept busy by trial 1
	b := connect(t, srv, "jobs")

	// Run "old": its driver is stopped (the second Ctrl-C) with trial 1 in
	// training and trial 2 waiting.
	old := newTestExecutor(t, srv, "old")
	octx, stopOld := context.WithCancel(context.Background())
	go old.Evaluate(octx, testJob(t, 1))
	waitQueue(t, b, func(q []Queued) bool { return len(q) == 1 && q[0].Taken })
	go old.Evaluate(octx, testJob(t, 2))
	// Run "live" keeps waiting for trial 3.
	live := newTestExecutor(t, srv, "live")
	said := &logLines{}
	live.Say = said.log
	liveDone := make(chan error, 1)
	go func() {
		_, err := live.Evaluate(context.Background(), testJob(t, 3))
		liveDone <- err
	}()
	q := waitQueue(t, b, func(q []Queued) bool { return len(q) == 3 })
	stopOld()

	runs := ByRun(q)
	want := []QueuedRun{{Run: "old", Waiting: 1, Taken: 1, Trials: []int{1, 2}}, {Run: "live", Waiting: 1, Trials: []int{3}}}
	if len(runs) != len(want) {
		t.Fatalf("by run: %+v, want %+v", runs, want)
	}
	for i, r := range runs {
		w := want[i]
		if r.Run != w.Run || r.Waiting != w.Waiting || r.Taken != w.Taken || !slices.Equal(r.Trials, w.Trials) || r.Oldest.IsZero() || r.Device.String() != "cpu" {
			t.Errorf("run %d: %+v, want %+v", i, r, w)
		}
	}
	if q[0].Version != wireVersion {
		t.Errorf("job version %d, want %d", q[0].Version, wireVersion)
	}

	n, err := b.Drop(context.Background(), "old")
	if err != nil || n != 2 {
		t.Fatalf("dropping run old: %d jobs, %v; want 2", n, err)
	}
	q, err = b.Queue(context.Background())
	if err != nil || len(q) != 1 || q[0].Run != "live" || q[0].Trial != 3 {
		t.Fatalf("after dropping run old: %+v, %v; want live's trial 3 alone", q, err)
	}
	if n, err := b.Drop(context.Background(), "nosuch"); err != nil || n != 0 {
		t.Errorf("dropping a run without jobs: %d, %v", n, err)
	}

	if n, err := b.Drop(context.Background(), "live"); err != nil || n != 1 {
		t.Fatalf("dropping run live: %d jobs, %v; want 1", n, err)
	}
	said.waitFor(t, "trial 3: the broker no longer holds it (removed with nasctl jobs --drop")
	waitQueue(t, b, func(q []Queued) bool { return len(q) == 1 && q[0].Run == "live" })

	// Trial 1 of run old, dropped in training, finishes: its result is
	// stored for a resume, and the slot goes on to live's trial 3, which
	// trains once. Dropped trial 2 never trains.
	close(gate)
	if err := <-liveDone; err != nil {
		t.Fatalf("live's trial 3 after its drop: %v", err)
	}
	w, err := jobOf("old", DataSpec{Hash: "sha256:00"}, testJob(t, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, key := w.encode()
	if _, err := b.l.results.Get(context.Background(), resultKey(key)); err != nil {
		t.Errorf("the result of old's trial 1, dropped in training: %v", err)
	}
	if n := st.calls.Load(); n != 2 {
		t.Errorf("%d trainings, want 2 (old's trial 1 and live's trial 3)", n)
	}
}
