package mqttmsg

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// Message is one received MQTT message.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// Handler receives messages. It runs on the client's delivery goroutine, in
// arrival order, and must not block: hand work to an owner goroutine.
type Handler func(Message)

// Presence describes the retained birth/last-will status of this client.
type Presence struct {
	// Topic is the retained status topic.
	Topic string
	// ID identifies this process; random per start.
	ID string
	// Status renders and reads the payloads on Topic. Their shape belongs
	// to the caller's protocol, not to this package.
	Status Status
}

// Status is the payload of a presence topic: one process's birth (online)
// and last will (offline). Statuses are ordered by the broker, never by
// a time they carry.
type Status interface {
	// Payload renders this process's status, online or not.
	Payload(online bool) []byte
	// ParseStatus reads a status seen on the topic, this process's or
	// another's: the process it names and whether it is online.
	ParseStatus(b []byte) (id string, online bool, err error)
}

// Options configure a Client.
type Options struct {
	// Broker is the broker URL: tcp://, mqtt://, ssl://, mqtts://, ws:// or
	// wss://; or several, separated by commas, for the nodes of a clustered
	// broker: each (re)connect tries them in order and takes the first that
	// answers (see ParseBrokers).
	Broker string
	// ClientID is stable per identity so a reconnect takes the old session over.
	ClientID string
	// Username and Password authenticate; never logged.
	Username, Password string
	// TLS configures ssl:// and mqtts:// connections; nil uses system roots.
	TLS *tls.Config
	// KeepAlive is the MQTT keepalive; it bounds how long a half-open
	// connection goes unnoticed. Default 30s.
	KeepAlive time.Duration
	// ConnectTimeout bounds one connection attempt. Default 10s.
	ConnectTimeout time.Duration
	// MaxReconnectInterval caps the reconnect backoff. Default 30s.
	MaxReconnectInterval time.Duration
	// MaxPayload drops larger messages before any handler. Default 64 KiB.
	MaxPayload int
	// Presence, if set, is published retained on every connect and set as
	// the last will.
	Presence *Presence
	// OnUp hooks run, in order, after each (re)connect once subscriptions
	// and the birth are in place. They run on a goroutine of their own and
	// may publish and wait.
	OnUp []func(ctx context.Context)
	// OnDown hooks are called, in order, when an established connection is
	// lost. Like all hooks here they are lists: a layer adds its own with
	// append and never has to save and re-chain another's.
	OnDown []func(err error)
	// OnConnectError hooks are called with the error of each failed connection
	// attempt (TLS handshake, refused credentials); without it such errors
	// are logged at debug level only, since attempts repeat every second.
	OnConnectError []func(err error)
	// OnSupplanted hooks are called when a newer process with the same presence
	// topic announced itself online (same identity started elsewhere).
	OnSupplanted []func(otherID string)
	// Resubscribe, if set, subscribes every filter once more this long after
	// each connect, so the broker sends its retained messages again. A
	// clustered broker's node can answer before it has loaded its retained
	// messages: a NATS node that has just started sent its first subscriber
	// none or part of them, and never the rest. Zero means once.
	Resubscribe time.Duration
	// Dial, if set, replaces the network dial (tests use net.Pipe).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Logger receives the client's events; nil discards them.
	Logger *slog.Logger
}

