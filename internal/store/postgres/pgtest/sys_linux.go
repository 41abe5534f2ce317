package pgtest

import "syscall"

type syscallAttr = syscall.SysProcAttr

// asUser runs a child as uid:gid, killed if the test binary dies first.
func asUser(uid, gid uint32) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}, Pdeathsig: syscall.SIGKILL}
}

func newSysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

// runsAs is the user a child with attr runs as, if it is set.
func runsAs(attr *syscall.SysProcAttr) (uid, gid int, ok bool) {
	if attr == nil || attr.Credential == nil {
		return 0, 0, false
	}
	return int(attr.Credential.Uid), int(attr.Credential.Gid), true
}
