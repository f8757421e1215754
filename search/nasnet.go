package search

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/nasctl/nasctl/controller"
)

// NASNetEvent reports the progress of a NASNet search to whoever draws it.
type NASNetEvent struct {
	Kind        string   `json:"event"` // "start", "episode", "stopping", "done"
	Episode     *Episode `json:"episode,omitempty"`
	Done        int      `json:"done"`        // episodes finished
	Total       int      `json:"total"`       // episodes planned
	Temperature float64  `json:"temperature"` // of the next episode
	Best        float64  `json:"best_reward"`
	BestCell    string   `json:"best_cell,omitempty"`
	Recent      float64  `json:"mean_reward_last_100"` // of all, while fewer
	Elapsed     float64  `json:"elapsed_seconds"`
	Remaining   float64  `json:"remaining_seconds"` // estimate, 0 when unknown
	Message     string   `json:"message,omitempty"`
}

// NASNetSearch is a NASNet cell search (Zoph et al. 2018, with the study's
// REINFORCE controller) bound to a run directory: the controller proposes a
// cell, the Reward scores it, the controller learns, the episode is logged.
//
// Ownership: a NASNetSearch owns its NASNetStore (the directory's lock) until
// Close.
type NASNetSearch struct {
	cfg      NASNetConfig
	store    *NASNetStore
	reward   Reward
	ctrl     *controller.Controller
	episodes []Episode
	best     int // index of the best episode; -1 before the first

	start     time.Time
	startDone int       // episodes done when Run started
	lastWrite time.Time // of the derived files (top, CSV)

	// Progress, when set, receives every event (from the Run goroutine).
	Progress func(NASNetEvent)
}

// summaryEvery is how often a running search rewrites top.json,
// top-cells.txt and episodes.csv; they are always written when it ends.
const summaryEvery = 10 * time.Second

// NewNASNet starts a new run of cfg (WithDefaults and checked) in
// cfg.Dir/cfg.Name. The controller is made first, so that a configuration
// it refuses leaves no directory behind; config.yaml saves the controller's
// settings with its defaults filled in.
func NewNASNet(cfg NASNetConfig, reward Reward) (*NASNetSearch, error) {
	ctrl, err := controller.New(reward.Space(), cfg.Controller.Config(), cfg.Seed)
	if err != nil {
		return nil, err
	}
	cfg.Controller = SettingsOf(ctrl.Config())
	store, err := createNASNetStore(filepath.Join(cfg.Dir, cfg.Name), cfg)
	if err != nil {
		return nil, err
	}
	return &NASNetSearch{cfg: cfg, store: store, reward: reward, ctrl: ctrl, best: -1}, nil
}

// ResumeNASNet opens the run in dir and brings its controller to exactly
// where the last logged episode left it: the controller state saved after
// the last update is loaded (a fresh controller from the seed if there was
// no update yet), then the episodes logged after it are replayed: the
// controller proposes again, which must give the logged actions, and
// records the logged rewards, which are not evaluated again. The search then
// goes on as an uninterrupted one would have. newReward makes the reward
// from the saved settings; nil means NewReward.
func ResumeNASNet(dir string, newReward func(NASNetConfig) (Reward, error)) (*NASNetSearch, error) {
	if newReward == nil {
		newReward = NewReward
	}
	store, cfg, eps, err := openNASNetStore(dir)
	if err != nil {
		return nil, err
	}
	s, err := resumeNASNet(store, cfg, eps, newReward)
	if err != nil {
		store.Close()
		return nil, err
	}
	return s, nil
}

func resumeNASNet(store *NASNetStore, cfg NASNetConfig, eps []Episode, newReward func(NASNetConfig) (Reward, error)) (*NASNetSearch, error) {
	path := filepath.Join(store.Dir, fileConfig)
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("%s: invalid settings:\n%v", path, err)
	}
	reward, err := newReward(cfg)
	if err != nil {
		return nil, err
	}
	ctrl, err := store.LoadController(reward.Space())
	if err != nil {
		return nil, err
	}
	if ctrl == nil {
		if ctrl, err = controller.New(reward.Space(), cfg.Controller.Config(), cfg.Seed); err != nil {
			return nil, err
		}
	}
	if ctrl.Config() != cfg.Controller.Config() {
		return nil, fmt.Errorf("%s: the controller settings differ from those saved in %s; a run's settings cannot change (start a new run with --config %s)",
			path, fileController, path)
	}
	saved := ctrl.Episode()
	if saved > len(eps) {
		return nil, fmt.Errorf("%s: the controller has seen %d episodes but %s holds %d; the files do not belong together",
			store.Dir, saved, fileEpisodes, len(eps))
	}
	replayed := false
	for _, e := range eps[saved:] {
		actions, err := ctrl.Propose()
		if err != nil {
			return nil, err
		}
		if !slices.Equal(actions, e.Actions) {
			return nil, fmt.Errorf("%s: replaying episode %d: the controller proposes %v, the log has %v; the log or %s was changed",
				store.Dir, e.Episode, actions, e.Actions, fileController)
		}
		info, err := ctrl.Record(actions, e.Reward)
		if err != nil {
			return nil, fmt.Errorf("replaying episode %d: %w", e.Episode, err)
		}
		replayed = replayed || info.Update != nil
	}
	if replayed {
		if err := store.SaveController(ctrl); err != nil {
			return nil, err
		}
	}
	s := &NASNetSearch{cfg: cfg, store: store, reward: reward, ctrl: ctrl, best: -1}
	for _, e := range eps {
		s.learn(e)
	}
	return s, nil
}

// Close releases the run directory.
func (s *NASNetSearch) Close() error { return s.store.Close() }

