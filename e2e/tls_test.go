package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testPKI is a throwaway CA, a server certificate it signed for 127.0.0.1
// and localhost, and a client certificate it signed, as PEM files.
type testPKI struct {
	ca, cert, key         string // ca.pem, server.pem, server-key.pem
	clientCert, clientKey string // client.pem, client-key.pem
	pool                  *x509.CertPool
	server                *x509.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	certificate := func(serial int64, name string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	}
	caTmpl := certificate(1, "hamq e2e test CA")
	caTmpl.IsCA, caTmpl.BasicConstraintsValid, caTmpl.KeyUsage = true, true, x509.KeyUsageCertSign|x509.KeyUsageCRLSign
	caDER, _, caKey := issue(t, caTmpl, nil, nil)
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	serverTmpl := certificate(2, "localhost")
	serverTmpl.DNSNames, serverTmpl.IPAddresses = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
	serverTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	der, keyDER, _ := issue(t, serverTmpl, ca, caKey)
	server, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	clientTmpl := certificate(3, "device-1")
	clientTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	clientDER, clientKeyDER, _ := issue(t, clientTmpl, ca, caKey)
	p := testPKI{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "server.pem"),
		key: filepath.Join(dir, "server-key.pem"), clientCert: filepath.Join(dir, "client.pem"),
		clientKey: filepath.Join(dir, "client-key.pem"), pool: x509.NewCertPool(), server: server}
	p.pool.AddCert(ca)
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{p.ca, "CERTIFICATE", caDER}, {p.cert, "CERTIFICATE", der}, {p.key, "PRIVATE KEY", keyDER},
		{p.clientCert, "CERTIFICATE", clientDER}, {p.clientKey, "PRIVATE KEY", clientKeyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// issue makes a key and the certificate of tmpl for it, signed by parent
// with parentKey, or self-signed when parent is nil.
func issue(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (certDER, keyDER []byte, key *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	if certDER, err = x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey); err != nil {
		t.Fatal(err)
	}
	if keyDER, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
		t.Fatal(err)
	}
	return certDER, keyDER, key
}

// startTLSNode starts a standalone node with TLS listeners of every client
// protocol on free ports, configured in a file as users would (tlsLines
// are more keys of its tls section), and waits for them to take
// connections. It returns the TLS addresses by protocol.
func startTLSNode(t *testing.T, p testPKI, tlsLines ...string) (*node, map[string]string) {
	t.Helper()
	addrs := map[string]string{"stomp": freePort(t), "mqtt": freePort(t), "amqp": freePort(t), "ws": freePort(t)}
	cfg := fmt.Sprintf("tls:\n  certFile: %s\n  keyFile: %s\n", strconv.Quote(p.cert), strconv.Quote(p.key))
	for _, l := range tlsLines {
		cfg += "  " + l + "\n"
	}
	for _, proto := range []string{"stomp", "mqtt", "amqp", "ws"} {
		cfg += fmt.Sprintf("%s:\n  tlsAddress: %s\n", proto, addrs[proto])
	}
	path := filepath.Join(t.TempDir(), "hamq.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n := newNode(t)
	n.extra = []string{"--config", path}
	n.start()
	waitFor(t, "TLS listeners", func() bool {
		for _, a := range addrs {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				return false
			}
			c.Close()
		}
		return true
	})
	return n, addrs
}

func tlsDial(addr string, cfg *tls.Config) (*tls.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
}

// mqttConnect is an MQTT 3.1.1 CONNECT, clean session, client id "plain".
var mqttConnect = []byte{0x10, 17, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 5, 'p', 'l', 'a', 'i', 'n'}

// plainMQTTConnect writes a plaintext CONNECT to addr and returns what came
// back until the broker closed the connection; closed is false when it
// was still open after 5s.
func plainMQTTConnect(t *testing.T, addr string, untilConnack bool) (got []byte, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(mqttConnect); err != nil {
		t.Fatalf("writing CONNECT to %s: %v", addr, err)
	}
	buf := make([]byte, 512)
	for {
		k, err := c.Read(buf)
		got = append(got, buf[:k]...)
		if untilConnack && len(got) >= 4 {
			return got, false
		}
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			return got, false
		default: // EOF or reset: the broker closed it
			return got, true
		}
	}
}

