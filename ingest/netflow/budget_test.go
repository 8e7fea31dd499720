package netflow_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
	"github.com/flowguard/flowguard/ingest"
	"github.com/flowguard/flowguard/ingest/admit"
	"github.com/flowguard/flowguard/ingest/netflow"
)

var (
	t0       = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	attacker = netip.MustParseAddrPort("203.0.113.66:2055")
)

// A template of one 1-byte field is refused (records shorter than
// MinRecordBytes); one of a 4-byte field is accepted, but its 65 KB data
// set gives MaxFlowsPerDatagram flows, not 16,370: the rest is counted.
func TestFlowsPerDatagramCap(t *testing.T) {
	d := netflow.NewDecoder(netflow.Config{})
	out, err := d.Decode(attacker, t0, gen.V9RecordBomb(1, 0, 1), nil)
	if err != nil || len(out) != 0 {
		t.Fatalf("1-byte records: %d flows, err %v; want the template refused", len(out), err)
	}
	if r := d.Rejections(); r.TemplateRecordLength != 1 {
		t.Fatalf("record-length refusals %d, want 1", r.TemplateRecordLength)
	}
	// A decoder of its own: the first decoder holds the 1-byte records,
	// waiting for a template, and would replay them too.
	d = netflow.NewDecoder(netflow.Config{})
	bomb := gen.V9RecordBomb(4, 0, 2)
	out, err = d.Decode(attacker, t0, bomb, out[:0])
	if !errors.Is(err, netflow.ErrTooManyFlows) || !errors.Is(err, ingest.ErrRejected) {
		t.Fatalf("err %v, want ErrTooManyFlows (an ingest.ErrRejected)", err)
	}
	if len(out) != netflow.DefaultMaxFlowsPerDatagram {
		t.Fatalf("%d flows from one datagram, want the cap %d", len(out), netflow.DefaultMaxFlowsPerDatagram)
	}
	records := (len(bomb) - 20 - 12 - 4) / 4
	r := d.Rejections()
	if r.DatagramsOverCap != 1 || r.FlowsOverCap != uint64(records-netflow.DefaultMaxFlowsPerDatagram) {
		t.Errorf("over cap: %d datagrams, %d flows; want 1, %d", r.DatagramsOverCap, r.FlowsOverCap, records-netflow.DefaultMaxFlowsPerDatagram)
	}
}

// Templates of 16,369 fields are refused outright; templates within the
// field cap are held up to the exporter's byte budget, then refused; the
// shared budget bounds several decoders together; the memory comes back
// when the templates expire.
func TestTemplateBudgets(t *testing.T) {
	d := netflow.NewDecoder(netflow.Config{})
	huge, _ := gen.V9TemplateBomb(256, 16369, 1, 0)
	if _, err := d.Decode(attacker, t0, huge, nil); err != nil {
		t.Fatal(err)
	}
	if r := d.Rejections(); r.TemplateFields != 1 || d.TemplateBytes() != 0 {
		t.Fatalf("16,369 fields: %d refused, %d bytes held", r.TemplateFields, d.TemplateBytes())
	}
	// 4,000 templates of 128 fields from one exporter.
	for id, seq := 256, uint32(2); id < 256+4000; seq++ {
		dg, n := gen.V9TemplateBomb(uint16(id), 128, seq, 0)
		if _, err := d.Decode(attacker, t0, dg, nil); err != nil {
			t.Fatal(err)
		}
		id += n
	}
	if b := d.TemplateBytes(); b > netflow.DefaultTemplateBytesPerExporter || b < netflow.DefaultTemplateBytesPerExporter/2 {
		t.Errorf("%d template bytes held for one exporter, want just under %d", b, netflow.DefaultTemplateBytesPerExporter)
	}
	if r := d.Rejections(); r.TemplateExporterBytes == 0 {
		t.Error("the exporter's byte budget never refused a template")
	}
	// Expiry gives the bytes back.
	if _, err := d.Decode(netip.MustParseAddrPort("192.0.2.9:1"), t0.Add(3*time.Hour), gen.V9Orphan(1), nil); err != nil {
		t.Fatal(err)
	}
	if b := d.TemplateBytes(); b != 0 {
		t.Errorf("%d template bytes held after the templates expired", b)
	}

	// Two decoders, many exporters, a shared budget of 2 MiB.
	budget := netflow.NewTemplateBudget(2 << 20)
	cfg := netflow.Config{TemplateBudget: budget, Admission: admit.Config{Rate: -1}}
	ds := []*netflow.Decoder{netflow.NewDecoder(cfg), netflow.NewDecoder(cfg)}
	for i := range 8 {
		src := netip.MustParseAddrPort(fmt.Sprintf("198.51.100.%d:2055", i+1))
		for id, seq := 256, uint32(1); id < 256+2000; seq++ {
			dg, n := gen.V9TemplateBomb(uint16(id), 128, seq, 0)
			ds[i%2].Decode(src, t0, dg, nil)
			id += n
		}
	}
	if used := budget.Used(); used > 2<<20 || used != ds[0].TemplateBytes()+ds[1].TemplateBytes() {
		t.Errorf("shared budget: %d used (decoders %d + %d), limit %d", used, ds[0].TemplateBytes(), ds[1].TemplateBytes(), 2<<20)
	}
	if ds[0].Rejections().TemplateTotalBytes+ds[1].Rejections().TemplateTotalBytes == 0 {
		t.Error("the shared budget never refused a template")
	}
	// A decoder put out of service (its listener stopped) gives its share
	// back.
	left := ds[1].TemplateBytes()
	ds[0].Release()
	if used := budget.Used(); used != left {
		t.Errorf("after Release: %d bytes used, want the other decoder's %d", used, left)
	}
}

