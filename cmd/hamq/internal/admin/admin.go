// Package admin is hamq's admin HTTP API: JSON views of the broker, its
// destinations, subscriptions, connections and cluster, and the operations
// an operator needs (create, purge, delete a destination; send, browse and
// move messages; close a connection). The hamq commands read it, and the
// web console (package console, served at /admin/) is built on it. When
// authentication is configured every route but /health/ asks for the
// login of an administrator (auth.go).
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/core/store"
	"github.com/hamq/hamq/ha"
)

// Info is what the admin API says of the node itself.
type Info struct {
	Name    string
	Version string
	End     func() store.Position
	// Health is "ok", or what keeps the node from serving: a store that
	// failed and is not reopened yet.
	Health func() string
	// Cluster is the node's HA status; nil for a standalone broker.
	Cluster func() ha.Status
	// Replicas is the cluster's size, of which a quorum confirms.
	Replicas int
	// Auth, when it is Enabled, makes every route but /health/ ask for
	// an administrator's login; nil leaves the API open.
	Auth *core.Auth
	// Conns knows the client connections' sockets; nil when they cannot
	// be closed from here.
	Conns Conns
	// StoreBytes is the size of the store's files.
	StoreBytes func() int64
	Log        *slog.Logger
}

// Conns are the client connections' sockets, by remote address.
type Conns interface {
	// Since is when the connection from remote was accepted.
	Since(remote string) (time.Time, bool)
	// Close closes it; false when there is none.
	Close(remote string) bool
}

// Handler serves the API for one node. The admin API stays open on every
// node of a cluster; the broker's views answer only on the master.
type Handler struct {
	core    func() *core.Broker // nil while this node is not serving
	info    Info
	started time.Time
	mux     *http.ServeMux
}

