package bench

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
)

// ReadCSV reads the results WriteCSV wrote at path, by the names of its
// columns; what the file does not hold (the input, threads, device, the
// latency's other statistics) stays zero. It is for readers of a run's
// measurements, such as the dashboard's Pareto figures.
func ReadCSV(path string) ([]*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no header", path)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	var out []*Result
	for n, row := range rows[1:] {
		r, err := csvResult(row, col)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n+2, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// csvResult parses one row of WriteCSV's columns (col: index by name).
func csvResult(row []string, col map[string]int) (*Result, error) {
	var errs []error
	get := func(name string) string {
		if i, ok := col[name]; ok && i < len(row) {
			return row[i]
		}
		errs = append(errs, fmt.Errorf("no %s", name))
		return ""
	}
	num := func(name string) float64 {
		v, err := strconv.ParseFloat(get(name), 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return v
	}
	// optional is a number that may be left empty.
	optional := func(name string) *float64 {
		if s := get(name); s != "" {
			v := num(name)
			return &v
		}
		return nil
	}
	r := &Result{Model: get("model"), Arch: get("arch"), Params: int64(num("params")), MACs: int64(num("macs")),
		FileBytes: int64(num("file_bytes")), PeakActivationBytes: int64(num("peak_activation_bytes")),
		LatencyMs:  Latency{P50: num("p50_ms"), P95: num("p95_ms"), P99: num("p99_ms"), Mean: num("mean_ms")},
		Throughput: num("throughput_images_per_second"), ThroughputBatch: int(num("throughput_batch")),
		AccuracySource: get("accuracy_source"), Pareto: get("pareto") == "true"}
	r.PureGo.UnsupportedOp = get("pure_go_unsupported_op")
	r.Accuracy, r.PureGo.MaxAbsDiff = optional("accuracy"), optional("pure_go_max_abs_diff")
	// Files of nasctl before the pure-Go latency lack its columns.
	if _, ok := col["pure_go_p50_ms"]; ok {
		if p50, p95 := optional("pure_go_p50_ms"), optional("pure_go_p95_ms"); p50 != nil && p95 != nil {
			r.PureGo.LatencyMs = &Latency{P50: *p50, P95: *p95}
		}
	}
	// Nor the rewritten count of the comparisons of the --pure-go form.
	if _, ok := col["pure_go_rewritten"]; ok && get("pure_go_rewritten") != "" {
		r.PureGo.Rewritten = int(num("pure_go_rewritten"))
	}
	// Nor the model file's SHA-256.
	if _, ok := col["sha256"]; ok {
		r.SHA256 = get("sha256")
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return r, nil
}
