//go:build !linux

package collector

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// xnetReader reads datagrams with golang.org/x/net's batch reads (one
// datagram a read where the system has no recvmmsg).
type xnetReader struct {
	rd interface {
		ReadBatch([]ipv4.Message, int) (int, error)
	}
	msgs []ipv4.Message
	got  []received
}

func newDatagramReader(c *net.UDPConn, batch, oob int) (datagramReader, error) {
	r := &xnetReader{msgs: make([]ipv4.Message, batch), got: make([]received, batch)}
	if ua, ok := c.LocalAddr().(*net.UDPAddr); ok && ua.IP.To4() != nil {
		r.rd = ipv4.NewPacketConn(c)
	} else {
		r.rd = ipv6.NewPacketConn(c)
	}
	for i := range r.msgs {
		r.msgs[i].Buffers = [][]byte{make([]byte, maxDatagram)}
		if oob > 0 {
			r.msgs[i].OOB = make([]byte, oob)
		}
	}
	return r, nil
}

func (r *xnetReader) ReadBatch() ([]received, error) {
	n, err := r.rd.ReadBatch(r.msgs, 0)
	if err != nil {
		return nil, err
	}
	got := r.got[:n]
	for i := range got {
		m := &r.msgs[i]
		var src netip.AddrPort
		if ua, ok := m.Addr.(*net.UDPAddr); ok {
			src = ua.AddrPort()
			src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		}
		got[i] = received{src: src, p: m.Buffers[0][:m.N], oob: m.OOB[:m.NN]}
	}
	return got, nil
}
