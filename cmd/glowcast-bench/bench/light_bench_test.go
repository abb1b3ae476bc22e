package bench

import (
	"context"
	"slices"
	"testing"

	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

// BenchmarkMessageToLight times a temps message from the publish call to
// the SPI transfer that shows it, fade off, on the recording SPI port.
func BenchmarkMessageToLight(b *testing.B) {
	br := mqtttest.Start(b)
	b.ResetTimer()
	lat, err := MessageToLight(context.Background(), br.URL(), b.N)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(pct(lat, 50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(pct(lat, 99).Microseconds()), "p99-µs")
}
