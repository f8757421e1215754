package search

import "context"

// pool runs functions on at most limit goroutines and delivers their results
// on a channel; the caller receives them and counts them off busy. Its
// functions never block on sending, and close cancels those in flight and
// waits for them, so that no work outlives its caller.
type pool[T any] struct {
	limit, busy int
	results     chan T
	ctx         context.Context
	cancel      context.CancelFunc
}

func newPool[T any](ctx context.Context, limit int) *pool[T] {
	ctx, cancel := context.WithCancel(ctx)
	return &pool[T]{limit: limit, results: make(chan T, limit), ctx: ctx, cancel: cancel}
}

// full reports whether every goroutine is busy.
func (p *pool[T]) full() bool { return p.busy >= p.limit }

// run starts f on a goroutine of its own with the pool's context.
func (p *pool[T]) run(f func(ctx context.Context) T) {
	p.busy++
	go func() { p.results <- f(p.ctx) }()
}

// close cancels the work in flight and waits for it.
func (p *pool[T]) close() {
	p.cancel()
	for ; p.busy > 0; p.busy-- {
		<-p.results
	}
}
