package search

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// dataFile is Data as a run's data.json holds it: snake_case keys like
// the run's other files, and the input size written as config.yaml and
// the models write it ("32x32x1").
type dataFile struct {
	Input   string              `json:"input"`
	Classes []string            `json:"classes"`
	Hash    string              `json:"hash"`
	Split   onnxgen.SplitRecord `json:"split"`
	// Train is the share of the training split the trials train on;
	// TrainSplit the whole split, which the final phase trains on.
	Train       int     `json:"train"`
	TrainSplit  int     `json:"train_split"`
	Val         int     `json:"val"`
	Test        int     `json:"test"`
	ValMajority float64 `json:"val_majority"`
}

// MarshalJSON writes d as data.json holds it.
func (d Data) MarshalJSON() ([]byte, error) {
	f := dataFile{Classes: d.Classes, Hash: d.Hash, Split: d.Split, Train: d.Train, TrainSplit: d.Full, Val: d.Val, Test: d.Test, ValMajority: d.ValMajority}
	if d.Input != (genotype.Input{}) {
		f.Input = d.Input.String()
	}
	return json.Marshal(f)
}

// UnmarshalJSON reads data.json, in this form or in the one nasctl wrote
// before it (Go's field names, the input an object), which runs made then
// still hold.
func (d *Data) UnmarshalJSON(b []byte) error {
	var probe struct {
		Input json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return err
	}
	if bytes.HasPrefix(bytes.TrimSpace(probe.Input), []byte("{")) {
		type earlier Data // the field names, without these methods
		return json.Unmarshal(b, (*earlier)(d))
	}
	var f dataFile
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*d = Data{Classes: f.Classes, Hash: f.Hash, Split: f.Split, Train: f.Train, Full: f.TrainSplit, Val: f.Val, Test: f.Test, ValMajority: f.ValMajority}
	if f.Input != "" {
		in, err := genotype.ParseInput(f.Input)
		if err != nil {
			return fmt.Errorf("input: %w", err)
		}
		d.Input = in
	}
	return nil
}
