package search

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/nasctl/nasctl/dataset"
)

// A shift too large for the images is refused once they are read, before
// any trial, when the config gives no input size to check it by (the
// images' own size); one that fits is taken.
func TestExecutorChecksShiftOnImages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "leaves")
	if _, err := dataset.Generate(context.Background(), dir, dataset.Options{Count: 40, Size: 16, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Kind: KindMetaQNN, Data: dir, SplitSeed: 1}.WithDefaults()
	cfg.Final.Augment = "flips,shift:8"
	if _, err := NewLocalExecutor(cfg, nil); err == nil || err.Error() != "final.augment: augmentation flips,shift:8: a shift of 8 pixels would move images of 16x16 by half their size or more; give at most shift:7" {
		t.Errorf("shift:8 on 16x16 images: %v", err)
	}
	cfg.Final.Augment, cfg.Train.Augment = "", "shift:7"
	if _, err := NewLocalExecutor(cfg, nil); err != nil {
		t.Errorf("shift:7 on 16x16 images: %v", err)
	}
}
