package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/hamq/hamq/cmd/hamq/internal/admin"
)

const defaultHTTP = "http://127.0.0.1:8161"

// getJSON reads one admin API resource.
func getJSON(base, path string, v any) error { return getJSONWithin(10*time.Second, base, path, v) }

func getJSONWithin(timeout time.Duration, base, path string, v any) error {
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(base + path)
	if err != nil {
		return fmt.Errorf("admin API: %w (is hamq running? --http names its address)", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("admin API %s: %s: %s", path, resp.Status, e.Error)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func cmdQuery(args []string) error {
	fs := flagSet("query", "-QQueue=NAME | -QTopic=NAME [--http URL]",
		"Prints a destination's counters one per line, as activemq query does:\n  hamq query -QQueue=orders | grep EnqueueCount")
	queue := fs.String("QQueue", "", "queue name")
	topic := fs.String("QTopic", "", "topic name")
	base := fs.String("http", defaultHTTP, "admin API of the broker")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	var path string
	switch {
	case *queue != "" && *topic == "":
		path = "/api/queues/" + url.PathEscape(*queue)
	case *topic != "" && *queue == "":
		path = "/api/topics/" + url.PathEscape(*topic)
	default:
		fs.Usage()
		return exitCode(2)
	}
	var d admin.DestJSON
	if err := getJSON(*base, path, &d); err != nil {
		return err
	}
	fmt.Printf("Name = %s\nQueueSize = %d\nEnqueueCount = %d\nDequeueCount = %d\nConsumerCount = %d\nDeadLetterCount = %d\nExpiredCount = %d\nDroppedCount = %d\nMemoryUsage = %d\n",
		d.Name, d.Size, d.Enqueued, d.Dequeued, d.Consumers, d.DeadLettered, d.Expired, d.Dropped, d.MemoryBytes)
	return nil
}

func cmdQueues(args []string) error {
	fs := flagSet("queues", "[--http URL]", "Prints every destination with its counters as a table.")
	base := fs.String("http", defaultHTTP, "admin API of the broker")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	var ds []admin.DestJSON
	if err := getJSON(*base, "/api/destinations", &ds); err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TYPE\tNAME\tSIZE\tENQUEUED\tDEQUEUED\tCONSUMERS\tDLQ\tEXPIRED")
	for _, d := range ds {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", d.Type, d.Name, d.Size, d.Enqueued, d.Dequeued, d.Consumers, d.DeadLettered, d.Expired)
	}
	return w.Flush()
}
