package ledstrip

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"image/color"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/devices/v3/nrzled"
)

// SPI timing for NRZ LEDs; see nrz.go.
const (
	spiFreq = 2500 * physic.KiloHertz
	spiMode = spi.Mode3
	spiBits = 8
)

// MinFrameGap is the least time between two transfers. The LEDs latch a
// frame after the line idles low for 280 µs (WS2812B); a transfer sooner
// would be read as the continuation of the last one.
const MinFrameGap = 300 * time.Microsecond

// fadeStep is the interval between fade frames: 50 frames a second is
// smooth to the eye and leaves the SPI port idle most of the time even at
// 300 LEDs (11.5 ms a frame).
const fadeStep = 20 * time.Millisecond

// openSPIDevice opens a spidev path through periph, turning the usual
// set-up mistakes into messages that say how to fix them.
//
// The host drivers that register spidev ports are linked by the programs
// that drive a strip (a blank import of periph.io/x/host/v3 in their main),
// not by this package: the agent renders colours with it and must not
// carry SPI and GPIO drivers.
func openSPIDevice(path string) (spi.PortCloser, error) {
	// Probe first: periph reports a missing or forbidden device only as an
	// unknown port or a flattened string.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, deviceError(path, err)
	}
	f.Close()
	if _, err := driverreg.Init(); err != nil {
		return nil, fmt.Errorf("ledstrip: initialise periph host drivers for %s: %w", path, err)
	}
	p, err := spireg.Open(path)
	if err != nil {
		var names []string
		for _, r := range spireg.All() {
			names = append(names, r.Name)
		}
		return nil, fmt.Errorf("ledstrip: %s is not an SPI port periph knows (found: %s): check ls /dev/spidev* and pass that path as --led spi:PATH (a program that drives a strip must import periph.io/x/host/v3): %w",
			path, cmp.Or(strings.Join(names, ", "), "none"), err)
	}
	return p, nil
}

// deviceError explains why a spidev path could not be opened.
func deviceError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("ledstrip: SPI device %s not found: enable SPI with dtparam=spi=on in /boot/firmware/config.txt (or raspi-config, Interface Options, SPI), reboot, and make sure the user is in the spi group; on a Pi 5 check ls /dev/spidev* and pass the path as --led spi:PATH: %w", path, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("ledstrip: SPI device %s: permission denied: add the user to the spi group (usermod -aG spi USER) and, under systemd, give the unit SupplementaryGroups=spi: %w", path, err)
	default:
		return fmt.Errorf("ledstrip: open SPI device %s: %w", path, err)
	}
}

// OpenSPI drives NRZ LEDs (WS2812B, SK6812) on port, which it owns from
// then on: Close and a failed OpenSPI close it. RGB strips go through
// periph's nrzled; RGBW strips through an encoder of our own, because
// nrzled v3.7.4 misaligns four-channel pixels on SPI.
func OpenSPI(port spi.PortCloser, opts Options) (Strip, error) {
	s, err := openSPI(port, opts)
	if err != nil {
		port.Close()
		return nil, err
	}
	return s, nil
}

