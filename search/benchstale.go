package search

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

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
	var missing []string
	for _, w := range rundir.Winners(path) {
		b, _ := os.ReadFile(w)
		if BenchOf(rs, filepath.Base(w), quantize.SHA256(b)) == nil {
			missing = append(missing, filepath.Base(w))
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("the run's %s not measured by this bench (retrained or added since): measure the winners again with nasctl bench %s",
		english.WordSeries(missing, "and")+" "+english.PluralWord(len(missing), "is", "are"), path)
}

// BenchOf is the result among rs that measured the model file named name
// whose content hashes to sum: by the hash, or by the name when any result
// lacks a hash (bench.csv of nasctl before it recorded them); nil when none
// did (the file retrained or added since).
func BenchOf(rs []*bench.Result, name, sum string) *bench.Result {
	byName := slices.ContainsFunc(rs, func(r *bench.Result) bool { return r.SHA256 == "" })
	for _, r := range rs {
		if byName && filepath.Base(r.Model) == name || !byName && r.SHA256 == sum {
			return r
		}
	}
	return nil
}
