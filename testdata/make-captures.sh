#!/usr/bin/env bash
# make-captures.sh reproduces the loopback captures in this folder.
#
#   sudo testdata/make-captures.sh [OUTDIR]     (default: the folder of this script)
#
# Needs root (raw sockets for nmap -sS, tcpdump on lo), tcpdump, nmap, socat,
# curl and python3. Every address is in 127.0.0.0/8 and every generator is
# bounded by a count and by `timeout`, so nothing leaves the host and nothing
# outlives the script. tcpdump keeps 128 bytes a packet (-s 128) and a BPF
# filter naming only the addresses below, so other loopback users of the
# machine do not leak into the files.
#
# Addresses:
#   127.0.0.5  -> 127.0.0.9          nmap -sS -p 1-2000 (vertical port scan)
#   127.0.0.6  -> 127.0.1.1-120      nmap -sS -p 22,445,3389 (host sweep)
#   127.0.0.7  -> 127.0.0.30:8000    one large TCP upload
#   127.0.0.21 -> 127.0.0.20:8080    HTTP GETs (python3 -m http.server)
#   127.0.0.23 -> 127.0.0.22:53/udp  DNS-like request/response pairs
#   127.0.0.25 -> 127.0.0.24:2222    a long-lived interactive TCP session
set -euo pipefail

OUT=$(cd "${1:-$(dirname "$0")}" && pwd)
UPLOAD_MB=${UPLOAD_MB:-80}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

NORMAL_HOSTS="host 127.0.0.20 or host 127.0.0.21 or host 127.0.0.22 or host 127.0.0.23 or host 127.0.0.24 or host 127.0.0.25"
SCAN_FILTER="(host 127.0.0.5 and host 127.0.0.9)"
SWEEP_FILTER="(host 127.0.0.6 and net 127.0.1.0/24)"
UPLOAD_FILTER="(host 127.0.0.7 and host 127.0.0.30)"

# --- servers, started once, each bounded by timeout -------------------------
mkdir -p "$WORK/www"
head -c 2000 /dev/urandom | base64 >"$WORK/www/index.html"
head -c 120000 /dev/urandom >"$WORK/www/report.pdf"
timeout 900 python3 -m http.server --bind 127.0.0.20 --directory "$WORK/www" 8080 >/dev/null 2>&1 &
PIDS+=($!)

cat >"$WORK/udpd.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.22", 53))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data + b"\x00" * 64, peer)  # an answer a little larger than the query
PY
timeout 900 python3 "$WORK/udpd.py" &
PIDS+=($!)

# echo server for the long session
timeout 900 socat TCP-LISTEN:2222,bind=127.0.0.24,reuseaddr,fork EXEC:cat >/dev/null 2>&1 &
PIDS+=($!)
# upload sink
timeout 900 socat -u TCP-LISTEN:8000,bind=127.0.0.30,reuseaddr,fork OPEN:/dev/null >/dev/null 2>&1 &
PIDS+=($!)

# wait (at most 10 s) until the TCP servers listen
for _ in $(seq 50); do
	n=$(ss -Hltn 'sport = :8080 or sport = :2222 or sport = :8000' |
		grep -cE '127\.0\.0\.(20:8080|24:2222|30:8000)' || true)
	((n == 3)) && break
	sleep 0.2
done

# --- traffic ------------------------------------------------------------------

# normal_traffic SECONDS: ordinary traffic for about SECONDS seconds: one long
# interactive TCP session (a line every 0.5 s), an HTTP GET every 2 s
# (alternating two files) and a DNS-like UDP exchange every second.
normal_traffic() {
	local secs=$1 i
	(for i in $(seq $((secs * 2))); do echo "keystroke $i"; sleep 0.5; done) |
		timeout $((secs + 5)) socat -t 1 - TCP:127.0.0.24:2222,bind=127.0.0.25 >/dev/null &
	local sess=$!
	for i in $(seq "$secs"); do
		printf 'query %03d example.test A' "$i" |
			timeout 3 socat -T 1 - UDP4:127.0.0.22:53,bind=127.0.0.23 >/dev/null || true
		if ((i % 2 == 0)); then
			f=index.html; ((i % 4 == 0)) && f=report.pdf
			timeout 5 curl -s -o /dev/null --interface 127.0.0.21 "http://127.0.0.20:8080/$f" || true
		fi
		sleep 0.5
	done
	wait "$sess" 2>/dev/null || true
}

portscan() {
	timeout 120 nmap -n -sS -p "${SCAN_PORTS:-1-2000}" -S 127.0.0.5 -e lo -Pn --max-rate 400 --max-retries 1 127.0.0.9 >/dev/null
}
hostsweep() {
	timeout 120 nmap -n -sS -p 22,445,3389 -S 127.0.0.6 -e lo -Pn --max-rate 200 --max-retries 1 127.0.1.1-120 >/dev/null
}
upload() {
	# large writes (-b) so that lo carries ~64 KB segments and the capture
	# stays small at 128 bytes a packet
	head -c "${UPLOAD_MB}M" /dev/zero | timeout 60 socat -b 1048576 -u - TCP:127.0.0.30:8000,bind=127.0.0.7
}

# capture FILE FILTER CMD...: runs CMD while tcpdump writes FILE.
capture() {
	local file=$1 filter=$2
	shift 2
	timeout 300 tcpdump -i lo -Z root -s 128 -U -n -w "$file.tmp" "$filter" 2>"$WORK/tcpdump.err" &
	local td=$!
	sleep 1.5
	"$@"
	sleep 1.5
	kill -INT "$td"
	wait "$td" || true
	cat "$WORK/tcpdump.err" >&2
	mv "$file.tmp" "$file"
	echo "$(basename "$file"): $(stat -c %s "$file") bytes" >&2
}

# with_normal SECONDS CMD...: CMD while normal traffic runs around it.
with_normal() {
	local secs=$1
	shift
	normal_traffic "$secs" &
	local bg=$!
	sleep 2
	"$@"
	wait "$bg" || true
}

run_portscan() { with_normal 8 portscan; }
run_hostsweep() { with_normal 8 hostsweep; }
run_upload() { with_normal 8 upload; }
run_normal() { normal_traffic 20; }
run_all_attacks() { portscan; sleep 2; hostsweep; sleep 2; upload; }
# the demo holds every attack, so it scans fewer ports and uploads less to
# stay under 400 KB
run_demo() { SCAN_PORTS=1-1000 UPLOAD_MB=30 with_normal 30 run_all_attacks; }

capture "$OUT/portscan.pcap" "$SCAN_FILTER or $NORMAL_HOSTS" run_portscan
capture "$OUT/hostsweep.pcap" "$SWEEP_FILTER or $NORMAL_HOSTS" run_hostsweep
capture "$OUT/upload.pcap" "$UPLOAD_FILTER or $NORMAL_HOSTS" run_upload
capture "$OUT/normal.pcap" "$NORMAL_HOSTS" run_normal
capture "$OUT/demo.pcap" "$SCAN_FILTER or $SWEEP_FILTER or $UPLOAD_FILTER or $NORMAL_HOSTS" run_demo
