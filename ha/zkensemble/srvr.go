package zkensemble

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// probeMode asks the member at addr for its role with the srvr
// four-letter command. A member answers srvr as soon as its client port is
// open, but prints a Mode line only once it serves: as leader or follower
// of an established quorum, or standalone. That line is what "ready"
// means here, since a client can use the ensemble from then on.
func probeMode(ctx context.Context, addr string) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	deadline := time.Now().Add(2 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	c.SetDeadline(deadline)
	if _, err := c.Write([]byte("srvr")); err != nil {
		return "", err
	}
	var first string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		if mode, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(mode), nil
		}
		if first == "" {
			first = line
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	// Typically "This ZooKeeper instance is not currently serving
	// requests" while an election is under way.
	return "", fmt.Errorf("srvr: no Mode line (%q)", first)
}