// Client is one MQTT connection that (re)subscribes its handlers before it
// says anything.
type Client struct {
	opts Options
	log  *slog.Logger
	pc   mqtt.Client
	// connTok is the newest connect attempt's token (an mqtt.Token).
	connTok atomic.Value

	mu      sync.Mutex
	routes  []route
	started bool

	upMu      sync.Mutex // serialises OnConnect runs
	connected atomic.Bool
	closing   atomic.Bool  // set once Close starts: no more births
	up        atomic.Int64 // completed birth count, for tests and health
	// birthSeen is set when our latest birth came back to us live: any
	// other process's birth after it is newer than ours.
	birthSeen atomic.Bool
	lifetime  context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	rebirth   chan struct{}
	resub     chan uint64 // connections to subscribe again (Resubscribe)
	// Reconnect requests. Each names the connection it is about by the
	// count of on-connect runs begun when that connection's run began
	// (conns): a failure of a connection already redialed, or already
	// replaced, is stale. Acted upon, a stale one tore down the next
	// connection, whose own work then failed and tore down the one after:
	// a device redialed every second for minutes after its clone (same
	// client id) stopped pushing it off the broker.
	redial    chan struct{}
	redialMu  sync.Mutex
	request   *redialRequest // newest pending request (redialMu)
	conns     atomic.Uint64  // on-connect runs begun
	redialed  atomic.Uint64  // conns when the redial loop last connected
	closeOnce sync.Once
	attempt   atomic.Value // string: broker URL of the latest connection attempt
}

type redialRequest struct {
	conn   uint64
	reason error
}

type route struct {
	filter string
	h      Handler
}

// ErrNotConnected is returned by Publish while the connection is down:
// nothing is queued, so nothing stale is sent after a reconnect.
var ErrNotConnected = errors.New("mqttmsg: not connected to the broker")

