package runtime

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/dustin/go-humanize"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// TrainingMemory is what a training session of a network holds at once, in
// bytes of float32: a lower bound of its memory, as ONNX Runtime's arena and
// the runtime's own buffers come on top (figures: docs/limits.md, "Training
// memory").
type TrainingMemory struct {
	// Weights are the parameters and batch normalisation statistics, in
	// two sets (the runtime alternates between them across steps).
	Weights int64 `json:"weights"`
	// Gradients are one per trainable value; Optimizer is the optimizer's
	// state (Adam's two moments, SGD's velocity) of each trainable value, in
	// two sets like the weights (the runtime alternates between them too).
	Gradients int64 `json:"gradients"`
	Optimizer int64 `json:"optimizer"`
	// Update is the optimizer update's working copies: it concatenates the
	// parameters, gradients and slots into vectors, updates them and splits
	// the results, about three copies per vector.
	Update int64 `json:"update"`
	// Activations are every activation of the batch's forward pass, kept for
	// the backward pass.
	Activations int64 `json:"activations"`
	// Largest is the largest single intermediate of the gradients: a
	// convolution's window tensor (input channels x kernel x output
	// positions per image) for the batch.
	Largest int64 `json:"largest"`
}

// Total is the sum of the parts.
func (m TrainingMemory) Total() int64 {
	return m.Weights + m.Gradients + m.Optimizer + m.Update + m.Activations + m.Largest
}

// String says the total and its largest parts.
func (m TrainingMemory) String() string {
	return fmt.Sprintf("%s (weights %s, gradients %s, optimizer %s, its update %s, activations %s, largest intermediate %s)",
		humanize.IBytes(uint64(m.Total())), humanize.IBytes(uint64(m.Weights)), humanize.IBytes(uint64(m.Gradients)),
		humanize.IBytes(uint64(m.Optimizer)), humanize.IBytes(uint64(m.Update)), humanize.IBytes(uint64(m.Activations)),
		humanize.IBytes(uint64(m.Largest)))
}

// EstimateTraining returns the memory a training session of net holds with
// batch images per step and opt's state (nil: Adam). It computes in int64 from
// the network's shapes and allocates nothing, so it serves to refuse a
// network before anything is built.
func EstimateTraining(net *genotype.Net, batch int, opt onnxgen.Optimizer) TrainingMemory {
	if opt == nil {
		opt = onnxgen.Adam{}
	}
	var m TrainingMemory
	for _, p := range onnxgen.Params(net) {
		size := 4 * int64(p.Size())
		m.Weights += 2 * size
		if !p.State {
			slots := int64(len(opt.Slots()))
			m.Gradients += size
			m.Optimizer += 2 * slots * size
			m.Update += 3 * (1 + slots) * size
		}
	}
	m.Activations = int64(batch) * net.ActivationBytes()
	for _, nd := range net.Nodes {
		if nd.Op != genotype.OpConv {
			continue
		}
		kh, kw, _ := nd.Window()
		window := 4 * int64(nd.In.C/nd.Group()) * int64(kh*kw) * int64(nd.Out.H) * int64(nd.Out.W)
		m.Largest = max(m.Largest, int64(batch)*window)
	}
	return m
}

// AvailableMemory returns the memory the system can give a process without
// swapping (MemAvailable of /proc/meminfo), or 0 where it cannot tell.
func AvailableMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	return memAvailable(bufio.NewScanner(f))
}

