package dataset

import (
	"fmt"
	"slices"
	"strings"
)

// LoadSplit loads the image folder dir with opts and splits it by plan with
// the shuffle seed: what every command that trains or evaluates on a folder
// does first, so that they all see the same splits.
func LoadSplit(dir string, opts LoadOptions, plan SplitPlan, seed uint64) (*Dataset, Split, error) {
	d, _, err := Load(dir, opts)
	if err != nil {
		return nil, Split{}, err
	}
	s, err := d.Split(plan, seed)
	if err != nil {
		return nil, Split{}, err
	}
	return d, s, nil
}

// CheckClasses returns an error unless the folder data has the classes of
// model, naming both and what to do (todo) otherwise.
func CheckClasses(data string, dataClasses []string, model string, modelClasses []string, todo string) error {
	if slices.Equal(dataClasses, modelClasses) {
		return nil
	}
	return fmt.Errorf("%s has the classes %s, the model %s %s; %s",
		data, strings.Join(dataClasses, ", "), model, strings.Join(modelClasses, ", "), todo)
}
