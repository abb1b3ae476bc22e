package backend

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"io"
	"io/fs"
	"math"
	"os"
	"strings"
	"time"

	"github.com/glowcast/glowcast/ledstrip"
)

// pixelWriter is what a recording backend implements: put these colours
// somewhere.
type pixelWriter interface {
	writePixels(px []color.RGBA, f ledstrip.Frame) error
	close() error
}

type nopWriter struct{}

func (nopWriter) writePixels([]color.RGBA, ledstrip.Frame) error { return nil }
func (nopWriter) close() error                                   { return nil }

// Record is one line of the jsonl backend. Field names are fixed: tests
// outside this repository read them.
type Record struct {
	TS  time.Time `json:"ts"`
	RGB []string  `json:"rgb"`
	// Temps are the frame's temperatures; null marks a missing one.
	Temps []*float64     `json:"temps_c"`
	State ledstrip.State `json:"state"`
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

// ReadJSONL reads every record of a jsonl strip file; a file that does
// not exist yet holds none.
func ReadJSONL(path string) ([]Record, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return out, fmt.Errorf("ledstrip: %s: jsonl record %q: %w", path, sc.Text(), err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// LastJSONL reads the newest record of a jsonl strip file, reading only
// its tail (the file grows with every frame); ok is false while it has
// none.
func LastJSONL(path string) (r Record, ok bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	defer f.Close()
	const tail = 8 << 10 // many records: one is a few hundred bytes
	if fi, err := f.Stat(); err == nil && fi.Size() > tail {
		if _, err := f.Seek(fi.Size()-tail, io.SeekStart); err != nil {
			return Record{}, false, err
		}
	}
	var last []byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		last = append(last[:0], sc.Bytes()...)
	}
	if err := sc.Err(); err != nil {
		return Record{}, false, err
	}
	if len(last) == 0 {
		return Record{}, false, nil
	}
	if err := json.Unmarshal(last, &r); err != nil {
		return Record{}, false, fmt.Errorf("ledstrip: %s: last jsonl record: %w", path, err)
	}
	return r, true, nil
}

type jsonlWriter struct{ f *os.File }

func openJSONL(path string) (*jsonlWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ledstrip: open jsonl file %s (flag --led jsonl:PATH): %w", path, err)
	}
	return &jsonlWriter{f: f}, nil
}

func (w *jsonlWriter) writePixels(px []color.RGBA, f ledstrip.Frame) error {
	rec := Record{TS: f.TS.UTC(), State: f.State, Source: f.Source, Brightness: f.BrightnessPercent(), RGB: make([]string, len(px))}
	for i, c := range px {
		rec.RGB[i] = ledstrip.Hex(c)
	}
	if f.Unit == ledstrip.UnitF {
		rec.Unit = ledstrip.UnitF
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

func (w *termWriter) writePixels(px []color.RGBA, f ledstrip.Frame) error {
	var b strings.Builder
	b.WriteString("\r\x1b[2K")
	for i, c := range px {
		fmt.Fprintf(&b, "\x1b[48;2;%d;%d;%dm", c.R, c.G, c.B)
		label := "  --  "
		if i < len(f.Temps) && !math.IsNaN(f.Temps[i]) {
			label = fmt.Sprintf("%5.1f ", f.Temps[i])
			if f.Unit == ledstrip.UnitF {
				label = fmt.Sprintf("%5.1f ", ledstrip.ToF(f.Temps[i]))
			}
		}
		fg := "97"
		if int(c.R)+int(c.G)+int(c.B) > 380 {
			fg = "30"
		}
		fmt.Fprintf(&b, "\x1b[%sm %s\x1b[0m ", fg, label)
	}
	unit := "°C"
	if f.Unit == ledstrip.UnitF {
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
