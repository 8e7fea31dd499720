#!/usr/bin/env python3
"""Writes the rule pack's test cases: tests/<case>/flows.jsonl.

Each case is a small scenario in flowguard's flow JSON (the names users
write in rules). The expected alerts (expected.jsonl) are written by hand
from the scenario's design, not from flowguard's output. Deterministic:
run it again and the files do not change.
"""
import json, os, random
from datetime import datetime, timedelta, timezone

T0 = datetime(2026, 11, 2, 9, 0, 0, tzinfo=timezone.utc)
HERE = os.path.dirname(os.path.abspath(__file__))


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def fl(t, src, dst, sport, dport, proto=6, flags=0x1b, packets=10, nbytes=4000, rate=1, dur=1.0, **extra):
    f = {"type": "FILE", "time_flow_start": ts(t - timedelta(seconds=dur)), "time_flow_end": ts(t),
         "src_addr": src, "dst_addr": dst, "src_port": sport, "dst_port": dport, "proto": proto,
         "sampling_rate": rate, "raw_packets": packets, "raw_bytes": nbytes,
         "packets": packets * rate, "bytes": nbytes * rate}
    if proto == 6:
        f["tcp_flags"] = flags
    f.update(extra)
    return f


def background(rng, t, n, span):
    """Ordinary traffic: web and DNS from internal clients to a few servers."""
    out = []
    for i in range(n):
        at = t + timedelta(seconds=span * i / n)
        c = "10.10.%d.%d" % (rng.randrange(4), rng.randrange(1, 250))
        if rng.random() < 0.7:
            out.append(fl(at, c, "93.184.216.%d" % rng.randrange(1, 20), rng.randrange(32768, 60999), 443,
                          packets=rng.randrange(6, 60), nbytes=rng.randrange(2000, 90000)))
        else:
            out.append(fl(at, c, "10.0.0.53", rng.randrange(32768, 60999), 53, proto=17, packets=1, nbytes=70))
    return out


def write(case, flows):
    d = os.path.join(HERE, case)
    os.makedirs(d, exist_ok=True)
    flows.sort(key=lambda f: f["time_flow_end"])
    with open(os.path.join(d, "flows.jsonl"), "w") as w:
        for f in flows:
            w.write(json.dumps(f, separators=(",", ":")) + "\n")


