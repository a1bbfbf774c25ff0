// Package rawconn is what the front-ends' fuzz targets and bad-input tests
// share: one connection that sends raw bytes and collects all the server
// answers. It is for tests only, as net/http/internal/testcert is, and
// lives outside a _test file because tests of two packages use it.
package rawconn

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// Exchange writes data to a new connection to addr, half-closes it if
// asked to (a client that ends with DISCONNECT waits for the server to
// close instead) and returns all the server wrote until it closed the
// connection. A server that keeps it open 10 s fails the test.
func Exchange(t testing.TB, addr string, data []byte, halfClose bool) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		c.Write(data) // fails once the server has closed the connection, which the read sees
		if halfClose {
			c.(*net.TCPConn).CloseWrite()
		}
	}()
	out, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open 10 s after the client's last byte; it wrote %q", out)
	}
	return out
}
