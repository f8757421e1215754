package dataset

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/unicode/norm"
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
// (of classes dataClasses), as indices into model's classes: labels itself
// when the two lists are equal, renumbered otherwise (class folders sort by
// name, the leaves layout does not). The data may hold only some of the
// model's classes, as field data often does; MissingClasses names the
// others. A data class the model does not have is an error that names it
// and both lists, and says what to do (todo).
func ModelLabels(data string, dataClasses []string, labels []int, model string, modelClasses []string, todo string) ([]int, error) {
	if slices.Equal(dataClasses, modelClasses) {
		return labels, nil
	}
	to := make([]int, len(dataClasses)) // data's class i is the model's to[i]
	var unknown []string
	for i, c := range dataClasses {
		if to[i] = modelClass(modelClasses, c); to[i] < 0 {
			unknown = append(unknown, strconv.Quote(c))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%s has the classes %s, the model %s %s; the model has no class %s; %s",
			data, strings.Join(dataClasses, ", "), model, strings.Join(modelClasses, ", "), strings.Join(unknown, " or "), todo)
	}
	out := make([]int, len(labels))
	for i, l := range labels {
		out[i] = to[l]
	}
	return out, nil
}

// MissingClasses returns the model's classes that no data class matches (as
// in ModelLabels), in the model's order: those a measurement on the data
// does not cover.
func MissingClasses(dataClasses, modelClasses []string) []string {
	found := make([]bool, len(modelClasses))
	for _, c := range dataClasses {
		if i := modelClass(modelClasses, c); i >= 0 {
			found[i] = true
		}
	}
	var missing []string
	for i, c := range modelClasses {
		if !found[i] {
			missing = append(missing, c)
		}
	}
	return missing
}

// modelClass returns the index of the data class c among the model's
// classes, or -1. A name matches byte for byte or else in Unicode NFC:
// macOS writes folder names decomposed (NFD), other systems composed, and a
// model keeps the names of the folders it trained on.
func modelClass(modelClasses []string, c string) int {
	if i := slices.Index(modelClasses, c); i >= 0 {
		return i
	}
	nfc := norm.NFC.String(c)
	return slices.IndexFunc(modelClasses, func(m string) bool { return norm.NFC.String(m) == nfc })
}
