package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

// CredentialAPIToken is the systemd credential read for the API token when
// --api-token-file is not given.
const CredentialAPIToken = "api-token"

//go:embed openapi.json
var openAPI []byte

// readAPIToken returns the API token, or "" when none is configured (the
// API is then read-only).
func readAPIToken(file string) (string, error) {
	if file == "" {
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return "", nil
		}
		file = filepath.Join(dir, CredentialAPIToken)
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("agent: api token (api_token_file, --api-token-file): %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("agent: api token file %s is empty: put a random token in it (e.g. openssl rand -hex 32) or drop --api-token-file for a read-only API", file)
	}
	return tok, nil
}

// api serves /api/v1/.
type api struct {
	a     *Agent
	book  *settingsBook
	token [32]byte // sha256 of the token; compared in constant time
	write bool     // a token is configured
	now   func() time.Time
}

// DeviceJSON is one device as the API shows it.
type DeviceJSON struct {
	ID             string             `json:"id"`
	Online         bool               `json:"online"`
	Version        string             `json:"version,omitempty"`
	Location       *protocol.Location `json:"location,omitempty"`
	LocationSource string             `json:"location_source,omitempty"`
	Temps          *TempsJSON         `json:"temps,omitempty"`
	Desired        protocol.Desired   `json:"desired"`
	Reported       *protocol.Reported `json:"reported,omitempty"`
}

// TempsJSON are the last temps sent and their age.
type TempsJSON struct {
	TempsC   protocol.TempList `json:"temps_c"`
	IssuedAt time.Time         `json:"issued_at"`
	AgeS     float64           `json:"age_s"`
}

type apiError struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

func (p *api) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	})
	mux.HandleFunc("GET /api/v1/devices", p.list)
	mux.HandleFunc("GET /api/v1/devices/{id}", p.one)
	mux.HandleFunc("PATCH /api/v1/devices/{id}/settings", p.auth(p.settings))
	mux.HandleFunc("POST /api/v1/devices/{id}/rebirth", p.auth(p.rebirth))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// auth lets a request through only with the configured bearer token.
func (p *api) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !p.write {
			writeJSON(w, http.StatusForbidden, apiError{Error: "the API is read-only: start the agent with --api-token-file to allow changes"})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], p.token[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="glowcast"`)
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "missing or wrong bearer token (Authorization: Bearer <token from --api-token-file>)"})
			return
		}
		h(w, r)
	}
}

func (p *api) view(v DeviceView) DeviceJSON {
	d, rep, sw := p.book.get(v.ID)
	out := DeviceJSON{ID: v.ID, Online: v.Online, Version: sw, Location: v.Location, LocationSource: v.LocationSource, Desired: d, Reported: rep}
	if t := v.LastTemps; t != nil {
		out.Temps = &TempsJSON{TempsC: t.TempsC, IssuedAt: t.IssuedAt, AgeS: p.now().Sub(t.IssuedAt).Seconds()}
	}
	return out
}

func (p *api) list(w http.ResponseWriter, r *http.Request) {
	vs := p.a.Devices()
	slices.SortFunc(vs, func(a, b DeviceView) int { return strings.Compare(a.ID, b.ID) })
	out := make([]DeviceJSON, len(vs))
	for i, v := range vs {
		out[i] = p.view(v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *api) find(id string) (DeviceView, bool) {
	for _, v := range p.a.Devices() {
		if v.ID == id {
			return v, true
		}
	}
	return DeviceView{ID: id}, p.book.known(id)
}

func (p *api) one(w http.ResponseWriter, r *http.Request) {
	v, ok := p.find(r.PathValue("id"))
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such device"})
		return
	}
	writeJSON(w, http.StatusOK, p.view(v))
}

func (p *api) settings(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := protocol.ValidDeviceID(id); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, protocol.MaxPayload+1))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "reading body: " + err.Error()})
		return
	}
	s, clear, err := protocol.ParsePatch(body)
	var fe protocol.FieldErrors
	if errors.As(err, &fe) {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "settings refused; nothing changed", Fields: fe})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error() + `; send a JSON object such as {"brightness":40,"on":true}`})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	d, err := p.book.change(ctx, id, s, clear)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (p *api) rebirth(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := protocol.ValidDeviceID(id); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	p.a.mu.Lock()
	cl := p.a.cl
	p.a.mu.Unlock()
	if err := cl.Publish(r.Context(), protocol.DeviceTopic(id, protocol.SideAgent, protocol.MsgRebirth), []byte(`{}`), false); err != nil {
		writeJSON(w, http.StatusBadGateway, apiError{Error: "asking for rebirth: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "rebirth requested"})
}
