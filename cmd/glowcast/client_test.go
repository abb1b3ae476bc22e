package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAssignments(t *testing.T) {
	tests := []struct {
		in      []string
		want    string
		wantErr string
	}{
		{[]string{"brightness=40", "on=false"}, `{"brightness":40,"on":false}`, ""},
		{[]string{"quiet_hours=22:00-07:00@5", "unit=F"}, `{"quiet_hours":{"start":"22:00","end":"07:00","brightness":5},"unit":"F"}`, ""},
		{[]string{"brightness="}, `{"brightness":null}`, ""},
		{[]string{"on=maybe"}, "", "want true or false"},
		{[]string{"quiet_hours=22:00"}, "", "HH:MM-HH:MM@PERCENT"},
		{[]string{"brightness"}, "", "want key=value"},
		{nil, "", "nothing to set"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.in, " "), func(t *testing.T) {
			b, err := parseAssignments(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(b) != tc.want {
				t.Errorf("got %s, %v; want %s", b, err, tc.want)
			}
		})
	}
}

func TestClientCommands(t *testing.T) {
	var gotAuth, gotBody, gotMethod, gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotAuth, gotBody, gotMethod, gotPath = r.Header.Get("Authorization"), string(b), r.Method, r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/v1/devices":
			w.Write([]byte(`[{"id":"kitchen","online":true,"location":{"lat":52.5,"lon":13.4},"location_source":"config","temps":{"temps_c":[1,2.5,null,4,5],"age_s":90},"desired":{"version":3,"brightness":40},"reported":{"version":3,"applied":{"on":true,"brightness":40}}}]`))
		case r.URL.Path == "/api/v1/devices/porch":
			w.Write([]byte(`{"id":"porch","online":true,"temps":{"temps_c":[0,20,-40,null,100],"age_s":5},"desired":{"version":2,"unit":"F"},"reported":{"version":2,"applied":{"on":true,"brightness":100,"unit":"F"}}}`))
		case r.Method == "PATCH" && strings.Contains(gotBody, "101"):
			w.WriteHeader(422)
			w.Write([]byte(`{"error":"settings refused; nothing changed","fields":{"brightness":"want a whole percentage from 0 to 100"}}`))
		case r.Method == "PATCH":
			w.Write([]byte(`{"version":4,"brightness":40}`))
		}
	}))
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("abc\n"), 0o600)

	var out bytes.Buffer
	if err := runClient(context.Background(), "devices", []string{"--agent", srv.URL}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DEVICE", "kitchen", "52.5000,13.4000 (config)", "1.0 2.5 NaN 4.0 5.0", "1m30s", "40%", "v3 applied"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := runClient(context.Background(), "devices", []string{"--agent", srv.URL, "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var ds []map[string]any
	if err := json.Unmarshal(out.Bytes(), &ds); err != nil || len(ds) != 1 {
		t.Errorf("--json: %v %s", err, out.String())
	}

	// show speaks the device's unit.
	out.Reset()
	if err := runClient(context.Background(), "show", []string{"--agent", srv.URL, "porch"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "temps °F  32.0 68.0 -40.0 NaN 212.0") {
		t.Errorf("show of a device in °F:\n%s", out.String())
	}

	out.Reset()
	if err := runClient(context.Background(), "set", []string{"--agent", srv.URL, "--token-file", tok, "kitchen", "brightness=40"}, &out); err != nil {
		t.Fatal(err)
	}
	if gotMethod != "PATCH" || gotPath != "/api/v1/devices/kitchen/settings" || gotAuth != "Bearer abc" || gotBody != `{"brightness":40}` {
		t.Errorf("request: %s %s auth %q body %s", gotMethod, gotPath, gotAuth, gotBody)
	}
	if !strings.Contains(out.String(), "version 4") {
		t.Errorf("set output: %s", out.String())
	}
	err := runClient(context.Background(), "set", []string{"--agent", srv.URL, "kitchen", "brightness=101"}, &out)
	if err == nil || !strings.Contains(err.Error(), "brightness: want a whole percentage") {
		t.Errorf("refused set: got %v, want the field's reason", err)
	}
}
