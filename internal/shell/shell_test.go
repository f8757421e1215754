package shell

import (
	"os/exec"
	"testing"
)

// Every quoted path comes back whole from a real bash as one word.
func TestQuoteThroughBash(t *testing.T) {
	for _, s := range []string{"runs/leaves", "my runs/x", "it's", `a"b`, "$HOME", "a\tb", "ü/ø", "a\nb", "*", ""} {
		out, err := exec.Command("bash", "-c", "printf %s "+Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("%q quoted as %s: bash gave %q (%v)", s, Quote(s), out, err)
		}
	}
	if got := Quote("runs/leaves-cpu"); got != "runs/leaves-cpu" {
		t.Errorf("a plain path quoted: %s", got)
	}
}
