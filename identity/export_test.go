package identity

import "time"

// SetNow sets the clock a Verifier checks validity against.
func SetNow(v *Verifier, now func() time.Time) { v.now = now }
