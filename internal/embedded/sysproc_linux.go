package embedded

import "syscall"

// ChildAttr puts a child process in its own process group (so it can be
// killed with everything it started) and has the kernel SIGKILL it when
// this process dies, crash included.
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
