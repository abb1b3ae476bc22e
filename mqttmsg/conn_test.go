package mqttmsg

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes that reach the connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// paho writes each packet with a call of its own (a PUBACK per retained
// message at subscribe): the connection gets far fewer writes than that,
// and every byte, in order, before what Close follows.
func TestBufferedConnGathersWritesAndFlushesOnClose(t *testing.T) {
	raw, peer := tcpPair(t)
	cc := &countingConn{Conn: raw}
	c := buffered(cc, 5*time.Second)
	var want bytes.Buffer
	const n = 20000
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	for i := range n {
		p := []byte{0x40, 0x02, byte(i >> 8), byte(i)} // a PUBACK's shape
		want.Write(p)
		if _, err := c.Write(p); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, want.Bytes()) {
			t.Fatalf("peer got %d bytes, want the %d written, in order", len(b), want.Len())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("peer never saw the end of the stream")
	}
	if w := cc.writes.Load(); w >= n/10 {
		t.Errorf("%d writes of 4 bytes reached the connection in %d system calls, want them gathered", n, w)
	}
	if _, err := c.Write([]byte{1}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v, want net.ErrClosed", err)
	}
}

// A peer that stops reading: writers are held back once maxPending bytes
// wait, and after the send timeout every write fails, so that paho drops
// the connection and reconnects instead of queueing for ever.
func TestBufferedConnFailsWhenThePeerStopsReading(t *testing.T) {
	raw, _ := tcpPair(t)
	c := buffered(raw, 200*time.Millisecond)
	defer c.Close()
	chunk := make([]byte, 64<<10)
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		_, err = c.Write(chunk)
	}
	if err == nil {
		t.Fatal("writes to a peer that reads nothing never failed")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("write error: %v, want the send's timeout", err)
	}
}
