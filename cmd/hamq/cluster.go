package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/hamq/hamq/ha"
)

func cmdCluster(args []string) error {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(os.Stderr, "Usage: hamq cluster status [--http URL]")
		return exitCode(2)
	}
	fs := flagSet("cluster status", "[--http URL]",
		"Prints every node of the cluster with its role, addresses, epoch, log position and\nlag, asking the admin API of any one node and then each member's own.")
	base := fs.String("http", defaultHTTP, "admin API of any node of the cluster")
	if err := fs.Parse(args[1:]); err != nil {
		return flagError(err)
	}
	var seen ha.Status
	if err := getJSON(*base, "/api/cluster", &seen); err != nil {
		return err
	}
	if seen.ID == "" {
		return fmt.Errorf("%s is a standalone broker, not a cluster node", *base)
	}
	// The master knows each slave's lag; the members say the rest of
	// themselves.
	var lags map[string]ha.PeerStatus
	var master ha.Status
	for _, m := range seen.Members {
		if m.ID == seen.Master && m.Admin != "" && getJSON(m.Admin, "/api/cluster", &master) == nil {
			lags = master.Peers
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tROLE\tADMIN\tEPOCH\tPOSITION\tLAG")
	for _, m := range seen.Members {
		var st ha.Status
		role, epoch, pos, lag := "unreachable", "-", "-", "-"
		if m.Admin != "" && getJSON(m.Admin, "/api/cluster", &st) == nil {
			role, epoch, pos = string(st.Role), fmt.Sprint(st.Epoch), fmt.Sprintf("%d:%d", st.End.Epoch, st.End.Index)
		}
		if st.Role == ha.RoleMaster {
			lag = "0"
		} else if p, ok := lags[m.ID]; ok && p.Attached {
			lag = fmt.Sprint(p.Lag)
		} else if ok {
			lag = "attaching"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, role, m.Admin, epoch, pos, lag)
	}
	w.Flush()
	if seen.Master == "" {
		fmt.Println("no master elected")
	}
	return nil
}
