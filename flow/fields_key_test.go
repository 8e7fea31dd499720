package flow

import (
	"bytes"
	"net/netip"
	"testing"
)

// TestAppendKeyWrittenOut checks that the fields with a written-out key
// give the same bytes as the generic form of their kind: window keys,
// learned state and Redis keys depend on them.
func TestAppendKeyWrittenOut(t *testing.T) {
	flows := []Flow{
		{SrcAddr: netip.MustParseAddr("10.1.2.3"), DstAddr: netip.MustParseAddr("192.0.2.7"), SrcPort: 51234, DstPort: 443, Proto: 6},
		{SrcAddr: netip.MustParseAddr("2001:db8::1"), DstAddr: netip.MustParseAddr("::ffff:10.0.0.1"), SrcPort: 0, DstPort: 65535, Proto: 17},
		{}, // no addresses
	}
	n := 0
	for _, fd := range fields {
		if fd.key == keyGeneric {
			continue
		}
		n++
		generic := *fd
		generic.key = keyGeneric
		for i := range flows {
			got := fd.AppendKey([]byte("x"), &flows[i])
			want := generic.AppendKey([]byte("x"), &flows[i])
			if !bytes.Equal(got, want) {
				t.Errorf("%s, flow %d: key %x, generic %x", fd.Name, i, got, want)
			}
		}
	}
	src := fields["src_addr"]
	if a := testing.AllocsPerRun(100, func() {
		var buf [32]byte
		_ = src.AppendKey(buf[:0], &flows[0])
	}); a != 0 {
		t.Errorf("a key into a buffer on the stack allocates %v times", a)
	}
	if n < 5 {
		t.Fatalf("%d fields have a written-out key, want at least 5", n)
	}
}
