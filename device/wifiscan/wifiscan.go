// Package wifiscan owns the device's optional WiFi access point scan: it
// runs nmcli or iw, parses their output, drops networks that must not be
// mapped, and builds the payload of the "wifi" message the agent resolves
// to a location.
//
// # Privacy
//
// Networks whose SSID contains "_nomap" or "_optout" and BSSIDs with the
// locally administered bit set (randomised addresses, phone hotspots) never
// leave the device. Only BSSIDs and signal strengths are needed by the
// agent; SSIDs are sent only so the agent can apply the same rule.
//
// # Tools
//
// nmcli needs NetworkManager; "iw dev IFACE scan" needs CAP_NET_ADMIN
// (root, or AmbientCapabilities=CAP_NET_ADMIN in the unit). With Tool ""
// the scanner tries nmcli first and falls back to iw.
//
// It does no MQTT: the daemon sends Message's payload as the "wifi"
// named message.
package wifiscan

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/glowcast/glowcast/protocol"
	"os/exec"
	"strconv"
	"strings"
)

// Message builds the wifi payload from a scan: filtered, strongest first,
// at most MaxAccessPoints. publicIP may be empty.
func Message(aps []protocol.AccessPoint, publicIP string) ([]byte, error) {
	p := protocol.WiFiScan{AccessPoints: protocol.UsableAccessPoints(aps), PublicIP: publicIP}
	if len(p.AccessPoints) > protocol.MaxAccessPoints {
		p.AccessPoints = p.AccessPoints[:protocol.MaxAccessPoints]
	}
	return json.Marshal(p)
}

// Runner runs a command and returns its standard output.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// Exec is the Runner that runs real programs.
func Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return out, fmt.Errorf("%w: %s", err, firstLine(msg))
		}
		return out, err
	}
	return out, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Scanner scans for access points.
type Scanner struct {
	// Run runs the scan command; nil means Exec.
	Run Runner
	// Interface is the wireless interface for iw; "" means wlan0.
	Interface string
	// Tool is "nmcli", "iw", or "" for nmcli with iw as fallback.
	Tool string
}

// Scan returns the visible access points, filtered (see Filter).
func (s *Scanner) Scan(ctx context.Context) ([]protocol.AccessPoint, error) {
	run := s.Run
	if run == nil {
		run = Exec
	}
	iface := s.Interface
	if iface == "" {
		iface = "wlan0"
	}
	switch s.Tool {
	case "nmcli":
		return s.nmcli(ctx, run)
	case "iw":
		return s.iw(ctx, run, iface)
	case "":
		aps, err := s.nmcli(ctx, run)
		if err == nil {
			return aps, nil
		}
		aps, err2 := s.iw(ctx, run, iface)
		if err2 != nil {
			return nil, fmt.Errorf("wifiscan: no scan tool worked: %w", errors.Join(err, err2))
		}
		return aps, nil
	}
	return nil, fmt.Errorf("wifiscan: unknown tool %q: use nmcli, iw or leave it empty", s.Tool)
}

func (s *Scanner) nmcli(ctx context.Context, run Runner) ([]protocol.AccessPoint, error) {
	// -t: terse, ':'-separated with ':' and '\' escaped; --rescan auto lets
	// NetworkManager use a recent scan instead of waiting for a new one.
	out, err := run(ctx, "nmcli", "-t", "-f", "BSSID,SIGNAL,SSID", "dev", "wifi", "list", "--rescan", "auto")
	if err != nil {
		return nil, fmt.Errorf("wifiscan: nmcli: %w", err)
	}
	aps, err := ParseNmcli(out)
	if err != nil {
		return nil, err
	}
	return protocol.UsableAccessPoints(aps), nil
}

