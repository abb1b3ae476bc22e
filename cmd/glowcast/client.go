package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/protocol"
)

// clientCommands talk to the agent's HTTP API.
var clientCommands = map[string]string{
	"devices": "glowcast devices [--agent URL] [--json]",
	"show":    "glowcast show [--agent URL] [--json] DEVICE",
	"set":     "glowcast set [--agent URL] [--token-file FILE] [--json] DEVICE key=value…  (keys: on, brightness, quiet_hours=HH:MM-HH:MM@PCT, unit, fade_ms; key= clears)",
	"rebirth": "glowcast rebirth [--agent URL] [--token-file FILE] DEVICE",
}

type client struct {
	base  string
	token string
	http  *http.Client
}

// apiDevice is the part of the API's device the tables show.
type apiDevice struct {
	ID             string             `json:"id"`
	Online         bool               `json:"online"`
	Version        string             `json:"version"`
	Location       *protocol.Location `json:"location"`
	LocationSource string             `json:"location_source"`
	Temps          *struct {
		TempsC protocol.TempList `json:"temps_c"`
		AgeS   float64           `json:"age_s"`
	} `json:"temps"`
	Desired  protocol.Desired   `json:"desired"`
	Reported *protocol.Reported `json:"reported"`
}

func runClient(ctx context.Context, cmd string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("glowcast "+cmd, flag.ContinueOnError)
	agentURL := fs.String("agent", envOr("GLOWCAST_AGENT", "http://127.0.0.1:9120"), "the agent's HTTP `URL` (its --http address; env GLOWCAST_AGENT)")
	tokenFile := fs.String("token-file", os.Getenv("GLOWCAST_TOKEN_FILE"), "`file` holding the agent's API token, for set and rebirth (env GLOWCAST_TOKEN_FILE)")
	asJSON := fs.Bool("json", false, "print the API's JSON instead of a table")
	fs.Usage = func() { fmt.Fprintf(fs.Output(), "usage: %s\n", clientCommands[cmd]); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := &client{base: strings.TrimRight(*agentURL, "/") + "/api/v1", http: &http.Client{Timeout: 15 * time.Second}}
	if *tokenFile != "" && (cmd == "set" || cmd == "rebirth") {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("token (--token-file): %w", err)
		}
		c.token = strings.TrimSpace(string(b))
	}
	rest := fs.Args()
	needDev := func() (string, error) {
		if len(rest) == 0 {
			return "", fmt.Errorf("name the device: %s", clientCommands[cmd])
		}
		return rest[0], nil
	}
	switch cmd {
	case "devices":
		raw, err := c.do(ctx, "GET", "/devices", nil)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err = stdout.Write(raw)
			return err
		}
		var ds []apiDevice
		if err := json.Unmarshal(raw, &ds); err != nil {
			return fmt.Errorf("reading the agent's answer: %w", err)
		}
		return table(stdout, ds)
	case "show":
		id, err := needDev()
		if err != nil {
			return err
		}
		raw, err := c.do(ctx, "GET", "/devices/"+id, nil)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err = stdout.Write(raw)
			return err
		}
		var d apiDevice
		if err := json.Unmarshal(raw, &d); err != nil {
			return fmt.Errorf("reading the agent's answer: %w", err)
		}
		return show(stdout, d)
	case "set":
		id, err := needDev()
		if err != nil {
			return err
		}
		body, err := parseAssignments(rest[1:])
		if err != nil {
			return err
		}
		raw, err := c.do(ctx, "PATCH", "/devices/"+id+"/settings", body)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err = stdout.Write(raw)
			return err
		}
		var d protocol.Desired
		json.Unmarshal(raw, &d)
		fmt.Fprintf(stdout, "%s: desired settings version %d sent\n", id, d.Version)
		return nil
	case "rebirth":
		id, err := needDev()
		if err != nil {
			return err
		}
		if _, err := c.do(ctx, "POST", "/devices/"+id+"/rebirth", nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: asked to announce itself again\n", id)
		return nil
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (c *client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching the agent (--agent): %w", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 != 2 {
		var e struct {
			Error  string            `json:"error"`
			Fields map[string]string `json:"fields"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			return nil, fmt.Errorf("agent answered %s", res.Status)
		}
		if len(e.Fields) > 0 {
			return nil, fmt.Errorf("%s: %v", e.Error, protocol.FieldErrors(e.Fields).Error())
		}
		if res.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("%s; give the token with --token-file", e.Error)
		}
		return nil, errors.New(e.Error)
	}
	return raw, nil
}

// parseAssignments turns key=value words into a settings PATCH body. The
// agent validates the values; here only their JSON type is chosen.
func parseAssignments(words []string) ([]byte, error) {
	if len(words) == 0 {
		return nil, errors.New("nothing to set: give key=value, e.g. brightness=40 on=false")
	}
	m := map[string]any{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want key=value", w)
		}
		if v == "" || v == "null" {
			m[k] = nil
			continue
		}
		switch k {
		case protocol.FieldOn:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("on=%s: want true or false", v)
			}
			m[k] = b
		case protocol.FieldBrightness, protocol.FieldFadeMS:
			n, err := strconv.Atoi(strings.TrimSuffix(v, "%"))
			if err != nil {
				return nil, fmt.Errorf("%s=%s: want a whole number", k, v)
			}
			m[k] = n
		case protocol.FieldQuietHours:
			span, pct, ok1 := strings.Cut(v, "@")
			start, end, ok2 := strings.Cut(span, "-")
			n, err := strconv.Atoi(strings.TrimSuffix(pct, "%"))
			if !ok1 || !ok2 || err != nil {
				return nil, fmt.Errorf("quiet_hours=%s: want HH:MM-HH:MM@PERCENT, e.g. 22:00-07:00@5", v)
			}
			m[k] = protocol.QuietHours{Start: start, End: end, Brightness: n}
		default:
			m[k] = v // unit, and unknown keys the agent names in its refusal
		}
	}
	return json.Marshal(m)
}

func table(w io.Writer, ds []apiDevice) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tONLINE\tLOCATION\tTEMPS °C\tAGE\tON\tBRIGHTNESS\tSETTINGS")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, yesNo(d.Online), loc(d), temps(d), age(d), onText(d), brightText(d), settingsState(d))
	}
	return tw.Flush()
}

func show(w io.Writer, d apiDevice) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// One device: its temperatures in the unit its owner chose.
	unit := protocol.UnitC
	if d.Reported != nil && d.Reported.Applied.Unit == protocol.UnitF {
		unit = protocol.UnitF
	}
	fmt.Fprintf(tw, "device\t%s\nonline\t%s\nsoftware\t%s\nlocation\t%s\ntemps °%s\t%s\nage\t%s\n", d.ID, yesNo(d.Online), d.Version, loc(d), unit, tempsIn(d, unit), age(d))
	des, _ := json.Marshal(d.Desired)
	fmt.Fprintf(tw, "desired\t%s\n", des)
	if d.Reported != nil {
		ap, _ := json.Marshal(d.Reported.Applied)
		fmt.Fprintf(tw, "reported\tversion %d %s\n", d.Reported.Version, ap)
		for k, v := range d.Reported.Errors {
			fmt.Fprintf(tw, "refused\t%s: %s\n", k, v)
		}
	} else {
		fmt.Fprintln(tw, "reported\t-")
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func loc(d apiDevice) string {
	if d.Location == nil {
		return "-"
	}
	s := fmt.Sprintf("%.4f,%.4f", d.Location.Lat, d.Location.Lon)
	if d.LocationSource != "" {
		s += " (" + d.LocationSource + ")"
	}
	return s
}

func temps(d apiDevice) string { return tempsIn(d, protocol.UnitC) }

// tempsIn lists the last temps in unit (protocol.UnitC or UnitF).
func tempsIn(d apiDevice, unit string) string {
	if d.Temps == nil {
		return "-"
	}
	parts := make([]string, len(d.Temps.TempsC))
	for i, v := range d.Temps.TempsC {
		if unit == protocol.UnitF {
			v = ledstrip.ToF(v)
		}
		parts[i] = strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strings.Join(parts, " ")
}

func age(d apiDevice) string {
	if d.Temps == nil {
		return "-"
	}
	return (time.Duration(d.Temps.AgeS) * time.Second).String()
}

func onText(d apiDevice) string {
	if d.Reported != nil && d.Reported.Applied.On != nil {
		return yesNo(*d.Reported.Applied.On)
	}
	return "-"
}

func brightText(d apiDevice) string {
	if d.Reported != nil && d.Reported.Applied.Brightness != nil {
		return strconv.Itoa(*d.Reported.Applied.Brightness) + "%"
	}
	return "-"
}

// settingsState says whether the device applied the desired version.
func settingsState(d apiDevice) string {
	switch {
	case d.Reported == nil:
		return fmt.Sprintf("v%d, no report", d.Desired.Version)
	case len(d.Reported.Errors) > 0:
		return fmt.Sprintf("v%d refused", d.Reported.Version)
	case d.Reported.Version < d.Desired.Version:
		return fmt.Sprintf("v%d pending (device at v%d)", d.Desired.Version, d.Reported.Version)
	default:
		return fmt.Sprintf("v%d applied", d.Reported.Version)
	}
}
