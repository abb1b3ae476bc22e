// Package backend owns putting a ledstrip.Frame on a strip: the output
// stage that makes a real LED safe and true to the designed looks (gamma,
// brightness cap, quiet hours, current limit, fades) and the backends
// that light NRZ LEDs over SPI, draw on a terminal or record frames to a
// jsonl file.
//
// Only the device side links it: it imports periph's SPI and nrzled
// packages, which the agent must not carry.
//
// # Wire format
//
// WS2812B and SK6812 LEDs read a single-wire NRZ signal. At an SPI clock of
// 2.5 MHz every data bit becomes four SPI bits: 1000 for 0, 1110 for 1. A
// frame is three zero bytes, four SPI bytes per colour byte, three zero
// bytes: 12N+6 bytes for N RGB LEDs, 16N+6 for RGBW. The SPI mode is 3
// with 8-bit words. The LEDs latch after the line idles low for 280 µs,
// so frames are kept MinFrameGap apart.
//
// # periph nrzled v3.7.4
//
// RGB strips go through nrzled.NewSPI, always writing the whole strip with
// Dev.Write. Its four-channel SPI mode is not used: the buffer is sized for
// four channels but the encoder writes three per pixel, so RGBW pixels
// misalign. A partial Draw lands at 4·x bytes instead of 12·x, and the
// buffer starts as 0x00 rather than encoded zeros, so parts of the strip
// that were never drawn carry no valid symbols. RGBW strips use this
// package's own encoder on periph's spi.Conn with the same symbols.
//
// # Clock
//
// On a Pi 3, Zero 2 or 4 the SPI clock is divided from the VPU core clock,
// which scales with load unless pinned (core_freq in config.txt); an
// unpinned clock skews the symbols and the LEDs flicker or show wrong
// colours. See docs/HARDWARE.md.
package backend
