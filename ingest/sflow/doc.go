// Package sflow decodes sFlow version 5 datagrams (sflow.org
// SFLOW-DATAGRAM5 and SFLOW-STRUCTS5) into flow.Flow records.
//
// Every flow sample (compact and expanded formats) becomes one Flow: the
// sampled packet's header (raw packet header record: Ethernet with 802.1Q /
// QinQ tags and MPLS, IPv4, IPv6 with extension headers, TCP, UDP, SCTP,
// ICMP, ICMPv6) gives the addresses, ports, protocol and TCP flags, or, in
// its absence, the sampled IPv4 / IPv6 records do; the frame length is the
// flow's bytes and 1 its packets, both multiplied by the sample's sampling
// rate. The extended router and gateway records add the next hop, masks
// and AS numbers. Counter samples are counted, not decoded. sFlow carries
// no flow times: a flow's start, end and receive times are the datagram's
// arrival (the capture time on replay).
//
// Decoding allocates nothing per sample; README.md has the field mapping.
package sflow
