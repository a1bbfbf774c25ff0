package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hamq/hamq/ha"
	"github.com/hamq/hamq/ha/ensemble"
)

// demoNode is one hamq process of the demo cluster. Its name is its id
// in the cluster (its replication address, as hamq cluster status and
// the console name it); dir names its data directory and log.
type demoNode struct {
	name, dir                           string
	stomp, mqtt, amqp, ws, http, replic string
	secret                              string
	cmd                                 *exec.Cmd
	exited                              chan struct{}
}

func cmdDemo(args []string) error {
	fs := flagSet("demo", "[--dir DIR]", "Starts a three-member ZooKeeper ensemble (Debian's zookeeper package) and a\nthree-node hamq cluster on loopback, prints the client URLs, the failover URL\nand the master, and follows the master as it changes. Ctrl-C stops it all.\nKill the master (its pid is printed) to watch a failover.")
	dir := fs.String("dir", "", "where the ensemble's and the nodes' data and logs go (default: a new temporary directory, removed at the end)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := *dir
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("", "hamq-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(root)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("Starting a 3-member ZooKeeper ensemble in %s ...\n", root)
	zk, err := ensemble.Start(ctx, filepath.Join(root, "zookeeper"), 3)
	if err != nil {
		return err
	}
	defer zk.Close()
	ports, err := demoPorts(18)
	if err != nil {
		return err
	}
	// The nodes share a secret of their own, passed in the environment
	// rather than on command lines that ps shows.
	var key [24]byte
	rand.Read(key[:])
	secret := hex.EncodeToString(key[:])
	var nodes []*demoNode
	defer func() { stopDemoNodes(nodes) }()
	for i := range 3 {
		p := ports[6*i:]
		n := &demoNode{name: p[5], dir: fmt.Sprintf("node%d", i+1), stomp: p[0], mqtt: p[1], amqp: p[2], ws: p[3], http: p[4], replic: p[5], secret: secret}
		if err := n.start(self, root, zk.Connect()); err != nil {
			return err
		}
		nodes = append(nodes, n)
	}
	fmt.Printf("ZooKeeper: %s\n\n", zk.Connect())
	for _, n := range nodes {
		fmt.Printf("node %s (pid %d): stomp tcp://%s  mqtt tcp://%s  amqp amqp://%s  ws ws://%s  console http://%s/admin/  log %s\n",
			n.name, n.cmd.Process.Pid, n.stomp, n.mqtt, n.amqp, n.ws, n.http, filepath.Join(root, n.dir+".log"))
	}
	var stompURLs, stompHosts, mqttHosts, amqpHosts []string
	for _, n := range nodes {
		stompURLs = append(stompURLs, "tcp://"+n.stomp)
		stompHosts = append(stompHosts, fmt.Sprintf("(%q, %s)", "127.0.0.1", port(n.stomp)))
		mqttHosts = append(mqttHosts, n.mqtt)
		amqpHosts = append(amqpHosts, fmt.Sprintf("%q", n.amqp))
	}
	failover := "failover:(" + strings.Join(stompURLs, ",") + ")"
	fmt.Printf("\nFailover URL: %s\n", failover)
	fmt.Printf("  hamq send --url '%s' --body hello\n", failover)
	fmt.Printf("  hamq receive --url '%s'\n", failover)
	fmt.Printf("  hamq cluster status --http http://%s\n", nodes[0].http)
	fmt.Printf("  stomp.py: stomp.Connection([%s])\n", strings.Join(stompHosts, ", "))
	fmt.Printf("  MQTT clients: try %s in turn (only the master accepts)\n", strings.Join(mqttHosts, ", "))
	fmt.Printf("  Qpid Proton: container.connect(urls=[%s])\n\n", strings.Join(amqpHosts, ", "))

	master := ""
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Println("\nStopping the nodes and ZooKeeper ...")
			return nil
		case <-tick.C:
		}
		now := ""
		for _, n := range nodes {
			if st, err := n.status(); err == nil && st.Role == ha.RoleMaster {
				now = n.name
			}
		}
		if now != master {
			if now == "" {
				fmt.Printf("%s  no master: electing ...\n", time.Now().Format("15:04:05.000"))
			} else {
				fmt.Printf("%s  master: node %s\n", time.Now().Format("15:04:05.000"), now)
			}
			master = now
		}
		for _, n := range nodes {
			select {
			case <-n.exited:
				fmt.Printf("%s  node %s exited; restarting it (it rejoins as a slave)\n", time.Now().Format("15:04:05.000"), n.name)
				if err := n.start(self, root, zk.Connect()); err != nil {
					return err
				}
				fmt.Printf("%s  node %s restarted: pid %d\n", time.Now().Format("15:04:05.000"), n.name, n.cmd.Process.Pid)
			default:
			}
		}
	}
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// demoPorts are free loopback ports, so the demo runs beside anything.
func demoPorts(n int) ([]string, error) {
	ports, err := ensemble.FreePorts(n)
	if err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i, p := range ports {
		out[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	return out, nil
}

func (n *demoNode) start(self, root, zk string) error {
	logf, err := os.OpenFile(filepath.Join(root, n.dir+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	n.cmd = exec.Command(self, "start", "--config", os.DevNull, "--data", filepath.Join(root, n.dir),
		"--stomp", n.stomp, "--mqtt", n.mqtt, "--ws", n.ws, "--http", n.http, "--amqp", n.amqp,
		"--zk", zk, "--bind", n.replic, "--replicas", "3", "--broker-name", "demo")
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.cmd.Env = append(os.Environ(), "HAMQ_CLUSTER_SECRET="+n.secret)
	// Ctrl-C goes to the demo, which stops the nodes in order.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		return fmt.Errorf("start node %s: %w", n.name, err)
	}
	n.exited = make(chan struct{})
	go func(c *exec.Cmd, exited chan struct{}) {
		c.Wait()
		close(exited)
	}(n.cmd, n.exited)
	return nil
}

func (n *demoNode) status() (ha.Status, error) {
	var st ha.Status
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + n.http + "/api/cluster")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, errors.New(resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// stopDemoNodes sends SIGTERM to every node and waits for them.
func stopDemoNodes(nodes []*demoNode) {
	for _, n := range nodes {
		n.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, n := range nodes {
		select {
		case <-n.exited:
		case <-time.After(15 * time.Second):
			n.cmd.Process.Kill()
			<-n.exited
		}
	}
}
