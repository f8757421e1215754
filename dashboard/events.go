package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/nasctl/nasctl/search/rundir"
)

// keepAlive is how often an idle event stream sends a comment, so that
// proxies and browsers keep it open.
const keepAlive = 15 * time.Second

// events answers GET /api/runs/{name}/events with server-sent events:
//
//	hello  at once, the Run: a page (re)loads the trials now; every trial
//	       recorded after this comes as an event
//	trial  a trial recorded since (pageTrial, curves included)
//	run    the Run, whenever its files or its status change
//
// The stream looks at the run's files every Poll: a stat of each watched
// file, and a read of the run only when one changed. Polling, not file
// notifications: it costs microseconds, needs no watcher per file, and sees
// a run on a network file system written from another machine, where
// inotify sees nothing.
func (s *Server) events(w http.ResponseWriter, r *http.Request, ref *runRef) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not hold events back
	d, running := s.cache.get(ref.dir), rundir.Running(ref.dir)
	seen := map[int]bool{}
	for _, t := range d.trials {
		seen[t.ID] = true
	}
	if writeEvent(w, rc, "hello", d.run(ref, running)) != nil {
		return
	}
	tick := time.NewTicker(s.opts.Poll)
	defer tick.Stop()
	idle := time.Now()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		nd, nrunning := s.cache.get(ref.dir), rundir.Running(ref.dir)
		if nd.stamp == d.stamp && nrunning == running {
			if time.Since(idle) >= keepAlive {
				if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
					return
				}
				idle = time.Now()
			}
			continue
		}
		d, running, idle = nd, nrunning, time.Now()
		for _, t := range d.trials {
			if !seen[t.ID] {
				seen[t.ID] = true
				if writeEvent(w, rc, "trial", pageTrialOf(t)) != nil {
					return
				}
			}
		}
		if writeEvent(w, rc, "run", d.run(ref, running)) != nil {
			return
		}
	}
}

// writeEvent sends one event of JSON data (one line: Marshal writes no
// newlines) and flushes it.
func writeEvent(w http.ResponseWriter, rc *http.ResponseController, event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
		return err
	}
	return rc.Flush()
}