func (s *Scanner) iw(ctx context.Context, run Runner, iface string) ([]protocol.AccessPoint, error) {
	out, err := run(ctx, "iw", "dev", iface, "scan")
	if err != nil {
		return nil, fmt.Errorf("wifiscan: iw dev %s scan (needs CAP_NET_ADMIN): %w", iface, err)
	}
	aps, err := ParseIW(out)
	if err != nil {
		return nil, err
	}
	return protocol.UsableAccessPoints(aps), nil
}

// PercentToDBm converts NetworkManager's signal quality (0…100 %) to dBm
// the way NetworkManager derives it: dBm = pct/2 − 100.
func PercentToDBm(pct int) int {
	pct = min(max(pct, 0), 100)
	return pct/2 - 100
}

// splitTerse splits an nmcli -t line on unescaped ':' and unescapes "\:"
// and "\\".
func splitTerse(line string) []string {
	var fields []string
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && i+1 < len(line):
			i++
			b.WriteByte(line[i])
		case c == ':':
			fields = append(fields, b.String())
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return append(fields, b.String())
}

// ParseNmcli parses `nmcli -t -f BSSID,SIGNAL,SSID dev wifi list`.
// Lines it cannot read are an error: the format is fixed by -t.
func ParseNmcli(out []byte) ([]protocol.AccessPoint, error) {
	var aps []protocol.AccessPoint
	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		f := splitTerse(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("wifiscan: nmcli line %d: %q has %d fields, want BSSID:SIGNAL:SSID", n, line, len(f))
		}
		mac, err := protocol.NormBSSID(f[0])
		if err != nil {
			return nil, fmt.Errorf("wifiscan: nmcli line %d: %w", n, err)
		}
		pct, err := strconv.Atoi(f[1])
		if err != nil || pct < 0 || pct > 100 {
			return nil, fmt.Errorf("wifiscan: nmcli line %d: signal %q is not a percentage", n, f[1])
		}
		ap := protocol.AccessPoint{BSSID: mac, SignalDBm: PercentToDBm(pct)}
		if len(f) > 2 {
			ap.SSID = strings.Join(f[2:], ":")
		}
		aps = append(aps, ap)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("wifiscan: nmcli: %w", err)
	}
	return aps, nil
}

// ParseIW parses `iw dev IFACE scan`: a "BSS <mac>(on IFACE)" line per
// network, then tab-indented fields of which "signal: -58.00 dBm" and
// "SSID: name" (one tab deep) are read. Networks without a signal are
// skipped.
func ParseIW(out []byte) ([]protocol.AccessPoint, error) {
	var aps []protocol.AccessPoint
	var cur *protocol.AccessPoint
	haveSignal := false
	flush := func() {
		if cur != nil && haveSignal {
			aps = append(aps, *cur)
		}
		cur, haveSignal = nil, false
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if rest, ok := strings.CutPrefix(line, "BSS "); ok {
			flush()
			mac := rest
			if i := strings.IndexAny(mac, "( "); i >= 0 {
				mac = mac[:i]
			}
			m, err := protocol.NormBSSID(mac)
			if err != nil {
				return nil, fmt.Errorf("wifiscan: iw line %d: %w", n, err)
			}
			cur = &protocol.AccessPoint{BSSID: m}
			continue
		}
		if cur == nil || !strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "\t\t") {
			continue
		}
		field := line[1:]
		switch {
		case strings.HasPrefix(field, "signal: "):
			v := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(field, "signal: "), "dBm"))
			dbm, err := strconv.ParseFloat(v, 64)
			if err != nil || dbm < -127 || dbm > 0 {
				return nil, fmt.Errorf("wifiscan: iw line %d: signal %q", n, v)
			}
			cur.SignalDBm, haveSignal = int(dbm), true
		case strings.HasPrefix(field, "SSID: ") || field == "SSID:":
			cur.SSID = unescapeIW(strings.TrimPrefix(strings.TrimPrefix(field, "SSID:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("wifiscan: iw: %w", err)
	}
	flush()
	return aps, nil
}

// unescapeIW undoes iw's \xNN escapes of non-printable SSID bytes.
func unescapeIW(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
