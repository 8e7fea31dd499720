#!/usr/bin/env bash
# Shared windows at live pace (make bench-redis): two `flowguard run`
# instances, fed by one load generator (bench/livegroups: NetFlow v9, the
# flows spread over LIVE_GROUPS live groups, datagrams alternating between the
# instances), with the memory store (each instance alone: the baseline),
# then sharing one redis-server, then a 3-master Redis Cluster that the
# script starts (redis-server --cluster-enabled yes on 3 ports,
# redis-cli --cluster create). Everything runs on loopback.
#
#   bench/redis.sh                                  # the default rates, 10 s each
#   RATES="100000 400000" LIVE_GROUPS=1000000 SECS=5 bench/redis.sh
#   STORES="redis" SHIP_ALL=true bench/redis.sh     # every update shipped, as before
#
# Flows processed: both instances' flowguard_engine_flows_total counted
# within SETTLE (1 s) of the sender stopping; a queue that falls behind
# counts as loss. Redis commands and bytes: the servers' INFO
# total_commands_processed (which counts the commands scripts run inside)
# and total_net_input_bytes (every master summed), per flow processed,
# heartbeat, hot sets and claims included; sent/flow: the commands the
# instances sent (flowguard_redis_commands_total: script calls and the
# heartbeat's), per flow.
#
# Needs: go, curl, redis-server, redis-cli (Debian package redis-server).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/bench/bin
RATES=${RATES:-"50000 100000 200000 400000"}
STORES=${STORES:-"memory redis cluster"}
LIVE_GROUPS=${LIVE_GROUPS:-1000000}
SECS=${SECS:-10}
SETTLE=${SETTLE:-1}
SHIP_ALL=${SHIP_ALL:-false}
FG_PORTS=(${FG_PORTS:-32517 32527})
FG_HTTP=(${FG_HTTP:-39517 39527})
REDIS_PORT=${REDIS_PORT:-36517}
CLUSTER_PORTS=(${CLUSTER_PORTS:-37517 37518 37519})

TMP=$(mktemp -d "${TMPDIR:-/tmp}/flowguard-bench-redis.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

log() { printf '%s\n' "$*" >&2; }
die() { log "bench-redis: $*"; exit 1; }

for tool in go curl redis-server redis-cli; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install redis-server)"
done

log "building flowguard and livegroups into $BIN"
mkdir -p "$BIN"
go build -o "$BIN/flowguard" ./cmd/flowguard
go build -o "$BIN/livegroups" ./bench/livegroups

metric() { # URL NAME: the sum of a Prometheus counter's samples
	curl -fsS "$1" | awk -v name="$2" '$1 ~ "^"name"({|$)" { s += $NF } END { printf "%.0f\n", s }'
}

