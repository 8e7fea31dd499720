#!/usr/bin/env bash
# make-captures.sh reproduces pmacctd-sfprobe.pcap: real sFlow v5 export.
#
#   sudo ingest/sflow/testdata/make-captures.sh
#
# pmacctd 1.7.7 (Debian package pmacct) reads input.pcap (the same merge as
# ../../netflow/testdata/make-captures.sh: ../../pcap/testdata/{scan.pcap,
# udp_icmp_nano.pcap,ipv6.pcap}, 573 packets) with its sfprobe plugin,
# sampling 1 in 1, agent 192.0.2.10 sub-agent 7, and sends sFlow v5 to
# 127.0.0.1:$PORT while tcpdump records the datagrams on lo.
set -euo pipefail
cd "$(dirname "$0")"
PORT=${PORT:-29966}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mergecap -F pcap -w "$WORK/input.pcap" ../../pcap/testdata/scan.pcap \
	../../pcap/testdata/udp_icmp_nano.pcap ../../pcap/testdata/ipv6.pcap
cat >"$WORK/sfprobe.conf" <<CONF
daemonize: false
pcap_savefile: $WORK/input.pcap
pcap_savefile_wait: false
plugins: sfprobe
sfprobe_receiver: 127.0.0.1:$PORT
sfprobe_agentip: 192.0.2.10
sfprobe_agentsubid: 7
sampling_rate: 1
CONF
timeout 30 tcpdump -i lo -s 0 -U -w pmacctd-sfprobe.pcap "udp port $PORT" 2>/dev/null &
TPID=$!
sleep 1.5
timeout 20 pmacctd -f "$WORK/sfprobe.conf" || true
sleep 1.5
kill -INT "$TPID" 2>/dev/null || true
wait "$TPID" 2>/dev/null || true
