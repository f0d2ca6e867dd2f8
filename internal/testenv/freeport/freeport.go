// Package freeport picks loopback ports for the servers tests start (MinIO,
// PostgreSQL, MariaDB, custodyd). A port is free when picked; a server that
// loses the race to another process fails to start and says so.
package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Addr returns 127.0.0.1:<port> with a port that was free a moment ago.
func Addr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Port is Addr's port number.
func Port(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(Addr(t))
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