// Config returns the run's settings (the controller's with defaults).
func (s *NASNetSearch) Config() NASNetConfig { return s.cfg }

// Dir returns the run directory.
func (s *NASNetSearch) Dir() string { return s.store.Dir }

// Episodes returns the finished episodes in order.
func (s *NASNetSearch) Episodes() []Episode { return s.episodes }

// Describe names the search's reward.
func (s *NASNetSearch) Describe() string { return s.reward.Describe() }

// Run samples the remaining episodes, then writes the report, top cells,
// CSV and plots. Closing stop makes it finish the episode in flight and
// return ErrStopped; cancelling ctx abandons that episode (returning
// ctx.Err()). Either way every finished episode is on disk, the derived
// files are written, and the run can be resumed.
func (s *NASNetSearch) Run(ctx context.Context, stop <-chan struct{}) error {
	s.start, s.startDone = time.Now(), len(s.episodes)
	s.emit(NASNetEvent{Kind: "start", Message: fmt.Sprintf("%d of %d episodes done", len(s.episodes), s.cfg.Episodes)})
	err := s.loop(ctx, stop)
	if werr := s.writeResults(); err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	s.emit(NASNetEvent{Kind: "done", Message: s.report().Markdown()})
	return nil
}

type evalResult struct {
	ev  Evaluation
	err error
}

func (s *NASNetSearch) loop(ctx context.Context, stop <-chan struct{}) error {
	stopping := false
	for len(s.episodes) < s.cfg.Episodes && !stopping {
		select {
		case <-stop:
			stopping = true
			s.emit(NASNetEvent{Kind: "stopping", Message: fmt.Sprintf("stopping after %d episodes", len(s.episodes))})
			continue
		default:
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		n := len(s.episodes) + 1
		actions, err := s.ctrl.Propose()
		if err != nil {
			return err
		}
		cell, err := s.reward.Cell(actions)
		if err != nil {
			return fmt.Errorf("episode %d: %w", n, err)
		}
		// The reward runs beside the loop so that a stop request is
		// acknowledged while a long evaluation is in flight.
		results := make(chan evalResult, 1)
		go func() {
			ev, err := s.reward.Evaluate(ctx, n, actions)
			results <- evalResult{ev, err}
		}()
		var r evalResult
		for waiting := true; waiting; {
			select {
			case r = <-results:
				waiting = false
			case <-stop:
				stop, stopping = nil, true
				s.emit(NASNetEvent{Kind: "stopping", Message: fmt.Sprintf("finishing episode %d in flight; interrupt again to abandon it", n)})
			case <-ctx.Done():
				<-results // the reward returns once ctx is cancelled
				return ctx.Err()
			}
		}
		if r.err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("episode %d (%s): %w", n, cell, r.err)
		}
		if err := s.record(n, actions, cell, r.ev, start); err != nil {
			return err
		}
	}
	if stopping && len(s.episodes) < s.cfg.Episodes {
		return ErrStopped
	}
	return nil
}

// record teaches the controller an evaluated episode, makes it durable
// (then the controller's state, after an update) and reports it.
func (s *NASNetSearch) record(n int, actions []int, cell string, ev Evaluation, start time.Time) error {
	info, err := s.ctrl.Record(actions, ev.Reward)
	if err != nil {
		return fmt.Errorf("episode %d: %w", n, err)
	}
	e := Episode{Episode: n, Actions: actions, Cell: cell, Reward: ev.Reward, Accuracy: ev.Accuracy,
		Baseline: info.Baseline, Temperature: info.Temperature}
	if u := info.Update; u != nil {
		e.Update = &EpisodeUpdate{Index: u.Index, Kept: u.Kept, Skipped: u.Kept == 0, Loss: u.Loss, GradNorm: u.GradNorm}
	}
	e.Seconds = time.Since(start).Seconds()
	if err := s.store.Append(e); err != nil {
		return fmt.Errorf("recording episode %d: %w", n, err)
	}
	if info.Update != nil {
		if err := s.store.SaveController(s.ctrl); err != nil {
			return fmt.Errorf("saving the controller after episode %d: %w", n, err)
		}
	}
	s.learn(e)
	if time.Since(s.lastWrite) >= summaryEvery {
		if err := s.writeSummary(); err != nil {
			return err
		}
	}
	ec := e
	s.emit(NASNetEvent{Kind: "episode", Episode: &ec})
	return nil
}

// learn adds a finished episode to the search's memory.
func (s *NASNetSearch) learn(e Episode) {
	s.episodes = append(s.episodes, e)
	if s.best < 0 || e.Reward > s.episodes[s.best].Reward {
		s.best = len(s.episodes) - 1
	}
}

// emit fills the running totals of an event and reports it.
func (s *NASNetSearch) emit(e NASNetEvent) {
	if s.Progress == nil {
		return
	}
	e.Done, e.Total = len(s.episodes), s.cfg.Episodes
	e.Temperature = s.ctrl.Temperature()
	if s.best >= 0 {
		e.Best, e.BestCell = s.episodes[s.best].Reward, s.episodes[s.best].Cell
	}
	e.Recent = meanReward(s.episodes[max(0, len(s.episodes)-100):])
	e.Elapsed = time.Since(s.start).Seconds()
	if done := len(s.episodes) - s.startDone; done > 0 {
		e.Remaining = e.Elapsed / float64(done) * float64(max(s.cfg.Episodes-len(s.episodes), 0))
	}
	s.Progress(e)
}

// meanReward returns the mean reward of eps (0 for none).
func meanReward(eps []Episode) float64 {
	if len(eps) == 0 {
		return 0
	}
	sum := 0.0
	for _, e := range eps {
		sum += e.Reward
	}
	return sum / float64(len(eps))
}
