// Package chaos is glowcast's fault campaign: it runs the real binaries
// (glowcastd, glowcast-agent) against a real Mosquitto, a local Open-Meteo
// that counts requests per place, and a toxiproxy between the programs and
// the broker, injects faults on a seeded random schedule and checks the
// promises after each one:
//
//   - at most one forecast cycle per device (agent metrics, the temps
//     messages on the broker and the weather requests per place);
//   - every device shows fresh temps within a stated bound after a fault
//     clears;
//   - no process exits unless the campaign killed it (or it yielded to a
//     newer agent with the same id);
//   - every state file on disk stays readable;
//   - no goroutine, memory or file-descriptor growth (the soak).
//
// The schedule is printed with its seed, so `make chaos SEED=n` replays it.
// The package owns only the campaign; it drives the programs from outside,
// as an operator (or a power cut) would, and never imports them.
package chaos
