package netflow

import (
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// The estimator alone: jitter keeps it still, one outlier does not move
// it, a step is taken once most recent datagrams agree.
func TestClockEstimate(t *testing.T) {
	var c clockEstimate
	ms := int64(time.Millisecond)
	jitter := []int64{-300, -900, -10, -450, -700, -120, -999, -600, -50, -800, -400}
	for _, j := range jitter {
		c.observe(j * ms)
	}
	if c.offset < -999*ms || c.offset > -10*ms {
		t.Fatalf("estimate %v outside the jitter", time.Duration(c.offset))
	}
	before := c.offset

	hour := int64(time.Hour)
	if got := c.observe(hour); got != before {
		t.Errorf("one datagram an hour off moved the estimate from %v to %v", time.Duration(before), time.Duration(got))
	}
	if got := c.applied(hour); got != hour {
		t.Errorf("the outlier is placed by %v, want its own offset", time.Duration(got))
	}
	if got := c.applied(-200 * ms); got != before {
		t.Errorf("an agreeing datagram is placed by %v, want the estimate %v", time.Duration(got), time.Duration(before))
	}

	// The exporter's clock steps two days ahead (the outlier above is one
	// of the agreeing samples now).
	step := int64(48 * time.Hour)
	moved := 0
	for i := 1; i <= clockSamples; i++ {
		if got := c.observe(step - int64(i)*50*ms); got > hour && moved == 0 {
			moved = i
		}
	}
	if moved == 0 || moved > clockSamples/2+1 {
		t.Errorf("the step was taken after %d datagrams, want a few (at most %d)", moved, clockSamples/2+1)
	}
	if moved == 1 {
		t.Error("the step was taken on the first datagram")
	}
	if c.offset < step-int64(time.Second) || c.offset > step {
		t.Errorf("estimate after the step %v", time.Duration(c.offset))
	}

	// With two samples that disagree, the smaller correction wins.
	var two clockEstimate
	two.observe(-100 * ms)
	if got := two.observe(hour); got != -100*ms {
		t.Errorf("split evidence: %v", time.Duration(got))
	}
}

// clockRun decodes a capture's datagrams, received at recv[i], and returns
// the flows of each datagram.
func clockRun(t *testing.T, cfg Config, dgs [][]byte, recv []time.Time) ([][]flow.Flow, *Decoder) {
	t.Helper()
	d := NewDecoder(cfg)
	var per [][]flow.Flow
	var out []flow.Flow
	for i, p := range dgs {
		var err error
		out, err = d.Decode(testExporter, recv[i], p, out[:0])
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		per = append(per, slices.Clone(out))
	}
	return per, d
}

// headerTime returns the export time a v5/v9 header carries.
func headerTime(p []byte) time.Time {
	ns, _, _ := headerClock(p)
	return time.Unix(0, ns).UTC()
}

func withHeaderSecs(p []byte, delta time.Duration) []byte {
	q := slices.Clone(p)
	binary.BigEndian.PutUint32(q[8:], binary.BigEndian.Uint32(q[8:])+uint32(int64(delta/time.Second)))
	return q
}

// maxApart returns the largest distance between the event times of the
// same flows in a and b (the same datagrams decoded twice).
func maxApart(t *testing.T, a, b [][]flow.Flow, from, to int) time.Duration {
	t.Helper()
	var worst time.Duration
	for i := from; i < to; i++ {
		if len(a[i]) != len(b[i]) {
			t.Fatalf("datagram %d: %d flows against %d", i, len(a[i]), len(b[i]))
		}
		for k := range a[i] {
			d := a[i][k].EventTime().Sub(b[i][k].EventTime())
			worst = max(worst, d, -d)
		}
	}
	return worst
}

// A real softflowd capture whose headers carry the capture's clock (the
// input pcap's, 27 minutes behind the datagrams' arrival): measured, and
// with correction on every flow lands on the collector's clock; without,
// the flows keep their times exactly.
func TestClockCorrectionOnCaptures(t *testing.T) {
	for _, name := range []string{"export-v5", "export-v9", "export-ipfix"} {
		t.Run(name, func(t *testing.T) {
			dgs, times := datagrams(t, "testdata/"+name+".pcap")
			var offsets []time.Duration
			for i, p := range dgs {
				offsets = append(offsets, headerTime(p).Sub(times[i]))
			}
			if offsets[0] > -time.Minute {
				t.Fatalf("the capture's headers are %v from arrival; the test needs a skewed exporter", offsets[0])
			}
			plain, dp := clockRun(t, Config{}, dgs, times)
			fixed, dc := clockRun(t, Config{ClockCorrection: true}, dgs, times)
			skew := dc.Stats().Exporters[0].ClockSkew
			if skew != dp.Stats().Exporters[0].ClockSkew || skew > offsets[0]/2 || !slices.Contains(offsets, skew) {
				t.Errorf("skew %v, want one of the datagrams' offsets %v", skew, offsets)
			}
			for i := range plain {
				for k, f := range fixed[i] {
					p := plain[i][k]
					if p.EventTime().Sub(f.EventTime()) != p.TimeFlowStart.Sub(f.TimeFlowStart) {
						t.Fatalf("datagram %d flow %d: start and end moved differently", i, k)
					}
					if shift := f.EventTime().Sub(p.EventTime()); shift < -offsets[i]-clockStepTolerance || shift > -offsets[i]+clockStepTolerance {
						t.Fatalf("datagram %d flow %d moved %v, its datagram's offset is %v", i, k, shift, offsets[i])
					}
					if f.EventTime().After(f.TimeReceived.Add(ClockDeadBand)) {
						t.Fatalf("flow ends %v, after it was received %v", f.EventTime(), f.TimeReceived)
					}
					f.TimeFlowStart, f.TimeFlowEnd = p.TimeFlowStart, p.TimeFlowEnd
					if !reflect.DeepEqual(f, p) {
						t.Fatalf("correction changed more than the times:\n%+v\n%+v", f, p)
					}
				}
			}
		})
	}
}

// A well-clocked exporter (headers within the dead band of arrival):
// correction changes nothing, so outputs stay what they were.
func TestClockCorrectionDeadBand(t *testing.T) {
	dgs, _ := datagrams(t, "testdata/export-v9.pcap")
	recv := make([]time.Time, len(dgs))
	for i, p := range dgs {
		recv[i] = headerTime(p).Add(time.Duration(i%4) * 400 * time.Millisecond) // 0 to 1.2 s of export delay
	}
	plain, _ := clockRun(t, Config{}, dgs, recv)
	fixed, _ := clockRun(t, Config{ClockCorrection: true}, dgs, recv)
	for i := range plain {
		if !reflect.DeepEqual(plain[i], fixed[i]) {
			t.Fatalf("datagram %d changed within the dead band", i)
		}
	}
}

// One forged datagram whose header is an hour ahead: the estimate, the
// other datagrams' flows and the reported skew do not move, no warning is
// raised, and the forged datagram's own flows land where they belong.
func TestClockForgedDatagram(t *testing.T) {
	dgs, _ := datagrams(t, "testdata/export-v9.pcap")
	recv := make([]time.Time, len(dgs))
	for i, p := range dgs {
		recv[i] = headerTime(p).Add(500 * time.Millisecond)
	}
	var events []ClockSkewEvent
	cfg := Config{ClockCorrection: true, OnClockSkew: func(e ClockSkewEvent) { events = append(events, e) }}
	base, _ := clockRun(t, cfg, dgs, recv)
	forgedAt := len(dgs) / 2
	forged := slices.Clone(dgs)
	forged[forgedAt] = withHeaderSecs(dgs[forgedAt], time.Hour)
	got, d := clockRun(t, cfg, forged, recv)
	for i := range base {
		if i != forgedAt && !reflect.DeepEqual(base[i], got[i]) {
			t.Errorf("datagram %d changed because datagram %d was forged", i, forgedAt)
		}
	}
	if len(got[forgedAt]) == 0 {
		t.Fatal("the forged datagram carried no flows")
	}
	if apart := maxApart(t, base, got, forgedAt, forgedAt+1); apart > time.Second {
		t.Errorf("the forged datagram's flows are %v from where the exporter's clock puts them", apart)
	}
	if skew := d.Stats().Exporters[0].ClockSkew; skew != -500*time.Millisecond {
		t.Errorf("skew %v after the forged datagram, want -500ms", skew)
	}
	if len(events) != 0 {
		t.Errorf("warnings %+v", events)
	}
}

// The exporter's clock steps two days ahead and later back: flows stay on
// the collector's clock throughout; one warning when the step is taken,
// one when it is over.
func TestClockStep(t *testing.T) {
	dgs, _ := datagrams(t, "testdata/export-v9.pcap")
	if len(dgs) < 16 {
		t.Fatalf("%d datagrams", len(dgs))
	}
	// The datagrams from the 10th on come two minutes later (past the
	// hold on reporting), on the exporter's and the collector's clocks.
	recv := make([]time.Time, len(dgs))
	stepped := slices.Clone(dgs)
	for i, p := range dgs {
		if i >= 10 {
			dgs[i] = withHeaderSecs(p, 2*time.Minute)
		}
		recv[i] = headerTime(dgs[i]).Add(500 * time.Millisecond)
		stepped[i] = dgs[i]
		if i >= 3 && i < 10 {
			stepped[i] = withHeaderSecs(p, 48*time.Hour)
		}
	}
	var events []ClockSkewEvent
	cfg := Config{ClockCorrection: true, OnClockSkew: func(e ClockSkewEvent) { events = append(events, e) }}
	base, _ := clockRun(t, cfg, dgs, recv)
	var skews []time.Duration
	d := NewDecoder(cfg)
	var got [][]flow.Flow
	var out []flow.Flow
	for i, p := range stepped {
		out, _ = d.Decode(testExporter, recv[i], p, out[:0])
		got = append(got, slices.Clone(out))
		skews = append(skews, d.Stats().Exporters[0].ClockSkew)
	}
	if apart := maxApart(t, base, got, 0, len(dgs)); apart > time.Second {
		t.Errorf("flows moved %v from the collector's clock across the steps", apart)
	}
	if skews[3] > time.Second || skews[9] < 47*time.Hour || skews[len(skews)-1] > time.Second {
		t.Errorf("skews %v: want the step taken after a few datagrams and left after it ended", skews)
	}
	if len(events) != 2 || !events[0].Over || events[1].Over || events[0].Skew < 47*time.Hour ||
		events[0].Exporter != testExporter.Addr() || events[0].Version != 9 {
		t.Errorf("events %+v, want one over the bound and one back", events)
	}
}

// BenchmarkExporterClock measures what the clock adds to decoding, per
// flow: the offset of each datagram against its domain's median (the
// shift itself rides in the header, free per flow).
func BenchmarkExporterClock(b *testing.B) {
	for _, c := range benchCaptures {
		b.Run(c.name, func(b *testing.B) {
			dgs, times := datagrams(b, c.file)
			d := NewDecoder(Config{ClockCorrection: true})
			e, _ := d.exporter(testExporter.Addr(), times[0].UnixNano())
			s := e.vstats(slotOf(binary.BigEndian.Uint16(dgs[0])))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for i := range dgs {
					d.shift = d.exporterClock(e, s, dgs[i], times[i].UnixNano())
				}
			}
			perFlow(b, c.flows*b.N)
		})
	}
}

