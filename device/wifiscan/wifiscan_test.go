package wifiscan

import (
	"context"
	"errors"
	"fmt"
	"github.com/glowcast/glowcast/protocol"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPercentToDBm(t *testing.T) {
	for pct, want := range map[int]int{0: -100, 1: -100, 20: -90, 45: -78, 72: -64, 99: -51, 100: -50, 150: -50, -3: -100} {
		if got := PercentToDBm(pct); got != want {
			t.Errorf("%d%%: got %d, want %d", pct, got, want)
		}
	}
}

func TestParseNmcli(t *testing.T) {
	aps, err := ParseNmcli(fixture(t, "nmcli.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := []protocol.AccessPoint{
		{BSSID: "a4:2b:b0:c1:d2:e3", SignalDBm: -64, SSID: "home"},
		{BSSID: "e8:de:27:12:34:56", SignalDBm: -78, SSID: "Nachbar"},
		{BSSID: "00:1a:2b:3c:4d:5e", SignalDBm: -85, SSID: "cafe_nomap"},
		{BSSID: "da:a1:19:00:11:22", SignalDBm: -51, SSID: "Pixel 7"},
		{BSSID: "1c:3b:f3:aa:bb:cc", SignalDBm: -72, SSID: `lab:net\2`},
		{BSSID: "3c:a6:2f:01:02:03", SignalDBm: -90, SSID: ""},
		{BSSID: "a4:2b:b0:c1:d2:e3", SignalDBm: -65, SSID: "home"},
	}
	if fmt.Sprint(aps) != fmt.Sprint(want) {
		t.Errorf("got  %v\nwant %v", aps, want)
	}
}

func TestParseNmcliRejects(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"one field", "A4\\:2B\\:B0\\:C1\\:D2\\:E3\n", "fields"},
		{"bad bssid", "zz:72:home\n", "48-bit"},
		{"bad signal", "A4\\:2B\\:B0\\:C1\\:D2\\:E3:loud:home\n", "percentage"},
		{"signal over 100", "A4\\:2B\\:B0\\:C1\\:D2\\:E3:101:home\n", "percentage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseNmcli([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseIW(t *testing.T) {
	aps, err := ParseIW(fixture(t, "iw_scan.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := []protocol.AccessPoint{
		{BSSID: "a4:2b:b0:c1:d2:e3", SignalDBm: -58, SSID: "home"},
		{BSSID: "e8:de:27:12:34:56", SignalDBm: -72, SSID: "Nachbar"},
		{BSSID: "00:1a:2b:3c:4d:5e", SignalDBm: -85, SSID: "cafe_nomap"},
		{BSSID: "da:a1:19:00:11:22", SignalDBm: -41, SSID: "Pixel 7"},
		{BSSID: "3c:a6:2f:01:02:03", SignalDBm: -90, SSID: ""},
	}
	if fmt.Sprint(aps) != fmt.Sprint(want) {
		t.Errorf("got  %v\nwant %v", aps, want)
	}
	if _, err := ParseIW([]byte("BSS nonsense(on wlan0)\n")); err == nil {
		t.Error("got nil error for a bad BSS line")
	}
}

func TestFilter(t *testing.T) {
	aps, err := ParseNmcli(fixture(t, "nmcli.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got := protocol.UsableAccessPoints(aps)
	// The _nomap café and the locally administered phone (0xDA) are gone;
	// home appears once, at its stronger reading.
	want := "[{a4:2b:b0:c1:d2:e3 -64 home} {1c:3b:f3:aa:bb:cc -72 lab:net\\2} {e8:de:27:12:34:56 -78 Nachbar} {3c:a6:2f:01:02:03 -90 }]"
	if fmt.Sprint(got) != want {
		t.Errorf("got  %v\nwant %s", got, want)
	}
}

// fakeRun answers per program name and records the calls.
type fakeRun struct {
	out   map[string][]byte
	err   map[string]error
	calls []string
}

func (f *fakeRun) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	f.calls = append(f.calls, name+" "+strings.Join(args, " "))
	return f.out[name], f.err[name]
}

func TestScanner(t *testing.T) {
	notFound := &exec.Error{Name: "nmcli", Err: exec.ErrNotFound}
	tests := []struct {
		name      string
		tool      string
		out       map[string][]byte
		err       map[string]error
		wantCalls []string
		wantFirst string
		wantErr   string
	}{
		{"nmcli", "", map[string][]byte{"nmcli": fixture(t, "nmcli.txt")}, nil,
			[]string{"nmcli -t -f BSSID,SIGNAL,SSID dev wifi list --rescan auto"}, "a4:2b:b0:c1:d2:e3", ""},
		{"fallback to iw", "", map[string][]byte{"iw": fixture(t, "iw_scan.txt")}, map[string]error{"nmcli": notFound},
			[]string{"nmcli -t -f BSSID,SIGNAL,SSID dev wifi list --rescan auto", "iw dev wlan1 scan"}, "a4:2b:b0:c1:d2:e3", ""},
		{"iw only", "iw", map[string][]byte{"iw": fixture(t, "iw_scan.txt")}, nil,
			[]string{"iw dev wlan1 scan"}, "a4:2b:b0:c1:d2:e3", ""},
		{"both fail", "", nil, map[string]error{"nmcli": notFound, "iw": errors.New("exit status 255: command failed: Operation not permitted (-1)")},
			nil, "", "Operation not permitted"},
		{"nmcli fails alone", "nmcli", nil, map[string]error{"nmcli": errors.New("Error: NetworkManager is not running.")},
			nil, "", "NetworkManager is not running"},
		{"unknown tool", "wpa_cli", nil, nil, nil, "", `unknown tool "wpa_cli"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRun{out: tt.out, err: tt.err}
			s := &Scanner{Run: f.run, Interface: "wlan1", Tool: tt.tool}
			aps, err := s.Scan(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(f.calls) != fmt.Sprint(tt.wantCalls) {
				t.Errorf("got calls %q, want %q", f.calls, tt.wantCalls)
			}
			if len(aps) == 0 || aps[0].BSSID != tt.wantFirst {
				t.Errorf("got %v, want %s first", aps, tt.wantFirst)
			}
			for _, ap := range aps {
				if protocol.LocallyAdministered(ap.BSSID) || protocol.OptedOut(ap.SSID) {
					t.Errorf("scan returned %v", ap)
				}
			}
		})
	}
}

func TestExecRunsProgram(t *testing.T) {
	// The real Runner against a program every system has.
	out, err := Exec(context.Background(), "sh", "-c", "echo 'A4\\:2B\\:B0\\:C1\\:D2\\:E3:80:x'")
	if err != nil {
		t.Fatal(err)
	}
	aps, err := ParseNmcli(out)
	if err != nil || len(aps) != 1 || aps[0].SignalDBm != -60 {
		t.Errorf("got %v %v, want one access point at -60 dBm", aps, err)
	}
	_, err = Exec(context.Background(), "sh", "-c", "echo 'Error: NetworkManager is not running.' >&2; exit 8")
	if err == nil || !strings.Contains(err.Error(), "NetworkManager is not running") {
		t.Errorf("got %v, want the program's stderr in the error", err)
	}
}
