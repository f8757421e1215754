package runtime

import (
	"context"
	"fmt"
	"os"

	"github.com/nasctl/nasctl/onnxgen"
)

// Model is an exported nasctl model (an inference graph with input "x" and
// output "probabilities") loaded for prediction.
//
// Ownership: the caller of LoadModel or NewModel owns the Model and must
// Close it before runtime.Close; it owns its session and its batch tensors.
type Model struct {
	Info *onnxgen.ModelInfo
	sess *Session
	x    map[int]*Tensor[float32]
	p    map[int]*Tensor[float32]
}

// LoadModel reads an exported model from path.
func LoadModel(path string, opts SessionOptions) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return NewModel(b, opts)
}

// NewModel loads an exported model from its bytes.
func NewModel(b []byte, opts SessionOptions) (*Model, error) {
	info, err := onnxgen.ReadModelInfo(b)
	if err != nil {
		return nil, err
	}
	if len(info.Inputs) != 1 || info.Inputs[0] != onnxgen.InputImages || len(info.Outputs) != 1 || info.Outputs[0] != onnxgen.OutputProbs {
		return nil, fmt.Errorf("not a nasctl model: inputs %v and outputs %v, want [%s] and [%s]", info.Inputs, info.Outputs, onnxgen.InputImages, onnxgen.OutputProbs)
	}
	if info.Input.Height == 0 || len(info.Classes) < 2 {
		return nil, fmt.Errorf("model metadata lacks %s or %s", onnxgen.MetaInput, onnxgen.MetaClasses)
	}
	s, err := NewSession(b, info.Inputs, info.Outputs, opts)
	if err != nil {
		return nil, err
	}
	return &Model{Info: info, sess: s, x: map[int]*Tensor[float32]{}, p: map[int]*Tensor[float32]{}}, nil
}

// Close releases the session and tensors.
func (m *Model) Close() error {
	for _, t := range m.x {
		t.Close()
	}
	for _, t := range m.p {
		t.Close()
	}
	return m.sess.Close()
}

// Predict returns the class probabilities of n images (pixels holds n*C*H*W
// values, NCHW), n*K values, batch by batch.
func (m *Model) Predict(ctx context.Context, pixels []float32, batch int) ([]float32, error) {
	in := m.Info.Input
	size := in.Channels * in.Height * in.Width
	if len(pixels)%size != 0 {
		return nil, fmt.Errorf("predict: %d values are not whole images of %s", len(pixels), in)
	}
	if batch < 1 {
		batch = 128
	}
	k := len(m.Info.Classes)
	n := len(pixels) / size
	out := make([]float32, 0, n*k)
	for lo := 0; lo < n; lo += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := min(batch, n-lo)
		x, p, err := m.batchTensors(b)
		if err != nil {
			return nil, err
		}
		copy(x.Data(), pixels[lo*size:(lo+b)*size])
		if err := m.sess.Run([]Value{x}, []Value{p}); err != nil {
			return nil, fmt.Errorf("predict: %w", err)
		}
		out = append(out, p.Data()...)
	}
	return out, nil
}

// batchTensors returns the model's input and output tensors for batches of
// b images, allocating them on first use; the Model owns and closes them.
func (m *Model) batchTensors(b int) (x, p *Tensor[float32], err error) {
	if x, ok := m.x[b]; ok {
		return x, m.p[b], nil
	}
	in := m.Info.Input
	if x, err = NewZeroTensor[float32](int64(b), int64(in.Channels), int64(in.Height), int64(in.Width)); err != nil {
		return nil, nil, err
	}
	if p, err = NewZeroTensor[float32](int64(b), int64(len(m.Info.Classes))); err != nil {
		x.Close()
		return nil, nil, err
	}
	m.x[b], m.p[b] = x, p
	return x, p, nil
}

// Evaluation is the accuracy of a model on labelled images.
type Evaluation struct {
	N        int     `json:"n"`
	Correct  int     `json:"correct"`
	Accuracy float64 `json:"accuracy"`
	// Confusion[i][j] counts images of class i predicted as class j.
	Confusion [][]int `json:"confusion"`
	// Mistakes are the images predicted wrong, in the order of the
	// examples' indices (left out of JSON: a caller names their files).
	Mistakes []Mistake `json:"-"`
}

// Mistake is one image an Evaluation predicted wrong: its index into the
// examples' images, its label, and the predicted class with its
// probability.
type Mistake struct {
	Image, Label, Predicted int
	Probability             float32
}

// Evaluate predicts the images of ex and compares with their labels; a
// prediction is the most probable class (ties go to the lower index).
func (m *Model) Evaluate(ctx context.Context, ex Examples, batch int) (*Evaluation, error) {
	in := m.Info.Input
	size := in.Channels * in.Height * in.Width
	k := len(m.Info.Classes)
	pixels := make([]float32, 0, ex.Len()*size)
	for _, i := range ex.Indices {
		pixels = append(pixels, ex.Pixels[i*size:(i+1)*size]...)
	}
	probs, err := m.Predict(ctx, pixels, batch)
	if err != nil {
		return nil, err
	}
	ev := &Evaluation{N: ex.Len(), Confusion: make([][]int, k)}
	for i := range ev.Confusion {
		ev.Confusion[i] = make([]int, k)
	}
	for j, i := range ex.Indices {
		pred := argmax(probs[j*k : (j+1)*k])
		if ex.Labels[i] < 0 || ex.Labels[i] >= k {
			return nil, fmt.Errorf("image %d has label %d; the model has %d classes", i, ex.Labels[i], k)
		}
		ev.Confusion[ex.Labels[i]][pred]++
		if pred == ex.Labels[i] {
			ev.Correct++
		} else {
			ev.Mistakes = append(ev.Mistakes, Mistake{Image: i, Label: ex.Labels[i], Predicted: pred, Probability: probs[j*k+pred]})
		}
	}
	if ev.N > 0 {
		ev.Accuracy = float64(ev.Correct) / float64(ev.N)
	}
	return ev, nil
}

// Score is the evaluation's score under m: its accuracy, or the mean of
// the classes' recalls from its confusion matrix.
func (ev *Evaluation) Score(m Metric) float64 {
	right, images := make([]int, len(ev.Confusion)), make([]int, len(ev.Confusion))
	for c, row := range ev.Confusion {
		right[c] = row[c]
		for _, n := range row {
			images[c] += n
		}
	}
	return m.Score(right, images)
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
