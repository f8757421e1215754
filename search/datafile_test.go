package search

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// data.json is written with snake_case keys and the input as text, read
// back the same, and a data.json of an earlier nasctl (Go's field names,
// the input an object; this one from a run of 2026-12-05) still reads.
func TestDataFile(t *testing.T) {
	d := Data{Input: genotype.Input{Height: 32, Width: 32, Channels: 1}, Classes: []string{"no_leaf", "leaf"}, Hash: "sha256:18",
		Split: onnxgen.SplitRecord{Plan: "metaqnn", Seed: 1}, Train: 1120, Full: 2240, Val: 560, Test: 1200, ValMajority: 0.525}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"input":"32x32x1","classes":["no_leaf","leaf"],"hash":"sha256:18","split":{"plan":"metaqnn","seed":1},` +
		`"train":1120,"train_split":2240,"val":560,"test":1200,"val_majority":0.525}`
	if string(b) != want {
		t.Errorf("written\n%s\nwant\n%s", b, want)
	}
	var back Data
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, d) {
		t.Errorf("read back %+v (%v), want %+v", back, err, d)
	}
	const earlier = `{"Input":{"Height":32,"Width":32,"Channels":1},"Classes":["no_leaf","leaf"],"Hash":"sha256:18",` +
		`"Split":{"plan":"metaqnn","seed":1},"Train":1120,"Full":2240,"Val":560,"Test":1200,"ValMajority":0.525}`
	var old Data
	if err := json.Unmarshal([]byte(earlier), &old); err != nil || !reflect.DeepEqual(old, d) {
		t.Errorf("an earlier data.json read as %+v (%v), want %+v", old, err, d)
	}
	// A search on a problem trains on no data: no input size.
	var none Data
	if b, err := json.Marshal(Data{}); err != nil || json.Unmarshal(b, &none) != nil || !reflect.DeepEqual(none, Data{}) {
		t.Errorf("the zero Data: %s, read back %+v (%v)", b, none, err)
	}
	if err := json.Unmarshal([]byte(`{"input":"32y32"}`), &none); err == nil {
		t.Error("a bad input size was read")
	}
}
