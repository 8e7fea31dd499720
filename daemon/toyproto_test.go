package daemon

// A toy UDP protocol, added in this file alone plus one registerUDP call:
// the collector decodes it, /metrics and /api/exporters show its exporter,
// and replay decodes it in a capture of export traffic.

import (
	"context"
	be "encoding/binary" // binary names the test binary here
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/internal/freeport"
)

func init() {
	registerUDP(udpProtocol{name: "toy", detect: isToy, newDecoder: func(decoderSettings) udpDecoder { return &toyDecoder{} }})
}

// The toy datagram: "TOY1", then records of 10 bytes: source IPv4,
// destination IPv4, destination port.
const toyRecord = 10

func isToy(p []byte) bool { return len(p) >= 4 && string(p[:4]) == "TOY1" }

type toyDecoder struct {
	mu    sync.Mutex
	flows map[netip.Addr]uint64
}

func (d *toyDecoder) Decode(src netip.AddrPort, now time.Time, p []byte, out []flow.Flow) ([]flow.Flow, error) {
	body := p[4:]
	if len(body)%toyRecord != 0 {
		return out, errors.New("toy: datagram cut inside a record")
	}
	for ; len(body) > 0; body = body[toyRecord:] {
		out = append(out, flow.Flow{Type: "TOY", SamplerAddress: src.Addr(),
			SrcAddr: netip.AddrFrom4([4]byte(body[0:4])), DstAddr: netip.AddrFrom4([4]byte(body[4:8])),
			DstPort: be.BigEndian.Uint16(body[8:]), Proto: 6, Packets: 1, Bytes: 40, RawPackets: 1, RawBytes: 40,
			TimeFlowStart: now, TimeFlowEnd: now, TimeReceived: now})
	}
	d.mu.Lock()
	if d.flows == nil {
		d.flows = map[netip.Addr]uint64{}
	}
	d.flows[src.Addr()] += uint64((len(p) - 4) / toyRecord)
	d.mu.Unlock()
	return out, nil
}

func (d *toyDecoder) rows() []exporterRow {
	d.mu.Lock()
	defer d.mu.Unlock()
	var rows []exporterRow
	for a, n := range d.flows {
		rows = append(rows, exporterRow{addr: a, version: "toy1", exporters: 1, flows: n})
	}
	return rows
}

func (d *toyDecoder) release() {}

func toyDatagram(n int) []byte {
	p := []byte("TOY1")
	for i := range n {
		p = append(p, 198, 51, 100, 7, 10, 0, 0, 1)
		p = be.BigEndian.AppendUint16(p, uint16(1000+i))
	}
	return p
}

func TestToyProtocolRegistered(t *testing.T) {
	udp, web := freeport.Get(t, "udp"), fmt.Sprintf("127.0.0.1:%d", freeport.Get(t, "tcp"))
	path := filepath.Join(t.TempDir(), "flowguard.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf("listen:\n  - {name: toy, address: \"127.0.0.1:%d\"}\nhttp: {listen: %q}\n", udp, web)), 0o644)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Error(err)
		}
	}()

	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udp))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 5 {
		c.Write(toyDatagram(4))
	}
	var rows []map[string]any
	for i := 0; ; i++ {
		if resp, err := http.Get("http://" + web + "/api/exporters"); err == nil {
			resp.Body.Close()
			getJSON(t, "http://"+web+"/api/exporters", &rows)
			if len(rows) == 1 && rows[0]["flows"] == 20.0 {
				break
			}
		}
		if i > 200 {
			t.Fatalf("/api/exporters: %v", rows)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rows[0]["version"] != "toy1" || rows[0]["exporter"] != "127.0.0.1" {
		t.Errorf("/api/exporters: %v", rows)
	}
	if v := scrapeMetric(t, web, "flowguard_exporter_flows_total"); v != 20 {
		t.Errorf("flowguard_exporter_flows_total %v, want 20", v)
	}
	for scrapeMetric(t, web, "flowguard_engine_flows_total") < 20 {
		time.Sleep(20 * time.Millisecond)
	}

	// Replay: a toy datagram in a capture decodes as its flows.
	var got int
	ex, err := newExportDecoder("auto", func(b []flow.Flow) { got += len(b) }, decoderSettings{cfg: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if !ex.Datagram(time.Now(), netip.MustParseAddrPort("127.0.0.1:5000"), netip.MustParseAddrPort("127.0.0.1:9999"), toyDatagram(3)) || got != 3 {
		t.Errorf("replay took the toy datagram: %d flows, want 3", got)
	}
}
