package agent

import (
	"testing"
)

// byVersion gathers glowcast_devices_by_version as version -> value.
func byVersion(t *testing.T, s *Stats) map[string]float64 {
	t.Helper()
	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "glowcast_devices_by_version" {
			continue
		}
		for _, m := range mf.Metric {
			out[m.Label[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestDevicesByVersion(t *testing.T) {
	s := newStats()
	s.deviceVersion("a", "1.0.0")
	s.deviceVersion("b", "1.0.0")
	s.deviceVersion("c", "1.1.0")
	s.deviceVersion("a", "1.1.0") // upgraded
	s.deviceVersion("a", "1.1.0") // a repeated ready counts once
	if got := byVersion(t, s); len(got) != 2 || got["1.0.0"] != 1 || got["1.1.0"] != 2 {
		t.Errorf("got %v, want 1.0.0:1 1.1.0:2", got)
	}
	s.deviceVersion("b", "1.1.0")
	if got := byVersion(t, s); len(got) != 1 || got["1.1.0"] != 3 {
		t.Errorf("after every device upgraded got %v, want 1.1.0:3 only", got)
	}
	for i := 0; i < maxVersions+10; i++ {
		s.deviceVersion("x"+string(rune('A'+i)), "v"+string(rune('A'+i)))
	}
	if got := byVersion(t, s); len(got) > maxVersions+1 || got["other"] == 0 {
		t.Errorf("%d version series (other %v), want at most %d and other", len(got), got["other"], maxVersions)
	}
}

func TestBuildInfo(t *testing.T) {
	s := newStats()
	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "glowcast_build_info" {
			continue
		}
		for _, l := range mf.Metric[0].Label {
			if l.GetName() == "version" && l.GetValue() == Version {
				return
			}
		}
		t.Fatalf("glowcast_build_info has no version=%q label: %v", Version, mf)
	}
	t.Fatal("no glowcast_build_info")
}