func openSPI(port spi.PortCloser, opts Options) (*spiStrip, error) {
	opts = withDefaults(opts)
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	sc, err := opts.Scale.compile()
	if err != nil {
		return nil, err
	}
	out, err := newOutput(opts)
	if err != nil {
		return nil, err
	}
	ch := 3
	if opts.RGBW {
		ch = 4
	}
	// Check the transfer size here: the kernel would otherwise refuse every
	// frame, and nrzled's own message does not say what to change.
	need := frameLen(opts.LEDs, ch)
	if l, ok := port.(conn.Limits); ok {
		if m := l.MaxTxSize(); m > 0 && m < need {
			return nil, fmt.Errorf("ledstrip: strip.leds: %d LEDs need a %d-byte SPI transfer but %s takes at most %d: raise spidev.bufsiz (add spidev.bufsiz=65536 to /boot/firmware/cmdline.txt and reboot) or use fewer LEDs",
				opts.LEDs, need, port, m)
		}
	}
	var tx transmitter
	if opts.RGBW {
		c, err := port.Connect(spiFreq, spiMode, spiBits)
		if err != nil {
			return nil, fmt.Errorf("ledstrip: connect to SPI port %s at %s, %s: %w", port, spiFreq, spiMode, err)
		}
		tx = &nrzConn{c: c, order: newWireOrder(opts.Order, true), wire: make([]byte, 4*opts.LEDs), buf: make([]byte, need)}
	} else {
		d, err := nrzled.NewSPI(port, &nrzled.Opts{NumPixels: opts.LEDs, Channels: 3, Freq: spiFreq})
		if err != nil {
			return nil, fmt.Errorf("ledstrip: open nrzled on SPI port %s: %w", port, err)
		}
		tx = &nrzledDev{d: d, order: newWireOrder(opts.Order, false), wire: make([]byte, 3*opts.LEDs), rgb: make([]byte, 3*opts.LEDs)}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &spiStrip{
		opts:   opts,
		scale:  sc,
		out:    out,
		port:   port,
		tx:     tx,
		log:    opts.Logger.With("strip", port.String()),
		cancel: cancel,
		done:   make(chan struct{}),
		kick:   make(chan struct{}, 1),
		mu:     make(chanMutex, 1),
		looks:  make([]color.RGBA, opts.LEDs),
		shown:  make([]pixel, opts.LEDs),
		from:   make([]pixel, opts.LEDs),
		target: make([]pixel, opts.LEDs),
		step:   make([]pixel, opts.LEDs),
	}
	go s.run(ctx)
	return s, nil
}

func withDefaults(o Options) Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// chanMutex is a mutex made of a channel with room for one.
type chanMutex chan struct{}

func (m chanMutex) Lock()   { m <- struct{}{} }
func (m chanMutex) Unlock() { <-m }

// transmitter puts one whole strip of pixels on the wire.
type transmitter interface {
	send(px []pixel) error
}

// nrzledDev sends RGB frames through periph's nrzled. It always writes the
// whole strip: nrzled's partial Draw lands at the wrong offset and the
// parts never written hold 0x00 instead of encoded zeros.
type nrzledDev struct {
	d     *nrzled.Dev
	order wireOrder
	wire  []byte
	rgb   []byte
}

func (n *nrzledDev) send(px []pixel) error {
	n.order.put(n.wire, px)
	// nrzled puts its input's second byte first on the wire (GRB from
	// RGB); feed it so that the wire carries our order.
	for i := 0; i < len(n.wire); i += 3 {
		n.rgb[i], n.rgb[i+1], n.rgb[i+2] = n.wire[i+1], n.wire[i], n.wire[i+2]
	}
	if _, err := n.d.Write(n.rgb); err != nil {
		return fmt.Errorf("ledstrip: write %d LEDs through nrzled: %w", len(px), err)
	}
	return nil
}

// nrzConn encodes frames itself and sends them on a plain SPI connection;
// used for RGBW.
type nrzConn struct {
	c     spi.Conn
	order wireOrder
	wire  []byte
	buf   []byte
}

func (n *nrzConn) send(px []pixel) error {
	n.order.put(n.wire, px)
	encodeNRZ(n.buf, n.wire)
	if err := n.c.Tx(n.buf, nil); err != nil {
		return fmt.Errorf("ledstrip: write %d LEDs to SPI: %w", len(px), err)
	}
	return nil
}

// spiStrip shows frames on LEDs. Show computes the target and hands a fade
// to the goroutine run, which the strip owns; Close stops it and writes the
// off frame itself.
type spiStrip struct {
	// Immutable.
	opts   Options
	scale  Scale
	out    *output
	port   spi.PortCloser
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	kick   chan struct{}

	// Mutable, guarded by mu. mu is a channel, not a sync.Mutex: its holder
	// may sleep out the frame gap, and testing/synctest advances its clock
	// only while the other goroutines wait on channels.
	mu        chanMutex
	tx        transmitter
	looks     []color.RGBA // the last look shown, re-applied at quiet-hour edges
	hasLooks  bool
	raw       bool    // looks came from showRaw: quiet hours do not apply
	shown     []pixel // on the LEDs now
	from      []pixel // fade start
	target    []pixel // fade end
	step      []pixel // scratch for one fade frame
	fading    bool
	fadeStart time.Time
	fade      time.Duration // of the last Show: the fade at quiet-hour edges too
	lastTx    time.Time
	edge      time.Time // next quiet-hour edge; zero if none
	err       error     // first error of the goroutine, reported by Show
	closed    bool
}

// Show implements Strip. With a fade it returns at once and the goroutine
// moves the LEDs to the new colours; errors it meets come back from the
// next Show.
func (s *spiStrip) Show(f Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("ledstrip: Show after Close")
	}
	renderInto(s.looks, f, s.scale)
	s.hasLooks, s.raw = true, false
	s.fade = s.opts.Fade
	if f.Fade != nil {
		// The owner's fade_ms setting, bounded as strip.fade is.
		s.fade = max(0, min(*f.Fade, time.Minute))
	}
	return errors.Join(s.takeErr(), s.retarget(s.out.capAt(s.opts.Now()), s.fade))
}

