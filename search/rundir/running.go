package rundir

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// The search that holds a run's lock writes its process ID into the lock
// file, so that a reader can tell a running search from a stopped one
// without taking the lock (which would make the search itself, starting at
// that moment, fail to open the run).

// writePID records this process as the run's writer. The ID is written
// over the start of the file and the rest cut after it, so that a reader
// never sees the file empty in between; the lock, held on another open
// file, is untouched.
func writePID(lockPath string) error {
	f, err := os.OpenFile(lockPath, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	line := []byte(strconv.Itoa(os.Getpid()) + "\n")
	_, err = f.WriteAt(line, 0)
	if err == nil {
		err = f.Truncate(int64(len(line)))
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
// later is told apart by its start, after the ID was written (where the
// system says when processes started; elsewhere it reads as running).
func Running(path string) bool { return writer(path) > 0 }

// writer is the ID of the live process that holds the run at path open for
// writing (Running), or 0.
func writer(path string) int {
	lockPath := filepath.Join(path, fileLock)
	b, err := os.ReadFile(lockPath)
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(string(line))
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
	// The file's time is taken after its ID: a writer that replaced the ID
	// meanwhile only makes it later, which never refuses the ID read.
	fi, err := os.Stat(lockPath)
	if err != nil {
		return pid
	}
	if started, ok := processStart(pid); ok && started.After(fi.ModTime().Add(startSlack)) {
		return 0 // the ID's writer has died, and the system gave it to this process
	}
	return pid
}

// startSlack allows for the granularity of processStart (on Linux, the
// boot time is in whole seconds) against the lock file's modification
// time.
const startSlack = 2 * time.Second

// processStart is when process pid started, as gopsutil reads it from the
// system (/proc on Linux); ok is false where it cannot say.
func processStart(pid int) (t time.Time, ok bool) {
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		return time.Time{}, false
	}
	ms, err := p.CreateTime()
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}
