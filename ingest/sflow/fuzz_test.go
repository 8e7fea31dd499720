package sflow

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzSFlow feeds arbitrary datagrams to a decoder: an error or flows,
// never a panic. Seeds: pmacctd's real datagrams and the hand-built one.
func FuzzSFlow(f *testing.F) {
	dgs, _, _ := datagrams(f, "testdata/pmacctd-sfprobe.pcap")
	for _, p := range dgs[:8] {
		f.Add(p)
	}
	agent := netip.MustParseAddr("203.0.113.9")
	f.Add(datagram(agent, 3, 100,
		expandedSample(512, 4, 5, rawHeader(1, 1000, ethVLANv6UDP)),
		compactSample(0, 7, 0x80000002, rawHeader(11, 84, ipv4ICMP)),
		compactSample(2048, 1, 2, rawHeader(1, 60, ethQinQTCP),
			xdr{}.record(1002, xdr{}.u32(1, 0xc0000201, 24, 16)),
			xdr{}.record(1003, xdr{}.u32(1, 0xc0000202, 65000, 64500, 64501, 1, 2, 2, 64502, 64503, 0, 100))),
		xdr{}.record(2, xdr{}.u32(1, 1, 0)),
		compactSample(10, 1, 2, xdr{}.record(3, xdr{}.u32(1500, 17, 0x0a000001, 0x0a000009, 1234, 53, 0, 0))),
	))
	src := netip.MustParseAddrPort("198.51.100.1:6343")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, p []byte) {
		d := NewDecoder(Config{})
		out, _ := d.Decode(src, now, p, nil)
		for i := range out {
			fl := &out[i]
			if fl.Type == "" || fl.SamplingRate == 0 || fl.RawPackets != 1 || fl.Bytes != fl.RawBytes*uint64(fl.SamplingRate) {
				t.Fatalf("flow %d: %+v", i, fl)
			}
		}
		d.Stats()
	})
}
