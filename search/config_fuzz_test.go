package search

import (
	"errors"
	"io"
	"reflect"
	"testing"
)

// FuzzConfig: whatever YAML the strict decoder accepts over a preset either
// fails Check with its problems or is a configuration that marshals and
// reads back to itself (what config.yaml of a run relies on); nothing
// panics.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"kind: metaqnn\ntrials: 12\ntrain:\n  epochs: 2\n",
		"kind: nasnet\ncells:\n  blocks: 3\n  stem: 4\n  style: study\nreward:\n  exponent: 3\n  last_epochs: 5\n",
		"kind: nasnet\nproblem:\n  name: mock\n  blocks: 2\nreinforce:\n  preset: paper\n  baseline: study\n",
		"metaqnn:\n  space: study\n  schedule: \"1.0:10,0.5:5\"\n",
		"metaqnn:\n  schedule:\n  - epsilon: 1\n    models: 3\n",
		"train:\n  optimizer: sgd\n  momentum: 0.5\n  monitor: val_loss\n",
		"split: nasnet\ndata_fraction: 0.2\n",
		"bogus: 1\n", "kind: [", "",
	} {
		f.Add(s)
	}
	base, err := Preset("cpu")
	if err != nil {
		f.Fatal(err)
	}
	base.Data = "data"
	f.Fuzz(func(t *testing.T, s string) {
		c := base
		if err := decodeYAMLStrict([]byte(s), &c); err != nil && !errors.Is(err, io.EOF) {
			return
		}
		c = c.WithDefaults()
		if c.Check() != nil {
			return
		}
		b, err := c.Marshal()
		if err != nil {
			t.Fatalf("%q: marshal: %v", s, err)
		}
		var back Config
		if err := decodeYAMLStrict(b, &back); err != nil {
			t.Fatalf("%q: its config.yaml does not read back: %v\n%s", s, err, b)
		}
		if back = back.WithDefaults(); !reflect.DeepEqual(back, c) {
			t.Fatalf("%q: config.yaml read back differs:\n%+v\n%+v", s, back, c)
		}
	})
}
