package weather

import (
	"context"
	_ "embed"
	"time"
)

//go:embed testdata/openmeteo_berlin.json
var sampleBody []byte

// Sample serves a bundled, recorded Open-Meteo forecast re-dated to the
// current hour, for demos without network. Its Provider name is "sample" so
// every display can label it: it is never real weather.
type Sample struct {
	Now func() time.Time
}

// Name implements Provider.
func (Sample) Name() string { return "sample" }

// Forecast implements Provider; lat and lon are ignored.
func (s Sample) Forecast(ctx context.Context, lat, lon float64) (*Forecast, error) {
	f, err := ParseOpenMeteo(sampleBody)
	if err != nil {
		return nil, err
	}
	now := clockOr(s.Now)
	f.Start = now().UTC().Truncate(time.Hour).Add(-time.Hour)
	f.FetchedAt = now()
	f.Provider = "sample"
	return f, nil
}
