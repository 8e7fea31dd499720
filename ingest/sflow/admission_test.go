package sflow

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/flowguard/flowguard/ingest"
	"github.com/flowguard/flowguard/ingest/admit"
)

// A storm of spoofed agents, each sending a header and then a truncated
// sample, fills the table with agents on probation: they evict one
// another and never the established agent, whose every datagram still
// decodes; the storm is admitted at the configured rate.
func TestAgentStorm(t *testing.T) {
	d := NewDecoder(Config{MaxAgents: 32, Admission: admit.Config{Rate: 1000, Burst: 50}})
	genuine := netip.MustParseAddrPort("192.0.2.1:6343")
	agent := netip.MustParseAddr("192.0.2.1")
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	if _, err := d.Decode(genuine, now, datagram(agent, 0, 1), nil); err != nil {
		t.Fatal(err)
	}
	truncated := append(datagram(agent, 0, 1), 0, 0, 0, 1) // one sample announced, 4 bytes of it
	truncated[len(truncated)-8+3] = 1                      // (the sample count is the last u32 of the header)
	var rate int
	for i := range 2000 {
		now = now.Add(100 * time.Microsecond)
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), 6343)
		_, err := d.Decode(src, now, truncated, nil)
		if errors.Is(err, ErrAgentRate) {
			if !errors.Is(err, ingest.ErrRejected) {
				t.Fatal("ErrAgentRate does not wrap ingest.ErrRejected")
			}
			rate++
		} else if err == nil {
			t.Fatal("a truncated datagram decoded")
		}
		if i%50 == 0 {
			if _, err := d.Decode(genuine, now, datagram(agent, 0, uint32(2+i/50)), nil); err != nil {
				t.Fatalf("genuine agent during the storm: %v", err)
			}
		}
	}
	st := d.Stats()
	if len(st.Agents) > 32 || st.Evicted == 0 || st.RejectedRate != uint64(rate) || rate < 1500 {
		t.Errorf("%d agents held (bound 32), %d evicted, %d refused for the rate (counted %d)", len(st.Agents), st.Evicted, rate, st.RejectedRate)
	}
	if st.Rejected != st.RejectedRate {
		t.Errorf("%d refused with the table full of established agents, want 0", st.Rejected-st.RejectedRate)
	}
}