// A storm of new sources fills the table with exporters on probation: an
// established exporter keeps its state and every flow, sources are
// admitted at the configured rate, and the oldest on probation make room.
func TestExporterAdmission(t *testing.T) {
	d := netflow.NewDecoder(netflow.Config{MaxExporters: 64, Admission: admit.Config{Rate: 1000, Burst: 100}})
	genuine := netip.MustParseAddrPort("192.0.2.1:2055")
	tmpl := gen.V9RecordBomb(4, 20+12+4+4*10, 1) // a template and 10 records
	now := t0
	if out, err := d.Decode(genuine, now, tmpl, nil); err != nil || len(out) != 10 {
		t.Fatalf("genuine exporter: %d flows, %v", len(out), err)
	}
	var rate, full int
	for i := range 4200 {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 2055)
		now = now.Add(100 * time.Microsecond) // 10,000 new sources a second
		_, err := d.Decode(src, now, gen.V9Orphan(uint32(i)), nil)
		switch {
		case errors.Is(err, netflow.ErrExporterRate):
			rate++
		case errors.Is(err, netflow.ErrTooManyExporters):
			full++
		}
		if i%100 == 0 {
			if out, err := d.Decode(genuine, now, tmpl, nil); err != nil || len(out) != 10 {
				t.Fatalf("genuine exporter during the storm: %d flows, %v", len(out), err)
			}
		}
	}
	st := d.Stats()
	if st.ExporterCount > 64 {
		t.Errorf("%d exporters held, bound 64", st.ExporterCount)
	}
	// 100 in the burst, then 1,000/s over 0.42 s: ~520 admitted.
	r := d.Rejections()
	if rate < 3500 || full != 0 || r.Rate != uint64(rate) || r.Evicted < 400 {
		t.Errorf("refused %d for the rate, %d table full; evicted %d (rejections %+v)", rate, full, r.Evicted, r)
	}
	// A new genuine exporter is admitted once a token is back.
	now = now.Add(time.Millisecond)
	late := netip.MustParseAddrPort("192.0.2.2:2055")
	if out, err := d.Decode(late, now, tmpl, nil); err != nil || len(out) != 10 {
		t.Fatalf("new exporter after the storm: %d flows, %v", len(out), err)
	}
	// Sources on probation are forgotten after a minute; established
	// exporters stay.
	now = now.Add(2 * time.Minute)
	d.Decode(genuine, now, tmpl, nil)
	if n := d.Stats().ExporterCount; n != 2 {
		t.Errorf("%d exporters after the probation expired, want the 2 genuine ones", n)
	}
}

// The budgets' checks cost nothing on the hot path: a genuine stream
// decodes with no allocation per datagram.
func TestBudgetsAllocateNothing(t *testing.T) {
	d := netflow.NewDecoder(netflow.Config{})
	tmpl := gen.V9RecordBomb(4, 20+12+4+4*30, 1)
	out := make([]flow.Flow, 0, 64)
	d.Decode(attacker, t0, tmpl, out)
	if a := testing.AllocsPerRun(100, func() { out, _ = d.Decode(attacker, t0, tmpl, out[:0]) }); a != 0 {
		t.Errorf("%.1f allocations per datagram", a)
	}
}

// IPFIX templates meet the same field cap as v9 ones.
func TestIPFIXTemplateFieldCap(t *testing.T) {
	msg := func(fields int) []byte {
		set := binary.BigEndian.AppendUint16(nil, 2)
		set = binary.BigEndian.AppendUint16(set, uint16(4+4+4*fields))
		set = binary.BigEndian.AppendUint16(set, 256)
		set = binary.BigEndian.AppendUint16(set, uint16(fields))
		for f := range fields {
			set = binary.BigEndian.AppendUint16(set, uint16(1+f%100))
			set = binary.BigEndian.AppendUint16(set, 4)
		}
		b := binary.BigEndian.AppendUint16(nil, 10)
		b = binary.BigEndian.AppendUint16(b, uint16(16+len(set)))
		b = binary.BigEndian.AppendUint32(b, 1700000000)
		b = binary.BigEndian.AppendUint32(b, 0)
		b = binary.BigEndian.AppendUint32(b, 0)
		return append(b, set...)
	}
	d := netflow.NewDecoder(netflow.Config{})
	for _, fields := range []int{129, 128} {
		if _, err := d.Decode(attacker, t0, msg(fields), nil); err != nil {
			t.Fatalf("%d fields: %v", fields, err)
		}
	}
	if r := d.Rejections(); r.TemplateFields != 1 || d.TemplateBytes() == 0 {
		t.Errorf("%d templates refused for their fields (want the one of 129), %d bytes held", r.TemplateFields, d.TemplateBytes())
	}
}
