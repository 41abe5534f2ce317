//go:build !linux

package pgtest

import "syscall"

type syscallAttr = syscall.SysProcAttr

func asUser(uid, gid uint32) *syscall.SysProcAttr { return nil }

func newSysProcAttr() *syscall.SysProcAttr { return nil }

// runsAs is the user a child runs as: never set here (asUser is Linux only).
func runsAs(*syscall.SysProcAttr) (uid, gid int, ok bool) { return 0, 0, false }