// New checks opts and prepares a client; Connect starts it.
func New(opts Options) (*Client, error) {
	brokers, err := ParseBrokers(opts.Broker)
	if err != nil {
		return nil, err
	}
	if opts.ClientID == "" {
		return nil, errors.New("mqttmsg: no client id given")
	}
	if p := opts.Presence; p != nil && (p.Topic == "" || p.ID == "" || p.Status == nil) {
		return nil, errors.New("mqttmsg: presence needs a topic, an id and a status")
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 30 * time.Second
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.MaxReconnectInterval == 0 {
		opts.MaxReconnectInterval = 30 * time.Second
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = 64 << 10
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{opts: opts, log: log, rebirth: make(chan struct{}, 1), redial: make(chan struct{}, 1), resub: make(chan uint64, 1)}
	c.lifetime, c.cancel = context.WithCancel(context.Background())

	po := mqtt.NewClientOptions()
	for _, b := range brokers {
		po.AddBroker(b)
	}
	po.SetClientID(opts.ClientID).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(opts.MaxReconnectInterval).
		SetKeepAlive(opts.KeepAlive).
		SetPingTimeout(min(opts.KeepAlive, 10*time.Second)).
		SetConnectTimeout(opts.ConnectTimeout).
		SetWriteTimeout(opts.ConnectTimeout).
		SetResumeSubs(false).
		SetDefaultPublishHandler(c.dispatch).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(c.onLost).
		SetConnectionNotificationHandler(c.onNotification).
		SetConnectionAttemptHandler(func(u *url.URL, cfg *tls.Config) *tls.Config {
			// paho reports no other way which node of a list it reached:
			// the last attempt before a connect is the one that answered.
			c.attempt.Store(u.String())
			return cfg
		})
	if opts.Username != "" {
		po.SetUsername(opts.Username)
		po.SetPassword(opts.Password)
	}
	if opts.TLS != nil {
		po.SetTLSConfig(opts.TLS)
	}
	if p := opts.Presence; p != nil {
		po.SetBinaryWill(p.Topic, c.presencePayload(false), 1, true)
	}
	switch {
	case opts.Dial != nil:
		po.SetCustomOpenConnectionFn(func(uri *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(c.lifetime, opts.ConnectTimeout)
			defer cancel()
			conn, err := opts.Dial(ctx, uri.Host)
			if err != nil {
				return nil, err
			}
			return buffered(conn, opts.ConnectTimeout), nil
		})
	case allTCP(brokers):
		po.SetCustomOpenConnectionFn(func(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(c.lifetime, opts.ConnectTimeout)
			defer cancel()
			return dialBroker(ctx, uri, o.Dialer, o.TLSConfig, opts.ConnectTimeout)
		})
	}
	c.pc = mqtt.NewClient(po)
	return c, nil
}

// tlsSchemes are the broker URL schemes (of those ParseBrokers takes)
// that speak TLS over TCP.
var tlsSchemes = map[string]bool{"ssl": true, "tls": true, "mqtts": true}

// IsTLS reports whether a broker URL scheme speaks TLS, over TCP or
// WebSocket (wss): a configuration's CA, certificate and key apply to it.
func IsTLS(scheme string) bool { return scheme == "wss" || tlsSchemes[scheme] }

// allTCP reports whether every broker URL is MQTT over TCP, plain or TLS
// (not WebSocket, which paho dials itself).
func allTCP(brokers []string) bool {
	for _, b := range brokers {
		u, err := url.Parse(b)
		if err != nil || !(u.Scheme == "tcp" || u.Scheme == "mqtt" || tlsSchemes[u.Scheme]) {
			return false
		}
	}
	return true
}

// dialBroker connects as paho does (a proxy from the environment
// included), through buffered: over TLS too, whose records are each a
// write of their own and so gain the most from being gathered. The TLS
// handshake is bounded by ctx; without a server name in cfg the URL's
// host is checked, as tls.Dial does.
func dialBroker(ctx context.Context, uri *url.URL, dialer *net.Dialer, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	raw, err := proxy.FromEnvironmentUsing(dialer).Dial("tcp", uri.Host)
	if err != nil {
		return nil, err
	}
	conn := buffered(raw, timeout)
	if !tlsSchemes[uri.Scheme] {
		return conn, nil
	}
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName = uri.Hostname()
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// Handle registers h for topics matching filter (MQTT wildcards allowed).
// It must be called before Connect: subscriptions are made on connect.
func (c *Client) Handle(filter string, h Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		panic("mqttmsg: Handle called after Connect")
	}
	c.routes = append(c.routes, route{filter: filter, h: h})
}

// Connect starts connecting in the background and keeps reconnecting until
// Close. It returns at once; use WaitUp to wait for the first connection.
func (c *Client) Connect() {
	c.mu.Lock()
	c.started = true
	c.mu.Unlock()
	if p := c.opts.Presence; p != nil {
		c.wg.Add(1)
		go c.rebirthLoop()
	}
	if c.opts.Resubscribe > 0 {
		c.wg.Add(1)
		go c.resubscribeLoop()
	}
	c.wg.Add(1)
	go c.redialLoop()
	c.log.Info("connecting to broker", "broker", c.opts.Broker, "client_id", c.opts.ClientID)
	c.connTok.Store(c.pc.Connect()) // with ConnectRetry the token completes only on success or Disconnect
}

// Broker returns the URL of the broker node of the latest connection
// attempt: while Connected, the one this client is connected to.
func (c *Client) Broker() string {
	if s, ok := c.attempt.Load().(string); ok {
		return s
	}
	return ""
}

// ParseBrokers splits a comma-separated list of broker URLs and checks each
// one; order is kept, since connects try the URLs in order.
func ParseBrokers(list string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("mqttmsg: broker URL %q is not of the form tcp://host:port or mqtts://host:port", s)
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			return nil, fmt.Errorf("mqttmsg: broker URL scheme %q not supported: use tcp://, mqtt://, mqtts://, ssl://, ws:// or wss://", u.Scheme)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("mqttmsg: no broker URL given")
	}
	return out, nil
}

// Connected reports whether the connection is up and subscribed.
func (c *Client) Connected() bool { return c.connected.Load() && c.pc.IsConnectionOpen() }

// Ups counts completed connects (subscribed, birth published, hooks run).
func (c *Client) Ups() int64 { return c.up.Load() }

// WaitUp waits until the client has completed at least n connects.
func (c *Client) WaitUp(ctx context.Context, n int64) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for c.up.Load() < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func (c *Client) onConnect(mqtt.Client) {
	// Counted before the wait: a run queued behind an older one makes the
	// older one's failures stale.
	conn := c.conns.Add(1)
	// paho runs this on a goroutine per connect; serialise them so an old
	// run can never publish after a newer one.
	c.upMu.Lock()
	defer c.upMu.Unlock()
	if c.lifetime.Err() != nil || c.closing.Load() {
		return
	}
	c.connected.Store(false)
	ctx, cancel := context.WithTimeout(c.lifetime, c.opts.ConnectTimeout+5*time.Second)
	defer cancel()

	if !c.subscribe(ctx, conn) {
		return
	}
	if c.opts.Presence != nil {
		c.birthSeen.Store(false)
		if err := c.publishWait(ctx, c.opts.Presence.Topic, c.presencePayload(true), true); err != nil {
			c.reconnect(conn, fmt.Errorf("mqttmsg: publishing online status: %w", err))
			return
		}
	}
	c.connected.Store(true)
	for _, h := range c.opts.OnUp {
		h(ctx)
	}
	c.up.Add(1)
	c.log.Info("connected to broker", "broker", c.Broker())
	if c.opts.Resubscribe > 0 {
		select {
		case <-c.resub: // an older connection's turn is void
		default:
		}
		select {
		case c.resub <- conn:
		default:
		}
	}
}

// filters are what a connection subscribes to: every handler's filter and
// the presence topic.
func (c *Client) filters() map[string]byte {
	c.mu.Lock()
	filters := make(map[string]byte, len(c.routes)+1)
	for _, r := range c.routes {
		filters[r.filter] = 1
	}
	c.mu.Unlock()
	if p := c.opts.Presence; p != nil {
		filters[p.Topic] = 1
	}
	return filters
}

// subscribe subscribes connection conn to every filter. When that fails it
// asks for a reconnect and returns false.
func (c *Client) subscribe(ctx context.Context, conn uint64) bool {
	filters := c.filters()
	if len(filters) == 0 {
		return true
	}
	var tok mqtt.Token
	for {
		tok = c.pc.SubscribeMultiple(filters, nil)
		err := wait(ctx, tok)
		if err == nil {
			break
		}
		// Nothing may be announced before the handlers are subscribed:
		// retry while this connection lasts; a new one starts over.
		c.log.Warn("subscribe failed; retrying", "err", err)
		if ctx.Err() != nil || !c.pc.IsConnectionOpen() {
			c.reconnect(conn, fmt.Errorf("mqttmsg: subscribing: %w", err))
			return false
		}
		select {
		case <-ctx.Done():
			c.reconnect(conn, fmt.Errorf("mqttmsg: subscribing: %w", ctx.Err()))
			return false
		case <-time.After(time.Second):
		}
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code == 0x80 {
				// Connected but deaf to this filter. A clustered broker
				// refuses while it is busy, an ACL for good: either way
				// the connection must not be kept as if it worked.
				c.reconnect(conn, fmt.Errorf("mqttmsg: broker refused subscription to %s (SUBACK 0x80); check the broker ACL and its load", f))
				return false
			}
		}
	}
	return true
}

