package agent

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// certExpiry keeps each device's client certificate expiry as its ready
// announced it and exports the earliest: one series however large the
// fleet, the one an alert needs (renew before it passes).
type certExpiry struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	by   map[string]time.Time
}

func newCertExpiry() *certExpiry {
	return &certExpiry{
		desc: prometheus.NewDesc("glowcast_agent_device_cert_expiry_timestamp_seconds",
			"Earliest client certificate expiry (notAfter, Unix seconds) among the devices whose ready carries cert_expires; absent when none does.", nil, nil),
		by: map[string]time.Time{},
	}
}

// set records id's expiry; nil (a device without a certificate, or one
// whose ready was cleared) forgets it.
func (c *certExpiry) set(id string, exp *time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp == nil || exp.IsZero() {
		delete(c.by, id)
		return
	}
	c.by[id] = *exp
}

// earliest returns the device whose certificate expires first.
func (c *certExpiry) earliest() (id string, t time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for d, e := range c.by {
		if !ok || e.Before(t) || e.Equal(t) && d < id {
			id, t, ok = d, e, true
		}
	}
	return id, t, ok
}

func (c *certExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *certExpiry) Collect(ch chan<- prometheus.Metric) {
	if _, t, ok := c.earliest(); ok {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(t.Unix()))
	}
}
