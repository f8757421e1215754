package runtime

import (
	"context"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// Activations runs model on n images (pixels: n*C*H*W values, NCHW, for
// the graph's one input, named input, of shape [N, C, H, W]) in batches of
// batch images, and calls observe with the values of each of the graph
// outputs named in outputs (by index), batch by batch. The outputs may have
// any float32 shape: ONNX Runtime allocates them, and they are released
// after observe returns. It serves the calibration of a quantization
// (quantize.Runner), whose probe model exposes intermediate values as
// outputs. runtime must be initialised.
func Activations(ctx context.Context, model []byte, input string, shape [3]int, pixels []float32, batch int, outputs []string,
	opts SessionOptions, observe func(output int, values []float32)) error {
	size := shape[0] * shape[1] * shape[2]
	if size == 0 || len(pixels)%size != 0 {
		return fmt.Errorf("activations: %d values are not whole images of %v", len(pixels), shape)
	}
	if batch < 1 {
		batch = 64
	}
	s, err := NewSession(model, []string{input}, outputs, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	n := len(pixels) / size
	for lo := 0; lo < n; lo += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := min(batch, n-lo)
		if err := s.activations(pixels[lo*size:(lo+b)*size], []int64{int64(b), int64(shape[0]), int64(shape[1]), int64(shape[2])}, observe); err != nil {
			return err
		}
	}
	return nil
}

// activations runs one batch with outputs that ONNX Runtime allocates.
func (s *Session) activations(pixels []float32, shape []int64, observe func(int, []float32)) error {
	x, err := NewTensor(shape, pixels)
	if err != nil {
		return err
	}
	defer x.Close()
	outs := make([]ort.Value, len(s.outputs))
	defer func() {
		for _, o := range outs {
			if o != nil {
				o.Destroy()
			}
		}
	}()
	if err := s.s.Run([]ort.Value{x.ortValue()}, outs); err != nil {
		return fmt.Errorf("activations: %w", err)
	}
	for i, o := range outs {
		t, ok := o.(*ort.Tensor[float32])
		if !ok {
			return fmt.Errorf("activations: output %s is %T, want a float32 tensor", s.outputs[i], o)
		}
		observe(i, t.GetData())
	}
	return nil
}

// CalibrationRunner returns a function that runs a probe model on the
// images pixels (NCHW, each of shape [C, H, W]) through Activations, input
// "x", in batches of 64: the form of quantize.Runner, so that quantizing a
// model with this package's sessions is
//
//	quantize.Model(model, runtime.CalibrationRunner(ctx, pixels, shape, opts), quantize.Options{})
func CalibrationRunner(ctx context.Context, pixels []float32, shape [3]int, opts SessionOptions) func(probe []byte, outputs []string, observe func(int, []float32)) error {
	return func(probe []byte, outputs []string, observe func(int, []float32)) error {
		return Activations(ctx, probe, "x", shape, pixels, 64, outputs, opts, observe)
	}
}
