package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"golang.org/x/sync/errgroup"

	"github.com/glowcast/glowcast/protocol"
)

// window bounds a proxy's QoS 1 publishes awaiting their PUBACK: enough to
// keep the broker busy, well under its max_inflight_messages.
const window = 256

// proxy is one connection that publishes the retained state of many
// retained-only devices. Proxy 0 also subscribes to the agent side of every
// device and stands in for them: it counts their temps and answers their
// rebirth requests.
type proxy struct {
	f    *Fleet
	name string
	conn net.Conn
	devs []*Device

	wmu    sync.Mutex // serialises writes to bw
	bw     *bufio.Writer
	nextID uint16 // under wmu

	// slots holds a token per publish awaiting its PUBACK.
	slots  chan struct{}
	suback chan byte // the granted QoS of the subscription
	dead   chan struct{}
	down   atomic.Bool
}

// startProxies connects the publishers, subscribes for the retained-only
// devices and publishes their online status and ready, waiting for every
// acknowledgement.
func (f *Fleet) startProxies(ctx context.Context, addr string, devs []*Device) error {
	f.standIn = make(map[string]*Device, len(devs))
	f.proxies = make([]*proxy, min(f.cfg.Publishers, len(devs)))
	for i := range f.proxies {
		p, err := f.dialProxy(ctx, addr, i)
		if err != nil {
			return err
		}
		f.proxies[i] = p
	}
	for i, d := range devs {
		p := f.proxies[i%len(f.proxies)]
		d.proxy = p
		p.devs = append(p.devs, d)
		f.standIn[d.ID] = d
	}
	// As a device subscribes before it announces, so do its stand-ins: the
	// subscription is in place (acknowledged) before any ready is out.
	if err := f.proxies[0].subscribe(ctx, protocol.DeviceTopic("+", protocol.SideAgent, "+")); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range f.proxies {
		g.Go(func() error {
			for _, d := range p.devs {
				if err := p.announce(gctx, d); err != nil {
					return err
				}
			}
			return p.drain(gctx)
		})
	}
	return g.Wait()
}

func (f *Fleet) dialProxy(ctx context.Context, addr string, i int) (*proxy, error) {
	name := fmt.Sprintf("glowcast-sim-%s-%d-publisher-%d", f.cfg.Prefix, f.cfg.First, i)
	var dl net.Dialer
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := dl.DialContext(cctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sim: publisher %d: dial %s: %w", i, addr, err)
	}
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion = "MQTT", 4
	cp.CleanSession = true
	cp.ClientIdentifier = name
	cp.Keepalive = uint16(f.cfg.KeepAlive / time.Second)
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReaderSize(conn, 64<<10)
	if err := cp.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sim: publisher %d: connect: %w", i, err)
	}
	pk, err := packets.ReadPacket(r)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("sim: publisher %d: waiting for connack: %w", i, err)
	}
	if ca, ok := pk.(*packets.ConnackPacket); !ok || ca.ReturnCode != 0 {
		conn.Close()
		return nil, fmt.Errorf("sim: publisher %d: broker refused the connection: %v", i, pk)
	}
	conn.SetDeadline(time.Time{})
	p := &proxy{f: f, name: name, conn: conn, bw: bufio.NewWriterSize(conn, 64<<10),
		slots: make(chan struct{}, window), suback: make(chan byte, 1), dead: make(chan struct{})}
	f.wg.Add(1)
	go p.read(r)
	return p, nil
}

// subscribe subscribes at QoS 1 and waits for the broker's answer; a
// refusal (0x80) is an error.
func (p *proxy) subscribe(ctx context.Context, filter string) error {
	sub := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sub.Topics, sub.Qoss = []string{filter}, []byte{1}
	p.wmu.Lock()
	sub.MessageID = p.id()
	err := sub.Write(p.bw)
	if err == nil {
		err = p.bw.Flush()
	}
	p.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("sim: publisher subscribe %s: %w", filter, err)
	}
	select {
	case q := <-p.suback:
		if q > 1 {
			return fmt.Errorf("sim: broker refused the subscription to %s (SUBACK 0x%02x): check its ACL and limits", filter, q)
		}
		return nil
	case <-p.dead:
		return fmt.Errorf("sim: publisher %s: connection lost while subscribing", p.name)
	case <-ctx.Done():
		return fmt.Errorf("sim: subscribing to %s: %w", filter, ctx.Err())
	}
}

