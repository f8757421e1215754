package runtime

// What "nasctl doctor" shows about the loaded library; each needs Init.

// Providers returns the execution providers the loaded library was built
// with (ONNX Runtime's GetAvailableProviders). A provider listed here may
// still need its own library beside libonnxruntime (the CUDA provider of
// the CPU build "make setup" installs is listed but absent), and a plug-in
// provider is not listed at all: InspectCUDA says whether CUDA can run.
func Providers() ([]string, error) {
	release, err := acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	return availableProviders()
}

// BuildInfo returns the loaded library's build description, or "" while
// not initialised.
func BuildInfo() string {
	release, err := acquire()
	if err != nil {
		return ""
	}
	defer release()
	return buildInfo()
}

// EPDevices lists the devices of every execution provider registered with
// the environment: the CPU, and each GPU of a registered CUDA plug-in.
func EPDevices() ([]EPDevice, error) {
	release, err := acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	return epDevices()
}

// NCHWcBlockSize returns the channel block of ONNX Runtime's NCHWc CPU
// kernels that training uses (16 with AVX-512, 8 with AVX2), or 0 when the
// loaded library has none or none is loaded.
func NCHWcBlockSize() int64 { return nchwcBlockSize() }

// FindGPUBuild returns the path of the GPU build "make setup-cuda" installed
// (CUDACacheDir above the working directory or the executable), or "".
func FindGPUBuild() string {
	p, _ := defaultLookup().findCache(CUDACacheDir, &LibraryNotFoundError{})
	return p
}
