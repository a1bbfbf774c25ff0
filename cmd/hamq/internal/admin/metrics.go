package admin

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hamq/hamq/ha"
)

// metrics serves GET /metrics in Prometheus's format: the node's role and
// log, the broker's destinations and connections read at each scrape (so
// nothing is counted twice), and the Go runtime's and the process's own.
func (h *Handler) metrics() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collector{h})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

type collector struct{ h *Handler }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("hamq_"+name, help, labels, nil)
}

var (
	roleDesc      = desc("role", "1 for the node's role: standalone, master, slave or candidate.", "role")
	epochDesc     = desc("epoch", "The cluster epoch the node is in (0 standalone).")
	logEndDesc    = desc("log_end_index", "Position of the last record in the node's store log.")
	slaveAckDesc  = desc("slave_acked_index", "On the master: the log position each slave has acknowledged.", "slave")
	healthyDesc   = desc("healthy", "1 while the node's store works; 0 while it failed and is not reopened yet.")
	catchUpDesc   = desc("catchup_bytes", "A transfer into the node's store under way (snapshot, records or fetch): bytes done, and the total when known.", "phase", "kind")
	connsDesc     = desc("connections", "Open client connections, by protocol.", "protocol")
	messagesDesc  = desc("destination_messages", "Messages a destination holds, pending and unacknowledged.", "destination")
	enqueuedDesc  = desc("destination_enqueued_total", "Messages sent to a destination.", "destination")
	dequeuedDesc  = desc("destination_dequeued_total", "Messages acknowledged from a destination.", "destination")
	consumersDesc = desc("destination_consumers", "Subscriptions of a destination.", "destination")
	deadDesc      = desc("destination_dead_lettered_total", "Messages sent on to the dead-letter queue.", "destination")
	expiredDesc   = desc("destination_expired_total", "Messages that expired.", "destination")
	droppedDesc   = desc("destination_dropped_total", "Messages dropped for slow non-durable topic subscribers.", "destination")
	duplicateDesc = desc("destination_duplicates_total", "Resends the duplicate window confirmed again without enqueueing them.", "destination")
	memoryDesc    = desc("destination_memory_bytes", "Message bytes a destination holds in memory.", "destination")
	refusedDesc   = desc("auth_refused_total", "Refusals since the process started: logins (every protocol's and the admin API's), and reads, writes and creations without a grant.", "refused")
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{roleDesc, epochDesc, logEndDesc, slaveAckDesc, healthyDesc, catchUpDesc, connsDesc, messagesDesc,
		enqueuedDesc, dequeuedDesc, consumersDesc, deadDesc, expiredDesc, droppedDesc, duplicateDesc, memoryDesc, refusedDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	h := c.h
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	role := "standalone"
	if h.info.Cluster != nil {
		st := h.info.Cluster()
		role = string(st.Role)
		gauge(epochDesc, float64(st.Epoch))
		for id, p := range st.Peers {
			gauge(slaveAckDesc, float64(p.Acked), id)
		}
		if c := st.CatchUp; c != nil {
			gauge(catchUpDesc, float64(c.DoneBytes), c.Phase, "done")
			gauge(catchUpDesc, float64(c.TotalBytes), c.Phase, "total")
		}
	} else {
		gauge(epochDesc, 0)
	}
	for _, r := range []string{"standalone", string(ha.RoleMaster), string(ha.RoleSlave), string(ha.RoleCandidate)} {
		v := 0.0
		if r == role {
			v = 1
		}
		gauge(roleDesc, v, r)
	}
	gauge(logEndDesc, float64(h.info.End().Index))
	healthy := 0.0
	if h.info.Health() == "ok" {
		healthy = 1
	}
	gauge(healthyDesc, healthy)
	if a := h.info.Auth; a != nil {
		for what, n := range a.Refusals() {
			counter(refusedDesc, n, what)
		}
	}
	b := h.core()
	if b == nil {
		return // not serving: no destinations to speak of
	}
	conns := map[string]int{}
	for _, s := range b.Connections() {
		conns[s.Info.Protocol]++
	}
	for p, n := range conns {
		gauge(connsDesc, float64(n), p)
	}
	for _, s := range b.Destinations() {
		d := s.Dest.String()
		gauge(messagesDesc, float64(s.Size), d)
		counter(enqueuedDesc, s.Enqueued, d)
		counter(dequeuedDesc, s.Dequeued, d)
		gauge(consumersDesc, float64(s.Consumers), d)
		counter(deadDesc, s.DeadLettered, d)
		counter(expiredDesc, s.Expired, d)
		counter(droppedDesc, s.Dropped, d)
		counter(duplicateDesc, s.Duplicates, d)
		gauge(memoryDesc, float64(s.MemoryBytes), d)
	}
}
