package runtime

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// Element is the set of element types a Tensor may hold. nasctl's graphs
// exchange float32 only (images, labels, parameters, masks, scalars);
// int64 and bool serve graphs from elsewhere.
type Element interface {
	float32 | int64 | bool
}

// Value is a tensor that Session.Run accepts; *Tensor[float32] and
// *Tensor[int64] implement it.
type Value interface {
	// Shape returns a copy of the tensor's dimensions.
	Shape() []int64
	ortValue() ort.Value
}

// Tensor is a dense tensor whose elements live in a Go slice that ONNX
// Runtime reads and writes in place.
//
// Ownership: the creator owns a Tensor and must Close it, before runtime.Close
// (which refuses while tensors are open). Close releases the native ORT value
// that describes the slice; the slice itself is ordinary Go memory, kept
// alive by the Tensor until Close and by the garbage collector after that.
// Session.Run borrows a Tensor only for the duration of the call. A Tensor is
// not safe for concurrent use while a Run writes to it.
type Tensor[T Element] struct {
	t     *ort.Tensor[T]
	shape []int64
}

// NewTensor wraps data, which is used in place (not copied), as a tensor of
// the given shape. len(data) must equal the product of the dimensions. ONNX
// Runtime through onnxruntime_go has no 0-d tensors: give a scalar shape [1].
func NewTensor[T Element](shape []int64, data []T) (*Tensor[T], error) {
	n, err := elementCount(shape)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != n {
		return nil, fmt.Errorf("tensor of shape %v needs %d elements, got %d", shape, n, len(data))
	}
	release, err := acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	t, err := ort.NewTensor(ort.NewShape(shape...), data)
	if err != nil {
		return nil, fmt.Errorf("creating tensor of shape %v: %w", shape, err)
	}
	openTensors.Add(1)
	return &Tensor[T]{t: t, shape: append([]int64(nil), shape...)}, nil
}

// NewZeroTensor allocates a tensor of the given shape filled with zeros.
func NewZeroTensor[T Element](shape ...int64) (*Tensor[T], error) {
	n, err := elementCount(shape)
	if err != nil {
		return nil, err
	}
	return NewTensor(shape, make([]T, n))
}

// NewScalar makes a tensor of shape [1] holding v (onnxruntime_go rejects
// 0-d tensors, so graphs take scalars such as the step or the learning rate
// as shape [1]).
func NewScalar[T Element](v T) (*Tensor[T], error) {
	return NewTensor([]int64{1}, []T{v})
}

// elementCount checks a shape and returns its number of elements.
func elementCount(shape []int64) (int64, error) {
	if len(shape) == 0 {
		return 0, errors.New("tensor shape [] has no dimensions: onnxruntime_go rejects 0-d tensors; give scalars shape [1]")
	}
	n := int64(1)
	for i, d := range shape {
		if d <= 0 {
			return 0, fmt.Errorf("tensor shape %v: dimension %d is %d, must be positive", shape, i, d)
		}
		n *= d
	}
	return n, nil
}

// Data returns the tensor's elements in row-major order. Writing to the slice
// changes the tensor; after Close it returns nil.
func (t *Tensor[T]) Data() []T {
	if t.t == nil {
		return nil
	}
	return t.t.GetData()
}

// Shape returns a copy of the tensor's dimensions.
func (t *Tensor[T]) Shape() []int64 {
	return append([]int64(nil), t.shape...)
}

// Close releases the native value. Closing twice is harmless.
func (t *Tensor[T]) Close() error { return destroy(&t.t, &openTensors) }

func (t *Tensor[T]) ortValue() ort.Value {
	if t == nil || t.t == nil {
		return nil
	}
	return t.t
}
