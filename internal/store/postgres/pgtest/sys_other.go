//go:build !linux

package pgtest

import "syscall"

type syscallAttr = syscall.SysProcAttr

func asUser(uid, gid uint32) *syscall.SysProcAttr { return nil }

func newSysProcAttr() *syscall.SysProcAttr { return nil }
