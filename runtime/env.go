package runtime

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"sync"
	"sync/atomic"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrNotInitialized is returned by functions that need the environment when
// Init has not been called (or Close has).
var ErrNotInitialized = errors.New("ONNX Runtime is not initialised (runtime.Init was not called)")

// env is the process's single ONNX Runtime environment. onnxruntime_go keeps
// the native environment in package-level state; this package is its only
// user. Init and Close hold mu for writing; creating a Session or Tensor holds
// it for reading, so that Close cannot run in the middle of a creation.
var env struct {
	mu      sync.RWMutex
	path    string        // library loaded; "" while not initialised
	source  LibrarySource // how path was found
	version string        // the library's version string, read once at Init
}

// Counts of open native objects, so that Close can refuse to pull the library
// out from under them.
var openSessions, openTensors atomic.Int64

// destroy closes the native object *obj of a Session or Tensor: it destroys
// it, clears *obj and takes it off the open count. With *obj already nil it
// does nothing, so closing twice is harmless.
func destroy[P interface {
	comparable
	Destroy() error
}](obj *P, open *atomic.Int64) error {
	var none P
	if *obj == none {
		return nil
	}
	err := (*obj).Destroy()
	*obj = none
	open.Add(-1)
	return err
}

// Init loads the ONNX Runtime shared library and creates the process's single
// environment. With libPath "" the library is found by FindLibrary; otherwise
// libPath is loaded as given, without any lookup ($ONNXRUNTIME_LIB included).
//
// Init is idempotent: once it has succeeded, further calls return nil without
// doing anything, provided libPath is "" or the path already loaded (a process
// cannot switch libraries without Close). A failed Init leaves nothing behind
// and may be retried. Init is safe for concurrent use.
//
// ONNX Runtime's own log is set to errors only (its warnings about node
// placement and unused initializers are noise for nasctl's users).
//
// Ownership: the environment belongs to this package; only Close destroys it.
func Init(libPath string) error { return initWith(libPath, defaultLookup()) }

// InitDevice is Init("") for work on device d, then CheckDevice(d, id). For
// CUDA the lookup tries the GPU build of "make setup-cuda" (CUDACacheDir)
// before the CPU library, after $ONNXRUNTIME_LIB as always. When the check
// fails, the error says what is missing and what to do, and the environment
// is closed again if this call opened it.
func InitDevice(d Device, id int) error {
	already, _ := LibraryPath()
	if err := InitFor(d); err != nil {
		return err
	}
	if err := CheckDevice(d, id); err != nil {
		if already == "" {
			Close()
		}
		return err
	}
	return nil
}

// InitFor is Init("") with the lookup of InitDevice for device d, without
// the check.
func InitFor(d Device) error { return initWith("", defaultLookup().forDevice(d)) }

func initWith(libPath string, l lookup) error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.path != "" {
		if libPath == "" || libPath == env.path {
			return nil
		}
		return fmt.Errorf("ONNX Runtime is already initialised with %s; cannot also load %s", env.path, libPath)
	}
	source := FromCaller
	if libPath == "" {
		var err error
		libPath, source, err = l.find()
		if err != nil {
			return err
		}
	}
	ort.SetSharedLibraryPath(libPath)
	// ONNX Runtime's telemetry matches regular expressions against the
	// command line while it creates the environment, and a long one
	// (predict on a few thousand images) overflows the stack
	// (docs/limits.md, "A long command line").
	if _, set := os.LookupEnv(telemetryEnv); !set {
		os.Setenv(telemetryEnv, "1")
	}
	if err := libraryMachine(libPath); err != nil {
		return err
	}
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		how := "found via " + source.String()
		if source == FromCaller {
			how = "as given to runtime.Init"
		}
		return fmt.Errorf("loading ONNX Runtime from %s (%s): %w; "+
			"it must be a libonnxruntime shared library for this machine, ONNX Runtime 1.24 or newer "+
			`(run "make setup" for %s, or fix %s)`, libPath, how, err, PinnedVersion, LibraryEnv)
	}
	if err := bindAPI(libPath); err != nil {
		ort.DestroyEnvironment()
		return err
	}
	env.path = libPath
	env.source = source
	env.version = ort.GetVersion()
	return nil
}

// Close destroys the environment and unloads the library, for tests and for
// the end of a command. It refuses, changing nothing, while any Session or
// Tensor made by this package is still open: their native memory would be
// freed by the unloaded library. Closing an environment that is not
// initialised does nothing. After Close, Init may be called again.
func Close() error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.path == "" {
		return nil
	}
	if s, t := openSessions.Load(), openTensors.Load(); s != 0 || t != 0 {
		return fmt.Errorf("runtime.Close: %d sessions and %d tensors are still open; close them first", s, t)
	}
	// The CUDA provider and nasctl's own reference to the environment go
	// first: the environment is destroyed only when no reference is left.
	resetCUDA()
	unbindAPI()
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("destroying the ONNX Runtime environment: %w", err)
	}
	env.path, env.version = "", ""
	return nil
}

// LibraryPath returns the path of the loaded ONNX Runtime library and how it
// was found, or "" while not initialised.
func LibraryPath() (string, LibrarySource) {
	env.mu.RLock()
	defer env.mu.RUnlock()
	return env.path, env.source
}

// Version returns the loaded library's version string (for example "1.30.0"),
// or "" while not initialised.
func Version() string {
	env.mu.RLock()
	defer env.mu.RUnlock()
	return env.version
}

// acquire holds the environment open for the creation of a native object:
// it fails when not initialised, and otherwise returns the function that
// releases the hold. Count the new object before releasing.
func acquire() (release func(), err error) {
	env.mu.RLock()
	if env.path == "" {
		env.mu.RUnlock()
		return nil, ErrNotInitialized
	}
	return env.mu.RUnlock, nil
}

// buildArch is the architecture this program is built for (a variable for
// the tests of another's messages).
var buildArch = goruntime.GOARCH

// elfMachines are the ELF machines of the architectures nasctl is built for.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// libraryMachine refuses a library built for another processor than this
// program's: the loader reports one as "No such file or directory", about
// a file that is there (an x86-64 library copied to an arm64 device, say).
func libraryMachine(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return nil // not ELF, or unreadable: the loader says what it finds
	}
	defer f.Close()
	want, ok := elfMachines[buildArch]
	if !ok || f.Machine == want {
		return nil
	}
	return fmt.Errorf("%s is a library for %s, and this nasctl is built for %s/%s: it needs the ONNX Runtime library of its own machine, "+
		`in %s beside it or named by %s ("make setup" installs it on this machine; "make build-arm64" puts an arm64 device's in bin/linux-arm64/%s)`,
		path, machineName(f.Machine), goruntime.GOOS, buildArch, CacheDir, LibraryEnv, CacheDir)
}

// machineName names an ELF machine as people know it.
func machineName(m elf.Machine) string {
	switch m {
	case elf.EM_X86_64:
		return "x86-64"
	case elf.EM_AARCH64:
		return "arm64 (aarch64)"
	}
	return m.String()
}
