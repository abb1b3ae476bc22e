package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// retainedDelivery is the broker's own speed, the floor under any agent's
// resume: a fresh client subscribes to filters at QoS 1, as the agent does,
// and the time runs from its SUBSCRIBE to the last retained message — the
// want-th, or the last before a second of silence once at least min have
// come (the claims' count is the agent's business). The client does nothing
// but read and acknowledge (acks are batched per read), so what it measures
// is the broker.
func retainedDelivery(ctx context.Context, addr string, filters []string, least, want int) (time.Duration, int, error) {
	var dl net.Dialer
	conn, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: retained probe: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetDeadline(time.Now().Add(5 * time.Minute))
	r := bufio.NewReaderSize(conn, 256<<10)
	w := bufio.NewWriterSize(conn, 64<<10)
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion = "MQTT", 4
	cp.CleanSession, cp.Keepalive = true, 300
	cp.ClientIdentifier = fmt.Sprintf("bench-retained-probe-%d", time.Now().UnixNano())
	if err := cp.Write(conn); err != nil {
		return 0, 0, fmt.Errorf("bench: retained probe connect: %w", err)
	}
	if p, err := packets.ReadPacket(r); err != nil {
		return 0, 0, fmt.Errorf("bench: retained probe connack: %w", err)
	} else if ca, ok := p.(*packets.ConnackPacket); !ok || ca.ReturnCode != 0 {
		return 0, 0, fmt.Errorf("bench: retained probe: broker refused the connection: %v", p)
	}
	sub := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sub.Topics, sub.MessageID = filters, 1
	for range filters {
		sub.Qoss = append(sub.Qoss, 1)
	}
	start := time.Now()
	if err := sub.Write(conn); err != nil {
		return 0, 0, fmt.Errorf("bench: retained probe subscribe: %w", err)
	}
	// Acknowledgements go out from a goroutine of their own, gathered, so
	// reading never waits on a write: the probe must be faster than any
	// client it is set against (BenchmarkRetainedBurstClient).
	acks := make(chan uint16, 4096)
	wrote := make(chan error, 1)
	go func() {
		var err error
		for id := range acks {
			if err == nil {
				_, err = w.Write([]byte{0x40, 2, byte(id >> 8), byte(id)})
			}
			if err == nil && len(acks) == 0 {
				err = w.Flush()
			}
		}
		wrote <- err
	}()
	got := 0
	var last time.Time
	var rerr error
	for got < want {
		if r.Buffered() == 0 {
			if got >= least {
				conn.SetReadDeadline(time.Now().Add(time.Second))
			} else {
				conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
			}
		}
		typ, body, err := nextPacket(r)
		if ne, ok := err.(net.Error); ok && ne.Timeout() && got >= least {
			break // a second of silence: that was all
		}
		if err != nil {
			rerr = fmt.Errorf("bench: retained probe: %d of at least %d retained messages, then %w", got, least, err)
			break
		}
		switch typ >> 4 {
		case 9: // SUBACK: packet id, then a code per filter
			if len(body) != 2+len(filters) {
				rerr = fmt.Errorf("bench: retained probe: SUBACK of %d bytes for %d filters", len(body), len(filters))
			}
			for _, c := range body[min(2, len(body)):] {
				if c > 1 {
					rerr = fmt.Errorf("bench: retained probe: broker refused %v: SUBACK %v (check the broker's ACL and limits)", filters, body[2:])
				}
			}
		case 3: // PUBLISH: topic, then the packet id at QoS > 0
			if typ&1 == 1 {
				got++
				last = time.Now()
			}
			if qos := typ >> 1 & 3; qos > 0 && len(body) >= 2 {
				n := int(body[0])<<8 | int(body[1])
				if len(body) >= 4+n {
					acks <- uint16(body[2+n])<<8 | uint16(body[3+n])
				}
			}
		}
		if rerr != nil {
			break
		}
	}
	close(acks)
	if err := <-wrote; rerr == nil && err != nil {
		rerr = fmt.Errorf("bench: retained probe: acknowledging: %w", err)
	}
	if rerr != nil {
		return 0, 0, rerr
	}
	packets.NewControlPacket(packets.Disconnect).Write(conn)
	return last.Sub(start), got, nil
}

// nextPacket reads one MQTT packet: its first byte and its body, which is
// valid until the next read (no copy, no allocation).
func nextPacket(r *bufio.Reader) (byte, []byte, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(c&0x7f) * mul
		mul *= 128
		if c&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, errors.New("malformed remaining length")
		}
	}
	body, err := r.Peek(n)
	if err != nil {
		return 0, nil, err
	}
	r.Discard(n)
	return typ, body, nil
}

// brokerDelivery runs the probe n times and returns the median and the
// messages of the last run.
func brokerDelivery(ctx context.Context, addr string, filters []string, least, want, n int) (time.Duration, int, error) {
	var ds []time.Duration
	var got int
	for range n {
		d, k, err := retainedDelivery(ctx, addr, filters, least, want)
		if err != nil {
			return 0, 0, err
		}
		ds, got = append(ds, d), k
	}
	slices.Sort(ds)
	return ds[len(ds)/2], got, nil
}

// subscribeTap forwards one program's broker connections and notes when
// the first SUBSCRIBE passes: the moment the broker starts sending it the
// retained state, the same start the probe above times from. The agent's
// own online status, which a watcher sees, comes after the broker has
// queued that whole burst, later than its start by how long the queueing
// took.
type subscribeTap struct {
	l      net.Listener
	broker string
	first  atomic.Int64 // unix ns of the first SUBSCRIBE, 0 before
}

func newSubscribeTap(broker string) (*subscribeTap, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: subscribe tap: %w", err)
	}
	t := &subscribeTap{l: l, broker: broker}
	go t.serve()
	return t, nil
}

// URL is the broker URL to give the program.
func (t *subscribeTap) URL() string { return "tcp://" + t.l.Addr().String() }

// Subscribed returns when the first SUBSCRIBE passed.
func (t *subscribeTap) Subscribed() (time.Time, bool) {
	ns := t.first.Load()
	return time.Unix(0, ns), ns != 0
}

func (t *subscribeTap) Close() error { return t.l.Close() }

func (t *subscribeTap) serve() {
	for {
		c, err := t.l.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", t.broker)
		if err != nil {
			c.Close()
			continue
		}
		go func() { // broker → program, as it comes
			io.Copy(c, b)
			c.Close()
		}()
		go func() { // program → broker: packet by packet up to the SUBSCRIBE
			defer b.Close()
			r := bufio.NewReader(c)
			for {
				p, err := packets.ReadPacket(r)
				if err != nil {
					return
				}
				if err := p.Write(b); err != nil {
					return
				}
				if _, ok := p.(*packets.SubscribePacket); ok {
					t.first.CompareAndSwap(0, time.Now().UnixNano())
					break
				}
			}
			// Then as it comes: a write per packet here would hold back
			// the PUBACKs the broker's in-flight window waits for.
			io.Copy(b, r)
		}()
	}
}
