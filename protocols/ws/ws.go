// Package ws is hamq's WebSocket listener: one port carrying STOMP and
// MQTT, chosen by the subprotocol the client asks for (mqtt, mqttv3.1 for
// MQTT; v10.stomp, v11.stomp, v12.stomp, stomp, or none at all for STOMP,
// as ActiveMQ takes a connection that does not ask for MQTT: stomp.py's
// WebSocket transport asks for none). A subprotocol naming something else
// (amqp, say) is refused with 400 rather than spoken to in STOMP. The
// connection is handed as a net.Conn to the STOMP or MQTT front-end, so
// nothing about either protocol is written twice.
//
// It imports the STOMP and MQTT front-ends, never core's store or ZooKeeper.
package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// ConnServer is a front-end that can run a connection it did not accept.
type ConnServer interface {
	ServeConn(c net.Conn)
}

// Options for the WebSocket listener.
type Options struct {
	// AllowedOrigins are the host patterns (path.Match, e.g.
	// "*.example.com", "localhost:*") whose pages may connect; the page's
	// own host always may. "*" allows any origin. "null" allows pages
	// that send Origin: null, which are pages opened from a file:// URL
	// but also sandboxed frames of any web site, so that only "null" or
	// "*" lets them in. Clients that send no Origin (not browsers) may
	// always connect.
	AllowedOrigins []string
}

// DefaultOptions allow pages served from this machine.
func DefaultOptions() Options {
	return Options{AllowedOrigins: []string{"localhost:*", "127.0.0.1:*"}}
}

// Server is the WebSocket listener.
type Server struct {
	stomp, mqtt ConnServer
	opts        Options
	log         *slog.Logger
	http        *http.Server
}

var subprotocols = map[string]string{
	"v12.stomp": "stomp", "v11.stomp": "stomp", "v10.stomp": "stomp", "stomp": "stomp",
	"mqtt": "mqtt", "mqttv3.1": "mqtt",
}

// NewServer makes the listener; either front-end may be nil when it is off.
func NewServer(stomp, mqtt ConnServer, opts Options, log *slog.Logger) *Server {
	s := &Server{stomp: stomp, mqtt: mqtt, opts: opts, log: log.With("component", "ws")}
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	return s
}

// ErrServerClosed is what Serve returns after Shutdown or Close.
var ErrServerClosed = errors.New("ws: server closed")

// Serve accepts WebSocket upgrades on ln.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ws: %w", err)
	}
	return ErrServerClosed
}

// Shutdown stops accepting upgrades; the connections belong to the STOMP
// and MQTT front-ends, whose own Shutdown ends them.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

// Close stops accepting at once.
func (s *Server) Close() error { return s.http.Close() }

// choose picks the first subprotocol the client offers that hamq serves;
// a client that offers none speaks STOMP (front "stomp", proto "").
func (s *Server) choose(r *http.Request) (proto, front string) {
	offered := false
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			p = strings.TrimSpace(p)
			offered = offered || p != ""
			f := subprotocols[p]
			if f == "stomp" && s.stomp != nil || f == "mqtt" && s.mqtt != nil {
				return p, f
			}
		}
	}
	if !offered && s.stomp != nil {
		return "", "stomp"
	}
	return "", ""
}

// nullOriginAllowed reports whether a page sending Origin: null may connect;
// other origins are coder/websocket's to check against AllowedOrigins.
func (s *Server) nullOriginAllowed(r *http.Request) (isNull, allowed bool) {
	if r.Header.Get("Origin") != "null" {
		return false, false
	}
	for _, o := range s.opts.AllowedOrigins {
		if o == "null" || o == "*" {
			return true, true
		}
	}
	return true, false
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	proto, front := s.choose(r)
	if front == "" {
		offered := strings.Join(r.Header.Values("Sec-WebSocket-Protocol"), ", ")
		s.log.Info("upgrade refused", "remote", r.RemoteAddr, "offered", offered)
		http.Error(w, fmt.Sprintf("unsupported WebSocket subprotocol %q: hamq speaks v12.stomp, v11.stomp, v10.stomp, stomp (or none: STOMP), mqtt and mqttv3.1", offered), http.StatusBadRequest)
		return
	}
	opts := &websocket.AcceptOptions{}
	if proto != "" {
		opts.Subprotocols = []string{proto}
	}
	for _, o := range s.opts.AllowedOrigins {
		if o == "*" {
			opts.InsecureSkipVerify = true
		}
	}
	if isNull, allowed := s.nullOriginAllowed(r); isNull && !allowed {
		s.log.Info("upgrade refused", "remote", r.RemoteAddr, "origin", "null")
		http.Error(w, `Origin "null" (a page opened from a file:// URL, or a sandboxed frame) is not allowed: list "null" in ws.allowedOrigins to let such pages connect`, http.StatusForbidden)
		return
	} else if allowed {
		opts.InsecureSkipVerify = true
	}
	opts.OriginPatterns = s.opts.AllowedOrigins
	c, err := websocket.Accept(w, r, opts)
	if err != nil {
		s.log.Info("upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	// MQTT is binary; STOMP clients (stomp.js) send text frames.
	kind, srv := websocket.MessageText, s.stomp
	if front == "mqtt" {
		kind, srv = websocket.MessageBinary, s.mqtt
	}
	srv.ServeConn(websocket.NetConn(context.Background(), c, kind))
}