// resubscribeLoop subscribes a connection again Resubscribe after it came
// up (see Options.Resubscribe), unless a newer one replaced it.
func (c *Client) resubscribeLoop() {
	defer c.wg.Done()
	for {
		var conn uint64
		select {
		case <-c.lifetime.Done():
			return
		case conn = <-c.resub:
		}
		t := time.NewTimer(c.opts.Resubscribe)
	wait:
		for {
			select {
			case <-c.lifetime.Done():
				t.Stop()
				return
			case conn = <-c.resub: // a newer connection: its own wait
				t.Reset(c.opts.Resubscribe)
			case <-t.C:
				break wait
			}
		}
		if conn != c.conns.Load() || !c.connected.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(c.lifetime, c.opts.ConnectTimeout+5*time.Second)
		if c.subscribe(ctx, conn) {
			c.log.Debug("subscribed again for the broker's retained messages", "broker", c.Broker())
		}
		cancel()
	}
}

func (c *Client) onLost(_ mqtt.Client, err error) {
	c.connected.Store(false)
	c.log.Warn("broker connection lost; reconnecting", "err", err)
	for _, f := range c.opts.OnDown {
		f(err)
	}
}

func (c *Client) onNotification(_ mqtt.Client, n mqtt.ConnectionNotification) {
	f, ok := n.(mqtt.ConnectionNotificationFailed)
	if !ok || c.lifetime.Err() != nil {
		return
	}
	if len(c.opts.OnConnectError) == 0 {
		c.log.Debug("connection attempt failed", "err", f.Reason)
	}
	for _, h := range c.opts.OnConnectError {
		h(f.Reason)
	}
}

