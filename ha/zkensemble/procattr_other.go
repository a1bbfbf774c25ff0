//go:build !linux

package zkensemble

import "syscall"

// Elsewhere there is no parent-death signal, so members outlive a starter
// that dies without Close; the package targets Debian, where the Linux
// variant applies.
func sysProcAttr() *syscall.SysProcAttr { return nil }
