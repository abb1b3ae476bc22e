// Package doccheck holds the documentation to the code: every flag and
// configuration key the docs name exists, and every one that exists is
// documented, for glowcastd and glowcast-agent; and every flag of every
// subcommand (glowcastd init and doctor, glowcast-agent doctor, each
// glowcast command), read from the built binaries' -h, has its row in
// docs/CONFIG.md, and every flag a doc gives a subcommand exists.
package doccheck
