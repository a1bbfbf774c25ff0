package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

type userKey struct{}

// userOf is the administrator a request logged in as ("" when the API is
// open).
func userOf(r *http.Request) string {
	u, _ := r.Context().Value(userKey{}).(string)
	return u
}

// open reports whether a path needs no login: what load balancers probe.
func open(path string) bool { return strings.HasPrefix(path, "/health/") }

// guard lets through requests that log in (HTTP basic, as ActiveMQ's
// console) as a user of an admin group, whenever authentication is
// configured. A request without a login is answered 401 with a challenge
// (a browser then asks for one), a wrong password 401, a user who is no
// administrator 403; each refusal is logged and counted.
func (h *Handler) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if crossSite(r) {
			h.info.Log.Warn("refused", "remote", r.RemoteAddr, "path", r.URL.Path, "origin", r.Header.Get("Origin"), "why", "cross-site request")
			reply(w, http.StatusForbidden, map[string]string{"error": "a change asked by another site's page is refused"})
			return
		}
		a := h.info.Auth
		if a == nil || !a.Enabled() || open(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		user, password, ok := r.BasicAuth()
		var status int
		var why string
		switch {
		case !ok:
			status, why = http.StatusUnauthorized, "log in as an administrator (HTTP basic authentication)"
		case a.Authenticate(user, password) != nil:
			status, why = http.StatusUnauthorized, fmt.Sprintf("wrong user name or password for %q", user)
		case !a.IsAdmin(user):
			a.CountRefusal()
			status, why = http.StatusForbidden, fmt.Sprintf("user %q is not in an admin group (auth.adminGroups)", user)
		}
		if status != 0 {
			if !ok {
				// A browser's first request comes without a login: the
				// challenge makes it ask for one.
				a.CountRefusal()
				h.info.Log.Debug("refused", "remote", r.RemoteAddr, "path", r.URL.Path, "why", why)
			} else {
				h.info.Log.Warn("refused", "user", user, "remote", r.RemoteAddr, "path", r.URL.Path, "why", why)
			}
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="hamq", charset="UTF-8"`)
			}
			if strings.HasPrefix(r.URL.Path, "/admin") && status == http.StatusForbidden {
				http.Error(w, why, status)
				return
			}
			reply(w, status, map[string]string{"error": why})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
	})
}

// crossSite reports whether a request that changes something comes from
// another site's page in a browser: a browser would send the console's
// login (HTTP basic, which it keeps) with a form or a fetch of any page,
// and the API is open to anyone on loopback when auth is off. The console
// is same-origin and the commands send no Origin.
func crossSite(r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return false
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s == "cross-site" || s == "same-site" {
		return true
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	return err != nil || u.Host != r.Host
}
