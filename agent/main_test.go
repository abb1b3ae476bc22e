package agent

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// save writes one device's state, as the saver does a batch: for tests
// that lay a state dir down before an agent starts on it.
func (s *store) save(v *Saved) error { return s.saveAll([]*Saved{v})[0] }
