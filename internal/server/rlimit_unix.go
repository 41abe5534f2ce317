//go:build unix

package server

import "syscall"

// raiseFDLimit raises the soft limit on open files to the hard one, so
// --max-conns on each listener, the database's connections and the files
// fit, and says what the soft limit is now. (Go's runtime does this too
// since Go 1.19; doing it here makes the figure known and logged.)
func raiseFDLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return uint64(lim.Cur), err //nolint:unconvert // int64 on FreeBSD; e.g. macOS caps it below an unlimited hard limit
		}
		lim = raised
	}
	return uint64(lim.Cur), nil //nolint:unconvert // int64 on FreeBSD
}
