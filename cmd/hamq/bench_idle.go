package main

import (
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// benchIdle opens n MQTT connections that stay idle (keep-alive off) and
// reports the broker's resident memory before and after holding them for
// hold, and the CPU it used meanwhile, from its admin API.
func benchIdle(url, adminURL string, n int, hold time.Duration) error {
	addr := strings.TrimPrefix(url, "tcp://")
	var before brokerMemory
	if err := getJSON(adminURL, "/api/broker", &before); err != nil {
		return err
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Write(connectPacket(fmt.Sprintf("hamq-idle-%d", i))); err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		ack := make([]byte, 4)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
			return fmt.Errorf("connection %d: no CONNACK accepting it (%x, %v); is mqtt.maxConnections at least %d?", i, ack, err, n)
		}
	}
	took := time.Since(start)
	var held, b brokerMemory
	if err := getJSON(adminURL, "/api/broker", &held); err != nil {
		return err
	}
	time.Sleep(hold)
	if err := getJSON(adminURL, "/api/broker", &b); err != nil {
		return err
	}
	fmt.Printf("hamq bench: %d idle MQTT connections opened in %s, held %s\n", n, took.Round(time.Millisecond), hold)
	fmt.Printf("broker RSS: %.1f MiB before, %.1f MiB with them (%.1f KiB per connection)\n",
		float64(before.RSS)/(1<<20), float64(b.RSS)/(1<<20), float64(b.RSS-before.RSS)/1024/float64(n))
	fmt.Printf("of which Go heap in use %.1f MiB, goroutine stacks %.1f MiB (%d goroutines); GOGC %d\n",
		float64(b.Memory.Heap)/(1<<20), float64(b.Memory.Stack)/(1<<20), b.Goroutines, b.Memory.GCPercent)
	cpu := b.CPU - held.CPU
	fmt.Printf("broker CPU while held: %.2f s, %.1f%% of a core\n", cpu, 100*cpu/hold.Seconds())
	return nil
}

type brokerMemory struct {
	RSS        int64   `json:"rssBytes"`
	CPU        float64 `json:"cpuSeconds"`
	Goroutines int     `json:"goroutines"`
	Memory     struct {
		Heap      int64 `json:"heapInUseBytes"`
		Stack     int64 `json:"stackBytes"`
		GCPercent int   `json:"gcPercent"`
	} `json:"memory"`
}

// connectPacket is an MQTT 3.1.1 CONNECT with a clean session and no
// keep-alive, so the broker never times the connection out.
func connectPacket(clientID string) []byte {
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0, byte(len(clientID) >> 8), byte(len(clientID))}
	body = append(body, clientID...)
	return append([]byte{0x10, byte(len(body))}, body...)
}