// id is the next packet id. Called with wmu held.
func (p *proxy) id() uint16 {
	p.nextID++
	if p.nextID == 0 {
		p.nextID = 1
	}
	return p.nextID
}

// announce publishes a retained-only device's online status and ready.
func (p *proxy) announce(ctx context.Context, d *Device) error {
	if err := p.publish(ctx, protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgStatus), p.f.statusPayload(d, true)); err != nil {
		return err
	}
	return p.publish(ctx, protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgReady), p.f.readyPayload(d))
}

// publish writes a retained QoS 1 publish once a slot of the window is
// free. The write is buffered: a full window flushes it.
func (p *proxy) publish(ctx context.Context, topic string, payload []byte) error {
	select {
	case p.slots <- struct{}{}:
	default:
		if err := p.flush(); err != nil {
			return err
		}
		if err := p.acquire(ctx); err != nil {
			return err
		}
	}
	pp := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pp.Qos, pp.Retain = 1, true
	pp.TopicName, pp.Payload = topic, payload
	p.wmu.Lock()
	defer p.wmu.Unlock()
	pp.MessageID = p.id()
	p.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := pp.Write(p.bw); err != nil {
		return fmt.Errorf("sim: publisher %s: %w", p.name, err)
	}
	return nil
}

// acquire waits for a slot of the window: an acknowledgement.
func (p *proxy) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-p.dead:
		return fmt.Errorf("sim: publisher %s: connection lost", p.name)
	case <-ctx.Done():
		return fmt.Errorf("sim: publisher %s: waiting for acknowledgements: %w", p.name, ctx.Err())
	}
}

// flush sends the buffered publishes.
func (p *proxy) flush() error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := p.bw.Flush(); err != nil {
		return fmt.Errorf("sim: publisher %s: %w", p.name, err)
	}
	return nil
}

// drain flushes and waits until every publish so far is acknowledged:
// holding every slot of the window means none is outstanding. One caller
// at a time (two would each hold part of the window).
func (p *proxy) drain(ctx context.Context) error {
	if err := p.flush(); err != nil {
		return err
	}
	for n := 0; n < window; n++ {
		if err := p.acquire(ctx); err != nil {
			return err
		}
	}
	for n := 0; n < window; n++ {
		<-p.slots
	}
	return nil
}

// write sends one packet at once (an ack, a ping).
func (p *proxy) write(pk packets.ControlPacket) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := pk.Write(p.bw); err != nil {
		return err
	}
	return p.bw.Flush()
}

// read handles what the broker sends the proxy until the connection ends.
func (p *proxy) read(r *bufio.Reader) {
	defer p.f.wg.Done()
	defer close(p.dead)
	for {
		pk, err := packets.ReadPacket(r)
		if err != nil {
			if p.down.CompareAndSwap(false, true) && p.f.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				p.f.log.Warn("simulated devices' publisher lost its connection", "publisher", p.name, "devices", len(p.devs), "err", err)
			}
			return
		}
		switch pk := pk.(type) {
		case *packets.PubackPacket:
			select {
			case <-p.slots:
			default:
			}
		case *packets.SubackPacket:
			q := byte(0x80)
			if len(pk.ReturnCodes) > 0 {
				q = pk.ReturnCodes[0]
			}
			select {
			case p.suback <- q:
			default:
			}
		case *packets.PublishPacket:
			if pk.Qos > 0 {
				ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
				ack.MessageID = pk.MessageID
				p.write(ack)
			}
			p.f.standInFor(pk)
		}
	}
}

// standInFor handles a message to a retained-only device. A retained copy
// delivered on subscribe is an earlier run's, not one sent to this fleet.
func (f *Fleet) standInFor(pk *packets.PublishPacket) {
	rest, ok := strings.CutPrefix(pk.TopicName, protocol.Prefix+"/")
	if !ok || pk.Retain {
		return
	}
	id, name, ok := strings.Cut(rest, "/"+protocol.SideAgent+"/")
	d := f.standIn[id]
	if !ok || d == nil {
		return // another sim's device, or not one of ours
	}
	switch name {
	case protocol.MsgTemps:
		d.gotTemps(pk.Payload)
	case protocol.MsgRebirth:
		// Off the reader: the publish waits for acknowledgements this
		// goroutine reads.
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
			defer cancel()
			err := d.proxy.announce(ctx, d)
			if err == nil {
				err = d.proxy.flush()
			}
			if err != nil && f.ctx.Err() == nil {
				f.log.Warn("simulated device did not answer a rebirth request", "device", d.ID, "err", err)
			}
		}()
	}
}
