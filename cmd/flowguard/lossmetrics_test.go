package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// The losses /metrics reports, each caused for real: Redis killed under a
// running daemon, Redis refusing writes, the bound on pending deltas
// reached, a webhook notifier's rate limit. (Flows without time are
// daemon/notime_test.go's.)

// redisStore is the store section of a daemon flushing to the Redis at
// addr every 100 ms, with extra settings.
func redisStore(addr, extra string) string {
	return fmt.Sprintf("store: {redis: {url: \"redis://%s/0\", flush_interval: 100ms%s}}\nreload: {watch: 0s}\n", addr, extra)
}

// Redis killed: the next flush's heartbeat finds it gone (an outage),
// and the deltas of the flows that come after wait for its return, up to
// max_pending. (ship_all: the 200 flows are far below every threshold, and
// would stay local.) flowguard_redis_lost_total counts the deltas of a
// flush whose heartbeat answered but whose scripts did not.
func TestRedisOutageMetrics(t *testing.T) {
	addr, redis := startRedisProc(t)
	d := startDaemon(t, redisStore(addr, ", ship_all: true"))
	redis.Process.Kill()
	redis.Wait()
	d.waitMetric(t, "flowguard_redis_outages_total", 1)
	sendFlows(t, d, 200)
	d.waitMetric(t, "flowguard_redis_pending", 1)
	if v := d.metric(t, "flowguard_redis_connected"); v != 0 {
		t.Errorf("flowguard_redis_connected %v, want 0", v)
	}
	d.stop(t)
}

// Redis up but refusing writes (maxmemory reached, noeviction): every
// flush command fails, is counted and its deltas lost; Redis is not down.
func TestRedisFlushErrorsMetric(t *testing.T) {
	addr := startRedis(t)
	redisCommand(t, addr, "CONFIG SET maxmemory-policy noeviction", "CONFIG SET maxmemory 1")
	d := startDaemon(t, redisStore(addr, ", ship_all: true"))
	sendFlows(t, d, 200)
	d.waitMetric(t, "flowguard_redis_flush_errors_total", 1)
	d.waitMetric(t, "flowguard_redis_lost_total", 1)
	if v := d.metric(t, "flowguard_redis_connected"); v != 1 {
		t.Errorf("flowguard_redis_connected %v, want 1: Redis answers, refusing", v)
	}
	d.stop(t)
}

// The store holds at most max_pending deltas between flushes: with one,
// and flushes an hour apart, the other updates are dropped.
func TestRedisDroppedMetric(t *testing.T) {
	addr := startRedis(t)
	d := startDaemon(t, fmt.Sprintf("store: {redis: {url: \"redis://%s/0\", flush_interval: 1h, max_pending: 1, ship_all: true}}\nreload: {watch: 0s}\n", addr))
	sendFlows(t, d, 200)
	d.waitMetric(t, "flowguard_redis_dropped_total", 1)
	d.stop(t)
}

// A rule that fires on every flow, to a webhook limited to two alerts of a
// rule an hour: the receiver gets those two, the rest are counted as rate
// limited.
func TestNotifierRateLimitedMetric(t *testing.T) {
	sink := newAlertSink(t, 0)
	cfg := strings.Replace(everyFlowConfig(t, sink.URL, t.TempDir(), ""),
		"    delivery: {", "    delivery: {rate_limit: {per_rule: 2, interval: 1h}, ", 1)
	d := startDaemon(t, cfg)
	alerts := sendFlows(t, d, 20)
	if alerts < 3 {
		t.Fatalf("%d alerts, want 3 or more", alerts)
	}
	d.waitMetric(t, "flowguard_notifier_rate_limited_total", float64(alerts-2))
	for i := 0; ; i++ {
		if n, _ := sink.counts(); n == 2 {
			break
		}
		if i > 200 {
			n, _ := sink.counts()
			t.Fatalf("the receiver got %d alerts, want 2", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.stop(t)
}

// redisCommand sends inline commands to the Redis at addr, each to be
// answered +OK.
func redisCommand(t *testing.T, addr string, cmds ...string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 256)
	for _, cmd := range cmds {
		c.Write([]byte(cmd + "\r\n"))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "+OK\r\n" {
			t.Fatalf("redis %s: %q %v", cmd, buf[:n], err)
		}
	}
}
