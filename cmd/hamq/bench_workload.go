package main

import (
	"flag"
	"fmt"
	"strings"
)

// benchWorkload is one of the loads brokers are compared on
// (bench/compare.sh workloads): the client behaviour a comparison must
// share, set as if its flags had been given, so that flags given
// explicitly still override it.
type benchWorkload struct {
	name, about string
	flags       [][2]string // flag name, value
}

// benchWorkloads are the loads of the issue that asked for an honest
// benchmark: clients that wait for each confirmation and consumers that
// acknowledge each message, as applications that care about their
// messages do. The counts make a run about 10 s on a 2-core machine.
var benchWorkloads = []benchWorkload{
	{"W1", "STOMP persistent 1 KiB, 4 producers each awaiting every SEND's receipt, 1 consumer acking each message (client-individual, prefetch 1000)",
		[][2]string{{"proto", "stomp"}, {"producers", "4"}, {"consumers", "1"}, {"size", "1024"}, {"persistent", "true"},
			{"window", "1"}, {"ack", "client-individual"}, {"prefetch", "1000"}, {"count", "30000"}}},
	{"W2", "STOMP persistent 1 KiB, 1 producer awaiting every SEND's receipt, 1 consumer acking each message (client-individual, prefetch 1000)",
		[][2]string{{"proto", "stomp"}, {"producers", "1"}, {"consumers", "1"}, {"size", "1024"}, {"persistent", "true"},
			{"window", "1"}, {"ack", "client-individual"}, {"prefetch", "1000"}, {"count", "15000"}}},
	{"W3", "MQTT QoS 1 1 KiB, 4 publishers each awaiting every PUBACK, clean sessions, 1 QoS 1 subscriber (a PUBACK for each message)",
		[][2]string{{"proto", "mqtt"}, {"producers", "4"}, {"consumers", "1"}, {"size", "1024"}, {"qos", "1"},
			{"session", "false"}, {"window", "1"}, {"count", "150000"}}},
	{"W4", "STOMP non-persistent 1 KiB, 4 producers sending without receipts, 1 consumer acking each message (client-individual, prefetch 1000); the rate is the consumer's",
		[][2]string{{"proto", "stomp"}, {"producers", "4"}, {"consumers", "1"}, {"size", "1024"}, {"persistent", "false"},
			{"window", "1"}, {"ack", "client-individual"}, {"prefetch", "1000"}, {"count", "300000"}}},
}

// applyWorkload sets the flags of workload name that the command line
// did not set.
func applyWorkload(fs *flag.FlagSet, name string) error {
	var w *benchWorkload
	var names []string
	for i := range benchWorkloads {
		names = append(names, benchWorkloads[i].name)
		if strings.EqualFold(benchWorkloads[i].name, name) {
			w = &benchWorkloads[i]
		}
	}
	if w == nil {
		return fmt.Errorf("--workload %q: want one of %s", name, strings.Join(names, ", "))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, kv := range w.flags {
		if given[kv[0]] {
			continue
		}
		if err := fs.Set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("workload %s: --%s=%s: %w", w.name, kv[0], kv[1], err)
		}
	}
	return nil
}

func workloadHelp() string {
	var b strings.Builder
	for _, w := range benchWorkloads {
		fmt.Fprintf(&b, "\n  %s  %s", w.name, w.about)
	}
	return b.String()
}
