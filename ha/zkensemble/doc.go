// Package zkensemble runs a ZooKeeper ensemble of local JVMs from Debian's
// zookeeper package on 127.0.0.1. hamq's high availability is proven
// against the real ZooKeeper, never a fake, so `hamq demo` and the tests
// share this one way of starting, killing and restarting members.
//
// It owns the member processes it starts and nothing else: every process
// is ended by its PID, and on Linux the kernel kills a member if the
// process that started it dies without calling Close (a test binary that
// times out, a demo killed with -9), so no JVM outlives its owner.
//
// It must not import any hamq package: it is a harness around an external
// server, usable by any package's tests.
package zkensemble
