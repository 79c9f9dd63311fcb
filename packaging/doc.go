// Package packaging holds no code: it is l402d's platform packages (Umbrel,
// StartOS, docker, systemd) and the tests that hold them to each
// platform's rules.
package packaging
