//go:build !unix

package storage

// freeBytes is not known on this platform; the guard stays off.
func freeBytes(string) (int64, bool) { return 0, false }
