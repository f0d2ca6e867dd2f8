// Package testenv is the home of the test harnesses: each subpackage starts or
// fakes one real part for the full suite (MinIO, PostgreSQL, MariaDB, the
// custodyd binary, an in-process server, a cluster of replicas, a faulty
// network, an omniwitness, a timestamp authority), and none is imported by
// production code. Unit tests (-short) start none of them: each harness that
// starts a real server, browser or child process calls RequireFull at its
// entry, which skips the test under -short.
//
//	binaries     builds custodyd and custody once per test binary
//	clustertest  replicas of custodyd behind a balancer
//	faultproxy   a TCP proxy that stalls or cuts connections on demand
//	freeport     loopback ports for child processes
//	loadtest     concurrent clients for the load and fairness tests
//	mariadbtest  a real MariaDB server (the shared log's database)
//	miniotest    a real MinIO server (S3 storage and the shared log's tiles)
//	netshape     tc tbf bandwidth shaping on loopback
//	pgtest       a real PostgreSQL server (replica state)
//	tsatest      a real RFC 3161 timestamp authority (sigstore timestamp-server)
//	witnesstest  a real C2SP tlog-witness (omniwitness)
//	servertest   an in-process custodyd with real TLS, gRPC and HTTPS
//	tsatest      a real RFC 3161 timestamp authority (timestamp-server)
//	witnesstest  a real omniwitness
package testenv
