package configs

import (
	"fmt"
	"strings"
)

// Line is one change to a shipped file: the line equal to Match (or, when
// Match ends in a space, the line starting with it) becomes With.
type Line struct{ Match, With string }

// Rewrite applies each change to text, the shipped file name. Every change
// must match exactly one line, so a change to the shipped file's shape
// fails loudly instead of writing (or testing) something else.
func Rewrite(name, text string, changes []Line) (string, error) {
	lines := strings.Split(text, "\n")
	for _, r := range changes {
		n := 0
		for i, l := range lines {
			if l == r.Match || (strings.HasSuffix(r.Match, " ") && strings.HasPrefix(l, r.Match)) {
				lines[i] = r.With
				n++
			}
		}
		if n != 1 {
			return "", fmt.Errorf("shipped %s: %d lines match %q, want exactly 1", name, n, r.Match)
		}
	}
	return strings.Join(lines, "\n"), nil
}
