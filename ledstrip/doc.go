// Package ledstrip owns the colour model: what a frame of temperatures
// looks like. It holds the temperature colour scale, the looks of the
// device's states (waiting, stale, agent offline, ...) and the rendering of
// a Frame into colours, as designed. The device and the agent's status
// page both render with it, so the page shows what the strip shows.
//
// It knows nothing of MQTT, the agent or hardware, and must not import
// periph: the agent links it. Putting colours on a strip (SPI, terminal,
// jsonl) is ledstrip/backend's.
package ledstrip
