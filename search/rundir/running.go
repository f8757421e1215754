package rundir

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/prometheus/procfs"
)

// The search that holds a run's lock writes its process ID into the lock
// file, so that a reader can tell a running search from a stopped one
// without taking the lock (which would make the search itself, starting at
// that moment, fail to open the run).

// writePID records this process as the run's writer: its ID and, where
// the system says, when it started (in clock ticks since boot, which no
// clock change moves), so that a process given the ID after this one died
// is told apart. The line is written over the start of the file and the
// rest cut after it, so that a reader never sees the file empty in
// between; the lock, held on another open file, is untouched.
func writePID(lockPath string) error {
	f, err := os.OpenFile(lockPath, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	line := strconv.Itoa(os.Getpid())
	if start, ok := processStart(os.Getpid()); ok {
		line += " " + strconv.FormatUint(start, 10)
	}
	_, err = f.WriteAt([]byte(line+"\n"), 0)
	if err == nil {
		err = f.Truncate(int64(len(line) + 1))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// clearPID says that no process writes the run any longer (before the lock
// is released): a process that closed its run but lives on, as a test
// does, is not taken for its writer.
func clearPID(lockPath string) error { return os.Truncate(lockPath, 0) }

// Running reports whether a live process holds the run at path open for
// writing, as the process ID in its lock file says. It takes no lock. A
// search killed with -9 leaves its ID behind; a process given the same ID
// later has another start than the one recorded with it (where the system
// says when processes started; elsewhere, and for a lock of an older
// nasctl that recorded none, it reads as running).
func Running(path string) bool { return writer(path) > 0 }

// writer is the ID of the live process that holds the run at path open for
// writing (Running), or 0.
func writer(path string) int {
	b, err := os.ReadFile(filepath.Join(path, fileLock))
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	id, recorded, _ := bytes.Cut(line, []byte(" "))
	pid, err := strconv.Atoi(string(id))
	if err != nil || pid <= 0 {
		return 0
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return 0
	}
	// Signal 0 checks that the process exists without signalling it; a
	// process of another user answers EPERM, and is alive.
	if err = p.Signal(syscall.Signal(0)); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0
	}
	if want, err := strconv.ParseUint(string(recorded), 10, 64); err == nil {
		if start, ok := processStart(pid); ok && start != want {
			return 0 // the writer died, and the system gave its ID to this process
		}
	}
	return pid
}

// processStart is when process pid started, in clock ticks since boot, as
// procfs reads it (Linux); ok is false where the system does not say.
func processStart(pid int) (uint64, bool) {
	proc, err := procfs.NewProc(pid)
	if err != nil {
		return 0, false
	}
	st, err := proc.Stat()
	if err != nil {
		return 0, false
	}
	return st.Starttime, true
}
