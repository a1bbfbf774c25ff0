package main

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/hamq/hamq/cmd/hamq/internal/admin"
)

func cmdScheduled(args []string) error {
	fs := flagSet("scheduled", "[flags]",
		"Prints the scheduled messages (AMQ_SCHEDULED_DELAY and its kin, AMQP's\nx-opt-delivery-time and -delay) in the order they fall due, or with --cancel\nremoves one job and every delivery it still had to make.")
	api := httpFlags(fs, "admin API of the broker")
	offset := fs.Int("offset", 0, "skip this many")
	limit := fs.Int("limit", 100, "print at most this many (at most 1000)")
	cancel := fs.String("cancel", "", "the job id (scheduledJobId) to cancel")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if *cancel != "" {
		if err := api().call("DELETE", "/api/scheduled/"+url.PathEscape(*cancel), nil, nil); err != nil {
			return err
		}
		fmt.Println("cancelled", *cancel)
		return nil
	}
	var p admin.ScheduledJSON
	if err := api().get(fmt.Sprintf("/api/scheduled?offset=%d&limit=%d", *offset, *limit), &p); err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "%-40s %-24s %-8s %-9s %-14s %s\n", "JOB", "NEXT", "REPEAT", "PERIOD", "CRON", "DESTINATION")
	for _, m := range p.Messages {
		repeat := fmt.Sprint(m.Repeat)
		if m.Repeat < 0 {
			repeat = "forever"
		}
		period := "-"
		if m.Period > 0 {
			period = (time.Duration(m.Period) * time.Millisecond).String()
		}
		fmt.Fprintf(w, "%-40s %-24s %-8s %-9s %-14s %s\n", m.JobID, m.Next.Local().Format("2006-01-02 15:04:05.000"),
			repeat, period, orDash(m.Cron), m.Dest)
	}
	fmt.Fprintf(w, "%d of %d scheduled\n", len(p.Messages), p.Total)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
