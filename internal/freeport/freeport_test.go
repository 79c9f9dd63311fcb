package freeport

import (
	"fmt"
	"net"
	"testing"
)

func TestPorts(t *testing.T) {
	ports, err := Ports(10)
	if err != nil {
		t.Fatal(err)
	}
	more, err := Ports(10)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	low := ephemeralLow()
	for _, p := range append(append([]int{}, ports...), more...) {
		if seen[p] {
			t.Fatalf("port %d handed out twice: %v then %v", p, ports, more)
		}
		seen[p] = true
		if low-lowestPort >= 1000 && (p < lowestPort || p >= low) {
			t.Fatalf("port %d is outside [%d, %d): a restarted server could find it taken by an outgoing connection", p, lowestPort, low)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d handed out but not free: %v", p, err)
		}
		l.Close()
	}
}