// New builds the API's routes over the broker that b returns at the time
// of each request.
func New(b func() *core.Broker, info Info) *Handler {
	if info.Log == nil {
		info.Log = slog.New(slog.DiscardHandler)
	}
	info.Log = info.Log.With("component", "admin")
	h := &Handler{core: b, info: info, started: time.Now(), mux: http.NewServeMux()}
	h.routes()
	h.scheduledRoutes()
	h.mux.Handle("GET /metrics", h.metrics())
	// Go's profiles, for finding where a busy broker's time goes:
	// go tool pprof http://127.0.0.1:8161/debug/pprof/profile?seconds=10
	h.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	h.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	h.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	h.mux.HandleFunc("GET /api/broker", h.broker)
	h.mux.HandleFunc("GET /api/cluster", h.cluster)
	h.mux.HandleFunc("GET /api/destinations", h.withBroker(h.destinations))
	h.mux.HandleFunc("GET /api/connections", h.withBroker(h.connections))
	for _, kind := range []struct {
		path string
		kind core.Kind
	}{{"queues", core.Queue}, {"topics", core.Topic}} {
		base := "/api/" + kind.path + "/{name}"
		h.mux.HandleFunc("GET "+base, h.withDest(kind.kind, h.get))
		h.mux.HandleFunc("POST "+base, h.withDest(kind.kind, h.create))
		h.mux.HandleFunc("DELETE "+base, h.withDest(kind.kind, h.remove))
		h.mux.HandleFunc("POST "+base+"/purge", h.withDest(kind.kind, h.purge))
		h.mux.HandleFunc("POST "+base+"/messages", h.withDest(kind.kind, h.send))
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.guard(h.mux).ServeHTTP(w, r) }

// DestJSON is a destination as the API shows it.
type DestJSON struct {
	Type         string `json:"type"`
	Name         string `json:"name"`
	Size         int64  `json:"size"`
	Enqueued     int64  `json:"enqueued"`
	Dequeued     int64  `json:"dequeued"`
	Consumers    int64  `json:"consumers"`
	DeadLettered int64  `json:"deadLettered"`
	Expired      int64  `json:"expired"`
	Dropped      int64  `json:"dropped"`
	Duplicates   int64  `json:"duplicates"`
	MemoryBytes  int64  `json:"memoryBytes"`
	MemoryLimit  int64  `json:"memoryLimit"`
}

func destJSON(s core.DestStats) DestJSON {
	return DestJSON{Type: s.Dest.Kind.String(), Name: s.Dest.Name, Size: s.Size, Enqueued: s.Enqueued,
		Dequeued: s.Dequeued, Consumers: s.Consumers, DeadLettered: s.DeadLettered, Expired: s.Expired,
		Dropped: s.Dropped, Duplicates: s.Duplicates, MemoryBytes: s.MemoryBytes, MemoryLimit: s.MemoryLimit}
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func fail(w http.ResponseWriter, status int, err error) {
	reply(w, status, map[string]string{"error": err.Error()})
}

func (h *Handler) broker(w http.ResponseWriter, r *http.Request) {
	end := h.info.End()
	out := map[string]any{
		"name": h.info.Name, "version": h.info.Version, "role": "standalone",
		"rssBytes": rss(), "cpuSeconds": cpuSeconds(), "goroutines": runtime.NumGoroutine(), "memory": memory(),
		"uptimeSeconds": int64(time.Since(h.started).Seconds()),
		"storeEnd":      map[string]uint64{"epoch": end.Epoch, "index": end.Index},
		"health":        h.info.Health(),
	}
	if h.info.Cluster != nil {
		st := h.info.Cluster()
		out["role"], out["master"], out["epoch"], out["id"] = st.Role, st.Master, st.Epoch, st.ID
		out["masterAdmin"] = masterAdmin(st)
		out["zookeeper"] = st.ZooKeeper
	}
	if h.info.StoreBytes != nil {
		out["storeBytes"] = h.info.StoreBytes()
	}
	b := h.core()
	out["serving"] = b != nil
	if b != nil {
		conns := b.Connections()
		byProto := map[string]int{}
		for _, c := range conns {
			byProto[c.Info.Protocol]++
		}
		out["connections"], out["destinations"], out["connectionsByProtocol"] = len(conns), len(b.Destinations()), byProto
	}
	auth := map[string]any{"enabled": false}
	if a := h.info.Auth; a != nil {
		auth = map[string]any{"enabled": a.Enabled(), "authorizing": a.Authorizing(), "refusals": a.Refusals()}
	}
	auth["user"] = userOf(r)
	out["auth"] = auth
	reply(w, http.StatusOK, out)
}

// masterAdmin is the admin URL of the master a node sees, or "".
func masterAdmin(st ha.Status) string {
	for _, m := range st.Members {
		if m.ID == st.Master {
			return m.Admin
		}
	}
	return ""
}

// cluster is the node's view of the cluster: its role, the master, the
// epoch, its log end, the registered members and, on the master, each
// slave's lag.
func (h *Handler) cluster(w http.ResponseWriter, r *http.Request) {
	if h.info.Cluster == nil {
		reply(w, http.StatusOK, map[string]any{"role": "standalone"})
		return
	}
	reply(w, http.StatusOK, h.info.Cluster())
}

// withBroker answers 503 on a node that is not serving, naming the master.
func (h *Handler) withBroker(fn func(http.ResponseWriter, *http.Request, *core.Broker)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b := h.core()
		if b == nil {
			msg := "this node is not serving clients"
			out := map[string]string{}
			if h.info.Cluster != nil {
				st := h.info.Cluster()
				admin := masterAdmin(st)
				switch {
				case admin != "":
					msg = fmt.Sprintf("this node is a %s; the master is %s", st.Role, admin)
					out["master"] = admin
				case st.Master != "":
					msg = fmt.Sprintf("this node is a %s; the master is %s, whose admin API is not known", st.Role, st.Master)
				default:
					msg = fmt.Sprintf("this node is a %s; no master is elected", st.Role)
				}
				out["role"] = string(st.Role)
			}
			out["error"] = msg
			reply(w, http.StatusServiceUnavailable, out)
			return
		}
		fn(w, r, b)
	}
}

// memory is where the Go runtime's memory is: live heap, heap the runtime
// keeps unused, goroutine stacks; and the collector's GOGC of the moment.
func memory() map[string]uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	gogc := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(gogc)
	return map[string]uint64{"heapInUseBytes": m.HeapInuse, "heapIdleBytes": m.HeapIdle - m.HeapReleased,
		"stackBytes": m.StackInuse, "gcCycles": uint64(m.NumGC), "gcPercent": gogc[0].Value.Uint64()}
}

// cpuSeconds is the CPU time the process has used, user and system.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// rss is the process's resident memory, from /proc (0 where there is none).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (h *Handler) destinations(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	out := []DestJSON{}
	for _, s := range b.Destinations() {
		out = append(out, destJSON(s))
	}
	reply(w, http.StatusOK, out)
}

