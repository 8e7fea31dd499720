#!/usr/bin/env bash
# End-to-end benchmark (make bench-e2e): flowguard against goflow2 and
# nfcapd on the same NetFlow v9 and IPFIX load, and flowguard replay against
# softflowd on the same pcap. Everything runs on loopback; nothing leaves
# the machine.
#
#   bench/e2e.sh                       # the default rates, 10 s each
#   RATES="50000 100000" SECS=5 bench/e2e.sh
#
# Flows processed is what each collector counted within SETTLE (1 s) of the
# sender stopping: flowguard's flowguard_engine_flows_total (flows that went
# through decode, enrichment, windows and the rules), goflow2's
# goflow2_flow_process_nf_flowset_records_total{type="DataFlowSet"} (records
# decoded; goflow2 then writes them as protobuf, -format bin, to /dev/null),
# nfcapd's flows in the files it wrote (stopped SETTLE after the sender; it
# only stores). A queue that falls behind counts as loss. CPU per flow is
# the collector process's user+system time during the run over the flows
# it processed. The collectors run one at a time, so that they do not
# compete for the CPU with each other (the sender does).
#
#   FG_WORKERS=2 bench/e2e.sh          # engine.workers (default: the cores)
#   COLLECTORS="flowguard" bench/e2e.sh
#
# The ingest floor: RULES=none runs flowguard with no rules at all (an
# empty rules file, rules_allow_empty), so that its CPU per flow is the
# path outside the rules: recvmmsg, decode, the talkers, the pipeline
# hand-over, enrichment and the engine's clock. For example
#
#   RULES=none COLLECTORS=flowguard PROTOS=v9 RATES="400000 1200000" PCAP_SECS=0 bench/e2e.sh
#
# RULES=DIR runs the rules in DIR instead of the bundled ones.
#
# Needs: go, curl, softflowd and nfdump (Debian packages softflowd,
# nfdump); network access once, for `go install` of goflow2.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/bench/bin
RATES=${RATES:-"100000 200000 400000 800000 1200000"}
PROTOS=${PROTOS:-"v9 ipfix"}
SECS=${SECS:-10}
SETTLE=${SETTLE:-1}
FG_PORT=${FG_PORT:-32055}
FG_HTTP=${FG_HTTP:-39310}
GF_PORT=${GF_PORT:-32056}
GF_HTTP=${GF_HTTP:-38080}
SF_PORT=${SF_PORT:-32057}
NF_PORT=${NF_PORT:-32058}
FG_WORKERS=${FG_WORKERS:-0}
COLLECTORS=${COLLECTORS:-"goflow2 nfcapd flowguard"}
RULES=${RULES:-}
# The replay comparison's capture: background only, PCAP_PPS packets/s for
# PCAP_SECS seconds (4M packets, ~300 MB by default; 0 skips the replay).
PCAP_PPS=${PCAP_PPS:-20000}
PCAP_SECS=${PCAP_SECS:-200}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/flowguard-bench.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

log() { printf '%s\n' "$*" >&2; }
die() { log "e2e: $*"; exit 1; }

for tool in go curl softflowd nfcapd nfdump; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install softflowd nfdump)"
done

log "building flowguard and goflow2 into $BIN"
mkdir -p "$BIN"
go build -o "$BIN/flowguard" ./cmd/flowguard
if [[ " $COLLECTORS " == *" goflow2 "* && ! -x $BIN/goflow2 ]]; then
	GOBIN=$BIN go install github.com/netsampler/goflow2/v2/cmd/goflow2@v2.2.6
fi
FG=$BIN/flowguard
GF=$BIN/goflow2

# metric URL NAME [FILTER]: the sum of a Prometheus counter's samples whose
# line contains FILTER.
metric() {
	curl -fsS "$1" | awk -v name="$2" -v filter="${3:-}" '
		$1 ~ "^"name"({|$)" && index($0, filter) { s += $NF }
		END { printf "%.0f\n", s }'
}

