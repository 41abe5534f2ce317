//go:build !unix

package server

// raiseFDLimit does nothing where there is no RLIMIT_NOFILE (Windows: the
// handle limit is not a per-process soft limit); 0 means unknown.
func raiseFDLimit() (uint64, error) { return 0, nil }
