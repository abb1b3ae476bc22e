// Package doccheck holds the documentation to the code: every flag and
// configuration key the docs name exists, and every one that exists is
// documented, for glowcastd and glowcast-agent.
package doccheck
