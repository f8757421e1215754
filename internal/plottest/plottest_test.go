package plottest

import (
	"os"
	"path/filepath"
	"testing"
)

// A figure that differs from its golden file is kept in the folder the
// environment names, or in the system's temporary folder: not under
// t.TempDir, which is gone before anyone can look at it.
func TestKeepOutlivesTheTest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "failures")
	t.Setenv("NASCTL_GOLDEN_FAILURES", dir)
	path, err := keep("fig.png", []byte("png"))
	if err != nil || path != filepath.Join(dir, "fig.png") {
		t.Fatalf("keep: %q, %v", path, err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "png" {
		t.Errorf("kept %q, %v", b, err)
	}
	t.Setenv("NASCTL_GOLDEN_FAILURES", "")
	path, err = keep("nasctl-plottest-check.svg", []byte("svg"))
	if err != nil || filepath.Dir(path) != filepath.Join(os.TempDir(), "nasctl-golden-failures") {
		t.Fatalf("default folder: %q, %v", path, err)
	}
	os.Remove(path)
}
