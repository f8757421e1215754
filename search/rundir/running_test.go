package rundir

import (
	"os"
	"os/exec"
	"path/filepath"
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
