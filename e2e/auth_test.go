package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hamq/hamq/core"
)

// Passwords of the users authConfig makes.
const (
	adminPassword = "admin-pw"
	alicePassword = "alice-pw"
	bobPassword   = "bob-pw"
)

// authConfig writes a configuration with authentication and
// authorization on, as the README's example: admin administers, alice
// (producers) writes orders and sensors, bob (consumers) reads them;
// extra is appended (more sections).
func authConfig(t *testing.T, extra string) string {
	t.Helper()
	hash, err := core.HashPassword(adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	text := `auth:
  anonymous: false
  users:
    - name: admin
      password: "` + hash + `"
      groups: [admins]
    - name: alice
      password: ` + alicePassword + `
      groups: [producers]
    - name: bob
      password: ` + bobPassword + `
      groups: consumers
  authorization:
    - queue: ">"
      read: admins
      write: admins
      admin: admins
    - topic: ">"
      read: admins
      write: admins
      admin: admins
    - queue: "orders.>"
      read: consumers
      write: producers
      admin: producers, consumers
    - topic: "sensors.>"
      read: consumers
      write: producers
      admin: producers, consumers
` + extra
	p := filepath.Join(t.TempDir(), "hamq.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startAuthNode starts a broker with authConfig.
func startAuthNode(t *testing.T, extra string) *node {
	t.Helper()
	n := newNode(t)
	n.extra = []string{"--config", authConfig(t, extra)}
	n.start()
	return n
}

// outcomes runs a testdata script to its end and returns its lines by their
// first word.
func outcomes(t *testing.T, name string, args ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	script(t, context.Background(), name, func(l string) bool {
		k, v, _ := strings.Cut(l, " ")
		got[k] = v
		return true
	}, args...)
	return got
}

func expect(t *testing.T, got map[string]string, key, want string) {
	t.Helper()
	if v, ok := got[key]; !ok || !strings.Contains(v, want) {
		t.Errorf("%s: got %q, want it to hold %q (all: %q)", key, v, want, got)
	}
}

// TestAuthorizationSTOMP: stomp.py's wrong password is refused; a send
// without a grant is an ERROR that ends that connection, as STOMP has it,
// and another client goes on.
func TestAuthorizationSTOMP(t *testing.T) {
	needPython(t, "stomp")
	n := startAuthNode(t, "")
	h, p := hostPort(t, n.stomp)
	got := outcomes(t, "auth_stomp.py", h, p)
	expect(t, got, "login-refused", `wrong user name or password for "alice"`)
	expect(t, got, "connected", "")
	expect(t, got, "alice-sent", "")
	expect(t, got, "bob-got", "order-1")
	expect(t, got, "bob-send-refused", `not authorized: user "bob" may not write to queue://orders.eu`)
	expect(t, got, "bob-disconnected", "")
	expect(t, got, "alice-sent-again", "")
	expect(t, got, "alice-subscribe-refused", `user "alice" may not read from queue://payroll`)
	checkRefusalsCounted(t, n, map[string]int{"login": 1, "read": 1, "write": 1})
	if !strings.Contains(n.log.String(), `msg=refused`) {
		t.Errorf("the refusals are not logged:\n%s", n.log)
	}
}

// TestAuthorizationMQTT: paho's wrong password gets CONNACK not
// authorized (3.1.1's 5; MQTT 5's more precise 0x86, bad user name or
// password, as mochi answers); MQTT 5 refusals are SUBACK and PUBACK 0x87, 3.1.1's a SUBACK
// 0x80 and a closed connection; other clients go on.
func TestAuthorizationMQTT(t *testing.T) {
	needPython(t, "paho.mqtt.client")
	n := startAuthNode(t, "")
	h, p := hostPort(t, n.mqtt)
	got := map[string]string{}
	script(t, context.Background(), "auth_mqtt.py", func(l string) bool {
		f := strings.Fields(l)
		key := f[0]
		if key == "connack-wrong-password" {
			key += "-" + f[1]
			f = f[1:]
		}
		got[key] = strings.Join(f[1:], " ")
		return true
	}, h, p)
	expect(t, got, "connack-wrong-password-v5", "134") // 0x86 bad user name or password
	expect(t, got, "connack-wrong-password-v3", "5")   // not authorized
	expect(t, got, "connack", "0 0")
	expect(t, got, "bob-suback", "1")
	expect(t, got, "alice-suback", "135")
	expect(t, got, "alice-puback", "0")
	expect(t, got, "bob-got", "21.5")
	expect(t, got, "bob-puback", "135")
	expect(t, got, "alice-puback-payroll", "135")
	expect(t, got, "alice-puback-again", "0")
	expect(t, got, "bob-got-again", "19.0 closed=False")
	expect(t, got, "v3-connack", "0")
	expect(t, got, "v3-suback", "128")
	expect(t, got, "v3-publish-closed", "True")
	expect(t, got, "alice-closed", "False")
	checkRefusalsCounted(t, n, map[string]int{"login": 2, "write": 3})
}

// TestAuthorizationAMQP: Qpid Proton's wrong password fails SASL; a link
// without a grant is refused with amqp:unauthorized-access, and the
// connection's other links go on.
func TestAuthorizationAMQP(t *testing.T) {
	needPython(t, "proton")
	n := startAuthNode(t, "")
	h, p := hostPort(t, n.amqp)
	got := outcomes(t, "auth_amqp.py", h, p)
	expect(t, got, "login-refused", "amqp:unauthorized-access', 'Authentication failed")
	expect(t, got, "alice-sent", "")
	expect(t, got, "payroll-sender-refused", `amqp:unauthorized-access not authorized: user "alice" may not write to queue://payroll`)
	expect(t, got, "alice-sent-again", "")
	expect(t, got, "payroll-receiver-refused", `amqp:unauthorized-access not authorized: user "bob" may not read from queue://payroll`)
	expect(t, got, "bob-got", "order-1,order-2")
	checkRefusalsCounted(t, n, map[string]int{"login": 1, "read": 1, "write": 1})
}

// checkRefusalsCounted reads hamq_auth_refused_total from /metrics, as
// the administrator.
func checkRefusalsCounted(t *testing.T, n *node, atLeast map[string]int) {
	t.Helper()
	_, body := adminRead(t, n, "/metrics")
	for what, min := range atLeast {
		var v int
		for _, l := range strings.Split(string(body), "\n") {
			if rest, ok := strings.CutPrefix(l, `hamq_auth_refused_total{refused="`+what+`"} `); ok {
				json.Unmarshal([]byte(rest), &v)
			}
		}
		if v < min {
			t.Errorf("hamq_auth_refused_total{refused=%q} is %d, want at least %d", what, v, min)
		}
	}
}

// TestAdminAPIAndConsoleNeedAnAdministrator: with authentication on, the
// admin API and the console refuse anonymous requests (401, with a
// challenge a browser answers) and users who are not administrators (403);
// an anonymous POST of a message changes nothing. /health/ stays open for
// load balancers.
func TestAdminAPIAndConsoleNeedAnAdministrator(t *testing.T) {
	n := startAuthNode(t, "")
	base := "http://" + n.http
	call := func(method, path, user, password string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader("hello"))
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s %s: 401 without a Basic challenge", method, path)
		}
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		method, path, user, password string
		want                         int
	}{
		{"POST", "/api/queues/q1/messages", "", "", 401},
		{"POST", "/api/queues/q1/messages", "alice", alicePassword, 403},
		{"POST", "/api/queues/q1/messages", "admin", "wrong", 401},
		{"GET", "/api/broker", "", "", 401},
		{"GET", "/api/destinations", "bob", bobPassword, 403},
		{"GET", "/admin/", "", "", 401},
		{"GET", "/admin/", "alice", alicePassword, 403},
		{"GET", "/metrics", "", "", 401},
		{"GET", "/debug/pprof/", "bob", bobPassword, 403},
		{"GET", "/health/live", "", "", 200},
		{"GET", "/health/master", "", "", 200},
		{"GET", "/admin/", "admin", adminPassword, 200},
		{"GET", "/api/queues/q1", "admin", adminPassword, 404}, // the refused POSTs made nothing
		{"POST", "/api/queues/q1/messages", "admin", adminPassword, 201},
	} {
		if got, body := call(tc.method, tc.path, tc.user, tc.password); got != tc.want {
			t.Errorf("%s %s as %q: %d %s, want %d", tc.method, tc.path, tc.user, got, body, tc.want)
		}
	}
	if _, body := call("GET", "/admin/", "alice", alicePassword); !strings.Contains(body, "not in an admin group") {
		t.Errorf("the console's refusal of alice: %q", body)
	}
	checkRefusalsCounted(t, n, map[string]int{"login": 6})
}

// TestUsersFileReadAgain: a users file is read again when it changes; a
// new user can log in at once, and a mistake in the file keeps the users
// before it.
func TestUsersFileReadAgain(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users.yaml")
	os.WriteFile(users, []byte("users:\n  - carol:carol-pw\n"), 0o600)
	cfg := authConfig(t, "")
	text, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(text), "  anonymous: false\n", "  anonymous: false\n  usersFile: "+users+"\n", 1)), 0o600)
	n := newNode(t)
	n.extra = []string{"--config", cfg}
	n.start()
	send := func(user, password string) (string, int) {
		return hamq(t, "send", "--url=tcp://"+n.stomp, "--user", user, "--password", password, "--destination", "/queue/orders.x", "--body", "x")
	}
	if out, code := send("dave", "dave-pw"); code == 0 {
		t.Fatalf("dave, not a user yet, could send: %s", out)
	}
	os.WriteFile(users, []byte("users:\n  - carol:carol-pw\n  - name: dave\n    password: dave-pw\n    groups: [producers]\n"), 0o600)
	waitFor(t, "dave's login", func() bool { _, code := send("dave", "dave-pw"); return code == 0 })
	os.WriteFile(users, []byte("users:\n  - dave\n"), 0o600)
	waitFor(t, "the mistake reported", func() bool { return strings.Contains(n.log.String(), "the users file has a mistake") })
	if !strings.Contains(n.log.String(), users+":2: users: want entries of the form name:password") {
		t.Errorf("the mistake is not reported with its file and line:\n%s", n.log)
	}
	if out, code := send("dave", "dave-pw"); code != 0 {
		t.Errorf("a users file with a mistake dropped dave: %s", out)
	}
}
