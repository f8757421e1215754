package runtime

import (
	"strings"
	"testing"
)

func TestParseDevice(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Device
	}{
		{"cpu", CPU}, {"CPU", CPU}, {" cuda ", CUDA}, {"Cuda", CUDA},
	} {
		got, err := ParseDevice(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDevice(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "gpu", "cuda:0", "tpu"} {
		_, err := ParseDevice(bad)
		if err == nil || !strings.Contains(err.Error(), "valid: cpu, cuda") {
			t.Errorf("ParseDevice(%q) error = %v; want one listing the valid names", bad, err)
		}
	}
	// Text round trip, as used by flags and JSON.
	for _, d := range []Device{CPU, CUDA} {
		text, err := d.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Device
		if err := back.UnmarshalText(text); err != nil || back != d {
			t.Errorf("round trip of %v gave %v, %v", d, back, err)
		}
	}
	if _, err := Device(7).MarshalText(); err == nil {
		t.Error("Device(7).MarshalText succeeded")
	}
}

func TestParseGraphOptimization(t *testing.T) {
	for _, g := range optOrder {
		got, err := ParseGraphOptimization(strings.ToUpper(g.String()))
		if err != nil || got != g {
			t.Errorf("ParseGraphOptimization(%q) = %v, %v", strings.ToUpper(g.String()), got, err)
		}
		var back GraphOptimization
		text, _ := g.MarshalText()
		if err := back.UnmarshalText(text); err != nil || back != g {
			t.Errorf("round trip of %v gave %v, %v", g, back, err)
		}
	}
	_, err := ParseGraphOptimization("max")
	if err == nil || !strings.Contains(err.Error(), "valid: disabled, basic, extended, layout, all") {
		t.Errorf("error %v does not list the valid names", err)
	}
	var zero SessionOptions
	if zero.Optimization != OptAll || zero.Device != CPU {
		t.Errorf("zero SessionOptions: optimisation %v, device %v; documented as all, cpu", zero.Optimization, zero.Device)
	}
}

func TestSessionOptionsValidate(t *testing.T) {
	bad := SessionOptions{Device: Device(5), DeviceID: -1, IntraOpThreads: -2, Optimization: GraphOptimization(42)}
	err := bad.validate()
	if err == nil {
		t.Fatal("invalid options accepted")
	}
	// Every problem is reported, each with its field.
	for _, field := range []string{"Device:", "DeviceID:", "IntraOpThreads:", "Optimization:"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not name %s", err, field)
		}
	}
	if err := (SessionOptions{}).validate(); err != nil {
		t.Errorf("zero options rejected: %v", err)
	}
}
