package main

import (
	"fmt"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hamq/hamq/ha"
)

func cmdCluster(args []string) error {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(os.Stderr, "Usage: hamq cluster status [--http URL]")
		return exitCode(2)
	}
	fs := flagSet("cluster status", "[--http URL]",
		"Prints every node of the cluster with its role, addresses, epoch, log position and\nlag, asking the admin API of any one node and then each member's own.")
	api := httpFlags(fs, "admin API of any node of the cluster")
	if err := fs.Parse(args[1:]); err != nil {
		return flagError(err)
	}
	a := api()
	var seen ha.Status
	if err := a.get("/api/cluster", &seen); err != nil {
		return err
	}
	if seen.ID == "" {
		return fmt.Errorf("%s is a standalone broker, not a cluster node", a.base)
	}
	if len(seen.Members) == 0 {
		fmt.Fprintf(os.Stderr, "hamq cluster status: %s (%s) sees no member of its cluster: its ZooKeeper session is %s, its health %s\n",
			seen.ID, a.base, seen.ZooKeeper, seen.Health)
		return exitCode(1)
	}
	// Every member says its own state, asked all at once and briefly: a
	// node that hangs (paused, or cut off) is shown unreachable rather
	// than holding up the rest. The master knows each slave's lag.
	states := make([]*ha.Status, len(seen.Members))
	var wg sync.WaitGroup
	for i, m := range seen.Members {
		if m.Admin == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st ha.Status
			if (adminAPI{base: m.Admin, login: a.login, timeout: 2 * time.Second}).get("/api/cluster", &st) == nil {
				states[i] = &st
			}
		}()
	}
	wg.Wait()
	var lags map[string]ha.PeerStatus
	for i, m := range seen.Members {
		if m.ID == seen.Master && states[i] != nil {
			lags = states[i].Peers
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tROLE\tADMIN\tEPOCH\tPOSITION\tLAG\tZOOKEEPER\tHEALTH")
	for i, m := range seen.Members {
		var st ha.Status
		role, epoch, pos, lag, zk, health := "unreachable", "-", "-", "-", "-", "-"
		if states[i] != nil {
			st = *states[i]
			role, epoch, pos = string(st.Role), fmt.Sprint(st.Epoch), fmt.Sprintf("%d:%d", st.End.Epoch, st.End.Index)
			zk, health = st.ZooKeeper, st.Health
			if st.Aside {
				role += " (standing aside)"
			}
		}
		p, ok := lags[m.ID]
		switch {
		case st.Role == ha.RoleMaster:
			lag = "0"
		case st.CatchUp != nil:
			lag = catchUp(st.CatchUp)
		case ok && p.Attached:
			lag = fmt.Sprint(p.Lag)
		case ok && p.Error != "":
			lag = "not attached: " + p.Error
		case ok:
			lag = "attaching"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, role, m.Admin, epoch, pos, lag, zk, health)
	}
	w.Flush()
	if seen.Master == "" {
		fmt.Println("no master elected")
		return exitCode(1)
	}
	return nil
}

// catchUp describes a transfer under way: "snapshot 12.0/340.2 MiB at 20.1 MiB/s".
func catchUp(c *ha.CatchUp) string {
	const mib = 1 << 20
	if c.Phase == "snapshot" {
		return fmt.Sprintf("snapshot %.1f/%.1f MiB at %.1f MiB/s", float64(c.DoneBytes)/mib, float64(c.TotalBytes)/mib, c.BytesPerSecond/mib)
	}
	return fmt.Sprintf("%s %d/%d records at %.1f MiB/s", c.Phase, c.Records, c.RecordsTotal, c.BytesPerSecond/mib)
}