func (h *Handler) connections(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	out := []map[string]any{}
	for _, c := range b.Connections() {
		m := map[string]any{"id": c.ID, "protocol": c.Info.Protocol, "remoteAddress": c.Info.RemoteAddr,
			"clientId": c.Info.ClientID, "user": c.Info.User, "subscriptions": c.Subscriptions, "unacknowledged": c.Unacked,
			"closable": false}
		if h.info.Conns != nil && c.Info.RemoteAddr != "" {
			if since, ok := h.info.Conns.Since(c.Info.RemoteAddr); ok {
				m["since"], m["closable"] = since.UTC().Format(time.RFC3339), true
			}
		}
		out = append(out, m)
	}
	reply(w, http.StatusOK, out)
}

func (h *Handler) withDest(kind core.Kind, fn func(http.ResponseWriter, *http.Request, *core.Broker, core.Destination)) http.HandlerFunc {
	return h.withBroker(func(w http.ResponseWriter, r *http.Request, b *core.Broker) {
		fn(w, r, b, core.Destination{Kind: kind, Name: r.PathValue("name")})
	})
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, b *core.Broker, d core.Destination) {
	s, ok := b.Stats(d)
	if !ok {
		fail(w, http.StatusNotFound, fmt.Errorf("no %s named %q", d.Kind, d.Name))
		return
	}
	reply(w, http.StatusOK, destJSON(s))
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request, b *core.Broker, d core.Destination) {
	if err := b.CreateDestination(d); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	s, _ := b.Stats(d)
	reply(w, http.StatusCreated, destJSON(s))
}

func (h *Handler) remove(w http.ResponseWriter, r *http.Request, b *core.Broker, d core.Destination) {
	err := b.DeleteDestination(r.Context(), d)
	switch {
	case errors.Is(err, core.ErrNoSuchDestination):
		fail(w, http.StatusNotFound, err)
	case err != nil:
		fail(w, http.StatusConflict, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (h *Handler) purge(w http.ResponseWriter, r *http.Request, b *core.Broker, d core.Destination) {
	n, err := b.PurgeDestination(r.Context(), d)
	switch {
	case errors.Is(err, core.ErrNoSuchDestination):
		fail(w, http.StatusNotFound, err)
	case err != nil:
		fail(w, http.StatusBadRequest, err)
	default:
		reply(w, http.StatusOK, map[string]int{"purged": n})
	}
}

// maxSendBody bounds a message sent through the API.
const maxSendBody = 100 << 20

// send publishes the request body. Query parameters: persistent=true,
// priority=0..9, ttl (a duration), correlationId, replyTo (queue://x),
// contentType (else the request's Content-Type); any other parameter is a
// message property.
func (h *Handler) send(w http.ResponseWriter, r *http.Request, b *core.Broker, d core.Destination) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSendBody))
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, err)
		return
	}
	m := &core.Message{Dest: d, Body: body, Priority: core.DefaultPriority, ContentType: r.Header.Get("Content-Type")}
	q := r.URL.Query()
	for k, vs := range q {
		v := vs[0]
		switch k {
		case "persistent":
			m.Persistent = v == "true"
		case "priority":
			p, err := strconv.Atoi(v)
			if err != nil || p < 0 || p > 9 {
				fail(w, http.StatusBadRequest, fmt.Errorf("priority %q: want 0 to 9", v))
				return
			}
			m.Priority = uint8(p)
		case "ttl":
			ttl, err := time.ParseDuration(v)
			if err != nil || ttl <= 0 {
				fail(w, http.StatusBadRequest, fmt.Errorf("ttl %q: want a duration such as 30s", v))
				return
			}
			m.Expiration = time.Now().Add(ttl).UnixMilli()
		case "correlationId":
			m.CorrelationID = v
		case "contentType":
			m.ContentType = v
		case "replyTo":
			rt, err := core.ParseDestination(v)
			if err != nil {
				fail(w, http.StatusBadRequest, err)
				return
			}
			m.ReplyTo = rt
		default:
			if m.Properties == nil {
				m.Properties = map[string]any{}
			}
			m.Properties[k] = v
		}
	}
	sess, err := b.Connect(core.ConnInfo{Protocol: "http", RemoteAddr: r.RemoteAddr, User: userOf(r)})
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err)
		return
	}
	defer sess.Close()
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	if err := sess.Send(ctx, "", m); err != nil {
		status := http.StatusServiceUnavailable
		switch {
		case errors.Is(err, core.ErrInvalidDestination) || errors.Is(err, core.ErrNoSuchDestination) ||
			errors.Is(err, core.ErrBadSchedule):
			status = http.StatusBadRequest
		case errors.Is(err, core.ErrForbidden):
			status = http.StatusForbidden
		}
		fail(w, status, err)
		return
	}
	reply(w, http.StatusCreated, map[string]string{"id": m.ID})
}
