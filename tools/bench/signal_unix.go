//go:build !windows

package main

import "syscall"

// Pausing a replica (SIGSTOP/SIGCONT) is for Unix; the bench runs there.
const (
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
)
