// Package pcap replays pcap and pcapng capture files as flows: it reads the
// packets, decodes their headers by hand and meters them into flows with
// ingest/meter, on the packets' own clock (see the meter package for the
// timeouts that cut flows).
//
// Files: classic pcap (microsecond and nanosecond timestamps, either byte
// order, and the "modified" variant with longer record headers) and pcapng
// (several sections and interfaces, if_tsresol and if_tsoffset, enhanced,
// simple and obsolete packet blocks). The reader reuses one buffer and
// allocates nothing per packet.
//
// Link types: Ethernet with 802.1Q and QinQ tags, Linux cooked captures v1
// and v2 (tcpdump -i any), raw IP (LINKTYPE_RAW 101, and 12, 228, 229) and
// BSD loopback (NULL 0, LOOP 108). Packets on other link types are counted
// in Stats.UnsupportedLink and skipped.
//
// Headers: IPv4 (options; later fragments carry no ports and meter under
// port 0), IPv6 (hop-by-hop, routing, destination options, fragment, AH and
// mobility headers are walked to the upper-layer protocol), then ports for
// TCP, UDP, SCTP, DCCP and UDP-Lite, TCP flags, and type*256+code for ICMP
// and ICMPv6. A flow's bytes are the IP lengths from the IP headers, so a
// capture with a short snaplen (tcpdump -s 128) still gives the true sizes.
// Frames without IP, truncated and malformed packets are counted in Stats
// and skipped; no input makes the decoder panic.
//
// Captured flow export traffic (NetFlow, IPFIX, sFlow datagrams in a pcap)
// is handed to Config.Datagram, which may consume it instead of metering.
package pcap
