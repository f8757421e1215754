// Package runtime runs ONNX graphs on ONNX Runtime. It is the only package of
// nasctl that imports onnxruntime_go, so cgo and native memory stay here.
//
// # Finding the library
//
// ONNX Runtime is a shared library loaded at run time, not linked in.
// FindLibrary looks for it in $ONNXRUNTIME_LIB, then in the repository's cache
// folder .cache/onnxruntime (filled by "make setup"), then in the system
// library folders; when none has it, the error lists every place it looked and
// how to fix that.
//
// # Devices
//
// Sessions run on the CPU, or on an NVIDIA GPU through the CUDA provider of
// a GPU build of ONNX Runtime ("make setup-cuda"). InitDevice loads the
// library for a device (for CUDA, the GPU build first) and CheckDevice says,
// before any work, whether the device can run here, naming what is missing;
// InspectCUDA has the details. A plug-in CUDA provider is registered with the
// environment and added to each session by its device, through the few C
// API calls onnxruntime_go does not wrap (ortc.go; docs/gpu.md).
//
// # Ownership of native memory
//
// ONNX Runtime allocates outside the Go heap, and the garbage collector does not
// free that memory. Every type here that holds some says who destroys it. In
// short, from the outside in:
//
//   - The environment is one per process and belongs to this package: Init
//     creates it (loading the library), Close destroys it (unloading the
//     library). Nothing else may destroy it. Every Session and Tensor is created
//     under it and must be closed before it; Close refuses while any is open.
//   - A Session belongs to whoever called NewSession, who calls Session.Close.
//     It keeps no reference to the model bytes or to the tensors of past runs.
//   - A Tensor belongs to whoever created it, who calls Tensor.Close. Its
//     elements live in a Go slice that ONNX Runtime reads and writes in place;
//     the native part is only a small descriptor of that slice.
//   - Session.Run borrows its input and output tensors for the duration of the
//     call and writes the outputs in place. It keeps none of them afterwards.
//
// Because Run borrows pre-allocated outputs, a training loop can keep two sets
// of parameter tensors and swap them every step (read set A, write set B, then
// the other way round) without allocating.
package runtime
