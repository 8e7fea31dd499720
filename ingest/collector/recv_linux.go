//go:build linux

package collector

import (
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgReader reads datagrams with recvmmsg(2) into buffers set up once: the
// message headers, their iovecs, source address and control buffers are
// reused by every read, so a read allocates nothing, whatever the number
// of datagrams. The socket stays non-blocking; a read with nothing queued
// waits in the netpoller (syscall.RawConn.Read), as the net package's
// own reads do.
type mmsgReader struct {
	rc    syscall.RawConn
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for either family
	bufs  [][]byte
	oobs  [][]byte
	got   []received
	read  func(fd uintptr) bool // the RawConn.Read callback, made once
	n     int                   // datagrams the last read filled in (all headers after an error)
	errno syscall.Errno
	// zoneID and zoneName: the last scope id of a link-local IPv6 source
	// and its interface's name.
	zoneID   uint32
	zoneName string
}

func newDatagramReader(c *net.UDPConn, batch, oob int) (datagramReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &mmsgReader{
		rc:    rc,
		hdrs:  make([]unix.Mmsghdr, batch),
		iovs:  make([]unix.Iovec, batch),
		names: make([]unix.RawSockaddrInet6, batch),
		bufs:  make([][]byte, batch),
		oobs:  make([][]byte, batch),
		got:   make([]received, batch),
	}
	for i := range r.hdrs {
		r.bufs[i] = make([]byte, maxDatagram)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(maxDatagram)
		h := &r.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		if oob > 0 {
			r.oobs[i] = make([]byte, oob)
		}
	}
	r.reset(batch)
	r.read = func(fd uintptr) bool {
		for {
			n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])),
				uintptr(len(r.hdrs)), 0, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // nothing queued: wait for the netpoller
			}
			if e != 0 {
				// The kernel may have written to any header.
				r.n, r.errno = len(r.hdrs), e
				return true
			}
			r.n = int(n)
			return true
		}
	}
	return r, nil
}

// reset sets the lengths of the first n headers' address and control
// buffers back to their sizes.
func (r *mmsgReader) reset(n int) {
	for i := range r.hdrs[:n] {
		h := &r.hdrs[i].Hdr
		h.Namelen = unix.SizeofSockaddrInet6
		if len(r.oobs[i]) > 0 {
			h.Control = &r.oobs[i][0]
			h.SetControllen(len(r.oobs[i]))
		}
	}
}

// ReadBatch reads at least one datagram, blocking until one comes. The
// slice returned and the buffers it points into are reused by the next
// call.
func (r *mmsgReader) ReadBatch() ([]received, error) {
	// The kernel overwrote the lengths of the address and control
	// buffers of the datagrams it filled in last time.
	r.reset(r.n)
	r.n, r.errno = 0, 0
	if err := r.rc.Read(r.read); err != nil {
		r.n = len(r.hdrs)
		return nil, err
	}
	if r.errno != 0 {
		return nil, r.errno // r.n stays: the headers to reset
	}
	got := r.got[:r.n]
	for i := range got {
		h := &r.hdrs[i]
		got[i] = received{
			src: r.sockaddrPort(&r.names[i], h.Hdr.Namelen),
			p:   r.bufs[i][:h.Len],
			oob: r.oobs[i][:min(int(h.Hdr.Controllen), len(r.oobs[i]))],
		}
	}
	return got, nil
}

// sockaddrPort reads a source address the kernel wrote; an IPv4-mapped
// IPv6 address is returned as IPv4. A family it does not know gives the
// zero AddrPort (the datagram is then skipped).
func (r *mmsgReader) sockaddrPort(sa *unix.RawSockaddrInet6, n uint32) netip.AddrPort {
	switch {
	case sa.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), ntohs(sa4.Port))
	case sa.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		a := netip.AddrFrom16(sa.Addr).Unmap()
		if sa.Scope_id != 0 && a.Is6() {
			a = a.WithZone(r.zone(sa.Scope_id))
		}
		return netip.AddrPortFrom(a, ntohs(sa.Port))
	}
	return netip.AddrPort{}
}

// zone names the interface of a scope id as the net package does (its
// name, else the number), remembering the last one: link-local exporters
// are few and sit behind one interface.
func (r *mmsgReader) zone(id uint32) string {
	if id != r.zoneID || r.zoneName == "" {
		r.zoneID, r.zoneName = id, strconv.FormatUint(uint64(id), 10)
		if ifi, err := net.InterfaceByIndex(int(id)); err == nil {
			r.zoneName = ifi.Name
		}
	}
	return r.zoneName
}

// ntohs turns a port as the kernel stores it (network byte order) into a
// number.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