// memAvailable reads MemAvailable (in kB) from /proc/meminfo's lines.
func memAvailable(s *bufio.Scanner) int64 {
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// CheckMemory returns why a training session of net, with batch images per
// step and opt's state, does not fit b.MaxMemory, or "" when it fits. It
// computes from shapes alone, so it refuses before anything is allocated.
// With MaxMemory zero it compares with what the machine would have for this
// training alone: while other trainings of this process are in flight, what
// it had when they started (less any memory taken since by other processes),
// so that a training is not refused for what its neighbours hold.
func (b Budget) CheckMemory(net *genotype.Net, batch int, opt onnxgen.Optimizer) string {
	limit, what := b.MaxMemory, "the limit of"
	switch {
	case limit < 0:
		return ""
	case limit == 0:
		limit, what = trainings.machine(), "the memory this machine has available,"
		if limit == 0 {
			return "" // not Linux: nothing to compare with
		}
	}
	m := EstimateTraining(net, batch, opt)
	if m.Total() > limit {
		return fmt.Sprintf("training at batch %d needs at least %s: more than %s %s; use a smaller network or batch, or set the limit with --max-memory (max_memory in a search's budget, which a resume keeps: a new run takes another)",
			batch, m, what, humanize.IBytes(uint64(limit)))
	}
	// Against the machine, a cell network is counted as it was measured:
	// its estimate fitted a machine on which it then took all the memory,
	// and the kernel killed the process.
	if mg := marginOf(net); b.MaxMemory == 0 && mg == cellMargin && mg.times(m.Total()) > limit {
		return fmt.Sprintf("training at batch %d needs at least %s, and a cell network is counted at %d/%d of that, %s, as such networks took 1.8 to 2.2 times their estimate when measured: more than %s %s; use a smaller network or batch, or set the limit with --max-memory (max_memory in a search's budget, which a resume keeps: a new run takes another)",
			batch, m, mg.num, mg.den, humanize.IBytes(uint64(mg.times(m.Total()))), what, humanize.IBytes(uint64(limit)))
	}
	return ""
}

// The margins a training's estimate is counted with, because the estimate
// is a lower bound (docs/limits.md, "Training memory"): the large layer
// networks measured peaked at 1.18 and 1.12 times theirs (the dense one 1.10
// without the process's own 75 MiB), and cell networks at 1.8 to 2.2 times
// (ONNX Runtime's arena about half of the difference); 4/3 and 5/2 cover
// them.
type margin struct{ num, den int64 }

var (
	layerMargin = margin{4, 3}
	cellMargin  = margin{5, 2}
)

// marginOf is the margin of net's kind of network.
func marginOf(net *genotype.Net) margin {
	if _, ok := net.Genotype.(genotype.CellNet); ok {
		return cellMargin
	}
	return layerMargin
}

// times is b times the margin, saturating.
func (m margin) times(b int64) int64 {
	if b > math.MaxInt64/m.num {
		return math.MaxInt64
	}
	return b * m.num / m.den
}

// trainingNeed is the memory a training of net is counted for in the
// ledger.
func trainingNeed(net *genotype.Net, m TrainingMemory) int64 {
	return marginOf(net).times(m.Total())
}

// memoryGate admits the trainings of this process so that their needs fit
// the machine together: each fits alone (CheckMemory), but two side by side
// did not, and the kernel killed the process (docs/limits.md).
type memoryGate struct {
	available func() int64 // the machine's available memory, 0 where unknown
	mu        sync.Mutex
	base      int64         // available when the first training in flight was admitted
	held      int64         // the needs of the trainings in flight
	running   int           // trainings in flight
	queue     []*waiter     // trainings waiting, first come first
	changed   chan struct{} // closed and replaced when the ledger or the queue changes
}

// waiter is a place in the queue; not an empty struct, as pointers to
// zero-size values may compare equal.
type waiter struct{ need int64 }

// trainings is the ledger of the trainings in flight in this process: the
// search's workers, the final phase and a cluster worker's slots all train
// through Train, concurrently.
var trainings = newMemoryGate(AvailableMemory)

func newMemoryGate(available func() int64) *memoryGate {
	return &memoryGate{available: available, changed: make(chan struct{})}
}

// acquire admits a training that needs need bytes and returns the function
// that releases it. The training waits while it does not fit beside those in
// flight (a refusal would record a wrong result: it fits alone), and behind
// those that came first, so that a large one is not passed over for ever; it
// reports whether it waited, and ctx.Err() if ctx ends the wait. A negative
// b.MaxMemory (no guard) admits at once, outside the ledger.
func (g *memoryGate) acquire(ctx context.Context, b Budget, need int64) (release func(), waited bool, err error) {
	if b.MaxMemory < 0 {
		return func() {}, false, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	w := &waiter{need}
	g.queue = append(g.queue, w)
	for g.queue[0] != w || !g.fits(need) {
		waited = true
		changed := g.changed
		g.mu.Unlock()
		select {
		case <-changed:
			g.mu.Lock()
		case <-ctx.Done():
			g.mu.Lock()
			g.queue = slices.DeleteFunc(g.queue, func(q *waiter) bool { return q == w })
			g.broadcast() // the next in the queue may be first now
			return nil, waited, ctx.Err()
		}
	}
	g.queue = g.queue[1:]
	if g.running == 0 {
		g.base = g.available()
	}
	g.running++
	g.held += need
	g.broadcast() // the next in the queue may fit too
	return sync.OnceFunc(func() { g.release(need) }), waited, nil
}

// fits reports whether need fits beside the trainings in flight; alone, a
// training always fits here, as CheckMemory has refused it otherwise.
func (g *memoryGate) fits(need int64) bool {
	return g.running == 0 || g.base == 0 || g.held+need <= g.capacity()
}

// capacity is the memory the trainings in flight may hold together: the
// base, or less if other processes took memory since (what is available now
// plus what the trainings in flight are counted for).
func (g *memoryGate) capacity() int64 {
	now := g.available()
	if now == 0 {
		return g.base
	}
	return min(g.base, now+g.held)
}

// machine is the memory a training of this process would have alone.
func (g *memoryGate) machine() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running == 0 || g.base == 0 {
		return g.available()
	}
	return g.capacity()
}

func (g *memoryGate) release(need int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running--
	g.held -= need
	g.broadcast()
}

// broadcast wakes the waiting trainings to look at the ledger again.
func (g *memoryGate) broadcast() {
	close(g.changed)
	g.changed = make(chan struct{})
}
