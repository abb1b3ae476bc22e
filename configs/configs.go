// Package configs holds the shipped configuration files, for the programs
// that write a machine's configuration from them (glowcastd init -local):
// what they write is the shipped file with a few lines changed, so a change
// here reaches every set-up.
package configs

import _ "embed"

// Agent is agent.yaml, the agent's example configuration.
//
//go:embed agent.yaml
var Agent string

// MosquittoConf is mosquitto/glowcast.conf: the broker's settings, limits
// included.
//
//go:embed mosquitto/glowcast.conf
var MosquittoConf string

// MosquittoACL is mosquitto/glowcast.acl: who may use which topics.
//
//go:embed mosquitto/glowcast.acl
var MosquittoACL string
