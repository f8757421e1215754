package main

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// nasctl reward mock agrees with the formula on a vector computed by hand in
// controller/mock_test.go: B = 1, (0,1,9,10,add) (1,0,12,3,concat) ->
// r = 0.964165943587671, reward = r^2 = 0.929615966774304.
func TestRewardMock(t *testing.T) {
	code, out, errOut := runCLI(t, "reward", "mock", "--actions", "0,1,9,10,0, 1,0,12,3,1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
	if err != nil || math.Abs(got-0.929615966774304) > 1e-14 {
		t.Errorf("output %q, want 0.929615966774304", out)
	}
	code, out, _ = runCLI(t, "reward", "mock", "--explain", "--actions", "0,1,9,10,0,1,0,12,3,1")
	for _, w := range []string{
		"cells     normal: b0 = add(conv_3x3(h0), sep_conv_3x3(h1)) | reduction: b0 = concat(sep_conv_7x7(h1), dil_conv_3x3(h0))",
		"high      0.75\n", "low       0.25\n", "in_div    1\n", "comb_var  1\n", "mean      8.5\n", "r         0.96416594358767",
	} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("--explain output lacks %q:\n%s", w, out)
		}
	}
	// All-identity B = 2: r^2 = 0.344 is clamped to 0.5.
	if code, out, _ := runCLI(t, "reward", "mock", "--actions", strings.Repeat("0,", 19)+"0"); code != 0 || out != "0.5\n" {
		t.Errorf("clamped: exit %d, %q", code, out)
	}
}

func TestRewardMockUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--actions", "0,1,2"}, "got 3 integers, want 10*B integers"},
		{[]string{"--actions", "0,x"}, `item 1 "x" is not an integer`},
		{[]string{"--actions", "0,2,0,0,0,0,0,0,0,0"}, "action 1 (normal b0 input2): 2 is out of range 0-1"},
		{nil, "reward mock needs --actions"},
		{[]string{"--actions", "0", "extra"}, "takes no arguments"},
	} {
		code, _, errOut := runCLI(t, append([]string{"reward", "mock"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, errOut, tc.want)
		}
		if code == exitUsage && !strings.Contains(errOut, "5 per block (input1, input2, op1, op2, combine)") && tc.args != nil && len(tc.args) == 2 {
			t.Errorf("%v: the usage error should say what is expected: %q", tc.args, errOut)
		}
	}
}

func TestRewardNATSBench(t *testing.T) {
	// The CIFAR-10 optimum of the table (natsbench/data/README.md: 94.37333,
	// a mean of runs given to two decimals), to four decimals.
	for _, args := range [][]string{
		{"--actions", "3,3,3,1,3,2"},
		{"--cell", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "--dataset", "cifar10"},
	} {
		code, out, errOut := runCLI(t, append([]string{"reward", "natsbench"}, args...)...)
		if code != 0 || out != "94.3733\n" {
			t.Errorf("%v: exit %d, %q %s", args, code, out, errOut)
		}
	}
	// 73.22, whose nearest float64 prints as 73.21999999999998 in full.
	if code, out, _ := runCLI(t, "reward", "natsbench", "--actions", "3,3,3,1,3,2", "--dataset", "cifar100"); code != 0 || out != "73.22\n" {
		t.Errorf("cifar100: exit %d, %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--actions", "3,3,3"}, "want 6"},
		{[]string{"--actions", "3,3,3,1,3,2", "--dataset", "cifar"}, "valid: cifar10, cifar100, imagenet16-120"},
		{nil, "exactly one of --actions and --cell"},
		{[]string{"--cell", "|x~0|"}, "--cell"},
	} {
		code, _, errOut := runCLI(t, append([]string{"reward", "natsbench"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 mentioning %q", tc.args, code, errOut, tc.want)
		}
	}
}