func (c *Client) dispatch(_ mqtt.Client, m mqtt.Message) {
	if len(m.Payload()) > c.opts.MaxPayload {
		c.log.Warn("dropping oversized message", "topic", m.Topic(), "bytes", len(m.Payload()), "max", c.opts.MaxPayload)
		return
	}
	msg := Message{Topic: m.Topic(), Payload: m.Payload(), Retained: m.Retained()}
	own := false
	if p := c.opts.Presence; p != nil && msg.Topic == p.Topic {
		c.ownStatus(msg)
		own = true
	}
	c.mu.Lock()
	routes := c.routes
	c.mu.Unlock()
	for _, r := range routes {
		if Match(r.filter, msg.Topic) {
			// Our own status topic goes to a handler too when one asked
			// for it: a previous process's last will there says that
			// process has ended, which a peer-watcher needs to know.
			r.h(msg)
			return
		}
	}
	if !own {
		c.log.Warn("no handler for message; dropped", "topic", msg.Topic)
	}
}

// ownStatus reacts to our own presence topic.
func (c *Client) ownStatus(m Message) {
	p := c.opts.Presence
	if c.closing.Load() {
		return // our own goodbye echoing back
	}
	if len(m.Payload) == 0 {
		// The retained status was cleared. That is an operator's (or a
		// test's) act, not a will: peers that need us recover through the
		// rebirth request, so do not fight it.
		return
	}
	id, online, err := p.Status.ParseStatus(m.Payload)
	if err != nil {
		c.log.Warn("malformed payload on own status topic; re-publishing ours", "topic", m.Topic, "err", err)
		c.kickRebirth()
		return
	}
	switch {
	case id == p.ID && online:
		// Our own birth. Live, it is the broker's mark of where our birth
		// stands in the topic's order; retained, it is an earlier birth of
		// ours replayed at subscribe time and marks nothing.
		if !m.Retained {
			c.birthSeen.Store(true)
		}
	case id == p.ID && !online:
		c.log.Info("own last will seen while connected; re-publishing online status")
		c.kickRebirth()
	case !online:
		// Another process's will. Whatever its ts says (its host's clock
		// may be hours ahead of ours), a process that said goodbye does not
		// own the identity: ours must be what stays retained.
		c.kickRebirth()
	case c.birthSeen.Load() && len(c.opts.OnSupplanted) > 0:
		// Another process's birth, after ours in the broker's order of
		// this topic: it is the newer process. Every subscriber sees the
		// same order, so of two births exactly one is last. (A client that
		// cannot yield, a device, re-announces itself instead below.)
		c.log.Warn("a newer process took over this identity", "id", id, "online", online)
		for _, f := range c.opts.OnSupplanted {
			f(id)
		}
	default:
		// Another process's birth before ours in the broker's order (a
		// retained one seen at subscribe, or a live one that beat our
		// birth): we are the newer. Our birth, published or about to be,
		// is what stays retained.
		c.kickRebirth()
	}
}

