package mqttmsg

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// buffered is the broker connection as paho should have it: reads through
// a buffer and small writes gathered into one system call per burst. paho
// reads each packet's header a byte at a time and writes each packet with
// a call of its own, straight on the connection: at a fleet's retained
// state on subscribe (three messages per device, each acknowledged) that
// is four system calls per message, which costs more than handling the
// messages. Writes that fail to reach the kernel within timeout fail the
// connection. Under TLS it carries the records: one a packet, so one
// system call a PUBACK without it.
func buffered(c net.Conn, timeout time.Duration) net.Conn {
	w := &coalesced{Conn: c, timeout: timeout, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	go w.flusher()
	return &readBuffered{Conn: w, r: bufio.NewReaderSize(c, 32<<10)}
}

type readBuffered struct {
	net.Conn
	r *bufio.Reader
}

func (c *readBuffered) Read(p []byte) (int, error) { return c.r.Read(p) }

const (
	// maxPending bounds the bytes written but not yet sent: a writer
	// beyond it waits, so a connection that does not drain holds back
	// its writers instead of growing a buffer.
	maxPending = 256 << 10
	// closeFlush bounds how long Close waits for what was written before
	// it (a DISCONNECT) to be sent.
	closeFlush = time.Second
)

// coalesced gathers writes and sends them from one goroutine, as one write
// per burst: Write returns once its bytes are queued, as a write to a
// socket returns once they are in the kernel. A failed send is the error
// of every later Write.
type coalesced struct {
	net.Conn
	timeout time.Duration

	mu     sync.Mutex
	cond   *sync.Cond // the pending bytes were taken, or the connection failed or closed
	buf    []byte
	err    error
	closed bool

	kick      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (c *coalesced) Write(p []byte) (int, error) {
	c.mu.Lock()
	for c.err == nil && !c.closed && len(c.buf) >= maxPending {
		c.cond.Wait()
	}
	switch {
	case c.closed:
		c.mu.Unlock()
		return 0, net.ErrClosed
	case c.err != nil:
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	c.buf = append(c.buf, p...)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *coalesced) flusher() {
	defer close(c.done)
	var out []byte
	for {
		select {
		case <-c.kick:
		case <-c.stop:
			c.flush(out)
			return
		}
		out = c.flush(out)
	}
}

// flush sends the pending bytes, swapping buffers so that writers go on
// filling the other one meanwhile; it returns the spare.
func (c *coalesced) flush(spare []byte) []byte {
	c.mu.Lock()
	out := c.buf
	c.buf = spare[:0]
	failed := c.err != nil
	c.cond.Broadcast()
	c.mu.Unlock()
	if len(out) == 0 || failed {
		return out
	}
	if c.timeout > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	}
	if _, err := c.Conn.Write(out); err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	}
	return out
}

// Close sends what was written before it (for at most closeFlush), then
// closes the connection.
func (c *coalesced) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.cond.Broadcast()
		c.mu.Unlock()
		close(c.stop)
		select {
		case <-c.done:
		case <-time.After(closeFlush):
		}
	})
	err := c.Conn.Close()
	<-c.done
	return err
}

// Write deadlines are the flusher's (timeout per send): one set by paho
// around a Write would expire on an idle connection, not on a send.

func (c *coalesced) SetDeadline(t time.Time) error      { return c.Conn.SetReadDeadline(t) }
func (c *coalesced) SetWriteDeadline(t time.Time) error { return nil }
