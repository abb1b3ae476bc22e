package protocol

import (
	"encoding/json"
	"fmt"
	"time"
)

// Claim is the retained payload of OwnerTopic: which agent runs a device's
// cycle, and where a new owner resumes it.
type Claim struct {
	// Agent and Session name the claiming agent and its process.
	Agent   string `json:"agent"`
	Session string `json:"session"`
	// TS is when this agent took the device's cycle on, by its own clock:
	// for people, never for ordering.
	TS time.Time `json:"ts"`
	// Epoch numbers the takeovers of one device: an agent taking a
	// device on claims one above the highest epoch it has seen, and keeps
	// it while its cycle runs. Of two live claims the higher epoch wins,
	// then the greater agent id: every agent decides alike, whatever its
	// clock says.
	Epoch uint64 `json:"epoch,omitempty"`
	// BootID is the device process the cycle serves.
	BootID string `json:"boot_id,omitempty"`
	// NextDue is when the device's next forecast is due: a new owner
	// resumes there, without an extra fetch.
	NextDue time.Time `json:"next_due,omitzero"`
	// TempsSeq is the seq of the last temps this agent published for the
	// device: a new owner numbers its temps above it.
	TempsSeq uint64 `json:"temps_seq,omitempty"`
	// Released hands the device over: any agent whose shard holds it may
	// take it on at once.
	Released bool `json:"released,omitempty"`
}

// Marshal renders the claim for OwnerTopic.
func (c Claim) Marshal() []byte {
	b, _ := json.Marshal(c) // plain fields: cannot fail
	return b
}

// ParseClaim decodes and checks an owner claim payload.
func ParseClaim(b []byte) (*Claim, error) {
	var c Claim
	if err := strictUnmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("owner claim: %w", err)
	}
	if err := ValidID(c.Agent); err != nil {
		return nil, fmt.Errorf("owner claim: agent: %w", err)
	}
	if c.Session == "" || len(c.Session) > MaxIDLen {
		return nil, fmt.Errorf("owner claim: session missing or longer than %d", MaxIDLen)
	}
	return &c, nil
}
