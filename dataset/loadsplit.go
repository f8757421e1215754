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

// ModelLabels returns labels, the labels of the images of the folder data
// (of classes dataClasses), in the order of model's classes: labels itself
// when the two lists are equal, renumbered when they hold the same classes
// in another order (class folders sort by name, the leaves layout does
// not). Otherwise an error names both lists and says what to do (todo).
func ModelLabels(data string, dataClasses []string, labels []int, model string, modelClasses []string, todo string) ([]int, error) {
	if slices.Equal(dataClasses, modelClasses) {
		return labels, nil
	}
	to := make([]int, len(dataClasses)) // data's class i is the model's to[i]
	for i, c := range dataClasses {
		to[i] = slices.Index(modelClasses, c)
	}
	if len(dataClasses) != len(modelClasses) || slices.Contains(to, -1) {
		return nil, fmt.Errorf("%s has the classes %s, the model %s %s; %s",
			data, strings.Join(dataClasses, ", "), model, strings.Join(modelClasses, ", "), todo)
	}
	out := make([]int, len(labels))
	for i, l := range labels {
		out[i] = to[l]
	}
	return out, nil
}