// TestTLSListeners: with tls.certFile/keyFile and a tlsAddress per
// protocol, each TLS port serves its protocol to real clients that verify
// the certificate against the CA (mosquitto, stomp.py, Proton, a Go wss
// client), while a plaintext client and a client that does not trust the
// CA are refused.
func TestTLSListeners(t *testing.T) {
	pub := tool(t, "mosquitto_pub", "mosquitto-clients")
	sub := tool(t, "mosquitto_sub", "mosquitto-clients")
	needPython(t, "stomp")
	needPython(t, "proton")
	p := newTestPKI(t)
	n, tlsAddr := startTLSNode(t, p)

	// Each TLS port presents our certificate, verified by the CA for both
	// of its names, at TLS 1.2 or later.
	for proto, addr := range tlsAddr {
		for _, name := range []string{"127.0.0.1", "localhost"} {
			c, err := tlsDial(addr, &tls.Config{RootCAs: p.pool, ServerName: name})
			if err != nil {
				t.Fatalf("%s TLS port %s, verifying %s against the CA: %v", proto, addr, name, err)
			}
			st := c.ConnectionState()
			c.Close()
			if st.Version < tls.VersionTLS12 {
				t.Errorf("%s TLS port: negotiated %s", proto, tls.VersionName(st.Version))
			}
			if len(st.PeerCertificates) == 0 || !st.PeerCertificates[0].Equal(p.server) {
				t.Errorf("%s TLS port does not present server.pem", proto)
			}
		}
	}

	// Bad input first; the good exchanges below then show that the
	// listeners kept working.
	for proto, addr := range tlsAddr {
		// A client that does not trust the CA fails its handshake.
		c, err := tlsDial(addr, &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "127.0.0.1"})
		if err == nil {
			c.Close()
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("%s TLS port, client with an empty root pool: got %v, want an unknown authority error", proto, err)
		}
		// Nor does one that offers no more than TLS 1.1.
		if c, err := tlsDial(addr, &tls.Config{RootCAs: p.pool, ServerName: "127.0.0.1",
			MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
			t.Errorf("%s TLS port accepted %s", proto, tls.VersionName(c.ConnectionState().Version))
			c.Close()
		}
	}
	// The same plaintext CONNECT that gets a CONNACK on the plain port gets
	// the TLS port's connection closed, with no CONNACK.
	if got, _ := plainMQTTConnect(t, n.mqtt, true); len(got) < 4 || got[0] != 0x20 || got[1] != 2 || got[3] != 0 {
		t.Fatalf("plain MQTT port answered CONNECT with % x, want a CONNACK accepting it", got)
	}
	got, closed := plainMQTTConnect(t, tlsAddr["mqtt"], false)
	if len(got) > 0 && got[0] == 0x20 {
		t.Errorf("MQTT TLS port answered a plaintext CONNECT with % x", got)
	}
	if !closed {
		t.Errorf("MQTT TLS port left a plaintext client's connection open for 5s (got % x)", got)
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Run("mosquitto", func(t *testing.T) { mosquittoOverTLS(t, n, sub, pub, p, tlsAddr["mqtt"]) })
	t.Run("stomp.py-to-proton", func(t *testing.T) { stompToProtonOverTLS(t, p, tlsAddr["stomp"], tlsAddr["amqp"]) })
	t.Run("wss", func(t *testing.T) { stompOverWSS(t, p, tlsAddr["ws"]) })
}

// mosquittoOverTLS: mosquitto_sub subscribed over TLS gets what
// mosquitto_pub publishes over TLS, both verifying against ca.pem.
func mosquittoOverTLS(t *testing.T, n *node, sub, pub string, p testPKI, addr string) {
	host, port := hostPort(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tlsArgs := []string{"-h", host, "-p", port, "--cafile", p.ca}
	// mosquitto_sub buffers its output when it is not a terminal, so its
	// subscription is seen in the admin API rather than on its stdout.
	s := exec.CommandContext(ctx, sub, append(tlsArgs, "-v", "-i", "tls-sub", "-q", "1", "-t", "tls/e2e", "-C", "1", "-W", "10")...)
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.Wait() }()
	deadline := time.After(10 * time.Second)
	for subscriptions(t, n, func(c connJSON) bool { return c.ClientID == "mqtt:tls-sub" }) != 1 {
		select {
		case err := <-exited:
			t.Fatalf("mosquitto_sub over TLS ended before subscribing: %v\n%s%s", err, stdout.String(), stderr.String())
		case <-deadline:
			t.Fatal("mosquitto_sub over TLS did not subscribe within 10s")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if o, err := exec.CommandContext(ctx, pub, append(tlsArgs, "-i", "tls-pub", "-q", "1", "-t", "tls/e2e", "-m", "hello-over-tls")...).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub over TLS: %v %s", err, o)
	}
	if err := <-exited; err != nil {
		t.Fatalf("mosquitto_sub over TLS: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != "tls/e2e hello-over-tls" {
		t.Fatalf("mosquitto_sub over TLS printed %q", got)
	}
}

// stompToProtonOverTLS: what stomp.py sends over TLS to /queue/tls.e2e,
// receipted, Proton receives over amqps from queue://tls.e2e, in order.
// Proton connects to 127.0.0.1 and verifies the name localhost: it
// matches DNS names only.
func stompToProtonOverTLS(t *testing.T, p testPKI, stompAddr, amqpAddr string) {
	host, port := hostPort(t, stompAddr)
	confirmed := 0
	script(t, context.Background(), "stomp_send.py", func(l string) bool {
		if strings.HasPrefix(l, "confirmed ") {
			confirmed++
		}
		return true
	}, host, port, "/queue/tls.e2e", "3", p.ca)
	if confirmed != 3 {
		t.Fatalf("%d of 3 stomp.py sends over TLS confirmed", confirmed)
	}
	host, port = hostPort(t, amqpAddr)
	var got []string
	script(t, context.Background(), "amqp_receive.py", func(l string) bool {
		if g, ok := strings.CutPrefix(l, "got "); ok {
			got = append(got, g)
		}
		return true
	}, host, port, "queue://tls.e2e", "5", "--count", "3", "--cafile", p.ca, "--tls-name", "localhost")
	wantLines(t, "Proton over amqps", got, "bytes msg-0000", "bytes msg-0001", "bytes msg-0002")
}

// stompOverWSS: a WebSocket upgrade over TLS (v12.stomp) is answered 101,
// and STOMP runs on it: CONNECTED, a receipted SUBSCRIBE, and a SEND that
// comes back as a MESSAGE.
func stompOverWSS(t *testing.T, p testPKI, addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool}}}
	c, resp, err := websocket.Dial(ctx, "wss://"+addr+"/", &websocket.DialOptions{HTTPClient: client, Subprotocols: []string{"v12.stomp"}})
	if err != nil {
		t.Fatalf("wss upgrade: %v", err)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols || c.Subprotocol() != "v12.stomp" {
		t.Fatalf("wss upgrade: status %d, subprotocol %q", resp.StatusCode, c.Subprotocol())
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 || !resp.TLS.PeerCertificates[0].Equal(p.server) {
		t.Fatal("wss upgrade not answered over TLS with server.pem")
	}
	exchange := func(frame, want string) string {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
			t.Fatalf("wss write: %v", err)
		}
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("wss read, after %q: %v", strings.SplitN(frame, "\n", 2)[0], err)
		}
		if !strings.HasPrefix(string(b), want+"\n") {
			t.Fatalf("over wss, %q was answered %q, want %s", strings.SplitN(frame, "\n", 2)[0], b, want)
		}
		return string(b)
	}
	exchange("CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\x00", "CONNECTED")
	exchange("SUBSCRIBE\nid:1\ndestination:/queue/tls.wss\nreceipt:s1\n\n\x00", "RECEIPT")
	m := exchange("SEND\ndestination:/queue/tls.wss\n\nhello-over-wss\x00", "MESSAGE")
	if !strings.HasSuffix(strings.TrimRight(m, "\n"), "\n\nhello-over-wss\x00") {
		t.Fatalf("over wss, got %q", m)
	}
}

