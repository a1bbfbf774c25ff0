package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hamq/hamq/cmd/hamq/internal/admin"
)

const defaultHTTP = "http://127.0.0.1:8161"

// adminAPI is a broker's admin API as the commands use it, logged in
// when they were given a user.
type adminAPI struct {
	base    string
	login   creds
	timeout time.Duration
}

// httpFlags adds --http, --user and --password to fs; call api after
// parsing.
func httpFlags(fs *flag.FlagSet, what string) func() adminAPI {
	def := os.Getenv("HAMQ_HTTP")
	if def == "" {
		def = defaultHTTP
	}
	base := fs.String("http", def, what+" (default $HAMQ_HTTP, else "+defaultHTTP+")")
	cr := credFlags(fs)
	return func() adminAPI {
		return adminAPI{base: strings.TrimSuffix(*base, "/"), login: cr.fill(), timeout: 10 * time.Second}
	}
}

// call sends a request and decodes a JSON answer into v (when not nil);
// an error answer is returned in the API's words.
func (a adminAPI) call(method, path string, body []byte, v any) error {
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	a.login.authorize(req)
	resp, err := (&http.Client{Timeout: a.timeout}).Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w (is hamq running? --http names its address)", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized {
			hint = " (--user and --password, or HAMQ_USER and HAMQ_PASSWORD, log in)"
		}
		return fmt.Errorf("admin API %s %s: %s: %s%s", method, path, resp.Status, e.Error, hint)
	}
	if v == nil || len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, v)
}

func (a adminAPI) get(path string, v any) error { return a.call(http.MethodGet, path, nil, v) }

// getJSON reads one admin API resource, logged in as the environment
// says (HAMQ_USER, HAMQ_PASSWORD).
func getJSON(base, path string, v any) error {
	return adminAPI{base: strings.TrimSuffix(base, "/"), login: envCreds(), timeout: 10 * time.Second}.get(path, v)
}

func cmdQuery(args []string) error {
	fs := flagSet("query", "-QQueue=NAME | -QTopic=NAME [--http URL]",
		"Prints a destination's counters one per line, as activemq query does:\n  hamq query -QQueue=orders | grep EnqueueCount\nNAME may hold wildcards: * any characters, ? one (-QQueue='orders.*'); each\ndestination that matches is printed, separated by a blank line.")
	queue := fs.String("QQueue", "", "queue name or pattern")
	topic := fs.String("QTopic", "", "topic name or pattern")
	api := httpFlags(fs, "admin API of the broker")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	kind, pattern := "", ""
	switch {
	case *queue != "" && *topic == "":
		kind, pattern = "queue", *queue
	case *topic != "" && *queue == "":
		kind, pattern = "topic", *topic
	default:
		fs.Usage()
		return exitCode(2)
	}
	var ds []admin.DestJSON
	if !strings.ContainsAny(pattern, "*?") {
		var d admin.DestJSON
		if err := api().get("/api/"+kind+"s/"+url.PathEscape(pattern), &d); err != nil {
			return err
		}
		ds = append(ds, d)
	} else {
		var all []admin.DestJSON
		if err := api().get("/api/destinations", &all); err != nil {
			return err
		}
		for _, d := range all {
			if d.Type == kind && glob(pattern, d.Name) {
				ds = append(ds, d)
			}
		}
		if len(ds) == 0 {
			return fmt.Errorf("no %s matches %q", kind, pattern)
		}
	}
	for i, d := range ds {
		if i > 0 {
			fmt.Println()
		}
		fmt.Printf("Name = %s\nQueueSize = %d\nEnqueueCount = %d\nDequeueCount = %d\nConsumerCount = %d\nDeadLetterCount = %d\nExpiredCount = %d\nDroppedCount = %d\nMemoryUsage = %d\nMemoryPercentUsage = %d\n",
			d.Name, d.Size, d.Enqueued, d.Dequeued, d.Consumers, d.DeadLettered, d.Expired, d.Dropped, d.MemoryBytes, memoryPercent(d))
	}
	return nil
}

func memoryPercent(d admin.DestJSON) int64 {
	if d.MemoryLimit <= 0 {
		return 0
	}
	return d.MemoryBytes * 100 / d.MemoryLimit
}

// glob matches a name against a pattern of * (any characters, dots
// included, as in activemq query) and ? (one character).
func glob(pattern, name string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(name); i >= 0; i-- {
				if glob(pattern[1:], name[i:]) {
					return true
				}
			}
			return false
		case '?':
			if name == "" {
				return false
			}
			name = name[1:]
		default:
			if name == "" || name[0] != pattern[0] {
				return false
			}
			name = name[1:]
		}
		pattern = pattern[1:]
	}
	return name == ""
}

func cmdQueues(args []string) error {
	fs := flagSet("queues", "[--http URL]", "Prints every destination with its counters as a table.")
	api := httpFlags(fs, "admin API of the broker")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	var ds []admin.DestJSON
	if err := api().get("/api/destinations", &ds); err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TYPE\tNAME\tSIZE\tENQUEUED\tDEQUEUED\tCONSUMERS\tDLQ\tEXPIRED")
	for _, d := range ds {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", d.Type, d.Name, d.Size, d.Enqueued, d.Dequeued, d.Consumers, d.DeadLettered, d.Expired)
	}
	return w.Flush()
}
