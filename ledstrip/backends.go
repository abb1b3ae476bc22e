package ledstrip

import (
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// pixelWriter is what a recording backend implements: put these colours
// somewhere.
type pixelWriter interface {
	writePixels(px []color.RGBA, f Frame) error
	close() error
}

type nopWriter struct{}

func (nopWriter) writePixels([]color.RGBA, Frame) error { return nil }
func (nopWriter) close() error                          { return nil }

// jsonlRecord is one line of the jsonl backend. Field names are fixed: tests
// outside this repository read them.
type jsonlRecord struct {
	TS    string     `json:"ts"`
	RGB   []string   `json:"rgb"`
	Temps []*float64 `json:"temps_c"`
	State State      `json:"state"`
	// Source is "sample" for the bundled demo forecast, else omitted.
	Source string `json:"source,omitempty"`
	// Brightness is the brightness setting in force, 0…100.
	Brightness int `json:"brightness"`
	// Unit is the owner's label unit when set to °F ("F"); temps_c stay
	// in °C.
	Unit string `json:"unit,omitempty"`
	// FadeMS is the fade the frame asked for, when it asked for one.
	FadeMS *int64 `json:"fade_ms,omitempty"`
}

type jsonlWriter struct{ f *os.File }

func openJSONL(path string) (*jsonlWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ledstrip: open jsonl file %s (flag --led jsonl:PATH): %w", path, err)
	}
	return &jsonlWriter{f: f}, nil
}

func (w *jsonlWriter) writePixels(px []color.RGBA, f Frame) error {
	rec := jsonlRecord{TS: f.TS.UTC().Format(time.RFC3339Nano), State: f.State, Source: f.Source, Brightness: f.BrightnessPercent(), RGB: make([]string, len(px))}
	for i, c := range px {
		rec.RGB[i] = Hex(c)
	}
	if f.Unit == UnitF {
		rec.Unit = UnitF
	}
	if f.Fade != nil {
		ms := f.Fade.Milliseconds()
		rec.FadeMS = &ms
	}
	if f.Temps != nil {
		rec.Temps = make([]*float64, len(f.Temps))
		for i, t := range f.Temps {
			if !math.IsNaN(t) {
				v := t
				rec.Temps[i] = &v
			}
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("ledstrip: encode jsonl record: %w", err)
	}
	// One write call per line so a concurrent reader never sees half a record.
	if _, err = w.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("ledstrip: write jsonl record: %w", err)
	}
	return nil
}

func (w *jsonlWriter) close() error { return w.f.Close() }

// termWriter draws the strip as a row of truecolour blocks, redrawn in place.
type termWriter struct{ out io.Writer }

func newTerm(out io.Writer) *termWriter {
	if out == nil {
		out = os.Stdout
	}
	return &termWriter{out: out}
}

func (w *termWriter) writePixels(px []color.RGBA, f Frame) error {
	var b strings.Builder
	b.WriteString("\r\x1b[2K")
	for i, c := range px {
		fmt.Fprintf(&b, "\x1b[48;2;%d;%d;%dm", c.R, c.G, c.B)
		label := "  --  "
		if i < len(f.Temps) && !math.IsNaN(f.Temps[i]) {
			label = fmt.Sprintf("%5.1f ", f.Temps[i])
			if f.Unit == UnitF {
				label = fmt.Sprintf("%5.1f ", ToF(f.Temps[i]))
			}
		}
		fg := "97"
		if int(c.R)+int(c.G)+int(c.B) > 380 {
			fg = "30"
		}
		fmt.Fprintf(&b, "\x1b[%sm %s\x1b[0m ", fg, label)
	}
	unit := "°C"
	if f.Unit == UnitF {
		unit = "°F"
	}
	fmt.Fprintf(&b, " %s %s", unit, f.State)
	if f.Source == "sample" {
		b.WriteString("  SAMPLE DATA — not real weather")
	}
	_, err := io.WriteString(w.out, b.String())
	return err
}

func (w *termWriter) close() error {
	_, err := io.WriteString(w.out, "\n")
	return err
}
