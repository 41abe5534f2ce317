package pgtest

import "syscall"

type syscallAttr = syscall.SysProcAttr

// asUser runs a child as uid:gid, killed if the test binary dies first.
func asUser(uid, gid uint32) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}, Pdeathsig: syscall.SIGKILL}
}

func newSysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
