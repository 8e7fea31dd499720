package gen

import "encoding/binary"

// Hostile NetFlow v9 datagrams, as an attacker who can spoof export to a
// collector would send them: regression tests send them over loopback,
// and they can probe a deployment's budgets (they carry no flows a rule
// would alert on).

// maxV9Payload is the most a v9 datagram over UDP/IPv4 carries.
const maxV9Payload = 65507

// v9Header appends a NetFlow v9 header.
func v9Header(b []byte, count uint16, seq, sourceID uint32) []byte {
	b = be16(b, 9)
	b = be16(b, count)
	b = be32(b, 1000)       // sysUptime
	b = be32(b, 1700000000) // unix secs
	b = be32(b, seq)
	return be32(b, sourceID)
}

// V9RecordBomb returns one v9 datagram of size bytes at most (65,507 when
// 0): a template (id 256) of one field (in_bytes) of fieldLen bytes, then
// a data set of as many such records as fit. With fieldLen 1 a decoder
// without a flows-per-datagram cap gives 65,480 flows for it.
func V9RecordBomb(fieldLen, size int, seq uint32) []byte {
	if size <= 0 || size > maxV9Payload {
		size = maxV9Payload
	}
	b := v9Header(make([]byte, 0, size), 2, seq, 0)
	// Template flowset: id 0, length 12: template 256, one field.
	b = be16(b, 0)
	b = be16(b, 12)
	b = be16(b, 256)
	b = be16(b, 1)
	b = be16(b, 1) // IN_BYTES
	b = be16(b, uint16(fieldLen))
	records := (size - len(b) - 4) / fieldLen
	b = be16(b, 256)
	b = be16(b, uint16(4+records*fieldLen))
	for range records * fieldLen {
		b = append(b, 1)
	}
	return b
}

// V9TemplateBomb returns one v9 datagram of templates of fields fields
// each (ids from firstID), as many as fit in 65,507 bytes, and how many
// it holds. 16,369 fields make one template fill a datagram.
func V9TemplateBomb(firstID uint16, fields int, seq, sourceID uint32) ([]byte, int) {
	rec := 4 + 4*fields
	n := max(1, (maxV9Payload-20-4)/rec)
	b := v9Header(make([]byte, 0, 24+n*rec), uint16(n), seq, sourceID)
	b = be16(b, 0)
	b = be16(b, uint16(4+n*rec))
	for i := range n {
		b = be16(b, firstID+uint16(i))
		b = be16(b, uint16(fields))
		for f := range fields {
			b = be16(b, uint16(1+f%100)) // information elements 1-100
			b = be16(b, 4)
		}
	}
	return b, n
}

// V9Orphan returns a v9 datagram of one data set (id 256) whose template
// was never sent: what a spoofed source sends to claim a slot in the
// exporter table without ever becoming a valid exporter.
func V9Orphan(seq uint32) []byte {
	b := v9Header(nil, 1, seq, 0)
	b = be16(b, 256)
	b = be16(b, 4+16)
	b = append(b, make([]byte, 16)...)
	binary.BigEndian.PutUint32(b[len(b)-4:], seq)
	return b
}
