// Package freeport picks TCP ports on 127.0.0.1 for test servers that
// must listen on a port chosen before they start, and again on the same
// port after a restart (LND nodes, l402d daemons, PostgreSQL).
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Ports for servers that are stopped and started again on the same port
// (LND nodes, the tests' l402d) are picked below the kernel's ephemeral
// range: a port the kernel hands out with "127.0.0.1:0" may, while its
// server is down, become the local port of an outgoing connection, and
// the restart then fails with "address already in use".
const lowestPort = 10000

// handedOut holds the ports this process picked, so that two callers never
// get one port while the first has not bound it yet. It is process-wide
// on purpose: every picker of the process must see it.
var handedOut = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// Ports returns n distinct TCP ports, free on 127.0.0.1 a moment ago,
// outside the kernel's ephemeral range and not handed out before by this
// process.
func Ports(n int) ([]int, error) {
	high := ephemeralLow()
	if high-lowestPort < 1000 {
		return kernelPorts(n)
	}
	handedOut.Lock()
	defer handedOut.Unlock()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("picking %d free ports on 127.0.0.1 in [%d, %d): too many in use", n, lowestPort, high)
		}
		p := lowestPort + rand.IntN(high-lowestPort)
		if handedOut.m[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		handedOut.m[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return low
}

// kernelPorts lets the kernel pick n distinct ports, for a machine whose
// ephemeral range leaves no room below it. All listeners are held open
// until every port is picked so that no port comes twice.
func kernelPorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a free port on 127.0.0.1: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
