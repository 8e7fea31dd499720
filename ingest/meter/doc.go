// Package meter turns packets into unidirectional flows, the way a flow probe
// such as softflowd does, so that captured or replayed traffic reaches the
// rules as the same flow.Flow records that a router's NetFlow would bring.
//
// # Flows
//
// A flow is every packet with the same source and destination address,
// source and destination port and IP protocol, in one direction. For ICMP
// and ICMPv6 the source port is 0 and the destination port carries
// type*256+code, as NetFlow v5 and softflowd export it; the packet decoder
// (ingest/pcap) fills the ports that way. Non-first IP fragments carry no
// ports and meter under port 0.
//
// Each flow counts packets, bytes (the IP length of each packet, header
// included, as softflowd counts them: not the frame length and not what the
// capture's snaplen kept) and the OR of the TCP flags seen. time_flow_start
// and time_flow_end are the first and last packet's time; time_received is
// the time at which the meter expired the flow (its export time);
// sampling_rate is 1.
//
// # Time
//
// The meter runs on event time: the packets' own timestamps, never the wall
// clock, so a replay of a capture gives the same flows as the live run. The
// meter's clock is the latest packet time seen (it never runs backwards, so
// a packet slightly out of order does not confuse expiry). Expiry runs when
// the clock passes the earliest pending deadline, which costs one comparison
// per packet. A live source that may go quiet calls Advance with the wall
// clock now and then, so that flows expire and reach the handler even when
// no packet arrives.
//
// # Timeouts
//
// A flow is expired, and handed on, at the first of:
//
//   - ActiveTimeout (default 60s) after its first packet: long flows are
//     reported in slices, so that a rule sees a long transfer or a slow scan
//     well before it ends. softflowd's default (maximum life of days, and
//     NetFlow routers' 30 minutes) is too long for alerting.
//   - IdleTimeout (default 15s) after its last packet.
//   - TCPCloseTimeout (default 2s) after its last packet, once a TCP FIN or
//     RST has been seen in this direction. softflowd shortens a TCP flow's
//     life the same way once it closes. The short grace (rather than export
//     at the FIN itself) keeps the last ACK of the closing handshake, which
//     travels in the same direction right after the FIN, in the same flow
//     instead of starting a one-packet flow of its own.
//   - Flush, at the end of the input: every flow still in the table.
//
// A packet that arrives after its flow expired starts a new flow.
//
// # Memory
//
// The flow table holds at most MaxFlows flows (default 262144, about 35 MB
// in the worst case: 112 bytes per flow and a hash table of 8-byte slots
// kept at most half full; memory grows with use, in chunks of 4096 flows). When it is full, a new flow first forces out the flow
// that has been idle longest; Stats counts these forced expiries, which mean
// that the table is too small for the traffic or the timeouts too long.
//
// # Batches
//
// Expired flows are collected into a reused batch of BatchSize flows (default
// 256) that is handed to the ingest.Handler when it is full, at Flush and at
// Advance. The batch belongs to the meter again once the handler returns.
//
// Addresses are keyed in their 16-byte form (an IPv4 address and its
// IPv4-mapped IPv6 form stay distinct); IPv6 zones are not kept.
//
// A Meter is not safe for concurrent use.
package meter
