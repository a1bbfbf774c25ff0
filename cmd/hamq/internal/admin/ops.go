package admin

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hamq/hamq/cmd/hamq/internal/console"
	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/ha"
)

// routes adds what the console and the newer commands use: browsing,
// subscriptions, moving messages, closing connections, the cluster's
// nodes, health for load balancers, and the console itself.
func (h *Handler) routes() {
	h.mux.HandleFunc("GET /health/live", h.live)
	h.mux.HandleFunc("GET /health/master", h.masterHealth)
	h.mux.HandleFunc("GET /api/cluster/nodes", h.clusterNodes)
	h.mux.HandleFunc("GET /api/subscriptions", h.withBroker(h.subscriptions))
	h.mux.HandleFunc("GET /api/durables/messages", h.withBroker(h.browseDurable))
	h.mux.HandleFunc("DELETE /api/connections/{id}", h.withBroker(h.closeConnection))
	h.mux.HandleFunc("GET /api/queues/{name}/messages", h.withDest(core.Queue, h.browse))
	h.mux.HandleFunc("POST /api/queues/{name}/retry", h.withDest(core.Queue, h.retry))
	h.mux.HandleFunc("POST /api/queues/{name}/move", h.withDest(core.Queue, h.move))
	h.mux.Handle("GET /admin/", http.StripPrefix("/admin", console.Handler()))
	h.mux.Handle("GET /admin", http.RedirectHandler("/admin/", http.StatusMovedPermanently))
	h.mux.Handle("GET /{$}", http.RedirectHandler("/admin/", http.StatusFound))
}

// live answers 200 while the process serves HTTP: for a load balancer's
// or an orchestrator's liveness probe.
func (h *Handler) live(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusOK, map[string]string{"status": "live", "health": h.info.Health()})
}

// masterHealth answers 200 only on the node that serves clients (the
// master of a cluster, or a standalone broker whose store works), 503
// elsewhere: a load balancer sends clients to the one that answers 200.
func (h *Handler) masterHealth(w http.ResponseWriter, r *http.Request) {
	role := "standalone"
	if h.info.Cluster != nil {
		role = string(h.info.Cluster().Role)
	}
	if h.core() == nil || (role != "standalone" && role != string(ha.RoleMaster)) {
		reply(w, http.StatusServiceUnavailable, map[string]string{"status": "not serving clients", "role": role})
		return
	}
	reply(w, http.StatusOK, map[string]string{"status": "serving clients", "role": role})
}