// idleCheck is how often the client checks that paho is connected or
// retrying.
const idleCheck = 2 * time.Second

// Reconnect drops the connection and connects again. A connect whose
// subscribe, birth or on-connect work failed calls it (OnUp hooks too):
// a connection that stays up without its subscriptions or its
// announcements is deaf and mute, and nothing else would ever notice.
func (c *Client) Reconnect(reason error) { c.reconnect(c.conns.Load(), reason) }

// reconnect asks for a reconnect because of connection conn.
func (c *Client) reconnect(conn uint64, reason error) {
	if conn == c.conns.Load() {
		c.connected.Store(false)
	}
	c.redialMu.Lock()
	if c.request == nil || conn >= c.request.conn {
		c.request = &redialRequest{conn: conn, reason: reason}
	}
	c.redialMu.Unlock()
	select {
	case c.redial <- struct{}{}:
	default:
	}
}

// takeRequest returns the pending reconnect request unless it is stale: its
// connection was redialed since, or a newer one has begun its work.
func (c *Client) takeRequest() *redialRequest {
	c.redialMu.Lock()
	r := c.request
	c.request = nil
	c.redialMu.Unlock()
	if r == nil || r.conn <= c.redialed.Load() || r.conn < c.conns.Load() {
		if r != nil {
			c.log.Debug("reconnect request of an earlier connection ignored", "err", r.reason)
		}
		return nil
	}
	return r
}

// dial starts a connection attempt. Called with upMu held.
func (c *Client) dial() {
	c.redialed.Store(c.conns.Load())
	c.connTok.Store(c.pc.Connect())
}

// redialLoop reconnects off the connect goroutine: paho's Disconnect waits
// for the goroutine that runs onConnect.
//
// It also watches paho itself: when its own reconnect after a lost
// connection crosses our Disconnect (a subscribe failing as the link
// drops), paho can end disconnected with no retry pending, and the client
// would stay off the broker for good. Found by the fault campaign: two
// devices silent for ten minutes after a net-flap.
func (c *Client) redialLoop() {
	defer c.wg.Done()
	idle := time.NewTicker(idleCheck)
	defer idle.Stop()
	for {
		var reason error
		select {
		case <-c.lifetime.Done():
			return
		case <-c.redial:
			r := c.takeRequest()
			if r == nil {
				continue
			}
			reason = r.reason
		case <-idle.C:
			if c.closing.Load() || c.pc.IsConnected() {
				continue // connected, or paho is (re)connecting
			}
			c.log.Warn("connection left down with no retry pending; connecting again")
			c.upMu.Lock()
			if !c.closing.Load() && c.lifetime.Err() == nil {
				c.dial()
			}
			c.upMu.Unlock()
			continue
		}
		if c.closing.Load() {
			return
		}
		c.log.Warn("connection is up but not usable; reconnecting", "err", reason)
		for _, f := range c.opts.OnDown {
			f(reason)
		}
		c.pc.Disconnect(0)
		select {
		case <-c.lifetime.Done():
			return
		case <-time.After(time.Second): // as paho's own retry interval
		}
		c.upMu.Lock() // never connect again after Close started
		if !c.closing.Load() && c.lifetime.Err() == nil {
			c.dial()
		}
		c.upMu.Unlock()
	}
}

func (c *Client) kickRebirth() {
	select {
	case c.rebirth <- struct{}{}:
	default:
	}
}

