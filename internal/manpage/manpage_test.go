package manpage

import (
	"flag"
	"strings"
	"testing"
)

func TestWriteListsEveryFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("broker", "tcp://127.0.0.1:1883", "MQTT broker `URL`")
	fs.Bool("off", false, "turn the LEDs off")
	var b strings.Builder
	if err := Write(&b, Page{Name: "glowcastd", Section: "8", Summary: "the daemon", Synopsis: []string{"glowcastd [flags]"},
		Description: []string{".starts with a dot"}, Commands: [][2]string{{"init", "write a config"}}}, fs); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		".TH GLOWCASTD 8",
		".BR \\-broker \" \\fIURL\\fR\"\nMQTT broker URL (default: tcp://127.0.0.1:1883)",
		".BR \\-off\nturn the LEDs off\n",
		"\\&.starts with a dot",
		".B init\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("page lacks %q:\n%s", want, got)
		}
	}
}