// An exporter flapping its clock by an hour every few datagrams logs at
// most one change of state a minute.
func TestClockFlappingReportsBounded(t *testing.T) {
	dgs, _ := datagrams(t, "testdata/export-v9.pcap")
	var events []ClockSkewEvent
	d := NewDecoder(Config{ClockCorrection: true, OnClockSkew: func(e ClockSkewEvent) { events = append(events, e) }})
	start := headerTime(dgs[0])
	const n = 600 // datagrams, one every 300 ms: 3 minutes
	var out []flow.Flow
	for i := range n {
		at := start.Add(time.Duration(i) * 300 * time.Millisecond)
		p := dgs[i%len(dgs)]
		p = withHeaderSecs(p, at.Truncate(time.Second).Sub(headerTime(p))) // the exporter's clock is right...
		if i/6%2 == 1 {
			p = withHeaderSecs(p, time.Hour) // ...then an hour ahead, 6 datagrams out of 12
		}
		out, _ = d.Decode(testExporter, at, p, out[:0])
	}
	if len(events) == 0 || len(events) > 1+int(time.Duration(n)*300*time.Millisecond/clockReportHold) {
		t.Errorf("%d reports in %v of flapping, want at least one and at most one a minute", len(events), time.Duration(n)*300*time.Millisecond)
	}
}

// The estimate is the median of the last clockSamples offsets (of the
// two middle ones, the smaller correction), as sorting them gives, over
// offsets that repeat and ones that do not.
func TestClockEstimateMedian(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var c clockEstimate
	var all []int64
	for i := range 2000 {
		off := rng.Int64N(2e9) - 1e9
		if i%3 == 0 && len(all) > 0 {
			off = all[rng.IntN(len(all))] // a repeat, maybe of one in the window
		}
		all = append(all, off)
		w := slices.Clone(all[max(0, len(all)-clockSamples):])
		slices.Sort(w)
		want := w[len(w)/2]
		if len(w)%2 == 0 && abs(w[len(w)/2-1]) < abs(want) {
			want = w[len(w)/2-1]
		}
		if got := c.observe(off); got != want {
			t.Fatalf("after %d offsets: %d, want %d (window %v)", i+1, got, want, w)
		}
	}
}
