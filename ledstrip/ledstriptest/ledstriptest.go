// Package ledstriptest records what a strip sends to its SPI port and
// decodes the NRZ bytes back into colours, so tests can check the wire
// without hardware.
package ledstriptest

import (
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"
)

// Connect is one call of spi.Port.Connect.
type Connect struct {
	Freq physic.Frequency
	Mode spi.Mode
	Bits int
}

// Port is periph's spitest.Record that also records Connect calls and
// reports MaxTx as its maximum transfer size, like a spidev does.
type Port struct {
	spitest.Record
	// MaxTx is what MaxTxSize reports; 0 reports 4096, the kernel's
	// default spidev.bufsiz.
	MaxTx int

	mu       sync.Mutex
	connects []Connect
	closed   int
	times    []time.Time
}

// Connect implements spi.Port.
func (p *Port) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	p.mu.Lock()
	p.connects = append(p.connects, Connect{Freq: f, Mode: mode, Bits: bits})
	p.mu.Unlock()
	c, err := p.Record.Connect(f, mode, bits)
	if err != nil {
		return nil, err
	}
	return &timedConn{Conn: c, p: p}, nil
}

// timedConn notes when each transfer starts.
type timedConn struct {
	spi.Conn
	p *Port
}

func (c *timedConn) Tx(w, r []byte) error {
	c.p.mu.Lock()
	c.p.times = append(c.p.times, time.Now())
	c.p.mu.Unlock()
	return c.Conn.Tx(w, r)
}

// Times returns when each transfer started, in order.
func (p *Port) Times() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.times...)
}

// Close implements spi.PortCloser.
func (p *Port) Close() error {
	p.mu.Lock()
	p.closed++
	p.mu.Unlock()
	return p.Record.Close()
}

// MaxTxSize implements conn.Limits.
func (p *Port) MaxTxSize() int {
	if p.MaxTx == 0 {
		return 4096
	}
	return p.MaxTx
}

// Connects returns the Connect calls so far.
func (p *Port) Connects() []Connect {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Connect(nil), p.connects...)
}

// Closed reports how many times Close was called.
func (p *Port) Closed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Frames returns a copy of every transfer written so far.
func (p *Port) Frames() [][]byte {
	p.Record.Lock()
	defer p.Record.Unlock()
	out := make([][]byte, 0, len(p.Ops))
	for _, op := range p.Ops {
		out = append(out, append([]byte(nil), op.W...))
	}
	return out
}

// Last returns the last transfer, or nil.
func (p *Port) Last() []byte {
	f := p.Frames()
	if len(f) == 0 {
		return nil
	}
	return f[len(f)-1]
}

// Pad is the number of zero bytes before and after the LED data.
const Pad = 3

// FrameLen is the transfer size for n LEDs of ch channels.
func FrameLen(n, ch int) int { return 2*Pad + 4*ch*n }

// Decode checks an NRZ frame for n LEDs of ch channels (3 or 4) and
// returns each LED's bytes in wire order. It fails on a wrong length,
// non-zero padding, or a data nibble that is neither 0x8 (bit 0) nor 0xE
// (bit 1).
func Decode(frame []byte, n, ch int) ([][]byte, error) {
	if want := FrameLen(n, ch); len(frame) != want {
		return nil, fmt.Errorf("ledstriptest: frame is %d bytes, want %d for %d LEDs of %d channels", len(frame), want, n, ch)
	}
	for i := 0; i < Pad; i++ {
		if frame[i] != 0 || frame[len(frame)-1-i] != 0 {
			return nil, fmt.Errorf("ledstriptest: padding not zero: % x ... % x", frame[:Pad], frame[len(frame)-Pad:])
		}
	}
	data := frame[Pad : len(frame)-Pad]
	out := make([][]byte, n)
	for led := range n {
		out[led] = make([]byte, ch)
		for c := range ch {
			var v byte
			for k := range 4 {
				off := 4*(ch*led+c) + k
				b := data[off]
				for _, nib := range [2]byte{b >> 4, b & 0xF} {
					v <<= 1
					switch nib {
					case 0x8:
					case 0xE:
						v |= 1
					default:
						return nil, fmt.Errorf("ledstriptest: LED %d channel %d: byte %d is %#02x: nibble %#x is not an NRZ symbol (0x8 or 0xe)", led, c, Pad+off, b, nib)
					}
				}
			}
			out[led][c] = v
		}
	}
	return out, nil
}

// Discard is an spi.PortCloser whose connection drops every transfer, for
// benchmarks that must not grow a recording.
type Discard struct {
	MaxTx int
}

// Connect implements spi.Port.
func (d *Discard) Connect(physic.Frequency, spi.Mode, int) (spi.Conn, error) {
	return discardConn{}, nil
}

// LimitSpeed implements spi.PortCloser.
func (d *Discard) LimitSpeed(physic.Frequency) error { return nil }

// Close implements spi.PortCloser.
func (d *Discard) Close() error { return nil }

// String implements spi.Port.
func (d *Discard) String() string { return "discard" }

// MaxTxSize implements conn.Limits.
func (d *Discard) MaxTxSize() int {
	if d.MaxTx == 0 {
		return 1 << 20
	}
	return d.MaxTx
}

type discardConn struct{}

func (discardConn) String() string                 { return "discard" }
func (discardConn) Tx(w, r []byte) error           { return nil }
func (discardConn) TxPackets(p []spi.Packet) error { return nil }
func (discardConn) Duplex() conn.Duplex            { return conn.Half }
