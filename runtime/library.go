package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
)

const (
	// LibraryEnv names the environment variable that points at the ONNX
	// Runtime shared library to load. When set, it is the only place looked at.
	LibraryEnv = "ONNXRUNTIME_LIB"

	// telemetryEnv turns ONNX Runtime's telemetry off when it is 1; Init
	// sets it unless the user did.
	telemetryEnv = "ORT_DISABLE_TELEMETRY"

	// CacheDir is where "make setup" installs the library, relative to the
	// repository root.
	CacheDir = ".cache/onnxruntime"

	// PinnedVersion is the ONNX Runtime version that "make setup" installs
	// (scripts/setup-onnxruntime.sh; its SHA-256 is in onnxruntime.sha256).
	PinnedVersion = "1.30.0"

	// CUDACacheDir is where "make setup-cuda" installs a GPU build of ONNX
	// Runtime with its CUDA provider, relative to the repository root: a
	// folder of its own, so that the CPU library stays as it is.
	CUDACacheDir = ".cache/onnxruntime-cuda"

	// CUDAVersion is the ONNX Runtime version of that GPU build
	// (scripts/setup-onnxruntime-cuda.sh; SHA-256 in onnxruntime-cuda.sha256).
	CUDAVersion = "1.29.0"
)

// libraryNames are the file names tried in each folder, in order.
var libraryNames = []string{"libonnxruntime.so.1", "libonnxruntime.so"}

// LibrarySource tells which step of the lookup found the library.
type LibrarySource int

const (
	// FromEnv: the path in $ONNXRUNTIME_LIB.
	FromEnv LibrarySource = iota
	// FromCache: the repository's .cache/onnxruntime folder.
	FromCache
	// FromSystem: $LD_LIBRARY_PATH or a system library folder.
	FromSystem
	// FromCaller: a path given to Init, no lookup.
	FromCaller
	// FromCUDACache: the repository's .cache/onnxruntime-cuda folder, looked
	// at first for the CUDA device (InitDevice).
	FromCUDACache
)

func (s LibrarySource) String() string {
	switch s {
	case FromEnv:
		return "$" + LibraryEnv
	case FromCache:
		return CacheDir
	case FromSystem:
		return "system library path"
	case FromCaller:
		return "runtime.Init argument"
	case FromCUDACache:
		return CUDACacheDir
	}
	return fmt.Sprintf("LibrarySource(%d)", int(s))
}

// LibraryNotFoundError reports a failed lookup of the ONNX Runtime library.
type LibraryNotFoundError struct {
	// EnvValue is the value of $ONNXRUNTIME_LIB, "" when unset.
	EnvValue string
	// EnvProblem says what is wrong with a set $ONNXRUNTIME_LIB; when it is
	// non-empty nothing else was looked at.
	EnvProblem string
	// Places describes each place looked at, in lookup order, for people.
	Places []string
	// Tried lists every file path that was tried, in lookup order.
	Tried []string
	// CUDA: the lookup was for the CUDA device, whose build "make
	// setup-cuda" installs.
	CUDA bool
}

func (e *LibraryNotFoundError) Error() string {
	setup, dir := "make setup", CacheDir
	if e.CUDA {
		setup, dir = "make setup-cuda", CUDACacheDir
	}
	if e.EnvProblem != "" {
		return fmt.Sprintf("%s=%s: %s; set it to the path of a libonnxruntime shared library, "+
			`or unset it to use the one "%s" installs in %s`,
			LibraryEnv, e.EnvValue, e.EnvProblem, setup, dir)
	}
	return fmt.Sprintf("libonnxruntime not found (looked in %s); "+
		`run "%s" in the nasctl repository, copy its %s folder beside this executable (as on a device), or set %s to the library's path`,
		strings.Join(e.Places, "; "), setup, dir, LibraryEnv)
}

// FindLibrary returns the path of the ONNX Runtime shared library. It looks,
// in this order and stopping at the first hit, at:
//
//  1. $ONNXRUNTIME_LIB: when set and not empty, it must name an existing file,
//     and nothing else is looked at (a wrong path is an error, never silently
//     replaced);
//  2. .cache/onnxruntime/libonnxruntime.so.1 in the working directory and each
//     of its parents, then beside the executable (its folder and each parent),
//     which is where "make setup" puts it;
//  3. each folder of $LD_LIBRARY_PATH, then /usr/local/lib, /usr/lib and the
//     multiarch folder (/usr/lib/x86_64-linux-gnu on amd64), for
//     libonnxruntime.so.1 and then libonnxruntime.so.
//
// A failed lookup returns a *LibraryNotFoundError that lists every place.
func FindLibrary() (string, error) {
	path, _, err := defaultLookup().find()
	return path, err
}

// lookup holds the inputs of the library search, so that tests can replace
// the process's environment, working directory, executable and system folders.
type lookup struct {
	getenv     func(string) (string, bool)
	wd         string   // working directory; "" when unknown
	exe        string   // path of the running executable; "" when unknown
	systemDirs []string // searched after $LD_LIBRARY_PATH
	// caches are the repository cache folders to look in, in order; each is
	// looked for above the working directory, then above the executable.
	// Nil: FromCache only.
	caches []LibrarySource
}

