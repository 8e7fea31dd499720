package netflow

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// The fuzz targets feed arbitrary datagrams to a decoder: it must return
// an error or flows, never panic, and keep its flows well formed. Seeds are
// the real softflowd datagrams and the hand-built ones of the tests.

func checkFlows(t *testing.T, out []flow.Flow) {
	for i := range out {
		f := &out[i]
		if f.Type == "" || !f.SamplerAddress.IsValid() || f.SamplingRate == 0 || f.Bytes != f.RawBytes*uint64(f.SamplingRate) {
			t.Fatalf("flow %d: %+v", i, f)
		}
	}
}

// fuzzLegacy fuzzes one fixed-layout version: the input's first two bytes
// are forced to the version so that the fuzzer explores its decoder.
func fuzzLegacy(f *testing.F, version uint16, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if len(p) >= 2 {
			binary.BigEndian.PutUint16(p, version)
		}
		d := NewDecoder(Config{})
		out, _ := d.Decode(testExporter, recvTime, p, nil)
		checkFlows(t, out)
		d.Stats()
	})
}

func captureSeeds(f *testing.F, name string) [][]byte {
	dgs, _ := datagrams(f, "testdata/"+name+".pcap")
	return dgs
}

func FuzzV1(f *testing.F) { fuzzLegacy(f, 1, captureSeeds(f, "export-v1")...) }
func FuzzV5(f *testing.F) { fuzzLegacy(f, 5, captureSeeds(f, "export-v5")...) }

func FuzzV7(f *testing.F) {
	rec := buf{}.addr("10.1.2.3").addr("192.0.2.77").addr("10.0.0.254").u16(3, 4).u32(10, 1500, 1000, 2000).
		u16(40000, 443).u8(0, 0x12, 6, 0).u16(64500, 64501).u8(24, 16).u16(0).addr("10.0.0.1")
	fuzzLegacy(f, 7, append(legacyHdr(7, 1).u32(5000, 0), rec...))
}

func FuzzV8(f *testing.F) {
	var seeds [][]byte
	for agg, n := range v8RecordLen {
		if n == 0 {
			continue
		}
		p := legacyHdr(8, 2).u32(77).u8(0, 1, uint8(agg), 2).u32(0)
		for i := range 2 * n {
			p = append(p, byte(i*7))
		}
		seeds = append(seeds, p)
	}
	fuzzLegacy(f, 8, seeds...)
}

// FuzzV9IPFIX decodes the input with a decoder that already holds the
// softflowd templates (v9 and IPFIX, source id / domain 0), twice (the
// second time with its own templates known), then the templates again
// (replaying whatever it left pending).
func FuzzV9IPFIX(f *testing.F) {
	var prime [][]byte
	for _, name := range []string{"export-v9", "export-ipfix", "export-v9-sampled", "export-ipfix-nano"} {
		dgs := captureSeeds(f, name)
		prime = append(prime, templatesOnly(dgs[0]))
		for _, p := range dgs[:4] {
			f.Add(p)
		}
	}
	out := make([]flow.Flow, 0, 512)
	f.Fuzz(func(t *testing.T, p []byte) {
		d := NewDecoder(Config{PendingMax: 8})
		for _, q := range prime {
			d.Decode(testExporter, recvTime, q, nil)
		}
		out, _ = d.Decode(testExporter, recvTime, p, out[:0])
		checkFlows(t, out)
		out, _ = d.Decode(testExporter, recvTime.Add(time.Second), p, out[:0])
		checkFlows(t, out)
		for _, q := range prime {
			out, _ = d.Decode(testExporter, recvTime.Add(2*time.Second), q, out[:0])
			checkFlows(t, out)
		}
		d.Stats()
	})
}

// templatesOnly returns a v9 / IPFIX datagram with only its template and
// options template sets (a cheap way to prime a decoder).
func templatesOnly(p []byte) []byte {
	hdr := 20
	if p[1] == 10 {
		hdr = 16
	}
	q := append([]byte(nil), p[:hdr]...)
	for b := p[hdr:]; len(b) >= 4; {
		n := int(binary.BigEndian.Uint16(b[2:]))
		if n < 4 || n > len(b) {
			break
		}
		if binary.BigEndian.Uint16(b) < 256 {
			q = append(q, b[:n]...)
		}
		b = b[n:]
	}
	if p[1] == 10 {
		binary.BigEndian.PutUint16(q[2:], uint16(len(q)))
	}
	return q
}
