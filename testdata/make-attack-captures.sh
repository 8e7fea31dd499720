#!/usr/bin/env bash
# make-attack-captures.sh reproduces the attack captures in this folder:
# floods by class, reflection, a distributed scan and a brute force, made
# with real tools (hping3, nmap, python sockets).
#
#   sudo testdata/make-attack-captures.sh [OUTDIR]   (default: this folder)
#
# Needs root (it creates a network namespace: `ip netns add`), iproute2,
# tcpdump, hping3, nmap and python3. Everything runs inside a private
# namespace whose only interface is its own loopback, so not one packet,
# spoofed or not, can leave it: --rand-source sources answered by the
# victim have no route and are dropped there. Every generator is bounded by
# a count and by `timeout`; tcpdump keeps 128 bytes a packet (-s 128).
#
# Addresses (see README.md, "Attack captures"):
#   127.0.0.41         -> 127.0.0.40:80   hping3 SYN flood, source port +1 a packet
#   random sources     -> 127.0.0.40:80   hping3 SYN flood --rand-source
#   127.0.0.42:1111..4 -> 127.0.0.40:80   hping3 SYN flood from 4 fixed source ports
#   127.0.0.43         -> 127.0.0.44:9999 hping3 UDP flood
#   127.0.0.45         -> 127.0.0.46      hping3 ICMP echo flood
#   127.0.0.52         -> 127.0.0.53:9999 hping3 UDP flood in 256-byte fragments
#   127.0.3.1-40:53    -> 127.0.0.47      DNS reflection (3,000-byte answers)
#   127.0.4.1-40:123   -> 127.0.0.48      NTP monlist reflection (100 x 468 bytes)
#   127.0.2.1-25       -> 127.0.0.49      nmap -sS, 40 ports from each source
#   127.0.0.51         -> 127.0.0.50:22   SSH brute force (150 short logins)
set -euo pipefail

OUT=$(cd "${1:-$(dirname "$0")}" && pwd)
NS=flowguard-attacks-$$
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
# every 127.0.0.0/8 address is local on lo; the reflectors and the brute
# force bind to their own addresses

# capture FILE CMD...: runs CMD in the namespace while tcpdump writes FILE.
capture() {
	local file=$1
	shift
	# not through inns: $! must be the process that gets the signal
	ip netns exec "$NS" timeout 120 tcpdump -i lo -s 128 -U -n -w "$file.tmp" 2>"$WORK/tcpdump.err" &
	local td=$!
	sleep 1.5
	"$@"
	sleep 1.5
	# TERM, not INT: a background job of a script ignores SIGINT
	kill -TERM "$td"
	wait "$td" || true
	cat "$WORK/tcpdump.err" >&2
	mv "$file.tmp" "$file"
	echo "$(basename "$file"): $(stat -c %s "$file") bytes" >&2
}

# a web server for the SYN floods to hit: it answers SYN/ACK (then SYN
# cookies once its backlog is full), and the attacker's kernel answers each
# SYN/ACK with RST, so the attack's flows read SYN|RST as on the Internet.
inns timeout 300 python3 -m http.server --bind 127.0.0.40 --directory "$WORK" 80 >/dev/null 2>&1 &

cat >"$WORK/reflectors.py" <<'PY'
# DNS and NTP reflectors on 40 addresses each, and the spoofed requests
# that make them answer the victims. A DNS ANY answer with EDNS is about
# 3,000 bytes; an NTP monlist answer is up to 100 packets of 440 bytes.
import select, socket, time
dns = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(40)]
ntp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(40)]
for i, s in enumerate(dns):
    s.bind(("127.0.3.%d" % (i + 1), 53))
for i, s in enumerate(ntp):
    s.bind(("127.0.4.%d" % (i + 1), 123))
# the "attacker" sends with the victims' addresses as source
v_dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v_dns.bind(("127.0.0.47", 33333))
v_ntp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v_ntp.bind(("127.0.0.48", 44444))
query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\x03isc\x03org\x00\x00\xff\x00\x01" + b"\x00\x00\x29\x10\x00\x00\x00\x80\x00\x00\x00"
monlist = b"\x17\x00\x03\x2a" + b"\x00" * 44
sent = 0
def serve(deadline):
    while True:
        r, _, _ = select.select(dns + ntp, [], [], max(0, deadline - time.time()))
        if not r:
            return
        for s in r:
            data, peer = s.recvfrom(2048)
            if s in dns:
                s.sendto(data[:2] + b"\x81\x80" + b"\x00" * 2996, peer)
            else:
                for _ in range(100):
                    s.sendto(b"\xd7\x00\x03\x2a" + b"\x00" * 436, peer)
                    time.sleep(0.0004)