wait_http() {
	for _ in $(seq 100); do
		curl -fsS "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "nothing answers on $1 (see $TMP/*.err)"
}

# stream PROTO RATE PORT: sends SECS seconds of flows; prints the flows sent
# and the seconds taken.
stream() {
	local out
	out=$("$FG" gen stream --to "127.0.0.1:$3" --proto "$1" --rate "$2" \
		--count $(($2 * SECS)) --duration "${SECS}s" --template-interval 1s)
	log "  $out"
	awk '{ for (i = 1; i <= NF; i++) { if ($i == "sent") f = $(i+1); if ($i == "in" && $(i+1) ~ /s:$/) t = $(i+1) } }
		END { sub(/s:$/, "", t); if (t ~ /ms$/) { sub(/ms$/, "", t); t /= 1000 } print f, t }' <<<"$out"
}

# cputicks PID: the process's user+system time, in clock ticks.
cputicks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# measure PID URL METRIC FILTER PORT PROTO RATE: one run; prints
# "sent processed seconds cpu-seconds".
measure() {
	local before after sent secs c0 c1
	before=$(metric "$2" "$3" "$4")
	c0=$(cputicks "$1")
	read -r sent secs < <(stream "$6" "$7" "$5")
	sleep "$SETTLE"
	after=$(metric "$2" "$3" "$4")
	c1=$(cputicks "$1")
	echo "$sent $((after - before)) $secs $(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN { print t / hz }')"
}

# measure_nfcapd PROTO RATE: one run of a fresh nfcapd, stopped SETTLE
# after the sender; prints "sent stored seconds cpu-seconds".
measure_nfcapd() {
	local dir=$TMP/nfcapd.$1.$2 pid sent secs c0 c1 stored
	mkdir -p "$dir"
	nfcapd -w "$dir" -t 3600 -b 127.0.0.1 -p "$NF_PORT" -B 8388608 >"$TMP/nfcapd.out" 2>"$TMP/nfcapd.err" &
	pid=$!
	PIDS+=("$pid")
	sleep 0.5
	c0=$(cputicks "$pid")
	read -r sent secs < <(stream "$1" "$2" "$NF_PORT")
	sleep "$SETTLE"
	c1=$(cputicks "$pid")
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null || true
	stored=$(nfdump -R "$dir" -I 2>/dev/null | awk '$1 == "Flows:" { print $2; exit }')
	rm -rf "$dir"
	echo "$sent ${stored:-0} $secs $(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN { print t / hz }')"
}

# --- collectors -----------------------------------------------------------

cat >"$TMP/flowguard.yaml" <<EOF
listen:
  - name: bench
    address: 127.0.0.1:$FG_PORT
http:
  listen: 127.0.0.1:$FG_HTTP
log:
  level: warn
engine:
  workers: $FG_WORKERS
EOF
case $RULES in
"") ;;
none)
	mkdir -p "$TMP/norules"
	echo "# no rules: the ingest floor" >"$TMP/norules/none.yaml"
	printf 'rules: [%s]\nrules_allow_empty: true\n' "$TMP/norules" >>"$TMP/flowguard.yaml"
	;;
*) printf 'rules: [%s]\n' "$(cd "$RULES" && pwd)" >>"$TMP/flowguard.yaml" ;;
esac

declare -A RESULT
run_collector() { # NAME: starts it, runs every protocol and rate, stops it
	local name=$1 url metricname filter port pid
	if [[ $name == nfcapd ]]; then
		for proto in $PROTOS; do
			for rate in $RATES; do
				log "$name $proto $rate flows/s"
				RESULT[$name,$proto,$rate]=$(measure_nfcapd "$proto" "$rate")
			done
		done
		return
	fi
	case $name in
	flowguard)
		"$FG" run -c "$TMP/flowguard.yaml" >"$TMP/flowguard.out" 2>"$TMP/flowguard.err" &
		pid=$!
		url=http://127.0.0.1:$FG_HTTP/metrics metricname=flowguard_engine_flows_total filter="" port=$FG_PORT
		;;
	goflow2)
		"$GF" -listen "netflow://127.0.0.1:$GF_PORT" -format bin -transport file -transport.file /dev/null \
			-addr "127.0.0.1:$GF_HTTP" -loglevel warn >"$TMP/goflow2.out" 2>"$TMP/goflow2.err" &
		pid=$!
		url=http://127.0.0.1:$GF_HTTP/metrics metricname=goflow2_flow_process_nf_flowset_records_total
		filter='type="DataFlowSet"' port=$GF_PORT
		;;
	esac
	PIDS+=("$pid")
	wait_http "$url"
	for proto in $PROTOS; do
		for rate in $RATES; do
			log "$name $proto $rate flows/s"
			RESULT[$name,$proto,$rate]=$(measure "$pid" "$url" "$metricname" "$filter" "$port" "$proto" "$rate")
		done
	done
	if [[ $name == flowguard ]]; then
		log "  flowguard listener flows $(metric "$url" flowguard_listener_flows_total)," \
			"kernel drops $(metric "$url" flowguard_listener_kernel_drops_total)"
	else
		log "  goflow2 dropped packets $(metric "$url" goflow2_flow_dropped_packets_total)"
	fi
	kill "$pid"
	wait "$pid" 2>/dev/null || true
}

for c in $COLLECTORS; do
	run_collector "$c"
done

# rate_loss "sent processed secs cpu": prints "sent/s processed/s loss%
# µs-of-CPU-per-flow" ("- - - -" for a collector not run).
rate_loss() {
	[[ -n $1 ]] || { echo "- - - -"; return; }
	awk '{ s = $1; p = $2; t = $3; c = $4; if (p > s) p = s
		printf "%.0f %.0f %.3f %.2f\n", s / t, p / t, (s > 0 ? 100 * (s - p) / s : 0), (p > 0 ? c / p * 1e6 : 0) }' <<<"$1"
}

# The sender shares the CPU with the collector: "sent/s" is what it
# achieved, and loss is counted against it.
printf '\nCollector throughput (%s s per run, counted within %s s of the sender stopping; flowguard engine.workers %s, rules %s)\n' \
	"$SECS" "$SETTLE" "$FG_WORKERS" "${RULES:-bundled}"
printf '%-6s %9s | %9s %11s %7s %6s | %11s %7s %6s | %11s %7s %6s\n' proto asked sent/s flowguard/s loss% us/fl \
	goflow2/s loss% us/fl nfcapd/s loss% us/fl
for proto in $PROTOS; do
	for rate in $RATES; do
		read -r fs fr fl fc < <(rate_loss "${RESULT[flowguard,$proto,$rate]:-}")
		read -r _ gr gl gc < <(rate_loss "${RESULT[goflow2,$proto,$rate]:-}")
		read -r _ nr nl nc < <(rate_loss "${RESULT[nfcapd,$proto,$rate]:-}")
		printf '%-6s %9s | %9s %11s %7s %6s | %11s %7s %6s | %11s %7s %6s\n' "$proto" "$rate" "$fs" "$fr" "$fl" "$fc" \
			"$gr" "$gl" "$gc" "$nr" "$nl" "$nc"
	done
done

# Sustained: the highest rate each processed with under 0.1% loss, and
# its CPU per flow there.
for proto in $PROTOS; do
	line="$proto sustained (<0.1% loss):"
	for c in $COLLECTORS; do
		best=0 cpu=-
		for rate in $RATES; do
			read -r _ r l u < <(rate_loss "${RESULT[$c,$proto,$rate]:-}")
			if [[ $r != - ]] && awk -v l="$l" -v r="$r" -v b="$best" 'BEGIN { exit !(l < 0.1 && r > b) }'; then
				best=$r cpu=$u
			fi
		done
		line="$line $c $best flows/s ($cpu us CPU/flow),"
	done
	printf '%s\n' "${line%,}"
done

# --- pcap replay ----------------------------------------------------------

if [[ $PCAP_SECS -le 0 ]]; then
	exit 0
fi

log "generating a ${PCAP_SECS}s capture at $PCAP_PPS packets/s"
"$FG" gen scenario -o "$TMP/big.pcap" --seed 5 --duration "${PCAP_SECS}s" --background-rate "$PCAP_PPS" --with "" 2>"$TMP/gen.err"
packets=$(awk -F'[:,]' '/"packets"/ { gsub(/ /, "", $2); print $2; exit }' "$TMP/big.pcap.truth.json")
size=$(stat -c %s "$TMP/big.pcap")
cat "$TMP/big.pcap" >/dev/null # both read it from the page cache

seconds() { # COMMAND...: wall-clock seconds
	local s e
	s=$(date +%s.%N)
	"$@" >/dev/null 2>"$TMP/timed.err" || die "$1 failed: $(tail -3 "$TMP/timed.err")"
	e=$(date +%s.%N)
	awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f\n", e - s }'
}
fsec=$(seconds "$FG" replay -q "$TMP/big.pcap")
# -c none: with a control socket, softflowd 1.1.0 -r blocks in accept()
# before reading the file.
ssec=$(seconds softflowd -d -r "$TMP/big.pcap" -n "127.0.0.1:$SF_PORT" -v 9 -p "$TMP/softflowd.pid" -c none)

printf '\nPcap replay: %s packets, %s bytes\n' "$packets" "$size"
printf '%-22s %10s %14s\n' reader seconds packets/s
printf '%-22s %10s %14.0f\n' "flowguard replay -q" "$fsec" "$(awk -v p="$packets" -v s="$fsec" 'BEGIN { print p / s }')"
printf '%-22s %10s %14.0f\n' "softflowd -r -v 9" "$ssec" "$(awk -v p="$packets" -v s="$ssec" 'BEGIN { print p / s }')"
printf 'ratio (flowguard / softflowd): %s\n' "$(awk -v a="$fsec" -v b="$ssec" 'BEGIN { printf "%.2f", b / a }')"
printf '\nmachine: %s, %s CPUs, %s\n' "$(uname -sr)" "$(nproc)" \
	"$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
