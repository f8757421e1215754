package rundir

import (
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"testing"
	"time"
)

// A run reads as running while a live process has it open, and as not
// running once it is closed or when the process that had it is gone.
func TestRunning(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if Running(dir) {
		t.Error("a folder without a run reads as running")
	}
	d, err := Create(dir, []byte("kind: metaqnn\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !Running(dir) {
		t.Error("an open run does not read as running")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if Running(dir) {
		t.Error("a closed run reads as running")
	}
	// A search killed with -9 leaves its process ID in the lock file.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, fileLock), []byte(strconv.Itoa(gone.Process.Pid)+"\n"), 0o600)
	if Running(dir) {
		t.Errorf("a run whose process %d has exited reads as running", gone.Process.Pid)
	}
	// Opening it again replaces a longer ID whole.
	os.WriteFile(filepath.Join(dir, fileLock), []byte("123456789012\n"), 0o600)
	d, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if b, _ := os.ReadFile(filepath.Join(dir, fileLock)); string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("lock file holds %q, want this process's ID", b)
	}
}

// After a search is killed with -9, the system may give its process ID to
// another process. One started after the ID was written (the lock file's
// modification time) is not the run's writer; a process started before,
// as a genuine writer is, still is. Where /proc does not say when
// processes started, both read as running, as before.
func TestRunningReusedPID(t *testing.T) {
	if _, ok := processStart(os.Getpid()); !ok {
		if goruntime.GOOS == "linux" {
			t.Fatal("no start time of this process from /proc")
		}
		t.Skip("no process start times on " + goruntime.GOOS)
	}
	dir := filepath.Join(t.TempDir(), "run")
	d, err := Create(dir, []byte("kind: metaqnn\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, fileLock)
	// A live process that stands for the one given the dead search's ID.
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		other.Process.Kill()
		other.Wait()
	}()
	if err := os.WriteFile(lock, []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Written an hour ago, well past startSlack: before sleep started.
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(lock, hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	if Running(dir) {
		t.Errorf("process %d, started after the lock file was written, reads as the run's writer", other.Process.Pid)
	}

	// The genuine writer: it wrote its ID after it started.
	d, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !Running(dir) || writer(dir) != os.Getpid() {
		t.Errorf("an open run reads as not running (writer %d, want %d)", writer(dir), os.Getpid())
	}
	// Within startSlack of its start: the times' granularity is no reason
	// to refuse it.
	started, _ := processStart(os.Getpid())
	if err := os.Chtimes(lock, started.Add(-time.Second), started.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if !Running(dir) {
		t.Errorf("a writer started a second after its lock file's time (%v) reads as not running", started)
	}
}
