package rundir

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"testing"
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
	// Opening it again replaces a longer line whole, with this process's
	// ID and start.
	os.WriteFile(filepath.Join(dir, fileLock), []byte("123456789012 123456789012345678\n"), 0o600)
	d, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	want := strconv.Itoa(os.Getpid())
	if start, ok := processStart(os.Getpid()); ok {
		want += " " + strconv.FormatUint(start, 10)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, fileLock)); string(b) != want+"\n" {
		t.Errorf("lock file holds %q, want %q", b, want+"\n")
	}
}

// After a search is killed with -9, the system may give its process ID to
// another process. That one started at another time than the one recorded
// with the ID, and is not the run's writer; the genuine writer is, and so
// is a live process named by a lock of an older nasctl, which recorded no
// start.
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
	if !Running(dir) || writer(dir) != os.Getpid() {
		t.Errorf("an open run reads as not running (writer %d, want %d)", writer(dir), os.Getpid())
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
	start, _ := processStart(other.Process.Pid)
	for _, c := range []struct {
		line    string
		running bool
	}{
		{fmt.Sprintf("%d %d\n", other.Process.Pid, start+1), false}, // the dead search's start
		{fmt.Sprintf("%d %d\n", other.Process.Pid, start), true},    // its own
		{fmt.Sprintf("%d\n", other.Process.Pid), true},              // an older nasctl's lock
	} {
		if err := os.WriteFile(lock, []byte(c.line), 0o600); err != nil {
			t.Fatal(err)
		}
		if Running(dir) != c.running {
			t.Errorf("lock %q: running %v, want %v", c.line, Running(dir), c.running)
		}
	}
}
