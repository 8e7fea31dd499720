package ingest

import "errors"

// ErrRejected is wrapped by the errors decoders return for input refused by
// a budget (too many flows in a datagram, too many sources, a template too
// large) rather than malformed: listeners count the two apart.
var ErrRejected = errors.New("rejected by a budget")
