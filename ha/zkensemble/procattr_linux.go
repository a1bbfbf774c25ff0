package zkensemble

import "syscall"

// Its own process group keeps a Ctrl-C meant for `hamq demo` from reaching
// the members directly: the demo stops them through Close, in order.
// Pdeathsig kills a member when its starter dies without Close (go test's
// timeout panics past t.Cleanup; kill -9 of the demo). The signal is tied
// to the starting OS thread, which the Go runtime only retires when a
// goroutine exits while locked to it; Start does not lock threads.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
