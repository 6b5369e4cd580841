//go:build linux

package fdlimit

import (
	"fmt"
	"syscall"
)

func raise() (uint64, uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0, fmt.Errorf("get RLIMIT_NOFILE: %w", err)
	}
	if l.Cur < l.Max {
		want := l
		want.Cur = want.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return l.Cur, l.Max, fmt.Errorf("raise RLIMIT_NOFILE from %d to %d: %w", l.Cur, l.Max, err)
		}
		l = want
	}
	return l.Cur, l.Max, nil
}
