#!/usr/bin/env bash
# make-beacon-capture.sh reproduces beacon.pcap: a command-and-control
# style beacon among ordinary traffic, for the beacon rule.
#
#   sudo testdata/make-beacon-capture.sh [OUTDIR] [SECONDS]   (default: this folder, 300)
#
# Needs root (a private network namespace: `ip netns add`), iproute2,
# tcpdump and python3. Everything runs inside the namespace, whose only
# interface is its own loopback carrying the addresses below, so nothing
# leaves it; every process is bounded by `timeout`. tcpdump keeps 96 bytes
# a packet (-s 96): flows take their bytes from the IP headers.
#
# Addresses (inside the namespace only; 10.77.0.0/24 stands for internal
# hosts, the documentation ranges for the outside):
#   10.77.0.2 -> 203.0.113.80:8080   the beacon: an HTTP GET on a new
#                                   connection every 5 s +-10%, ~same size
#   10.77.0.3 -> 198.51.100.20:8000  browsing: GETs of pages of random sizes
#                                   at random (exponential) intervals, mean 3 s
#   10.77.0.3 -> 198.51.100.53:53    DNS-like: a UDP query every 5 s, answered
#   10.77.0.3 -> 198.51.100.123:123  NTP-like: a 48-byte UDP poll every 8 s, answered
set -euo pipefail

OUT=$(cd "${1:-$(dirname "$0")}" && pwd)
SECONDS_RUN=${2:-300}
NS=flowguard-beacon-$$
WORK=$(mktemp -d)
ip netns add "$NS"
cleanup() {
	ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
inns() { ip netns exec "$NS" "$@"; }
inns ip link set lo up
for a in 10.77.0.2 10.77.0.3 203.0.113.80 198.51.100.20 198.51.100.53 198.51.100.123; do
	inns ip addr add "$a/32" dev lo
done

# Pages for the web server: 20 files of 1 to 20 kB.
mkdir -p "$WORK/site"
for i in $(seq 1 20); do head -c $((i * 1000)) /dev/zero | tr '\0' 'x' >"$WORK/site/p$i.html"; done
echo ok >"$WORK/site/beacon"

LIMIT=$((SECONDS_RUN + 30))
inns timeout "$LIMIT" python3 -m http.server --bind 203.0.113.80 --directory "$WORK/site" 8080 >/dev/null 2>&1 &
inns timeout "$LIMIT" python3 -m http.server --bind 198.51.100.20 --directory "$WORK/site" 8000 >/dev/null 2>&1 &
cat >"$WORK/udp.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data + b"\0" * int(sys.argv[3]), peer)
PY
inns timeout "$LIMIT" python3 "$WORK/udp.py" 198.51.100.53 53 64 &
inns timeout "$LIMIT" python3 "$WORK/udp.py" 198.51.100.123 123 0 &

cat >"$WORK/clients.py" <<'PY'
import http.client, random, socket, sys, threading, time

END = time.time() + float(sys.argv[1])
rng = random.Random(7)

def get(src, host, port, path):
    c = http.client.HTTPConnection(host, port, timeout=5, source_address=(src, 0))
    try:
        c.request("GET", path)
        c.getresponse().read()
    except OSError as e:
        print("GET", host, path, e, file=sys.stderr)
    finally:
        c.close()

def beacon():
    while time.time() < END:
        get("10.77.0.2", "203.0.113.80", 8080, "/beacon")
        time.sleep(5 * rng.uniform(0.9, 1.1))

def browse():
    r = random.Random(11)
    while time.time() < END:
        get("10.77.0.3", "198.51.100.20", 8000, "/p%d.html" % r.randint(1, 20))
        time.sleep(r.expovariate(1 / 3))

def udp(dst, port, sport, size, every):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("10.77.0.3", sport))
    s.settimeout(1)
    while time.time() < END:
        s.sendto(b"q" * size, (dst, port))
        try:
            s.recvfrom(2048)
        except OSError:
            pass
        time.sleep(every)

ts = [threading.Thread(target=beacon), threading.Thread(target=browse),
      threading.Thread(target=udp, args=("198.51.100.53", 53, 0, 30, 5)),
      threading.Thread(target=udp, args=("198.51.100.123", 123, 123, 48, 8))]
for t in ts:
    t.start()
for t in ts:
    t.join()
PY
sleep 1
file="$OUT/beacon.pcap"
# not through inns: $! must be the process that gets the signal
ip netns exec "$NS" timeout "$LIMIT" tcpdump -i lo -s 96 -U -n -w "$file.tmp" net 10.77.0.0/24 2>"$WORK/tcpdump.err" &
td=$!
sleep 1.5
inns timeout "$LIMIT" python3 "$WORK/clients.py" "$SECONDS_RUN"
sleep 1.5
kill -TERM "$td"
wait "$td" || true
cat "$WORK/tcpdump.err" >&2
mv "$file.tmp" "$file"
echo "$(basename "$file"): $(stat -c %s "$file") bytes" >&2
