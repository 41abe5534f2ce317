//go:build unix

package sqlite

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
)

// held are the database files this process has open, by device and inode.
var held = struct {
	sync.Mutex
	m map[[2]uint64]bool
}{m: map[[2]uint64]bool{}}

// lockInode takes an exclusive flock on the database file itself, so that
// every name of it (symlinks, hard links in any directory, paths spelled
// differently) resolves to one lock. SQLite's own locks are POSIX record
// locks, which flock does not touch. The file stays open until unlock: on
// POSIX, closing any descriptor of a file drops the process's record locks
// on it, so a descriptor is never closed while this process's SQLite may
// hold locks there (a second Open in this process is refused before it
// opens anything).
func lockInode(path string) (unlock func() error, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("cannot identify %s", path)
	}
	id := [2]uint64{uint64(st.Dev), uint64(st.Ino)} //nolint:unconvert // the fields' types differ by OS
	held.Lock()
	defer held.Unlock()
	if held.m[id] {
		return nil, fmt.Errorf("%w: %s is already open in this process (the same file under another name): one server runs per SQLite file", ErrInUse, path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close() // no SQLite of this process has this file open (held says so)
		if err == syscall.EWOULDBLOCK {
			return nil, fmt.Errorf("%w: %s is open in another keymint process%s: stop it first; one server runs per SQLite file (hard links and symlinks name the same file)",
				ErrInUse, path, holder(st))
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	held.m[id] = true
	return func() error {
		held.Lock()
		defer held.Unlock()
		delete(held.m, id)
		return f.Close() // releases the flock
	}, nil
}

// holder names the process holding an flock on the file, where the system
// says (Linux's /proc/locks), as " (pid N)".
func holder(st *syscall.Stat_t) string {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return ""
	}
	defer f.Close()
	// e.g. "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF"
	want := fmt.Sprintf(":%d", st.Ino)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 6 && fields[1] == "FLOCK" && strings.HasSuffix(fields[5], want) {
			return " (pid " + fields[4] + ")"
		}
	}
	return ""
}
