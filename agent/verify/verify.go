// Package verify owns forecast verification: for each place it keeps what
// the agent predicted for the +3, +6, +9 and +12 h LEDs and, when that hour
// comes, what was observed — a sensor at a device there when one reports,
// otherwise the provider's own value for that hour from the newest fetch.
// It exports the absolute errors as a Prometheus histogram, keeps a bounded
// history per place in the agent's state directory, and renders it as a
// table, an SVG plot and CSV.
//
// Every time here is the agent's own: the hour a forecast is valid for and
// the time the agent fetched it or received a reading. A device's clock is
// never used.
//
// Memory per place is the handful of hours still waiting for their
// observation; finished hours live only on disk, written atomically.
package verify

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Leads are the verified lead times in hours, one per LED after the first.
var Leads = [4]int{3, 6, 9, 12}

// LeadLabels are the values of the histogram's lead label.
var LeadLabels = [4]string{"3h", "6h", "9h", "12h"}

// Sources of an observation: a thermometer, or the provider's later value.
const (
	SourceSensor   = "sensor"
	SourceProvider = "provider"
)

// MetricName is the histogram of absolute forecast errors.
const MetricName = "glowcast_agent_forecast_error_celsius"

// DefaultHistory is how long finished hours are kept per place.
const DefaultHistory = 7 * 24 * time.Hour

// SensorWindow is how long after the start of an hour a sensor reading still
// counts as that hour's observation; devices report at each full hour.
const SensorWindow = 10 * time.Minute

// Series is an hourly forecast; *weather.Forecast is one.
type Series interface {
	At(t time.Time) float64
}

// Row is one hour at one place: what each lead predicted for it and what
// was observed. NaN marks a value not known.
type Row struct {
	Hour     time.Time
	Pred     [4]float64
	Obs      float64
	Source   string
	Provider string
	// Pending marks the hour under way or ahead: its observation may still
	// change with the next fetch, so it is not yet scored.
	Pending bool
}

// Err returns the signed error (predicted − observed) of lead i, NaN when
// either is unknown.
func (r Row) Err(i int) float64 { return r.Pred[i] - r.Obs }

// Options configure a Store.
type Options struct {
	// Dir is where per-place files are kept (the agent's state directory
	// joined with "verification").
	Dir string
	// History bounds the finished hours kept per place (DefaultHistory).
	History time.Duration
	// Registerer receives the histogram; nil registers it nowhere.
	Registerer prometheus.Registerer
	// Log receives write failures; nil means slog.Default().
	Log *slog.Logger
}

// Store keeps verification for every place. It is safe for concurrent use;
// callers are the cycles that fetch forecasts and the handler of sensor
// readings, never while holding a lock of their own.
type Store struct {
	// Immutable.
	dir     string
	history time.Duration
	hist    *prometheus.HistogramVec
	log     *slog.Logger

	// Mutable.
	mu     sync.Mutex
	places map[string]*place
	provs  []string
}

// place is one place's hours still waiting for an observation. Its lock
// serialises its file writes without blocking other places.
type place struct {
	mu      sync.Mutex
	loaded  bool
	pending []pendingRow
}

// pendingRow is a Row kept compact: float32 is finer than any thermometer.
type pendingRow struct {
	hour   int32 // hours since the Unix epoch, UTC
	pred   [4]float32
	obs    float32
	sensor bool
	prov   uint8 // index into Store.provs: a place hears few providers
}

// New returns a Store writing under o.Dir.
func New(o Options) (*Store, error) {
	if o.Dir == "" {
		return nil, errors.New("verify: no directory: set the agent's state_dir (--state-dir)")
	}
	if o.History == 0 {
		o.History = DefaultHistory
	}
	if o.History < time.Hour || o.History > 366*24*time.Hour {
		return nil, fmt.Errorf("verify: verification history (--verify-history) %v out of range 1h…366d", o.History)
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("verify: %w: make the state directory (--state-dir) writable by the agent", err)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    MetricName,
		Help:    "Absolute error of the temperature each LED promised, against a sensor at the place or the provider's later value for that hour.",
		Buckets: []float64{0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 12},
	}, []string{"lead", "source"})
	if o.Registerer != nil {
		if err := o.Registerer.Register(h); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	return &Store{dir: o.Dir, history: o.History, hist: h, log: o.Log, places: map[string]*place{}}, nil
}

// PlaceKey names a place as the forecast cache does: its grid cell centre.
func PlaceKey(lat, lon float64) string {
	return strconv.FormatFloat(lat, 'f', 4, 64) + "," + strconv.FormatFloat(lon, 'f', 4, 64)
}

func (s *Store) place(key string) *place {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.places[key]
	if p == nil {
		p = &place{}
		s.places[key] = p
	}
	return p
}

func (s *Store) path(key string) string {
	return filepath.Join(s.dir, strings.NewReplacer(",", "_", "-", "m").Replace(key)+".json")
}

