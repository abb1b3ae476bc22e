package geo

import "errors"

// MinAccessPoints is the least number of usable access points a
// geolocation request is made with; with one, the service could reveal
// where a single, possibly moved, router is.
const MinAccessPoints = 2

// ErrTooFewAccessPoints is returned when fewer than MinAccessPoints remain.
var ErrTooFewAccessPoints = errors.New("geo: fewer than 2 usable access points")
