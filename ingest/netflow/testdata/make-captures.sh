#!/usr/bin/env bash
# make-captures.sh reproduces the export captures in this folder.
#
#   sudo ingest/netflow/testdata/make-captures.sh
#
# For each export variant it starts tcpdump on lo (filter: udp port $PORT) and
# nfcapd (nfdump 1.7.1) listening on 127.0.0.1:$PORT, runs softflowd 1.1.0 over
# input.pcap (see below) exporting to that port, then stops both. The nfcapd
# file is printed as CSV with nfdump into NAME.nfdump.csv, cut to the columns
# ts,te,sa,da,sp,dp,pr,ipkt,ibyt: the reference the tests compare against (a
# second decoder reading the very same datagrams). softflowd's own summary
# (per-protocol packets and octets) is kept in NAME.softflowd.txt.
#
# input.pcap = mergecap of ../../pcap/testdata/{scan.pcap,udp_icmp_nano.pcap,ipv6.pcap}
# (IPv4 TCP SYN scan + HTTP, UDP + ICMP, IPv6 TCP), 573 packets.
set -euo pipefail
cd "$(dirname "$0")"
PORT=${PORT:-29955}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK" /tmp/sfin.pcap' EXIT

# softflowd 1.1.0 cuts its -r, -p and -c paths to 16 characters, hence the
# short names.
IN=/tmp/sfin.pcap
mergecap -F pcap -w "$IN" ../../pcap/testdata/scan.pcap \
	../../pcap/testdata/udp_icmp_nano.pcap ../../pcap/testdata/ipv6.pcap

capture() { # NAME softflowd-args...
	local name=$1
	shift
	mkdir -p "$WORK/$name"
	timeout 30 tcpdump -i lo -s 0 -U -w "$name.pcap" "udp port $PORT" 2>/dev/null &
	local tpid=$!
	timeout 30 nfcapd -w "$WORK/$name" -p "$PORT" -b 127.0.0.1 -P "$WORK/nfcapd.pid" >/dev/null 2>&1 &
	local npid=$!
	sleep 1.5
	timeout 20 softflowd -d -r "$IN" -n "127.0.0.1:$PORT" -a \
		-p /tmp/sf.pid -c /tmp/sf.ctl "$@" >"$name.softflowd.txt" 2>&1 || true
	sleep 1.5
	kill -TERM "$npid" "$tpid" 2>/dev/null || true
	wait "$npid" "$tpid" 2>/dev/null || true
	nfdump -q -r "$(ls "$WORK/$name"/nfcapd.* | head -1)" -o csv |
		cut -d, -f1,2,4,5,6,7,8,12,13 >"$name.nfdump.csv"
}

capture export-v1 -v 1
capture export-v5 -v 5
capture export-v9 -v 9 -6
capture export-ipfix -v 10 -6
capture export-ipfix-milli -v 10 -6 -A milli
capture export-ipfix-nano -v 10 -6 -A nano
capture export-v9-sampled -v 9 -6 -s 4
capture export-ipfix-sampled -v 10 -6 -s 4
