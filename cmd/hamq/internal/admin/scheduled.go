package admin

import (
	"fmt"
	"net/http"

	"github.com/hamq/hamq/core"
)

// ScheduledJSON is a page of scheduled messages, in due order.
type ScheduledJSON struct {
	Total    int                     `json:"total"`
	Offset   int                     `json:"offset"`
	Messages []core.ScheduledMessage `json:"messages"`
}

func (h *Handler) scheduledRoutes() {
	h.mux.HandleFunc("GET /api/scheduled", h.withBroker(h.scheduled))
	h.mux.HandleFunc("DELETE /api/scheduled/{id}", h.withBroker(h.cancelScheduled))
}

// scheduled is GET /api/scheduled?offset=&limit=.
func (h *Handler) scheduled(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	offset, limit, err := paging(r)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	list, total, err := b.Scheduled(offset, limit)
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	if list == nil {
		list = []core.ScheduledMessage{}
	}
	reply(w, http.StatusOK, ScheduledJSON{Total: total, Offset: offset, Messages: list})
}

// cancelScheduled is DELETE /api/scheduled/{id}: the job and every
// delivery it still had to make.
func (h *Handler) cancelScheduled(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	id := r.PathValue("id")
	ok, err := b.CancelScheduled(r.Context(), id)
	switch {
	case err != nil:
		fail(w, http.StatusServiceUnavailable, err)
	case !ok:
		fail(w, http.StatusNotFound, fmt.Errorf("no scheduled message %q", id))
	default:
		reply(w, http.StatusOK, map[string]string{"cancelled": id})
	}
}