// TestTLSClientCertificates: with tls.clientCAFile, a client presenting a
// certificate the CA signed is served and one presenting none is refused.
func TestTLSClientCertificates(t *testing.T) {
	pub := tool(t, "mosquitto_pub", "mosquitto-clients")
	p := newTestPKI(t)
	_, tlsAddr := startTLSNode(t, p, "clientCAFile: "+strconv.Quote(p.ca))
	host, port := hostPort(t, tlsAddr["mqtt"])
	publish := func(extra ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		args := append([]string{"-h", host, "-p", port, "--cafile", p.ca, "-q", "1", "-t", "mtls/x", "-m", "hi"}, extra...)
		return exec.CommandContext(ctx, pub, args...).CombinedOutput()
	}
	if out, err := publish(); err == nil {
		t.Fatalf("mosquitto_pub without a client certificate was served: %s", out)
	}
	if out, err := publish("--cert", p.clientCert, "--key", p.clientKey); err != nil {
		t.Fatalf("mosquitto_pub with the CA's client certificate: %v %s", err, out)
	}
	// Every TLS port asks for it: a Go client without one is refused at
	// its first read (TLS 1.3 clients learn it after the handshake).
	for proto, addr := range tlsAddr {
		c, err := tlsDial(addr, &tls.Config{RootCAs: p.pool, ServerName: "127.0.0.1"})
		if err == nil {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		if err == nil || strings.Contains(err.Error(), "timeout") {
			t.Errorf("%s TLS port served a client without a certificate (%v)", proto, err)
		}
	}
}
