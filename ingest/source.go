// Package ingest defines how flows enter flowguard. Each source lives in a
// folder of its own (collector/ with the netflow/ and sflow/ decoders,
// capture/, pcap/ with meter/, flowfile/, file/ which detects the file
// formats) and hands batches of flows to a Handler.
package ingest

import (
	"context"

	"github.com/flowguard/flowguard/flow"
)

// Handler consumes a batch of flows. The batch and the flows in it belong to
// the caller and are reused once Handler returns: a Handler that keeps a flow
// must copy it.
type Handler func(batch []flow.Flow)

// Sink takes batches in buffers it lends, so that a source decodes
// straight into the buffer the consumer keeps (no copy of the flows).
// Buffer returns an empty buffer (len 0) to append flows to; Hand takes a
// filled buffer back, and the source no longer touches it. A source may
// append past the buffer's capacity (append then reallocates): the sink
// takes the batch whatever its size.
type Sink interface {
	Buffer() *[]flow.Flow
	Hand(b *[]flow.Flow)
}

// Source produces flows until its input ends or ctx is done. Run returns nil
// at the end of a finite input (a file) and ctx.Err() when cancelled.
type Source interface {
	Name() string
	Run(ctx context.Context, h Handler) error
}

// Stats counts what a source read and what it had to skip. Sources keep
// their own richer counters; this is the common part replay prints.
type Stats struct {
	Packets   uint64 // packets or datagrams or lines read
	Flows     uint64 // flows handed on
	Malformed uint64 // inputs that could not be decoded, counted and skipped
}