// showRaw shows colours as given, at the normal cap, without fade or quiet
// hours: the installation test must look the same at any hour.
func (s *spiStrip) showRaw(px []color.RGBA, _ State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("ledstrip: Show after Close")
	}
	copy(s.looks, px)
	clear(s.looks[min(len(px), len(s.looks)):])
	s.hasLooks, s.raw = true, true
	return errors.Join(s.takeErr(), s.retarget(s.out.cap, 0))
}

func (s *spiStrip) info() (int, Scale) { return s.opts.LEDs, s.scale }

func (s *spiStrip) takeErr() error {
	err := s.err
	s.err = nil
	return err
}

// retarget moves the strip towards s.looks under cap c: at once when fade
// is 0, else by a fade from what is lit now. Called with mu held.
func (s *spiStrip) retarget(c float64, fade time.Duration) error {
	s.out.apply(s.target, s.looks, c)
	if !s.raw {
		s.edge = s.out.quiet.next(s.opts.Now())
	} else {
		s.edge = time.Time{}
	}
	if fade <= 0 {
		s.fading = false
		s.wake()
		return s.write(s.target)
	}
	copy(s.from, s.shown)
	s.fading, s.fadeStart, s.fade = true, time.Now(), fade
	s.wake()
	return nil
}

func (s *spiStrip) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// write sends px, keeping MinFrameGap to the previous frame. Called with
// mu held.
func (s *spiStrip) write(px []pixel) error {
	if d := MinFrameGap - time.Since(s.lastTx); d > 0 && !s.lastTx.IsZero() {
		time.Sleep(d)
	}
	err := s.tx.send(px)
	s.lastTx = time.Now()
	if err != nil {
		return err
	}
	copy(s.shown, px)
	return nil
}

// run performs fades and re-applies the cap at quiet-hour edges until ctx
// ends.
func (s *spiStrip) run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		wait := s.tick()
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
	}
}

// idleWait bounds a sleep with nothing to do, so a wall clock that jumps
// (NTP at boot) delays a quiet-hour edge by at most this long.
const idleWait = time.Minute

// tick does what is due and returns how long to sleep.
func (s *spiStrip) tick() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return idleWait
	}
	wait := idleWait
	if !s.edge.IsZero() && s.hasLooks {
		now := s.opts.Now()
		if !now.Before(s.edge) {
			s.note(s.retarget(s.out.capAt(now), s.fade))
		}
		if !s.edge.IsZero() {
			wait = min(wait, s.edge.Sub(s.opts.Now()))
		}
	}
	if s.fading {
		p := float64(time.Since(s.fadeStart)) / float64(s.fade)
		if p >= 1 {
			s.fading = false
			s.note(s.write(s.target))
		} else {
			lerp(s.step, s.from, s.target, p)
			s.note(s.write(s.step))
			wait = min(wait, fadeStep)
		}
	}
	return max(wait, MinFrameGap)
}

// note keeps the first error of the goroutine for Show and logs it.
func (s *spiStrip) note(err error) {
	if err == nil {
		return
	}
	s.log.Warn("LED frame not written", "err", err)
	if s.err == nil {
		s.err = err
	}
}

// Close implements Strip: it stops the fade, writes an all-zero frame and
// closes the port. The off frame is written even after earlier errors.
func (s *spiStrip) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.write(make([]pixel, s.opts.LEDs))
	return errors.Join(err, s.port.Close())
}
