// Package manpage writes a program's manual page (roff, man(7) macros) from
// the same flag set the program parses, so the page and -h cannot
// disagree. The packages ship the pages `<binary> man` prints.
package manpage

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// Page is what a manual page says besides the flags.
type Page struct {
	Name, Section, Summary string
	// Synopsis lines, e.g. "glowcastd [flags]".
	Synopsis []string
	// Description paragraphs.
	Description []string
	// Commands, in order: name and one line.
	Commands [][2]string
	// Files, in order: path and one line.
	Files   [][2]string
	SeeAlso []string
}

// Write prints p with every flag of fs (nil for none) as an OPTIONS entry.
func Write(w io.Writer, p Page, fs *flag.FlagSet) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s %s \"\" \"glowcast\" \"glowcast manual\"\n", strings.ToUpper(esc(p.Name)), p.Section)
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", esc(p.Name), esc(p.Summary))
	b.WriteString(".SH SYNOPSIS\n")
	for i, s := range p.Synopsis {
		if i > 0 {
			b.WriteString(".br\n")
		}
		fmt.Fprintf(&b, ".B %s\n", esc(s))
	}
	b.WriteString(".SH DESCRIPTION\n")
	for i, d := range p.Description {
		if i > 0 {
			b.WriteString(".PP\n")
		}
		b.WriteString(esc(d) + "\n")
	}
	if len(p.Commands) > 0 {
		b.WriteString(".SH COMMANDS\n")
		for _, c := range p.Commands {
			fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", esc(c[0]), esc(c[1]))
		}
	}
	if fs != nil {
		b.WriteString(".SH OPTIONS\n")
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(&b, ".TP\n.BR \\-%s", esc(f.Name))
			if name != "" {
				fmt.Fprintf(&b, " \" \\fI%s\\fR\"", esc(name))
			}
			b.WriteString("\n" + esc(usage))
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				fmt.Fprintf(&b, " (default: %s)", esc(f.DefValue))
			}
			b.WriteString("\n")
		})
	}
	if len(p.Files) > 0 {
		b.WriteString(".SH FILES\n")
		for _, f := range p.Files {
			fmt.Fprintf(&b, ".TP\n.I %s\n%s\n", esc(f[0]), esc(f[1]))
		}
	}
	if len(p.SeeAlso) > 0 {
		b.WriteString(".SH SEE ALSO\n" + esc(strings.Join(p.SeeAlso, ", ")) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// esc keeps text from being read as roff: backslashes doubled, and a line
// starting with . or ' guarded.
func esc(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
