//go:build !linux

package fdlimit

func raise() (uint64, uint64, error) { return 0, 0, nil }
