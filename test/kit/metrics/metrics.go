// Package metrics reads a program's Prometheus /metrics for the suites and
// the benchmark, parsed with prometheus/common/expfmt: the test kit's one
// reader of the exposition format.
package metrics

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Samples maps a sample, written as in the exposition text
// (name or name{label="value",...} with labels sorted by name), to its value.
type Samples map[string]float64

// Scrape fetches url (http://host:port/metrics) and parses every sample.
func Scrape(ctx context.Context, url string) (Samples, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("metrics: %s: %w", url, err)
	}
	vec, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()}, slices.Collect(maps.Values(fams))...)
	if err != nil {
		return nil, fmt.Errorf("metrics: %s: %w", url, err)
	}
	out := Samples{}
	for _, s := range vec {
		out[Key(s.Metric)] = float64(s.Value)
	}
	return out, nil
}

// Key writes m as the exposition text does, labels sorted by name.
func Key(m model.Metric) string {
	var labels []string
	for k, v := range m {
		if k != model.MetricNameLabel {
			labels = append(labels, fmt.Sprintf("%s=%q", k, v))
		}
	}
	name := string(m[model.MetricNameLabel])
	if len(labels) == 0 {
		return name
	}
	slices.Sort(labels)
	return name + "{" + strings.Join(labels, ",") + "}"
}
