//go:build !linux

package embedded

import "syscall"

// ChildAttr puts a child process in its own process group. Outside Linux
// there is no parent-death signal: a child outlives a crashed parent until
// its process group is killed (the clean paths do; a SIGKILLed parent
// leaves its servers running).
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
