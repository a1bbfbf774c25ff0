package main

import (
	"bufio"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/hamq/hamq/cmd/hamq/internal/admin"
	"github.com/hamq/hamq/core"
)

// positional parses fs with its flags before or after the positional
// arguments (hamq browse orders --limit 5), which it returns.
func positional(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func cmdBrowse(args []string) error {
	fs := flagSet("browse", "QUEUE [flags]",
		"Prints a queue's messages without consuming them, as activemq browse does: the\npending ones in the order they would be dispatched, then those delivered and not\nyet acknowledged. Text bodies are printed as text, others in hex.")
	api := httpFlags(fs, "admin API of the broker")
	offset := fs.Int("offset", 0, "skip this many messages")
	limit := fs.Int("limit", 100, "print at most this many (at most 1000)")
	bodies := fs.Bool("body-only", false, "print only each body, on a line of its own")
	pos, err := positional(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitCode(2)
	}
	name := strings.TrimPrefix(strings.TrimPrefix(pos[0], "/queue/"), "queue://")
	var p admin.PageJSON
	if err := api().get(fmt.Sprintf("/api/queues/%s/messages?offset=%d&limit=%d", url.PathEscape(name), *offset, *limit), &p); err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for i, m := range p.Messages {
		if *bodies {
			fmt.Fprintln(w, m.Body)
			continue
		}
		printMessage(w, p.Offset+i+1, p.Total, m)
	}
	if !*bodies {
		shown := ""
		if len(p.Messages) > 0 {
			shown = fmt.Sprintf("; %d to %d shown", p.Offset+1, p.Offset+len(p.Messages))
		}
		fmt.Fprintf(w, "%s: %d pending, %d delivered and not yet acknowledged%s\n", name, p.Pending, p.Delivered, shown)
	}
	return nil
}

func printMessage(w *bufio.Writer, n, total int, m admin.MessageJSON) {
	fmt.Fprintf(w, "Message %d of %d (%s)\n", n, total, m.State)
	field := func(k string, v any) {
		if s := fmt.Sprint(v); s != "" {
			fmt.Fprintf(w, "  %-16s %s\n", k+":", s)
		}
	}
	field("id", m.ID)
	field("destination", m.Destination)
	field("persistent", m.Persistent)
	field("priority", m.Priority)
	field("timestamp", m.Timestamp)
	field("expiration", m.Expiration)
	field("redelivered", fmt.Sprintf("%t (delivery count %d)", m.Redelivered, m.DeliveryCount))
	field("correlation-id", m.CorrelationID)
	field("reply-to", m.ReplyTo)
	field("content-type", m.ContentType)
	field("type", m.Type)
	keys := make([]string, 0, len(m.Properties))
	for k := range m.Properties {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field(k, m.Properties[k])
	}
	kind := "text"
	body := m.Body
	if m.BodyEncoding == "hex" {
		kind = "binary, in hex"
		if b, err := hex.DecodeString(body); err == nil {
			body = hex.Dump(b)
		}
	}
	cut := ""
	if m.BodyTruncated {
		cut = ", cut short"
	}
	fmt.Fprintf(w, "  body (%d bytes, %s%s):\n%s\n\n", m.BodySize, kind, cut, strings.TrimRight(body, "\n"))
}

func cmdPurge(args []string) error {
	fs := flagSet("purge", "QUEUE... [flags]",
		"Deletes every pending message of the queues named (wildcards: * any characters,\n? one), as activemq purge does. Messages out with a consumer are left to it.")
	api := httpFlags(fs, "admin API of the broker")
	pos, err := positional(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) == 0 {
		fs.Usage()
		return exitCode(2)
	}
	a := api()
	var names []string
	for _, p := range pos {
		p = strings.TrimPrefix(strings.TrimPrefix(p, "/queue/"), "queue://")
		if !strings.ContainsAny(p, "*?") {
			names = append(names, p)
			continue
		}
		var all []admin.DestJSON
		if err := a.get("/api/destinations", &all); err != nil {
			return err
		}
		found := false
		for _, d := range all {
			if d.Type == core.Queue.String() && glob(p, d.Name) {
				names, found = append(names, d.Name), true
			}
		}
		if !found {
			return fmt.Errorf("no queue matches %q", p)
		}
	}
	for _, n := range names {
		var out map[string]int
		if err := a.call("POST", "/api/queues/"+url.PathEscape(n)+"/purge", nil, &out); err != nil {
			return err
		}
		fmt.Printf("purged %d message(s) from %s\n", out["purged"], n)
	}
	return nil
}

func cmdDstat(args []string) error {
	fs := flagSet("dstat", "[all|queues|topics] [flags]",
		"Prints the destinations' statistics as a table, as activemq dstat does.")
	api := httpFlags(fs, "admin API of the broker")
	pos, err := positional(fs, args)
	if err != nil {
		return flagError(err)
	}
	which := "all"
	if len(pos) > 0 {
		which = pos[0]
	}
	if len(pos) > 1 || !slices.Contains([]string{"all", "queues", "topics"}, which) {
		fs.Usage()
		return exitCode(2)
	}
	var ds []admin.DestJSON
	if err := api().get("/api/destinations", &ds); err != nil {
		return err
	}
	ds = slices.DeleteFunc(ds, func(d admin.DestJSON) bool {
		return which == "queues" && d.Type != "queue" || which == "topics" && d.Type != "topic"
	})
	width := len("Name")
	for _, d := range ds {
		width = max(width, len(d.Name))
	}
	row := func(cols ...any) {
		fmt.Printf("%-*s  %-5s  %10v  %10v  %10v  %10v  %13v  %8v\n", append([]any{width}, cols...)...)
	}
	row("Name", "Type", "Queue Size", "Consumer #", "Enqueue #", "Dequeue #", "Dead-letter #", "Memory %")
	for _, d := range ds {
		row(d.Name, d.Type, d.Size, d.Consumers, d.Enqueued, d.Dequeued, d.DeadLettered, memoryPercent(d))
	}
	return nil
}

func cmdPasswd(args []string) error {
	fs := flagSet("passwd", "[flags] < password",
		"Prints the bcrypt hash of a password, read from standard input (its first line), for\nauth.users in the configuration or the users file:\n  hamq passwd <<< 's3cret'")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		fmt.Fprint(os.Stderr, "password (it is shown as you type): ")
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return fmt.Errorf("no password on standard input: %v", err)
	}
	h, err := core.HashPassword(line)
	if err != nil {
		return err
	}
	fmt.Println(h)
	return nil
}
