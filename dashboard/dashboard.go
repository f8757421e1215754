// Package dashboard serves a live, read-only web dashboard of the search runs
// in a folder (package search/rundir's run directories, of every kind): the
// runs with their status, each run's trials, figures, final models and
// configuration as they are written, and two or more runs compared.
//
// It only reads: it never takes a run's lock and never writes into a run,
// so a search that is writing the run goes on undisturbed, and a line it is
// half-way through writing reads as not yet there. Pages and scripts are
// embedded (web/); nothing is fetched from elsewhere.
//
// The JSON API behind the pages (for scripts too):
//
//	GET /api/runs                          every run (Run), newest first
//	GET /api/runs/{name}                   one run: Run, its report, figures, winners
//	GET /api/runs/{name}/trials            its trials in trial order (rundir.Trial, the seed as a string)
//	GET /api/runs/{name}/trials/{id}       one trial, learning curves included
//	GET /api/runs/{name}/trials/{id}/curves.png   its learning curves (.svg too)
//	GET /api/runs/{name}/events            server-sent events: hello, trial, run, gone
//	GET /api/runs/{name}/figures/{fig}.png one of the run's figures (.svg too)
//	GET /api/runs/{name}/final             the final table, with download links
//	GET /api/runs/{name}/winners/{file}    a winner's .onnx
//	GET /api/runs/{name}/config            config.yaml as the run saved it
//	GET /api/compare?run=A&run=B           the runs by agent (search.Comparison)
//	GET /api/compare/best.png?run=A&run=B  the runs' best reward so far (best
//	                                       validation accuracy when their rewards differ)
//	GET /api/folder                        the runs folder served: {"path": as given, "abs": absolute}
package dashboard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Options configure a Server. Zero fields take the defaults on them.
type Options struct {
	// Runs is the folder of run directories; empty: "runs".
	Runs string
	// Token, when set, is required of every request: as a bearer token, a
	// "token" query parameter, or the cookie that a page opened with the
	// query parameter sets. Empty: only requests for a loopback host name
	// are served (see Listen).
	Token string
	// Poll is how often an open event stream looks at its run's files;
	// zero: 250 ms.
	Poll time.Duration
}

// Server is the dashboard's HTTP handler.
type Server struct {
	opts    Options
	mux     *http.ServeMux
	handler http.Handler // mux behind the access check
	cache   cache
}

// New returns the dashboard of the runs in opts.Runs.
func New(opts Options) *Server {
	opts.Runs = cmp.Or(opts.Runs, "runs")
	opts.Poll = cmp.Or(opts.Poll, 250*time.Millisecond)
	s := &Server{opts: opts, mux: http.NewServeMux(), cache: cache{runs: map[string]*runData{}}}
	s.routes()
	s.handler = s.guard(s.mux)
	return s
}

// ServeHTTP serves a request that passes the access check.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /{$}", page("runs.html"))
	m.HandleFunc("GET /compare", page("compare.html"))
	// A run's page, answered 404 while the run is not there: the page says
	// so and looks again every few seconds, as one opened while its search
	// starts should (it then shows the run).
	m.HandleFunc("GET /runs/{name}", func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusOK
		if _, ok := s.lookup(r.PathValue("name")); !ok {
			code = http.StatusNotFound // for scripts; the page is the same
		}
		pageWithStatus(w, "run.html", code)
	})
	m.Handle("GET /static/", staticFiles())

	m.HandleFunc("GET /api/runs", s.listRuns)
	m.HandleFunc("GET /api/runs/{name}", s.named(s.runDetail))
	m.HandleFunc("GET /api/runs/{name}/trials", s.named(s.trials))
	m.HandleFunc("GET /api/runs/{name}/trials/{id}", s.named(s.trial))
	m.HandleFunc("GET /api/runs/{name}/trials/{id}/{file}", s.named(s.curves))
	m.HandleFunc("GET /api/runs/{name}/events", s.named(s.events))
	m.HandleFunc("GET /api/runs/{name}/figures/{figure}", s.named(s.figure))
	m.HandleFunc("GET /api/runs/{name}/final", s.named(s.final))
	m.HandleFunc("GET /api/runs/{name}/winners/{file}", s.named(s.winner))
	m.HandleFunc("GET /api/runs/{name}/earlier/{plan}/best.onnx", s.named(s.earlierBest))
	m.HandleFunc("GET /api/runs/{name}/config", s.named(s.config))
	m.HandleFunc("GET /api/compare", s.compareAgents)
	m.HandleFunc("GET /api/compare/{file}", s.compare)
	m.HandleFunc("GET /api/folder", s.folder)
	// The API answers JSON, an unknown address too.
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			// Every address of the API is read with GET: the dashboard
			// changes nothing.
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: the API only reads runs (GET); it changes nothing", r.Method, r.URL.Path))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API at %s; the runs are at /api/runs", r.URL.Path))
	})
}

// Serve serves h on ln until ctx is cancelled, then closes the open event
// streams and waits a little for requests in flight.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	base, stop := context.WithCancel(context.Background())
	defer stop()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Event streams last as long as their page is open: no write
		// timeout; they end with base.
		BaseContext: func(net.Listener) context.Context { return base },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	stop()
	shut, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := srv.Shutdown(shut)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
