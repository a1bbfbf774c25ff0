package zkensemble

import (
	"fmt"
	"net"
)

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment
// ago. All n listeners are held open together so that the kernel hands
// out distinct ports; they are closed before the members bind them, so
// another process can take one in between. Start detects that from the
// member's BindException and starts over with new ports.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("zkensemble: free port: %w", err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
