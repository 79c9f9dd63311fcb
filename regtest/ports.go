package regtest

import (
	"fmt"
	"net"
)

// checkPortsFree returns an error naming the first port that cannot be bound
// on 127.0.0.1, so that a restart on a taken port fails with a clear cause.
func checkPortsFree(ports map[string]int) error {
	for what, p := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return fmt.Errorf("port 127.0.0.1:%d (%s) is in use: %w", p, what, err)
		}
		l.Close()
	}
	return nil
}
