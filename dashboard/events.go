package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nasctl/nasctl/search/rundir"
)

// keepAlive is how often an idle event stream sends a comment, so that
// proxies and browsers keep it open.
const keepAlive = 15 * time.Second

// events answers GET /api/runs/{name}/events with server-sent events:
//
//	hello  at once, the Run: a page (re)loads the trials now; every trial
//	       recorded after this comes as an event. Sent again when the log
//	       was rewritten (fewer trials, or another record for an id already
//	       sent, as a recovery from a damaged line makes it): the page then
//	       drops what it has and reloads.
//	trial  a trial recorded since (rundir.Trial, curves included)
//	run    the Run, whenever its files or its status change
//	gone   the run's folder was removed ({"error": why}); the stream ends
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
	sent := sentTrials(d.trials())
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
		// Checked before reading: a run being removed reads as unreadable,
		// with an error meant for the command line.
		if !present(ref.dir) {
			s.cache.forget(ref.dir)
			writeEvent(w, rc, "gone", map[string]string{"error": fmt.Sprintf("run %s was deleted from the runs folder", ref.name)})
			return
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
		if sent.rewritten(d.trials()) {
			sent = sentTrials(d.trials())
			if writeEvent(w, rc, "hello", d.run(ref, running)) != nil {
				return
			}
			continue
		}
		for _, t := range d.trials() {
			if _, ok := sent[t.ID]; !ok {
				sent[t.ID] = recordOf(t)
				if writeEvent(w, rc, "trial", t) != nil {
					return
				}
			}
		}
		if writeEvent(w, rc, "run", d.run(ref, running)) != nil {
			return
		}
	}
}

// present reports whether the run in dir is still there: a removed folder
// (or one being removed) has lost its config.yaml.
func present(dir string) bool {
	fi, err := os.Lstat(filepath.Join(dir, rundir.FileConfig))
	return err == nil && fi.Mode().IsRegular()
}

// record is what tells two records of one trial id apart: a trial recorded
// again finished at another time, and mostly with another result.
type record struct {
	finished int64 // Unix nanoseconds: time.Time's == also compares zones
	arch     string
	status   rundir.Status
	reward   float64
}

func recordOf(t rundir.Trial) record {
	return record{finished: t.Finished.UnixNano(), arch: t.Arch, status: t.Status, reward: t.Reward}
}

// sent are the trials a stream has sent, by id.
type sent map[int]record

func sentTrials(trials []rundir.Trial) sent {
	s := make(sent, len(trials))
	for _, t := range trials {
		s[t.ID] = recordOf(t)
	}
	return s
}

// rewritten reports whether the log no longer holds what was sent: fewer
// trials, or an id recorded differently. A search only appends, so this is
// a log cut short or replaced by hand (and perhaps resumed since).
func (s sent) rewritten(trials []rundir.Trial) bool {
	if len(trials) < len(s) {
		return true
	}
	for _, t := range trials {
		if r, ok := s[t.ID]; ok && r != recordOf(t) {
			return true
		}
	}
	return false
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
