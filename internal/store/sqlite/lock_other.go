//go:build !unix

package sqlite

import (
	"fmt"
	"path/filepath"

	"github.com/gofrs/flock"
)

// lockInode locks <real path of the database>.lock: on systems without
// flock, symlinks are resolved but hard links are not recognised.
func lockInode(path string) (unlock func() error, err error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	if real, err = filepath.Abs(real); err != nil {
		return nil, err
	}
	lock := flock.New(real + ".lock")
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", real, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s is open in another keymint process (lock %s.lock): stop it first; one server runs per SQLite file", ErrInUse, real, real)
	}
	return lock.Unlock, nil
}
