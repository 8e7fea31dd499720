#!/bin/sh
# golden.sh regenerates the *.flows files from the captures with tshark, an
# implementation independent of ours: per direction and 5-tuple (ICMP type
# and code as type*256+code in dst_port, as NetFlow does) the packet count
# and the sum of IP lengths (IPv4 total length, IPv6 payload length + 40).
# Columns: proto src_addr src_port dst_addr dst_port packets bytes.
#
#   cd ingest/pcap/testdata && sh golden.sh
set -e
for f in *.pcap *.pcapng; do
	tshark -r "$f" -T fields -E occurrence=f -E separator=, \
		-e ip.proto -e ipv6.nxt -e ip.src -e ipv6.src -e ip.dst -e ipv6.dst \
		-e ip.len -e ipv6.plen -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport \
		-e icmp.type -e icmp.code -e icmpv6.type -e icmpv6.code 2>/dev/null |
	awk -F, '{
		if ($1 != "") { p = $1; s = $3; d = $5; n = $7 } else { p = $2; s = $4; d = $6; n = $8 + 40 }
		sp = 0; dp = 0
		if (p == 6) { sp = $9; dp = $10 }
		else if (p == 17) { sp = $11; dp = $12 }
		else if (p == 1) { dp = $13 * 256 + $14 }
		else if (p == 58) { dp = $15 * 256 + $16 }
		k = p " " s " " sp " " d " " dp; pk[k]++; by[k] += n
	} END { for (k in pk) print k, pk[k], by[k] }' | sort > "${f%.*}.flows"
done
