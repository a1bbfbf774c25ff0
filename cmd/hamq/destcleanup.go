package main

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// benchCleanup removes, once hamq bench is done, the destination it made:
// one that did not exist before it started (a user's own queue stays,
// messages and all). It asks the admin API at adminURL, logged in as the
// bench was, and says nothing when it cannot: the run's results matter
// more than its leftovers.
func benchCleanup(proto string, cfg benchConfig, adminURL string) func() {
	kind, name := benchDestination(proto, cfg.dest)
	if name == "" {
		return func() {}
	}
	api := adminAPI{base: strings.TrimSuffix(adminURL, "/"), login: cfg.login, timeout: 5 * time.Second}
	path := "/api/" + kind + "s/" + url.PathEscape(name)
	var existed struct{ Name string }
	if err := api.get(path, &existed); err == nil || !strings.Contains(err.Error(), "404") {
		return func() {} // there before the bench, or the API cannot tell
	}
	return func() {
		// A queue's consumers leave as the bench ends; the broker may
		// not have seen them go yet.
		for range 20 {
			if err := api.call(http.MethodDelete, path, nil, nil); err == nil || !strings.Contains(err.Error(), "409") {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// benchDestination is the core destination of a bench's --destination.
func benchDestination(proto, dest string) (kind, name string) {
	switch {
	case proto == "mqtt":
		return "topic", strings.NewReplacer("/", ".", ".", "/", "+", "*", "#", ">").Replace(dest)
	case strings.HasPrefix(dest, "/queue/"):
		return "queue", strings.TrimPrefix(dest, "/queue/")
	case strings.HasPrefix(dest, "/topic/"):
		return "topic", strings.TrimPrefix(dest, "/topic/")
	case strings.HasPrefix(dest, "queue://"):
		return "queue", strings.TrimPrefix(dest, "queue://")
	case strings.HasPrefix(dest, "topic://"):
		return "topic", strings.TrimPrefix(dest, "topic://")
	case proto == "amqp":
		return "queue", dest
	}
	return "", ""
}
