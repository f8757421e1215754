package runtime

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

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
	// Gradients are one per trainable value; Optimizer is its state
	// (Adam's two moments, SGD's velocity).
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
			m.Optimizer += slots * size
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
func (b Budget) CheckMemory(net *genotype.Net, batch int, opt onnxgen.Optimizer) string {
	limit, what := b.MaxMemory, "the limit of"
	switch {
	case limit < 0:
		return ""
	case limit == 0:
		limit, what = AvailableMemory(), "the memory this machine has available,"
		if limit == 0 {
			return "" // not Linux: nothing to compare with
		}
	}
	m := EstimateTraining(net, batch, opt)
	if m.Total() <= limit {
		return ""
	}
	return fmt.Sprintf("training at batch %d needs at least %s: more than %s %s; use a smaller network or batch, or set the limit with --max-memory (max_memory in a search's budget)",
		batch, m, what, humanize.IBytes(uint64(limit)))
}