def main():
    rng = random.Random(42)
    SYN = 0x02

    # 150 SYN probes from one outside host to one server in 30 s; an
    # allowed scanner does the same and must not alert.
    flows = background(rng, T0, 200, 60)
    for i in range(150):
        at = T0 + timedelta(seconds=0.2 * i)
        flows.append(fl(at, "203.0.113.50", "10.1.2.3", 51000, 1 + i, flags=SYN, packets=1, nbytes=44, dur=0))
        flows.append(fl(at, "192.0.2.10", "10.1.2.4", 52000, 1 + i, flags=SYN, packets=1, nbytes=44, dur=0))
    write("vertical-port-scan", flows)

    # One internal host probes SMB on 80 hosts; another touches SSH on 10.
    flows = background(rng, T0, 200, 120)
    for i in range(80):
        flows.append(fl(T0 + timedelta(seconds=i), "10.9.9.9", "10.1.0.%d" % (i + 1), 40000 + i, 445,
                        flags=SYN, packets=2, nbytes=88))
    for i in range(10):
        flows.append(fl(T0 + timedelta(seconds=i), "10.8.8.8", "10.1.0.%d" % (i + 1), 41000 + i, 22,
                        flags=SYN, packets=1, nbytes=44))
    write("horizontal-host-sweep", flows)

    # Five hosts each upload 6 MB; then one host sends 25 x 1 MB to one
    # outside address over 5 minutes: 20 MB is crossed at the 20th flow.
    flows = background(rng, T0, 100, 300)
    for h in range(5):
        for k in range(6):
            flows.append(fl(T0 + timedelta(seconds=h * 6 + k), "10.20.0.%d" % (h + 1), "198.51.100.%d" % (h + 1),
                            45000 + k, 443, packets=700, nbytes=1_000_000))
    for k in range(25):
        flows.append(fl(T0 + timedelta(seconds=40 + 10 * k), "10.1.1.1", "198.51.100.7", 46000 + k, 443,
                        packets=700, nbytes=1_000_000))
    write("outbound-exfiltration", flows)

    # One host sends 2 MB to each of 30 destinations (60 MB, no single
    # destination near the exfiltration threshold) while others send 10 MB.
    flows = background(rng, T0, 100, 200)
    for k in range(30):
        flows.append(fl(T0 + timedelta(seconds=5 * k), "10.2.2.2", "203.0.113.%d" % (k + 1), 47000 + k, 443,
                        packets=1400, nbytes=2_000_000))
    for k in range(10):
        flows.append(fl(T0 + timedelta(seconds=7 * k), "10.3.0.%d" % (k + 1), "93.184.216.34", 48000 + k, 443,
                        packets=700, nbytes=1_000_000))
    write("heavy-hitter", flows)

    # 100 outside sources send 15,000 small UDP packets each to one server
    # within 8 s: 1.5M packets, 100k pps crossed; 64-byte packets keep the
    # bit rate far below 1 Gbps.
    flows = background(rng, T0, 100, 20)
    for k in range(100):
        flows.append(fl(T0 + timedelta(seconds=0.08 * k), "198.18.%d.%d" % (k // 250, k % 250 + 1), "10.3.3.3",
                        1024 + k, 53, proto=17, packets=15000, nbytes=15000 * 64, dur=0.5))
    write("inbound-flood-pps", flows)

    # 25 outside sources send 100 MB each to one server within 8 s in
    # 9000-byte packets: 2.5 GB (2 Gbps over 10 s) but only ~28k pps.
    flows = background(rng, T0, 100, 20)
    for k in range(25):
        flows.append(fl(T0 + timedelta(seconds=0.32 * k), "198.19.0.%d" % (k + 1), "10.3.3.4", 2000 + k, 443,
                        packets=100_000_000 // 9000, nbytes=100_000_000, dur=0.5))
    write("inbound-flood-bps", flows)

    # A SYN flood seen through 1:100 sampling: 300 sampled SYN flows in 10 s
    # stand for 30,000 flows, 3,000 a second.
    flows = background(rng, T0, 100, 20)
    for k in range(300):
        flows.append(fl(T0 + timedelta(seconds=k / 30), "%d.%d.%d.%d" % (rng.randrange(1, 200), rng.randrange(256),
                        rng.randrange(256), rng.randrange(1, 255)), "10.4.4.4", rng.randrange(1024, 65535), 80,
                        flags=SYN, packets=1, nbytes=60, rate=100, dur=0))
    write("syn-flood", flows)

    # Telnet and SMB to outside hosts alert; the same ports inside do not.
    flows = background(rng, T0, 100, 60)
    flows.append(fl(T0 + timedelta(seconds=3), "10.5.5.5", "198.51.100.23", 50001, 23, flags=SYN | 0x10 | 0x08))
    flows.append(fl(T0 + timedelta(seconds=4), "10.5.5.5", "198.51.100.23", 50002, 23, flags=SYN | 0x10 | 0x08))
    flows.append(fl(T0 + timedelta(seconds=5), "10.5.5.6", "198.51.100.24", 50003, 445, flags=SYN | 0x10))
    # A SYN probe alone is no connection: no alert.
    flows.append(fl(T0 + timedelta(seconds=5), "10.5.5.7", "198.51.100.25", 50005, 445, flags=SYN, packets=1))
    flows.append(fl(T0 + timedelta(seconds=6), "10.5.5.5", "10.6.6.6", 50004, 23, flags=SYN | 0x10))
    write("forbidden-port-outbound", flows)

    # Enrichment fields given in the flows (as GeoIP would set them).
    flows = background(rng, T0, 50, 30)
    flows.append(fl(T0 + timedelta(seconds=10), "10.7.7.7", "175.45.176.1", 50100, 443, dst_country="KP",
                    src_country=""))
    flows.append(fl(T0 + timedelta(seconds=11), "10.7.7.8", "81.2.69.142", 50101, 443, dst_country="GB"))
    write("blocked-country", flows)

    flows = background(rng, T0, 50, 30)
    flows.append(fl(T0 + timedelta(seconds=12), "10.7.7.9", "192.0.2.66", 50200, 443,
                    dst_lists=["spamhaus-drop"]))
    write("threat-list-hit", flows)

    # Only ordinary traffic: nothing may alert.
    write("ordinary-traffic", background(rng, T0, 2000, 600))

    attacks(random.Random(1498))


def attacks(rng):
    """Cases of the attack rules (floods by class, amplification,
    distributed scans, brute force), each with its quirks, and lookalikes
    that must not fire."""
    SYN, RST, ACK, PSH, FIN = 0x02, 0x04, 0x10, 0x08, 0x01

    # hping3-like SYN flood on 10.4.4.5:443 from 4 reused source ports: 4
    # flows reading SYN|RST (the attacker's kernel resets each SYN/ACK),
    # 600 packets each per second, for 3 s: 2,400 SYN/s, 720 over 10 s.
    flows = background(rng, T0, 100, 20)
    for sec in range(3):
        for k in range(4):
            flows.append(fl(T0 + timedelta(seconds=sec + 1), "198.51.100.77", "10.4.4.5", 1111 + k, 443,
                            flags=SYN | RST, packets=600, nbytes=600 * 40))
    write("syn-flood-port-reuse", flows)

    # UDP flood: 8,000 datagrams from 500 spoofed sources to 10.3.3.9:9999
    # in 2 s (1,600 pps over 5 s); the bps twin: 300 MB of 1,400-byte UDP
    # to 10.3.3.10 in 10 s (240 Mbps) from 20 sources.
    flows = background(rng, T0, 100, 20)
    for i in range(500):
        flows.append(fl(T0 + timedelta(seconds=2 * i / 500), "203.0.%d.%d" % (i // 250, i % 250 + 1), "10.3.3.9",
                        rng.randrange(1024, 65535), 9999, proto=17, packets=16, nbytes=16 * 92))
    write("udp-flood", flows)
    flows = background(rng, T0, 100, 20)
    for i in range(100):
        flows.append(fl(T0 + timedelta(seconds=i / 10), "198.18.1.%d" % (i % 20 + 1), "10.3.3.10",
                        40000 + i, 5004, proto=17, packets=2143, nbytes=3_000_000))
    write("udp-flood-bps", flows)

    # ICMP echo flood: 6,000 echo requests (dst_port 2048) in 3 s to
    # 10.3.3.11; the bps twin: 1,400-byte pings at 80 Mbps to 10.3.3.12.
    flows = background(rng, T0, 100, 20)
    for i in range(60):
        flows.append(fl(T0 + timedelta(seconds=i / 20), "192.0.2.%d" % (i + 1), "10.3.3.11", 0, 2048,
                        proto=1, packets=100, nbytes=100 * 84))
    write("icmp-flood", flows)
    flows = background(rng, T0, 100, 20)
    for i in range(100):
        flows.append(fl(T0 + timedelta(seconds=i / 10), "192.0.2.200", "10.3.3.12", 0, 2048,
                        proto=1, packets=714, nbytes=1_000_000))
    write("icmp-flood-bps", flows)

    # DNS amplification on 10.7.7.7: 200 open resolvers answer from port
    # 53 with 3,000-byte answers, 10 each in 5 s (6 MB, 4.8 Mbps over
    # 10 s). Both the volume and the reflector count fire.
    flows = background(rng, T0, 100, 20)
    for i in range(200):
        flows.append(fl(T0 + timedelta(seconds=5 * i / 200), "151.%d.%d.9" % (70 + i % 50, i), "10.7.7.7",
                        53, 33333, proto=17, packets=10, nbytes=30000))
    write("amplification-dns", flows)

    # memcached amplification from 3 reflectors only (volume, not count):
    # 3 x 20 MB in 2 s.
    flows = background(rng, T0, 100, 20)
    for i in range(3):
        flows.append(fl(T0 + timedelta(seconds=1 + i / 2), "198.51.100.%d" % (i + 11), "10.7.7.8",
                        11211, 80, proto=17, packets=14000, nbytes=20_000_000))
    write("amplification-memcached", flows)

    # Fragment flood: 3,000 later fragments (ports 0 and 0) of UDP from
    # 50 sources to 10.3.3.13 in 2 s (600 per second over 5 s).
    flows = background(rng, T0, 100, 20)
    for i in range(50):
        flows.append(fl(T0 + timedelta(seconds=2 * i / 50), "192.0.2.%d" % (i + 100), "10.3.3.13", 0, 0,
                        proto=17, packets=60, nbytes=60 * 276))
    write("fragment-flood", flows)

    # Distributed scan: 30 sources probe 10 ports each of 10.2.2.2 (300
    # ports, each source far below vertical-port-scan's 100).
    flows = background(rng, T0, 100, 60)
    for s_ in range(30):
        for p in range(10):
            flows.append(fl(T0 + timedelta(seconds=s_ + p / 10), "45.%d.1.1" % (s_ + 1), "10.2.2.2",
                            40000 + s_, 1 + s_ * 10 + p, flags=SYN, packets=1, nbytes=44))
    write("distributed-port-scan", flows)

    # SSH brute force: 60 short logins (8 packets each) from one source to
    # 10.8.8.8:22 in 40 s; RDP spraying: one source, 3 tries on each of 25
    # hosts of 10.9.9.0/24 on 3389 in 5 minutes.
    flows = background(rng, T0, 100, 60)
    for i in range(60):
        flows.append(fl(T0 + timedelta(seconds=i * 0.66), "185.220.1.9", "10.8.8.8", 50000 + i, 22,
                        flags=SYN | ACK | PSH | FIN, packets=8, nbytes=1100))
    write("login-brute-force", flows)
    flows = background(rng, T0, 100, 300)
    for h in range(25):
        for k in range(3):
            flows.append(fl(T0 + timedelta(seconds=h * 12 + k), "185.220.1.10", "10.9.9.%d" % (h + 1),
                            51000 + h * 3 + k, 3389, flags=SYN | ACK | PSH | FIN, packets=12, nbytes=2500))
    write("login-spraying", flows)

    # Lookalikes that must not fire: a client's DNS answers from 3
    # resolvers and NTP from 8 servers; echo replies coming back to a
    # monitoring host; 10 SSH logins and a long session from one admin; a
    # busy web server's completed connections; a scan of 50 ports.
    flows = background(rng, T0, 200, 60)
    for i in range(300):
        flows.append(fl(T0 + timedelta(seconds=i / 5), "9.9.9.%d" % (i % 3 + 1), "10.10.0.9",
                        53, 30000 + i, proto=17, packets=1, nbytes=300))
    for i in range(8):
        flows.append(fl(T0 + timedelta(seconds=i), "162.159.200.%d" % (i + 1), "10.10.0.9", 123, 123,
                        proto=17, packets=1, nbytes=76))
    for i in range(50):
        flows.append(fl(T0 + timedelta(seconds=i), "198.51.100.%d" % (i + 1), "10.10.0.50", 0, 0,
                        proto=1, packets=10, nbytes=840))
    for i in range(10):
        flows.append(fl(T0 + timedelta(seconds=i * 5), "203.0.113.5", "10.8.8.9", 52000 + i, 22,
                        flags=SYN | ACK | PSH | FIN, packets=20, nbytes=4000))
    flows.append(fl(T0 + timedelta(seconds=59), "203.0.113.5", "10.8.8.9", 52100, 22,
                    flags=SYN | ACK | PSH, packets=5000, nbytes=400000, dur=58))
    for i in range(2000):
        flows.append(fl(T0 + timedelta(seconds=i / 40), "151.%d.%d.7" % (64 + i % 60, i % 200), "10.20.0.80",
                        rng.randrange(1024, 65535), 443, packets=12, nbytes=3000))
    for p in range(50):
        flows.append(fl(T0 + timedelta(seconds=30 + p / 10), "45.99.1.1", "10.2.2.3", 40000, 1 + p,
                        flags=SYN, packets=1, nbytes=44))
    write("attack-lookalikes", flows)

    learning_cases(rng)


def learning_cases(rng):
    """Cases of the rules that learn (learning.yaml): long, sparse inputs."""
    # A host that sends about 1 MB per 10 minutes (in flows every 30 s to
    # a few outside addresses) for 3 hours, then ten times as much: the
    # baseline fires once. No destination nears the fixed 20 MB rule.
    flows = background(rng, T0, 100, 3 * 3600)
    for i in range(int(3.5 * 120)):
        at = T0 + timedelta(seconds=30 * i)
        per = 50_000 if i < 360 else 500_000
        flows.append(fl(at, "10.30.0.5", "198.51.100.%d" % (60 + rng.randrange(8)), 40000 + i % 20000, 443,
                        packets=per // 1400, nbytes=int(per * rng.uniform(0.8, 1.2))))
    write("exfiltration-above-normal", flows)

    # Must not fire: a host that always sends about 15 MB per 10 minutes
    # (above the 5 MB floor, spread over 5 destinations), and one whose
    # volume drifts from 3 MB to 9 MB per 10 minutes over 5 hours. Each
    # flow goes to a destination picked at random, so that no pair repeats
    # at a regular interval (a beacon).
    flows = background(rng, T0, 100, 5 * 3600)
    for i in range(5 * 120):
        at = T0 + timedelta(seconds=30 * i)
        busy = int(750_000 * rng.uniform(0.85, 1.15))
        flows.append(fl(at, "10.30.0.6", "198.51.100.%d" % (70 + rng.randrange(5)), 41000 + i, 443,
                        packets=busy // 1400, nbytes=busy))
        drift = int(150_000 * 3 ** (i / 600) * rng.uniform(0.85, 1.15))
        flows.append(fl(at, "10.30.0.7", "198.51.100.%d" % (80 + rng.randrange(5)), 42000 + i, 443,
                        packets=drift // 1400, nbytes=drift))
    write("baseline-busy-and-drift", flows)

    # A server talks to Germany, the US and the Netherlands for four days,
    # then to Russia (a new country and a new ASN), and to Germany again
    # (known). Another server, first seen on the last day, talks to China:
    # still learning, no alert.
    flows = []
    known = [("DE", 3320, "80.150.6.1"), ("US", 15169, "142.250.1.1"), ("NL", 1136, "145.7.1.1")]
    for i in range(4 * 24 * 3):
        c, asn, ip = known[rng.randrange(3)]
        flows.append(fl(T0 + timedelta(minutes=20 * i), "10.40.0.10", ip, 43000 + i, 443, dst_country=c,
                        dst_asn=asn))
    end = T0 + timedelta(days=4)
    flows.append(fl(end + timedelta(minutes=1), "10.40.0.10", "95.213.1.1", 44000, 443, dst_country="RU",
                    dst_asn=12389))
    flows.append(fl(end + timedelta(minutes=2), "10.40.0.10", "80.150.6.1", 44001, 443, dst_country="DE",
                    dst_asn=3320))
    flows.append(fl(end + timedelta(minutes=3), "10.40.0.11", "80.150.6.1", 44002, 443, dst_country="DE",
                    dst_asn=3320))
    flows.append(fl(end + timedelta(minutes=4), "10.40.0.11", "36.110.1.1", 44003, 443, dst_country="CN",
                    dst_asn=4134))
    for k in range(3):  # keep the clock moving past the last flows
        flows.append(fl(end + timedelta(minutes=5, seconds=k), "10.40.0.10", "80.150.6.1", 44010 + k, 443,
                        dst_country="DE", dst_asn=3320))
    write("server-new-country", flows)

    # An internal host calls an outside address every 60 s (+-10%) for 20
    # minutes with about the same bytes each time: one beacon alert. Must
    # not fire: NTP every 64 s and DNS every 30 s (polling by design), a
    # beacon-like poll of an internal server, and a host browsing one site
    # at random intervals.
    flows = background(rng, T0, 200, 1200)
    at = T0
    for i in range(20):
        at += timedelta(seconds=60 * rng.uniform(0.9, 1.1))
        flows.append(fl(at, "10.50.0.20", "203.0.113.77", 50000 + i, 443, packets=8,
                        nbytes=rng.randrange(1900, 2100), dur=0.3))
    for i in range(19):
        flows.append(fl(T0 + timedelta(seconds=64 * i), "10.50.0.21", "162.159.200.1", 123, 123, proto=17,
                        packets=1, nbytes=76))
    for i in range(40):
        flows.append(fl(T0 + timedelta(seconds=30 * i), "10.50.0.21", "9.9.9.9", 33000 + i, 53, proto=17,
                        packets=1, nbytes=70))
        flows.append(fl(T0 + timedelta(seconds=30 * i), "10.50.0.22", "10.0.0.80", 51000 + i, 8080,
                        packets=6, nbytes=900))
    at = T0
    while at < T0 + timedelta(seconds=1200):
        at += timedelta(seconds=rng.expovariate(1 / 20))
        flows.append(fl(at, "10.50.0.23", "93.184.216.50", rng.randrange(32768, 60999), 443,
                        packets=rng.randrange(6, 60), nbytes=rng.randrange(2000, 90000)))
    write("beaconing", flows)


if __name__ == "__main__":
    main()
