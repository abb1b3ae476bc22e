package protocol

import "encoding/json"

// Payload renders the device's status, its birth (online) or its last
// will. It makes DeviceStatus the presence of a device's broker client.
func (s DeviceStatus) Payload(online bool) []byte {
	s.Online = online
	s.TS = s.TS.UTC()
	b, _ := json.Marshal(s) // plain fields: cannot fail
	return b
}

// ParseStatus reads a device status: the boot it names and whether it is
// online.
func (DeviceStatus) ParseStatus(b []byte) (id string, online bool, err error) {
	s, err := ParseDeviceStatus(b)
	if err != nil {
		return "", false, err
	}
	return s.BootID, s.Online, nil
}

// Payload renders the agent's status, its birth (online) or its last will.
// It makes AgentStatus the presence of an agent's broker client.
func (s AgentStatus) Payload(online bool) []byte {
	s.Online = online
	s.TS = s.TS.UTC()
	b, _ := json.Marshal(s) // plain fields: cannot fail
	return b
}

// ParseStatus reads an agent status: the session it names and whether it
// is online.
func (AgentStatus) ParseStatus(b []byte) (id string, online bool, err error) {
	s, err := ParseAgentStatus(b)
	if err != nil {
		return "", false, err
	}
	return s.Session, s.Online, nil
}
