package doccheck

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/glowcast/glowcast/test/kit/binaries"
)

// bin holds glowcastd, glowcast-agent and glowcast built from this tree:
// a subcommand's flags are read from its own -h, as a user reads them.
var bin string

func TestMain(m *testing.M) { binaries.Main(m, &bin) }

// subcommand is a command of one of the three binaries that parses flags
// of its own.
type subcommand struct {
	prog, name string
	// inherits names the program whose main flags the command also takes
	// (documented in that program's table, checked by
	// TestEveryFlagAndKeyDocumented).
	inherits string
}

func (s subcommand) String() string { return s.prog + " " + s.name }

// noFlags are commands that take no flags: they need no section.
var noFlags = map[string]bool{"man": true, "version": true, "help": true}

// subcommands lists every command with flags: glowcastd's and
// glowcast-agent's by name, glowcast's from its own usage text, so a new
// glowcast command is checked without being added here.
func subcommands(t *testing.T) []subcommand {
	t.Helper()
	out := []subcommand{
		{"glowcastd", "init", ""},
		{"glowcastd", "doctor", "glowcastd"},
		{"glowcast-agent", "doctor", "glowcast-agent"},
	}
	usage, _ := exec.Command(filepath.Join(bin, "glowcast"), "help").CombinedOutput()
	_, cmds, ok := strings.Cut(string(usage), "commands:\n")
	if !ok {
		t.Fatalf("glowcast help has no commands: section:\n%s", usage)
	}
	n := 0
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z]+) `).FindAllStringSubmatch(cmds, -1) {
		if !noFlags[m[1]] {
			out = append(out, subcommand{"glowcast", m[1], ""})
			n++
		}
	}
	if n < 5 {
		t.Fatalf("found %d glowcast commands in its usage, want its forecast, client, demo, scale and sim commands:\n%s", n, usage)
	}
	return out
}

var helpFlag = regexp.MustCompile(`(?m)^  -([\w-]+)`)

// flagsOf runs `prog args... -h` and returns the flags it lists.
func flagsOf(t *testing.T, prog string, args ...string) map[string]bool {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, prog), append(args, "-h")...)
	cmd.Env = append(os.Environ(), "GLOWCAST_AGENT=", "GLOWCAST_TOKEN_FILE=")
	out, _ := cmd.CombinedOutput() // -h exits 2 (a usage error) or 0
	flags := map[string]bool{}
	for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if len(flags) == 0 {
		t.Fatalf("%s %s -h lists no flags:\n%s", prog, strings.Join(args, " "), out)
	}
	return flags
}

// sections maps "prog command" to its section of docs/CONFIG.md: the
// text under a heading "### `prog command`" (several commands sharing one
// section are named in one heading, "### `glowcast devices`, `glowcast
// show`").
func sections(t *testing.T) map[string]string {
	t.Helper()
	text := docs(t)["docs/CONFIG.md"]
	out := map[string]string{}
	parts := regexp.MustCompile(`(?m)^### `).Split(text, -1)
	for _, p := range parts[1:] {
		heading, body, _ := strings.Cut(p, "\n")
		if i := strings.Index(body, "\n## "); i >= 0 {
			body = body[:i]
		}
		for _, m := range regexp.MustCompile("`(glowcast(?:d|-agent)? [a-z]+)`").FindAllStringSubmatch(heading, -1) {
			out[m[1]] = body
		}
	}
	return out
}

func mentionsFlag(text, name string) bool {
	return regexp.MustCompile(`(^|[^\w-])--?` + regexp.QuoteMeta(name) + `\b`).MatchString(text)
}

// TestSubcommandFlagsDocumented: every flag of every subcommand is in its
// section of docs/CONFIG.md (or is one of the main flags it inherits), and
// every flag a section's table names is one the command has.
func TestSubcommandFlagsDocumented(t *testing.T) {
	secs := sections(t)
	main := map[string]program{}
	for _, p := range programs() {
		main[p.name] = p
	}
	for _, sc := range subcommands(t) {
		t.Run(sc.String(), func(t *testing.T) {
			body, ok := secs[sc.String()]
			if !ok {
				t.Fatalf("docs/CONFIG.md has no section \"### `%s`\"", sc)
			}
			flags := flagsOf(t, sc.prog, sc.name)
			var missing []string
			for f := range flags {
				if mentionsFlag(body, f) {
					continue
				}
				if p, ok := main[sc.inherits]; ok && p.flags.Lookup(f) != nil {
					continue
				}
				missing = append(missing, "-"+f)
			}
			sort.Strings(missing)
			if len(missing) > 0 {
				t.Errorf("%s: flags not in its docs/CONFIG.md section: %s", sc, strings.Join(missing, " "))
			}
			for _, f := range tableFlags(body) {
				if !flags[f] {
					t.Errorf("%s: docs/CONFIG.md documents -%s, which it does not have", sc, f)
				}
			}
		})
	}
}

// tableFlags are the flags in the first cell of a section's table rows.
func tableFlags(body string) []string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "| `-") {
			continue
		}
		cell := strings.SplitN(line, "|", 3)[1]
		for _, m := range regexp.MustCompile("`--?([\\w-]+)").FindAllStringSubmatch(cell, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// subcommandRef finds command lines of a subcommand in the docs.
var subcommandRef = regexp.MustCompile(`(?m)(?:^[ \t]*|\x60|(?:sudo|bin/|\$)[ \t]+)(?:/usr/bin/|bin/)?(glowcastd|glowcast-agent|glowcast)[ \t]+([a-z]+)((?:[ \t]+[^\s\x60|;&#]+)*)`)

// TestDocumentedSubcommandFlagsExist: every -flag given to a subcommand on
// a command line in any doc is one the subcommand has.
func TestDocumentedSubcommandFlagsExist(t *testing.T) {
	known := map[string]map[string]bool{}
	for _, sc := range subcommands(t) {
		known[sc.String()] = flagsOf(t, sc.prog, sc.name)
	}
	var bad []string
	checked := 0
	for file, text := range docs(t) {
		for _, m := range subcommandRef.FindAllStringSubmatch(text, -1) {
			flags, ok := known[m[1]+" "+m[2]]
			if !ok {
				continue // not a command with flags (version, man), or prose
			}
			checked++
			for _, a := range strings.Fields(m[3]) {
				if !strings.HasPrefix(a, "-") {
					continue
				}
				name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
				if name == "" || name == "h" || name == "help" || !regexp.MustCompile(`^[a-z][\w-]*$`).MatchString(name) {
					continue
				}
				if !flags[name] {
					bad = append(bad, fmt.Sprintf("%s: %s %s -%s", file, m[1], m[2], name))
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("found no subcommand command lines in the docs: the pattern is broken")
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Errorf("documented flag does not exist: %s", b)
	}
}