// rebirthLoop re-publishes the online status off the delivery goroutine,
// since handlers must not wait for acknowledgements.
func (c *Client) rebirthLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.lifetime.Done():
			return
		case <-c.rebirth:
		}
		if !c.connected.Load() || c.closing.Load() {
			continue // the next connect publishes the birth anyway
		}
		// Under upMu, so a goodbye from Close can never be followed by
		// this birth.
		c.upMu.Lock()
		var err error
		if !c.closing.Load() {
			ctx, cancel := context.WithTimeout(c.lifetime, c.opts.ConnectTimeout)
			c.birthSeen.Store(false)
			err = c.publishWait(ctx, c.opts.Presence.Topic, c.presencePayload(true), true)
			cancel()
		}
		c.upMu.Unlock()
		if err != nil {
			c.log.Warn("re-publishing online status failed", "err", err)
		}
	}
}

// RepublishPresence publishes the online status again (for a peer's
// "rebirth" request).
func (c *Client) RepublishPresence() { c.kickRebirth() }

func (c *Client) presencePayload(online bool) []byte {
	return c.opts.Presence.Status.Payload(online)
}

// Publish sends payload to topic at QoS 1 and waits for the broker's
// acknowledgement or ctx. It fails fast with ErrNotConnected while the
// connection is down instead of queueing.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	if !c.pc.IsConnectionOpen() {
		return ErrNotConnected
	}
	return c.publishWait(ctx, topic, payload, retained)
}

// PublishQoS0 sends payload to topic at QoS 0, not retained: for readings
// that the next one replaces, which neither the broker nor paho should
// queue or resend. It waits only until the packet is written.
func (c *Client) PublishQoS0(ctx context.Context, topic string, payload []byte) error {
	if !c.pc.IsConnectionOpen() {
		return ErrNotConnected
	}
	if len(payload) > c.opts.MaxPayload {
		return fmt.Errorf("mqttmsg: payload for %s is %d bytes, over the %d limit", topic, len(payload), c.opts.MaxPayload)
	}
	return wait(ctx, c.pc.Publish(topic, 0, false, payload))
}

func (c *Client) publishWait(ctx context.Context, topic string, payload []byte, retained bool) error {
	if len(payload) > c.opts.MaxPayload {
		return fmt.Errorf("mqttmsg: payload for %s is %d bytes, over the %d limit", topic, len(payload), c.opts.MaxPayload)
	}
	return wait(ctx, c.pc.Publish(topic, 1, retained, payload))
}

func wait(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return fmt.Errorf("mqttmsg: waiting for broker: %w", ctx.Err())
	}
}

// Close publishes the offline status (a clean DISCONNECT discards the will,
// so the broker would not), disconnects and stops every goroutine.
// Use Abandon to leave without a word, as a crash would.
func (c *Client) Close(ctx context.Context) error {
	var err error
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		if p := c.opts.Presence; p != nil && c.pc.IsConnectionOpen() {
			c.upMu.Lock()
			err = c.publishWait(ctx, p.Topic, c.presencePayload(false), true)
			c.upMu.Unlock()
		}
		c.shutdown(250)
	})
	return err
}

// Abandon disconnects without publishing the offline status: used when a
// newer process owns the identity and our offline would overwrite its online.
func (c *Client) Abandon() {
	c.closeOnce.Do(func() { c.shutdown(0) })
}

func (c *Client) shutdown(quiesce uint) {
	c.cancel()
	c.connected.Store(false)
	c.pc.Disconnect(quiesce)
	// A connect still retrying ends only after its retry sleep: wait for it,
	// so no goroutine of ours outlives Close.
	if t, ok := c.connTok.Load().(mqtt.Token); ok {
		t.WaitTimeout(5 * time.Second)
	}
	c.wg.Wait()
	c.upMu.Lock() // wait for a running onConnect to see the cancel
	c.upMu.Unlock()
}

// Match reports whether topic matches the MQTT filter (with + and #).
func Match(filter, topic string) bool {
	fs := strings.Split(filter, "/")
	ts := strings.Split(topic, "/")
	for i, f := range fs {
		if f == "#" {
			return true
		}
		if i >= len(ts) {
			return false
		}
		if f != "+" && f != ts[i] {
			return false
		}
	}
	return len(fs) == len(ts)
}