wait_http() {
	for _ in $(seq 100); do
		curl -fsS "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "nothing answers on $1 (see $TMP/*.err)"
}

redis_info() { # FIELD PORT...: the field of INFO stats summed over the servers
	local s=0 v
	local field=$1
	shift
	for p in "$@"; do
		v=$(redis-cli -p "$p" info stats | tr -d '\r' | awk -F: -v f="$field" '$1 == f { print $2 }')
		[[ -n $v ]] || { echo -1; return; }
		s=$((s + v))
	done
	echo "$s"
}

start_redis() { # PORT [ARGS...]
	local port=$1
	shift
	mkdir -p "$TMP/redis-$port"
	redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP/redis-$port" \
		"$@" >"$TMP/redis-$port.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 100); do
		redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "redis-server on $port did not start"
}

declare -A RESULT

# run_store NAME URL PORTS...: both instances on the store, every rate.
run_store() {
	local name=$1 url=$2
	shift 2
	local ports=("$@") pids=() urls=() targets=""
	for i in 0 1; do
		{
			printf 'listen:\n  - name: bench\n    address: 127.0.0.1:%s\n' "${FG_PORTS[$i]}"
			printf 'http:\n  listen: 127.0.0.1:%s\nlog:\n  level: warn\n' "${FG_HTTP[$i]}"
			if [[ -n $url ]]; then
				printf 'store:\n  redis:\n    url: %s\n    key_prefix: "bench:"\n    ship_all: %s\n' "$url" "$SHIP_ALL"
			fi
		} >"$TMP/fg$i.yaml"
		"$BIN/flowguard" run -c "$TMP/fg$i.yaml" >"$TMP/fg$i.out" 2>"$TMP/fg$i.err" &
		pids+=($!)
		PIDS+=($!)
		urls+=("http://127.0.0.1:${FG_HTTP[$i]}/metrics")
		targets+="${targets:+,}127.0.0.1:${FG_PORTS[$i]}"
	done
	for u in "${urls[@]}"; do wait_http "$u"; done
	for rate in $RATES; do
		log "$name: $rate flows/s over $LIVE_GROUPS groups, $SECS s"
		local b0 b1 c0 n0 a0 a1 c1 n1 out sent secs
		b0=$(metric "${urls[0]}" flowguard_engine_flows_total)
		b1=$(metric "${urls[1]}" flowguard_engine_flows_total)
		local k0 k1
		k0=$(($(metric "${urls[0]}" flowguard_redis_commands_total) + $(metric "${urls[1]}" flowguard_redis_commands_total)))
		c0=0 n0=0
		if ((${#ports[@]})); then
			c0=$(redis_info total_commands_processed "${ports[@]}")
			n0=$(redis_info total_net_input_bytes "${ports[@]}")
		fi
		out=$("$BIN/livegroups" --to "$targets" --rate "$rate" --groups "$LIVE_GROUPS" --duration "${SECS}s")
		log "  $out"
		sleep "$SETTLE"
		a0=$(metric "${urls[0]}" flowguard_engine_flows_total)
		a1=$(metric "${urls[1]}" flowguard_engine_flows_total)
		k1=$(($(metric "${urls[0]}" flowguard_redis_commands_total) + $(metric "${urls[1]}" flowguard_redis_commands_total)))
		c1=0 n1=0
		if ((${#ports[@]})); then
			c1=$(redis_info total_commands_processed "${ports[@]}")
			n1=$(redis_info total_net_input_bytes "${ports[@]}")
		fi
		sent=$(awk '{ print $2 }' <<<"$out")
		secs=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "in") { t = $(i+1); sub(/:$/, "", t)
			if (t ~ /ms$/) { sub(/ms$/, "", t); t /= 1000 } else sub(/s$/, "", t); print t } }' <<<"$out")
		local dc=$((c1 - c0)) dn=$((n1 - n0))
		if ((c0 < 0 || c1 < 0)); then dc=-1; fi
		if ((n0 < 0 || n1 < 0)); then dn=-1; fi
		RESULT[$name,$rate]="$sent $((a0 - b0 + a1 - b1)) $secs $dc $dn $((k1 - k0))"
	done
	if [[ -n ${KEYS_OUT:-} && ${#ports[@]} -gt 0 ]]; then # the keys per window, to see what ships
		for p in "${ports[@]}"; do redis-cli -p "$p" --scan; done | sed 's/[|#].*//' | sort | uniq -c | sort -rn >"$KEYS_OUT.$name"
	fi
	for p in "${pids[@]}"; do kill "$p"; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}

for store in $STORES; do
	case $store in
	memory) run_store memory "" ;;
	redis)
		start_redis "$REDIS_PORT"
		run_store redis "redis://127.0.0.1:$REDIS_PORT/0" "$REDIS_PORT"
		;;
	cluster)
		for p in "${CLUSTER_PORTS[@]}"; do
			start_redis "$p" --cluster-enabled yes --cluster-config-file "$TMP/redis-$p/nodes.conf"
		done
		redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CLUSTER_PORTS[@]}") --cluster-replicas 0 \
			--cluster-yes >"$TMP/cluster-create.log" 2>&1 || die "cluster create: $(tail -3 "$TMP/cluster-create.log")"
		for _ in $(seq 100); do
			redis-cli -p "${CLUSTER_PORTS[0]}" cluster info | grep -q 'cluster_state:ok' && break
			sleep 0.1
		done
		run_store cluster "redis+cluster://$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]}" | sed 's/,$//')" "${CLUSTER_PORTS[@]}"
		;;
	*) die "unknown store $store (memory, redis, cluster)" ;;
	esac
done

printf '\nTwo flowguard instances, %s live groups, %s s per run (processed within %s s of the sender stopping); ship_all: %s\n' \
	"$LIVE_GROUPS" "$SECS" "$SETTLE" "$SHIP_ALL"
printf '%-8s %9s | %9s %12s %7s | %10s %11s %10s\n' store asked sent/s processed/s loss% cmds/flow bytes/flow sent/flow
for store in $STORES; do
	for rate in $RATES; do
		read -r sent proc secs cmds bytes client <<<"${RESULT[$store,$rate]}"
		awk -v st="$store" -v r="$rate" -v s="$sent" -v p="$proc" -v t="$secs" -v c="$cmds" -v b="$bytes" -v k="$client" 'BEGIN {
			if (p > s) p = s
			# A server too busy to answer INFO in time leaves the counts unknown.
			cf = (st == "memory" || p == 0 || c < 0) ? "-" : sprintf("%.5f", c / p)
			bf = (st == "memory" || p == 0 || b < 0) ? "-" : sprintf("%.2f", b / p)
			kf = (st == "memory" || p == 0) ? "-" : sprintf("%.5f", k / p)
			printf "%-8s %9s | %9.0f %12.0f %7.3f | %10s %11s %10s\n", st, r, s / t, p / t, (s > 0 ? 100 * (s - p) / s : 0), cf, bf, kf }'
	done
done
