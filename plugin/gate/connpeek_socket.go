//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package gate

import (
	"errors"
	"net"
	"syscall"
)

// idleConnState looks, without blocking and without consuming, at what
// an idle upstream connection holds: nothing (it may be reused), bytes
// nobody asked for, or the upstream's close. A connection in either of
// the last two states must not carry the next request: the stray bytes
// would be read as its response.
func idleConnState(c net.Conn) (usable bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	var n int
	var rerr error
	if err := raw.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait: an empty socket is the answer
	}); err != nil {
		return false
	}
	switch {
	case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK):
		return true // nothing pending: idle and open
	case rerr != nil, n == 0:
		return false // reset, or closed by the upstream (EOF)
	default:
		return false // unsolicited bytes
	}
}