func nan32(v float64) float32 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return float32(math.NaN())
	}
	return float32(v)
}

// Forecast records a fetch made at fetched (the agent's clock) for a place:
// it files the predictions for the hours +3…+12 ahead, takes the provider's
// value for the current hour as that hour's observation unless a sensor
// gave one, and finishes every earlier hour.
func (s *Store) Forecast(key, provider string, fetched time.Time, f Series) error {
	p := s.place(key)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := s.load(key, p); err != nil {
		return err
	}
	before := slices.Clone(p.pending)
	now := fetched.UTC().Truncate(time.Hour)
	nowU := unixHour(now)
	pi := s.provIndex(provider)
	var done []pendingRow
	kept := p.pending[:0]
	for _, r := range p.pending {
		if r.hour < nowU {
			done = append(done, r)
			continue
		}
		kept = append(kept, r)
	}
	p.pending = kept
	// The newest fetch is the provider's best value for the hour under way.
	if v := f.At(now); !math.IsNaN(v) {
		if r := p.row(nowU); r != nil && !r.sensor {
			r.obs = float32(v)
			r.prov = pi
		}
	}
	for i, l := range Leads {
		h := now.Add(time.Duration(l) * time.Hour)
		v := f.At(h)
		if math.IsNaN(v) {
			continue
		}
		r := p.row(unixHour(h))
		if r == nil {
			r = p.add(unixHour(h))
		}
		// The last fetch before the hour is what the LED showed last.
		r.pred[i] = float32(v)
		r.prov = pi
	}
	for _, r := range done {
		s.observe(r)
	}
	if len(done) == 0 && slices.EqualFunc(before, p.pending, samePending) {
		// Devices sharing a place ask again within the hour: nothing new.
		return nil
	}
	return s.save(key, p, done, now)
}

// Sensor records a reading received at at (the agent's clock) from a device
// at the place. The first reading in the first SensorWindow of an hour is
// that hour's observation.
func (s *Store) Sensor(key string, at time.Time, tempC float64) error {
	if math.IsNaN(tempC) || tempC < -90 || tempC > 70 {
		return fmt.Errorf("verify: sensor reading %v °C is not a temperature", tempC)
	}
	p := s.place(key)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := s.load(key, p); err != nil {
		return err
	}
	h := at.UTC().Truncate(time.Hour)
	if at.Sub(h) >= SensorWindow {
		return nil
	}
	r := p.row(unixHour(h))
	if r == nil || r.sensor {
		return nil
	}
	r.obs = float32(tempC)
	r.sensor = true
	return s.save(key, p, nil, h)
}

func samePending(a, b pendingRow) bool {
	eq := func(x, y float32) bool { return x == y || (x != x && y != y) }
	for i := range a.pred {
		if !eq(a.pred[i], b.pred[i]) {
			return false
		}
	}
	return a.hour == b.hour && eq(a.obs, b.obs) && a.sensor == b.sensor && a.prov == b.prov
}

func unixHour(t time.Time) int32 { return int32(t.Unix() / 3600) }

// provIndex interns a provider name; names beyond 255 share the last slot
// rather than grow a row.
func (s *Store) provIndex(name string) uint8 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := range s.provs {
		if n == name {
			return uint8(i)
		}
	}
	if len(s.provs) == 255 {
		return 254
	}
	s.provs = append(s.provs, name)
	return uint8(len(s.provs) - 1)
}

func (s *Store) provName(i uint8) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if int(i) < len(s.provs) {
		return s.provs[i]
	}
	return ""
}

func (p *place) row(h int32) *pendingRow {
	for i := range p.pending {
		if p.pending[i].hour == h {
			return &p.pending[i]
		}
	}
	return nil
}

func (p *place) add(h int32) *pendingRow {
	nan := float32(math.NaN())
	p.pending = append(p.pending, pendingRow{hour: h, pred: [4]float32{nan, nan, nan, nan}, obs: nan})
	sort.Slice(p.pending, func(i, j int) bool { return p.pending[i].hour < p.pending[j].hour })
	return p.row(h)
}

func (s *Store) toRow(r pendingRow) Row {
	out := Row{Hour: time.Unix(int64(r.hour)*3600, 0).UTC(), Obs: float64(r.obs), Provider: s.provName(r.prov)}
	for i, v := range r.pred {
		out.Pred[i] = float64(v)
	}
	if !math.IsNaN(out.Obs) {
		out.Source = SourceProvider
		if r.sensor {
			out.Source = SourceSensor
		}
	}
	return out
}

func (s *Store) observe(pr pendingRow) {
	r := s.toRow(pr)
	if r.Source == "" {
		return
	}
	for i := range Leads {
		if e := r.Err(i); !math.IsNaN(e) {
			s.hist.WithLabelValues(LeadLabels[i], r.Source).Observe(math.Abs(e))
		}
	}
}
