package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
)

// scrape returns /metrics' body.
func (d *daemonProc) scrape(t *testing.T) []byte {
	t.Helper()
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// procStatus reads a field (kB) of the daemon's /proc/PID/status.
func (d *daemonProc) procStatus(t *testing.T, field string) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	t.Fatalf("no %s in /proc/PID/status", field)
	return 0
}

// waitMetric polls /metrics until name reaches want (at most 60 s).
func (d *daemonProc) waitMetric(t *testing.T, name string, want float64) {
	t.Helper()
	for range 600 {
		if d.metric(t, name) >= want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s = %v, want %v", name, d.metric(t, name), want)
}

// The record-amplification probe against the daemon: 600 datagrams of
// 65 KB (39 MB) from one source, each a v9 template of one 4-byte field
// and a data set filling the datagram (16,368 records), after 20 with a
// 1-byte field. On main this took the daemon to 3.6 GB RSS. Here the
// 1-byte templates are refused, every datagram gives at most 2,048 flows,
// the engine queue holds at most 65,536 flows and, once full, holds the
// listener back (the kernel drops the rest, counted): the peak RSS stays
// under 400 MB.
func TestDaemonRecordAmplificationBounded(t *testing.T) {
	d := startDaemon(t, "reload: {watch: 0s}\n")
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", d.udp))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 20 {
		c.Write(gen.V9RecordBomb(1, 0, uint32(i)))
	}
	d.waitMetric(t, "flowguard_listener_datagrams_total", 20)
	const datagrams = 600
	for i := range datagrams {
		c.Write(gen.V9RecordBomb(4, 0, uint32(20+i)))
		if i%20 == 19 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Every datagram is read or counted as dropped by the kernel.
	d.waitMetric(t, "flowguard_listener_datagrams_total", 0)
	var read, dropped float64
	for range 300 {
		read = d.metric(t, "flowguard_listener_datagrams_total")
		dropped = d.metric(t, "flowguard_listener_kernel_drops_total")
		if read+dropped >= datagrams+20 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	capped := d.metric(t, `flowguard_ingest_rejected_datagrams_total{listener="export",reason="flows_per_datagram"}`)
	hwm := d.procStatus(t, "VmHWM")
	t.Logf("%v datagrams read, %v dropped by the kernel, %v over the flow cap, %v flows evaluated so far, %v waits for a full queue; peak RSS %d MB",
		read, dropped, capped, d.metric(t, "flowguard_engine_flows_total"), d.metric(t, "flowguard_engine_queue_full_total"), hwm>>10)
	if read+dropped < datagrams+20 {
		t.Errorf("%v datagrams read and %v dropped, %d sent", read, dropped, datagrams+20)
	}
	if capped != read-20 || capped == 0 {
		t.Errorf("%v datagrams over the flow cap, want every one read (%v)", capped, read-20)
	}
	if n := d.metric(t, `flowguard_ingest_rejected_templates_total{listener="export",reason="record_length"}`); n != 20 {
		t.Errorf("1-byte records: %v templates refused for their record length, want 20", n)
	}
	if hwm > 400<<10 {
		t.Errorf("peak RSS %d MB under the attack, bound 400 MB", hwm>>10)
	}
}

// The metrics-cardinality probe against the daemon: 4,200 spoofed
// sources, each from its own 127.2.x.y address, send one valid NetFlow v5
// datagram (admission unlimited here, so each becomes an exporter, up to
// the table's 4,096). On main /metrics grew to 151,645 series (12.3 MB);
// here it names the 64 busiest exporters and sums the rest under
// exporter="other": under 1,000 series and 256 KB; /api/exporters
// likewise stays under 65 rows.
func TestDaemonMetricsCardinality(t *testing.T) {
	d := startDaemon(t, "reload: {watch: 0s}\ningest: {new_exporters_per_second: -1}\n")
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: d.udp}
	t0 := time.Now()
	fl := []flow.Flow{{SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("10.0.0.2"),
		Proto: 6, SrcPort: 40000, DstPort: 443, RawPackets: 1, RawBytes: 60, Packets: 1, Bytes: 60,
		TimeFlowStart: t0, TimeFlowEnd: t0}}
	const storm = 4200
	for i := range storm {
		enc, err := gen.NewEncoder(gen.NetFlowV5, gen.EncoderConfig{})
		if err != nil {
			t.Fatal(err)
		}
		dg, _ := enc.Encode(nil, fl, t0)
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 2, byte(i>>8), byte(i))})
		if err != nil {
			t.Fatal(err)
		}
		c.WriteToUDP(dg, dst)
		c.Close()
		if i%500 == 499 {
			d.waitMetric(t, "flowguard_listener_datagrams_total", float64(i+1))
		}
	}
	d.waitMetric(t, "flowguard_listener_datagrams_total", storm)
	body := d.scrape(t)
	series, exporterSeries := 0, 0
	for _, line := range bytes.Split(body, []byte("\n")) {
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		series++
		if bytes.Contains(line, []byte(`exporter="`)) {
			exporterSeries++
		}
	}
	held := d.metric(t, "flowguard_ingest_exporters")
	t.Logf("%v exporters held; /metrics: %d series (%d per exporter), %d bytes", held, series, exporterSeries, len(body))
	if held < 4000 {
		t.Errorf("%v exporters held: the storm did not fill the table", held)
	}
	// Six series per named exporter (datagrams, flows, errors, template
	// misses, losses, clock skew), five for "other" (no skew). The rest is
	// a fixed number of series (per rule, notifier, listener, component).
	if exporterSeries > 65*6 || series > 1100 || len(body) > 256<<10 {
		t.Errorf("/metrics: %d series (%d per exporter), %d bytes; bounds 1100, 390, 256 KB", series, exporterSeries, len(body))
	}
	if !bytes.Contains(body, []byte(`exporter="other"`)) {
		t.Error(`/metrics has no exporter="other" series`)
	}
	var rows []map[string]any
	getJSON(t, "http://"+d.http+"/api/exporters", &rows)
	if len(rows) > 65 {
		t.Errorf("/api/exporters: %d rows, bound 65", len(rows))
	}
	if last := rows[len(rows)-1]; last["exporter"] != "other" || last["exporters"].(float64) != held-64 {
		t.Errorf("/api/exporters: last row %v, want exporter other summing %v exporters", last, held-64)
	}
	d.stop(t)
}