// MessageJSON is a browsed message. A text body is shown as text, any
// other as hex; bodies longer than maxShownBody are cut, with bodySize
// the whole.
type MessageJSON struct {
	ID            string         `json:"id"`
	State         string         `json:"state"` // pending, or delivered and awaiting its acknowledgement
	Destination   string         `json:"destination"`
	Persistent    bool           `json:"persistent"`
	Priority      uint8          `json:"priority"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Expiration    string         `json:"expiration,omitempty"`
	DeliveryCount uint32         `json:"deliveryCount"`
	Redelivered   bool           `json:"redelivered"`
	CorrelationID string         `json:"correlationId,omitempty"`
	ReplyTo       string         `json:"replyTo,omitempty"`
	ContentType   string         `json:"contentType,omitempty"`
	Type          string         `json:"type,omitempty"`
	Properties    map[string]any `json:"properties,omitempty"`
	BodySize      int            `json:"bodySize"`
	BodyEncoding  string         `json:"bodyEncoding"` // text or hex
	Body          string         `json:"body"`
	BodyTruncated bool           `json:"bodyTruncated,omitempty"`
	BodyGone      bool           `json:"bodyGone,omitempty"`
}

// PageJSON is a page of browsed messages.
type PageJSON struct {
	Offset    int `json:"offset"`
	Limit     int `json:"limit"`
	Pending   int `json:"pending"`
	Delivered int `json:"delivered"`
	Total     int `json:"total"`
	// IncludesUnacknowledged: after the pending messages, in dispatch
	// order, come those delivered and not yet acknowledged.
	IncludesUnacknowledged bool          `json:"includesUnacknowledged"`
	Messages               []MessageJSON `json:"messages"`
}

// maxShownBody bounds the bytes of a body a page shows.
const maxShownBody = 64 << 10

func millis(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

func messageJSON(b core.Browsed) MessageJSON {
	m := b.Msg
	out := MessageJSON{ID: m.ID, State: "pending", Destination: m.Dest.String(), Persistent: m.Persistent, Priority: m.Priority,
		Timestamp: millis(m.Timestamp), Expiration: millis(m.Expiration), DeliveryCount: m.DeliveryCount, Redelivered: m.Redelivered(),
		CorrelationID: m.CorrelationID, ReplyTo: m.ReplyTo.String(), ContentType: m.ContentType, Type: m.Type,
		Properties: m.Properties, BodySize: len(m.Body), BodyGone: b.BodyGone}
	if b.Delivered {
		out.State = "delivered"
	}
	body := m.Body
	if len(body) > maxShownBody {
		body, out.BodyTruncated = body[:maxShownBody], true
	}
	if isText(m.ContentType, body) {
		out.BodyEncoding, out.Body = "text", string(body)
	} else {
		out.BodyEncoding, out.Body = "hex", hex.EncodeToString(body)
	}
	return out
}

// isText reports whether a body reads as text: a text content type, or
// valid UTF-8 without control characters other than white space.
func isText(contentType string, body []byte) bool {
	ct := strings.ToLower(contentType)
	if strings.HasPrefix(ct, "text/") || strings.Contains(ct, "json") || strings.Contains(ct, "xml") {
		return utf8.Valid(body)
	}
	if !utf8.Valid(body) {
		return false
	}
	for _, r := range string(body) {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
	}
	return true
}

// paging reads offset and limit (default 50, at most 1000).
func paging(r *http.Request) (offset, limit int, err error) {
	q := r.URL.Query()
	offset, limit = 0, 50
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("offset %q: want 0 or more", v)
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return 0, 0, fmt.Errorf("limit %q: want 1 or more", v)
		}
	}
	return offset, min(limit, 1000), nil
}

func pageJSON(p core.Page, limit int) PageJSON {
	out := PageJSON{Offset: p.Offset, Limit: limit, Pending: p.Pending, Delivered: p.Delivered, Total: p.Pending + p.Delivered,
		IncludesUnacknowledged: true, Messages: []MessageJSON{}}
	for _, m := range p.Messages {
		out.Messages = append(out.Messages, messageJSON(m))
	}
	return out
}

// browse is GET /api/queues/{name}/messages?offset=&limit=: messages
// without consuming them.
func (h *Handler) browse(w http.ResponseWriter, r *http.Request, b *core.Broker, d core.Destination) {
	offset, limit, err := paging(r)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	p, err := b.Browse(d, offset, limit)
	if err != nil {
		fail(w, statusOf(err), err)
		return
	}
	reply(w, http.StatusOK, pageJSON(p, limit))
}

// browseDurable is GET /api/durables/messages?clientId=&name=&offset=&limit=.
func (h *Handler) browseDurable(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	offset, limit, err := paging(r)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	p, err := b.BrowseDurable(r.URL.Query().Get("clientId"), r.URL.Query().Get("name"), offset, limit)
	if err != nil {
		fail(w, statusOf(err), err)
		return
	}
	reply(w, http.StatusOK, pageJSON(p, limit))
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, core.ErrNoSuchDestination):
		return http.StatusNotFound
	case errors.Is(err, core.ErrForbidden):
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// SubJSON is a subscription as GET /api/subscriptions shows it.
type SubJSON struct {
	Destination string `json:"destination"`
	Type        string `json:"type"` // queue or topic
	Name        string `json:"name"`
	ClientID    string `json:"clientId,omitempty"`
	Durable     string `json:"durable,omitempty"`
	Shared      string `json:"shared,omitempty"`
	Selector    string `json:"selector,omitempty"`
	Connection  uint64 `json:"connection,omitempty"`
	Active      bool   `json:"active"`
	Pending     int64  `json:"pending"`
	Unacked     int    `json:"unacknowledged"`
	Prefetch    int    `json:"prefetch,omitempty"`
}

func (h *Handler) subscriptions(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	out := []SubJSON{}
	for _, s := range b.Subscriptions() {
		kind := "queue"
		if s.Dest.Kind.IsTopic() {
			kind = "topic"
		}
		out = append(out, SubJSON{Destination: s.Dest.String(), Type: kind, Name: s.Dest.Name, ClientID: s.ClientID, Durable: s.Durable,
			Shared: s.Shared, Selector: s.Selector, Connection: s.Session, Active: s.Session != 0, Pending: s.Pending,
			Unacked: s.Unacked, Prefetch: s.Prefetch})
	}
	reply(w, http.StatusOK, out)
}

// ids are the id parameters of a move or retry: none means every message.
func ids(r *http.Request) []string { return r.URL.Query()["id"] }

// retry is POST /api/queues/{name}/retry[?id=...]: a dead-letter queue's
// messages (those named, or all) back to their originalDestination.
func (h *Handler) retry(w http.ResponseWriter, r *http.Request, b *core.Broker, d core.Destination) {
	n, err := b.MoveMessages(r.Context(), d, ids(r), core.OriginalDestination)
	if err != nil {
		fail(w, statusOf(err), err)
		return
	}
	reply(w, http.StatusOK, map[string]int{"moved": n})
}

// move is POST /api/queues/{name}/move?to=queue://other[&id=...].
func (h *Handler) move(w http.ResponseWriter, r *http.Request, b *core.Broker, d core.Destination) {
	to, err := core.ParseDestination(r.URL.Query().Get("to"))
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	n, err := b.MoveMessages(r.Context(), d, ids(r), func(*core.Message) (core.Destination, error) { return to, nil })
	if err != nil {
		fail(w, statusOf(err), err)
		return
	}
	reply(w, http.StatusOK, map[string]int{"moved": n})
}

// closeConnection is DELETE /api/connections/{id}: the client's socket
// closes, and its protocol's front-end ends the session as when a client
// goes away (its unacknowledged messages are redelivered).
func (h *Handler) closeConnection(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		fail(w, http.StatusBadRequest, fmt.Errorf("connection id %q: want a number", r.PathValue("id")))
		return
	}
	for _, c := range b.Connections() {
		if c.ID != id {
			continue
		}
		if h.info.Conns == nil || c.Info.RemoteAddr == "" || !h.info.Conns.Close(c.Info.RemoteAddr) {
			fail(w, http.StatusConflict, fmt.Errorf("connection %d (%s) has no open socket to close", id, c.Info.Protocol))
			return
		}
		h.info.Log.Info("connection closed by an administrator", "id", id, "remote", c.Info.RemoteAddr, "by", userOf(r))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	fail(w, http.StatusNotFound, fmt.Errorf("no connection %d", id))
}

// NodeJSON is one member of the cluster as GET /api/cluster/nodes shows
// it: its own status, asked of it, and the master's view of its lag.
type NodeJSON struct {
	ID        string         `json:"id"`
	Admin     string         `json:"admin,omitempty"`
	Reachable bool           `json:"reachable"`
	Error     string         `json:"error,omitempty"`
	Status    *ha.Status     `json:"status,omitempty"`
	Lag       *ha.PeerStatus `json:"lag,omitempty"`
}

// clusterNodes asks every member for its status, at once and briefly (a
// paused node shows unreachable rather than holding up the rest), with
// the request's own login.
func (h *Handler) clusterNodes(w http.ResponseWriter, r *http.Request) {
	if h.info.Cluster == nil {
		reply(w, http.StatusOK, map[string]any{"role": "standalone", "nodes": []NodeJSON{}})
		return
	}
	self := h.info.Cluster()
	nodes := make([]NodeJSON, len(self.Members))
	var wg sync.WaitGroup
	for i, m := range self.Members {
		nodes[i] = NodeJSON{ID: m.ID, Admin: m.Admin}
		if m.ID == self.ID {
			st := self
			nodes[i].Status, nodes[i].Reachable = &st, true
			continue
		}
		if m.Admin == "" {
			nodes[i].Error = "no admin API"
			continue
		}
		wg.Add(1)
		go func(n *NodeJSON) {
			defer wg.Done()
			st, err := h.peerStatus(r, n.Admin)
			if err != nil {
				n.Error = err.Error()
				return
			}
			n.Status, n.Reachable = st, true
		}(&nodes[i])
	}
	wg.Wait()
	var master *ha.Status
	for _, n := range nodes {
		if n.Status != nil && n.Status.Role == ha.RoleMaster {
			master = n.Status
		}
	}
	attached := 0
	if master != nil {
		for i := range nodes {
			if p, ok := master.Peers[nodes[i].ID]; ok {
				nodes[i].Lag = &p
				if p.Attached {
					attached++
				}
			}
		}
	}
	out := map[string]any{"self": self.ID, "role": self.Role, "master": self.Master, "masterAdmin": masterAdmin(self),
		"replicas": h.info.Replicas, "quorum": h.info.Replicas/2 + 1, "nodes": nodes}
	if master != nil {
		// The master and its attached slaves, against the quorum.
		out["confirming"] = attached + 1
	}
	reply(w, http.StatusOK, out)
}

func (h *Handler) peerStatus(r *http.Request, admin string) (*ha.Status, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, strings.TrimSuffix(admin, "/")+"/api/cluster", nil)
	if err != nil {
		return nil, err
	}
	if v := r.Header.Get("Authorization"); v != "" {
		req.Header.Set("Authorization", v)
	}
	resp, err := peerClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	var st ha.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

var peerClient = &http.Client{Timeout: 2 * time.Second}
