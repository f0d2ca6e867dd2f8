// Package local holds the backends of a single custodyd, one process
// with no replicas: in-process item locks (Locks, an evidence.Locker) and
// resumable upload sessions kept as files in the data dir (Sessions, an
// evidence.UploadSessions). Their counterparts for replicas sharing a
// PostgreSQL database are in package postgres; custodyd picks one set or
// the other.
//
// The third single-process backend, the file journal (journal.File), stays
// in package journal: that package's subject is the journal file's format
// (framing, checksums, torn-end and damage handling, golden files), and
// the Store contract the PostgreSQL journal also meets is defined there.
// What is here is small and has no format of its own worth a package.
package local
