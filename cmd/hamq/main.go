// Command hamq is the broker and its tools: start, stop, status, query,
// queues, dstat, browse, purge, send, receive, bench, cluster, demo and
// passwd.
package main

import (
	"fmt"
	"os"
)

const version = "0.1.0"

const usage = `hamq %s: a multi-protocol message broker (STOMP, MQTT, AMQP 1.0, and
STOMP and MQTT over WebSocket), standalone or mastered through ZooKeeper.

Usage: hamq <command> [flags]

Commands:
  start     run the broker in the foreground (standalone; data in ./data)
  stop      stop the broker whose pid file is in the data directory
  status    tell whether that broker is running (exit 0) or not (exit 3)
  query     print a destination's counters: hamq query -QQueue=NAME (wildcards: -QQueue='orders.*')
  queues    print every destination as a table
  dstat     print the destinations' statistics as activemq dstat does
  browse    print a queue's messages without consuming them
  purge     delete a queue's pending messages
  scheduled list the scheduled messages, or cancel one with --cancel JOB
  send      send messages over STOMP
  receive   receive messages over STOMP, printing each as it arrives
  bench     measure send and receive rates and latency over STOMP, MQTT or AMQP
  cluster   hamq cluster status: every node's role, epoch, position and lag
  demo      start a 3-node cluster with its own ZooKeeper ensemble on loopback
  passwd    print the bcrypt hash of a password, for auth.users
  version   print the version

The web console is at http://127.0.0.1:8161/admin/ (the admin API's address).
Commands that log in take --user and --password, or HAMQ_USER and
HAMQ_PASSWORD from the environment; HAMQ_URL and HAMQ_HTTP set the default
broker and admin API.

"hamq <command> -h" describes a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintf(os.Stderr, usage, version)
		os.Exit(2)
	}
	commands := map[string]func([]string) error{
		"start": cmdStart, "stop": cmdStop, "status": cmdStatus, "query": cmdQuery, "queues": cmdQueues,
		"send": cmdSend, "receive": cmdReceive, "bench": cmdBench, "cluster": cmdCluster, "demo": cmdDemo,
		"browse": cmdBrowse, "purge": cmdPurge, "dstat": cmdDstat, "passwd": cmdPasswd, "scheduled": cmdScheduled,
	}
	name := os.Args[1]
	switch name {
	case "-h", "--help", "help":
		fmt.Printf(usage, version)
		return
	case "version", "--version":
		fmt.Println("hamq", version)
		return
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "hamq: unknown command %q\n\n", name)
		fmt.Fprintf(os.Stderr, usage, version)
		os.Exit(2)
	}
	if err := cmd(os.Args[2:]); err != nil {
		var ec exitCode
		if asExit(err, &ec) {
			os.Exit(int(ec))
		}
		fmt.Fprintf(os.Stderr, "hamq %s: %v\n", name, err)
		os.Exit(1)
	}
}
