package search

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/quantize"
	"github.com/nasctl/nasctl/search/rundir"
)

// BenchStale says which of the run's winners in path the bench results rs
// did not measure (retrained or added since, a final phase finished after
// it), by their files' SHA-256, or by their names in results of nasctl
// before bench.csv had the hashes; "" when it measured them all.
func BenchStale(path string, rs []*bench.Result) string {
	measured := map[string]bool{}
	for _, r := range rs {
		measured[r.SHA256], measured[filepath.Base(r.Model)] = true, true
	}
	var missing []string
	for _, w := range rundir.Winners(path) {
		key := filepath.Base(w)
		if b, err := os.ReadFile(w); err == nil && !measured[""] {
			key = quantize.SHA256(b)
		}
		if !measured[key] {
			missing = append(missing, filepath.Base(w))
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("the run's %s not measured by this bench (retrained or added since): measure the winners again with nasctl bench %s",
		english.WordSeries(missing, "and")+" "+english.PluralWord(len(missing), "is", "are"), path)
}
