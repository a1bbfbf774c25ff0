package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// brokerProbe reads what a run cost the broker, whatever the broker: the
// CPU its processes used (user and system time of all their threads, from
// /proc/PID/stat) and the flush requests its disk completed (field 16 of
// /sys/class/block/DEV/stat, there since Linux 5.5). The flushes are the
// whole device's: anything else syncing to it meanwhile counts too.
type brokerProbe struct {
	pids   []int
	device string
}

// probeSample is one reading; a field is -1 when it is not measured.
type probeSample struct {
	cpu     time.Duration
	flushes int64
}

// userHZ is the unit of /proc/PID/stat's times: USER_HZ, 100 on every
// architecture Go runs Linux on.
const userHZ = 100

func parseProbe(pids, device string) (brokerProbe, error) {
	var p brokerProbe
	for _, s := range strings.Split(pids, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		pid, err := strconv.Atoi(s)
		if err != nil || pid <= 0 {
			return p, fmt.Errorf("--broker-pid %q: want process ids separated by commas", pids)
		}
		p.pids = append(p.pids, pid)
	}
	p.device = strings.TrimPrefix(device, "/dev/")
	_, err := p.sample() // fail now rather than after the run
	return p, err
}

func (p brokerProbe) sample() (probeSample, error) {
	s := probeSample{cpu: -1, flushes: -1}
	if len(p.pids) > 0 {
		s.cpu = 0
		for _, pid := range p.pids {
			t, err := processCPU(pid)
			if err != nil {
				return s, err
			}
			s.cpu += t
		}
	}
	if p.device != "" {
		f, err := deviceFlushes(p.device)
		if err != nil {
			return s, err
		}
		s.flushes = f
	}
	return s, nil
}

func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("broker CPU: %w", err)
	}
	// The command name in parentheses may hold spaces: the fields that
	// matter come after its closing parenthesis, state first (field 3),
	// then utime and stime (fields 14 and 15).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("broker CPU: /proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("broker CPU: /proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

func deviceFlushes(dev string) (int64, error) {
	path := "/sys/class/block/" + dev + "/stat"
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("device flushes: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 16 {
		return 0, fmt.Errorf("device flushes: %s has %d fields, no flush count (Linux 5.5 or later has it)", path, len(f))
	}
	n, err := strconv.ParseInt(f[15], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("device flushes: %s: field 16 %q", path, f[15])
	}
	return n, nil
}

// since is what the broker used from an earlier sample to this one, -1
// where not measured.
func (s probeSample) since(from probeSample) probeSample {
	d := probeSample{cpu: -1, flushes: -1}
	if s.cpu >= 0 && from.cpu >= 0 {
		d.cpu = s.cpu - from.cpu
	}
	if s.flushes >= 0 && from.flushes >= 0 {
		d.flushes = s.flushes - from.flushes
	}
	return d
}