for rnd in range(40):  # DNS: 40 rounds over the 40 reflectors, 1,600 answers
    for i in range(40):
        v_dns.sendto(query, ("127.0.3.%d" % (i + 1), 53))
    serve(time.time() + 0.05)
for i in range(40):  # NTP: one monlist to each reflector, 4,000 answers
    v_ntp.sendto(monlist, ("127.0.4.%d" % (i + 1), 123))
    serve(time.time() + 0.01)
serve(time.time() + 0.5)
PY

cat >"$WORK/sshd.py" <<'PY'
# a stand-in for sshd at the connection level: banner, read the client's
# banner and "password", refuse, close.
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.50", 22)); s.listen(128)
while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        c.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
        buf = b""
        while b"password" not in buf and len(buf) < 2048:
            d = c.recv(1024)
            if not d:
                break
            buf += d
        c.sendall(b"\x00\x00\x00\x0c\x0a\x33" + b"\x00" * 10)  # a failure, in size
    except OSError:
        pass
    c.close()
PY
cat >"$WORK/brute.py" <<'PY'
# 150 login attempts, one connection each, about 30 a second
import socket, time
for i in range(150):
    c = socket.socket(); c.bind(("127.0.0.51", 0)); c.settimeout(2)
    try:
        c.connect(("127.0.0.50", 22))
        c.recv(256)
        c.sendall(b"SSH-2.0-libssh_0.9.6\r\n" + b"\x00\x00\x00\x2c\x06\x32" + b"root:password%03d" % i + b"\x00" * 24)
        c.recv(256)
    except OSError:
        pass
    c.close()
    time.sleep(0.03)
PY
inns timeout 300 python3 "$WORK/sshd.py" &
sleep 1

synflood() { inns timeout 30 hping3 -q -S -p 80 -a 127.0.0.41 -i u400 -c 4000 127.0.0.40 >/dev/null 2>&1 || true; }
synflood_randsrc() { inns timeout 30 hping3 -q -S -p 80 --rand-source -i u400 -c 5000 127.0.0.40 >/dev/null 2>&1 || true; }
synflood_ports() {
	local p pids=()
	for p in 1111 1112 1113 1114; do
		inns timeout 30 hping3 -q -S -p 80 -a 127.0.0.42 -s "$p" -k -i u1600 -c 1500 127.0.0.40 >/dev/null 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}" || true
}
udpflood() { inns timeout 30 hping3 -q --udp -p 9999 -a 127.0.0.43 -d 32 -i u300 -c 5000 127.0.0.44 >/dev/null 2>&1 || true; }
fragflood() { inns timeout 30 hping3 -q --udp -p 9999 -a 127.0.0.52 -f -m 256 -d 768 -i u1000 -c 1500 127.0.0.53 >/dev/null 2>&1 || true; }
icmpflood() { inns timeout 30 hping3 -q --icmp -a 127.0.0.45 -d 16 -i u300 -c 5000 127.0.0.46 >/dev/null 2>&1 || true; }
reflection() { inns timeout 60 python3 "$WORK/reflectors.py" || true; }
dscan() {
	local i pids=()
	for i in $(seq 25); do
		inns timeout 60 nmap -n -sS -p "$(((i - 1) * 40 + 1))-$((i * 40))" -S "127.0.2.$i" -e lo -Pn \
			--max-rate 100 --max-retries 1 127.0.0.49 >/dev/null &
		pids+=($!)
	done
	wait "${pids[@]}" || true
}
bruteforce() { inns timeout 60 python3 "$WORK/brute.py" || true; }

capture "$OUT/synflood.pcap" synflood
capture "$OUT/synflood-randsrc.pcap" synflood_randsrc
capture "$OUT/synflood-ports.pcap" synflood_ports
capture "$OUT/udpflood.pcap" udpflood
capture "$OUT/icmpflood.pcap" icmpflood
capture "$OUT/fragflood.pcap" fragflood
capture "$OUT/reflection.pcap" reflection
capture "$OUT/dscan.pcap" dscan
capture "$OUT/bruteforce.pcap" bruteforce
