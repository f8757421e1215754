package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/runtime"
)

// A dataset sent through the broker loads on the worker with the driver's
// content hash; a damaged cached copy is thrown away and fetched again.
func TestDatasetThroughBroker(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := dataset.Generate(ctx, dir, dataset.Options{Count: 24, Size: 16, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	d, _, err := dataset.Load(dir, dataset.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, Settings{})
	b := connect(t, srv, "driver")
	for range 2 { // the second finds it there
		if err := b.uploadDataset(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	w := &Worker{Broker: connect(t, srv, "worker"), Device: runtime.CPU, Cache: t.TempDir()}
	spec := DataSpec{Hash: d.Hash, Split: "metaqnn", SplitSeed: 1, Fraction: 1}
	e, err := w.localExecutor(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Data().Hash; got != d.Hash {
		t.Fatalf("hash %s, want %s", got, d.Hash)
	}
	cached := filepath.Join(w.Cache, datasetName(d.Hash))
	if err := os.WriteFile(filepath.Join(cached, d.Files[0]), []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := w.localExecutor(ctx, spec); err != nil {
		t.Fatalf("a damaged cached dataset was not fetched again: %v", err)
	}
	if content, err := os.ReadFile(filepath.Join(cached, d.Files[0])); err != nil || string(content) == "not a png" {
		t.Errorf("the damaged file is still there (%v)", err)
	}
}

// A job whose dataset hash is not a content hash is refused before the
// worker names a folder after it: a folder beside the cache, or the cache
// itself, is neither loaded nor removed.
func TestDatasetHashRefused(t *testing.T) {
	root := t.TempDir()
	cache, victim := filepath.Join(root, "cache"), filepath.Join(root, "victim")
	for _, d := range []string{cache, victim} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w := &Worker{Device: runtime.CPU, Cache: cache}
	for _, hash := range []string{"sha256:../victim", "", "sha256:", "../victim", "sha256:" + strings.Repeat("A", 64), "sha256:" + strings.Repeat("a", 63) + "/"} {
		_, err := w.localExecutor(context.Background(), DataSpec{Hash: hash, Split: "metaqnn", SplitSeed: 1, Fraction: 1})
		if err == nil || !strings.Contains(err.Error(), "not a content hash") {
			t.Errorf("hash %q: %v", hash, err)
		}
		for _, d := range []string{cache, victim} {
			if _, err := os.Stat(d); err != nil {
				t.Fatalf("hash %q: %s is gone: %v", hash, d, err)
			}
		}
	}
}

// An archive entry that would land outside the dataset's folder is refused.
func TestArchiveStaysInside(t *testing.T) {
	for _, name := range []string{"../evil.png", "/etc/evil.png", "a/../../evil.png"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
		tw.Write([]byte{1})
		tw.Close()
		if err := readArchive(&buf, t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a plain file inside") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
