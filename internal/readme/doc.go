// Package readme holds TestREADME, which runs the shell blocks of the
// repository's README.md as a user would, against a fresh custodyd: every
// command in the README must run as written. See readme_test.go for the
// rules (placeholders, the skip marker).
package readme
