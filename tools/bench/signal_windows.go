package main

import "syscall"

// Windows has no SIGSTOP: the paused-replica phase fails there with the OS's error.
const (
	sigStop = syscall.Signal(0x13)
	sigCont = syscall.Signal(0x12)
)