// forDevice returns l looking first in the cache of d's build: for CUDA,
// the GPU build of "make setup-cuda", then the CPU library.
func (l lookup) forDevice(d Device) lookup {
	if d == CUDA {
		l.caches = []LibrarySource{FromCUDACache, FromCache}
	}
	return l
}

func defaultLookup() lookup {
	l := lookup{getenv: os.LookupEnv, systemDirs: systemLibraryDirs()}
	if wd, err := os.Getwd(); err == nil {
		l.wd = wd
	}
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		l.exe = exe
	}
	return l
}

// systemLibraryDirs are the folders searched after $LD_LIBRARY_PATH.
func systemLibraryDirs() []string {
	dirs := []string{"/usr/local/lib", "/usr/lib"}
	multiarch := map[string]string{
		"amd64":   "x86_64-linux-gnu",
		"arm64":   "aarch64-linux-gnu",
		"ppc64le": "powerpc64le-linux-gnu",
		"s390x":   "s390x-linux-gnu",
		"riscv64": "riscv64-linux-gnu",
	}
	if triple, ok := multiarch[goruntime.GOARCH]; ok {
		dirs = append(dirs, "/usr/lib/"+triple)
	}
	return dirs
}

func (l lookup) find() (string, LibrarySource, error) {
	nf := &LibraryNotFoundError{CUDA: len(l.caches) > 0 && l.caches[0] == FromCUDACache}

	// 1. The environment variable, authoritative when set.
	if v, ok := l.getenv(LibraryEnv); ok && v != "" {
		nf.EnvValue = v
		nf.Tried = []string{v}
		info, err := os.Stat(v)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			nf.EnvProblem = "no such file"
		case err != nil:
			nf.EnvProblem = err.Error()
		case info.IsDir():
			nf.EnvProblem = fmt.Sprintf("is a folder, not the library file (for example %s)",
				filepath.Join(v, libraryNames[0]))
		default:
			return v, FromEnv, nil
		}
		return "", FromEnv, nf
	}
	nf.Places = append(nf.Places, "$"+LibraryEnv+" (unset)")

	// 2. The repository's cache folders, each from the working directory
	// upwards, then from the executable's folder upwards.
	caches := l.caches
	if caches == nil {
		caches = []LibrarySource{FromCache}
	}
	for _, cache := range caches {
		if p, ok := l.findCache(cache.String(), nf); ok {
			return p, cache, nil
		}
	}

	// 3. System folders.
	var dirs []string
	if v, ok := l.getenv("LD_LIBRARY_PATH"); ok && v != "" {
		var ld []string
		for _, d := range filepath.SplitList(v) {
			if d != "" {
				ld = append(ld, d)
			}
		}
		nf.Places = append(nf.Places, "$LD_LIBRARY_PATH ("+strings.Join(ld, ", ")+")")
		dirs = append(dirs, ld...)
	} else {
		nf.Places = append(nf.Places, "$LD_LIBRARY_PATH (unset)")
	}
	dirs = append(dirs, l.systemDirs...)
	if len(l.systemDirs) > 0 {
		nf.Places = append(nf.Places, strings.Join(l.systemDirs, ", "))
	}
	for _, d := range dirs {
		for _, name := range libraryNames {
			p := filepath.Join(d, name)
			nf.Tried = append(nf.Tried, p)
			if isFile(p) {
				return p, FromSystem, nil
			}
		}
	}
	nf.Places[len(nf.Places)-1] += " (as " + strings.Join(libraryNames, " or ") + ")"
	return "", FromSystem, nf
}

// findCache looks for the library in the cache folder dir (relative to a
// repository root) above the working directory, then above the executable,
// noting each place in nf.
func (l lookup) findCache(dir string, nf *LibraryNotFoundError) (string, bool) {
	seen := map[string]bool{}
	group := func(start, label string) (string, bool) {
		if start == "" {
			return "", false
		}
		var dirs []string
		for _, d := range ancestors(start) {
			if seen[d] {
				continue
			}
			seen[d] = true
			dirs = append(dirs, d)
			p := filepath.Join(d, dir, libraryNames[0])
			nf.Tried = append(nf.Tried, p)
			if isFile(p) {
				return p, true
			}
		}
		if len(dirs) > 0 {
			nf.Places = append(nf.Places, fmt.Sprintf("%s/%s %s %s",
				dir, libraryNames[0], label, strings.Join(dirs, ", ")))
		}
		return "", false
	}
	if p, ok := group(l.wd, "in"); ok {
		return p, true
	}
	if l.exe != "" {
		return group(filepath.Dir(l.exe), "beside the executable in")
	}
	return "", false
}

// ancestors returns dir (made absolute and clean) and each of its parents up
// to the root.
func ancestors(dir string) []string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	dir = filepath.Clean(dir)
	var out []string
	for {
		out = append(out, dir)
		parent := filepath.Dir(dir)
		if parent == dir {
			return out
		}
		dir = parent
	}
}

// isFile reports whether p exists and is not a folder (symbolic links followed).
func isFile(p string) bool {
	info, err := os.Stat(p)
	return err == nil && !info.IsDir()
}
