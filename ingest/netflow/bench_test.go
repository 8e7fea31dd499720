package netflow

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	gfnetflow "github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
	"github.com/netsampler/goflow2/v2/producer"
	protoproducer "github.com/netsampler/goflow2/v2/producer/proto"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
)

// The benchmarks decode the softflowd captures (24-32 flows a datagram),
// datagram after datagram, and report ns and allocations per flow:
//
//	BenchmarkDecode            this package: datagram → []flow.Flow
//	BenchmarkGoflow2Decoder    goflow2's decoders alone (no flow records out)
//	BenchmarkGoflow2Producer   goflow2's decoders + ProtoProducer (its protobuf messages)

var benchCaptures = []struct {
	name, file string
	flows      int // in one pass over the capture
}{
	{"v5", "testdata/export-v5.pcap", 438},
	{"v9", "testdata/export-v9.pcap", 466},
	{"ipfix", "testdata/export-ipfix.pcap", 466},
}

// decodeLoop decodes dgs (received at times) with d over and over for the
// benchmark, reporting ns and allocations per flow; it returns out, the
// last datagram's flows.
func decodeLoop(b *testing.B, d *Decoder, dgs [][]byte, times []time.Time, out []flow.Flow) []flow.Flow {
	flows := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range dgs {
			var err error
			out, err = d.Decode(testExporter, times[i], dgs[i], out[:0])
			if err != nil {
				b.Fatal(err)
			}
			flows += len(out)
		}
	}
	perFlow(b, flows)
	return out
}

func perFlow(b *testing.B, flows int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(flows), "ns/flow")
}

func BenchmarkDecode(b *testing.B) {
	for _, c := range benchCaptures {
		b.Run(c.name, func(b *testing.B) {
			dgs, times := datagrams(b, c.file)
			// Clock correction on: the captures' headers are 27 minutes
			// behind their arrival, so every flow is moved (the worst case).
			d := NewDecoder(Config{ClockCorrection: true})
			var out []flow.Flow
			for i := range dgs { // templates
				out, _ = d.Decode(testExporter, times[i], dgs[i], out[:0])
			}
			out = decodeLoop(b, d, dgs, times, out)
			b.ReportMetric(float64(testing.AllocsPerRun(1, func() {
				for i := range dgs {
					out, _ = d.Decode(testExporter, times[i], dgs[i], out[:0])
				}
			}))/float64(c.flows), "allocs/flow")
		})
	}
}

// goflow2Decode decodes one datagram with goflow2's decoders.
func goflow2Decode(b *testing.B, ts gfnetflow.NetFlowTemplateSystem, p []byte) any {
	buf := bytes.NewBuffer(p)
	if p[1] == 5 {
		var pkt netflowlegacy.PacketNetFlowV5
		if err := netflowlegacy.DecodeMessageVersion(buf, &pkt); err != nil {
			b.Fatal(err)
		}
		return &pkt
	}
	var p9 gfnetflow.NFv9Packet
	var p10 gfnetflow.IPFIXPacket
	if err := gfnetflow.DecodeMessageVersion(buf, ts, &p9, &p10); err != nil {
		b.Fatal(err)
	}
	if p[1] == 9 {
		return &p9
	}
	return &p10
}

func BenchmarkGoflow2Decoder(b *testing.B) {
	for _, c := range benchCaptures {
		b.Run(c.name, func(b *testing.B) {
			dgs, _ := datagrams(b, c.file)
			ts := gfnetflow.CreateTemplateSystem()
			for _, p := range dgs {
				goflow2Decode(b, ts, p)
			}
			flows := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for _, p := range dgs {
					goflow2Decode(b, ts, p)
				}
				flows += c.flows
			}
			perFlow(b, flows)
		})
	}
}

func BenchmarkGoflow2Producer(b *testing.B) {
	for _, c := range benchCaptures {
		b.Run(c.name, func(b *testing.B) {
			dgs, times := datagrams(b, c.file)
			cfg, err := (*protoproducer.ProducerConfig)(nil).Compile()
			if err != nil {
				b.Fatal(err)
			}
			prod, err := protoproducer.CreateProtoProducer(cfg, protoproducer.CreateSamplingSystem)
			if err != nil {
				b.Fatal(err)
			}
			ts := gfnetflow.CreateTemplateSystem()
			args := &producer.ProduceArgs{Src: testExporter, SamplerAddress: testExporter.Addr()}
			flows := 0
			run := func() {
				for i, p := range dgs {
					args.TimeReceived = times[i]
					msgs, err := prod.Produce(goflow2Decode(b, ts, p), args)
					if err != nil {
						b.Fatal(err)
					}
					flows += len(msgs)
					prod.Commit(msgs)
				}
			}
			run()
			flows = 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				run()
			}
			perFlow(b, flows)
		})
	}
}

// streamDatagrams encodes gen's stream mix as `flowguard gen stream --proto
// v9` sends it (one exporter, its template in the first datagram only) and
// returns the datagrams with their send times and the flows they hold.
func streamDatagrams(b *testing.B, n int) ([][]byte, []time.Time, int) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	flows := gen.StreamMix(1, 50000, n, 1.2e6, t0)
	enc, err := gen.NewEncoder(gen.NetFlowV9, gen.EncoderConfig{SourceID: 1, TemplateEvery: 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	var dgs [][]byte
	var times []time.Time
	for i := 0; i < len(flows); {
		now := flows[i].TimeReceived
		p, used := enc.Encode(nil, flows[i:], now)
		dgs, times = append(dgs, p), append(times, now)
		i += used
	}
	return dgs, times, len(flows)
}

// BenchmarkDecodeStream decodes the NetFlow v9 datagrams `make bench-e2e`
// sends (gen's stream mix, 21 flows a datagram): the decoder's share of
// the end-to-end cost per flow.
func BenchmarkDecodeStream(b *testing.B) {
	dgs, times, _ := streamDatagrams(b, 1<<14)
	d := NewDecoder(Config{})
	out := make([]flow.Flow, 0, 256)
	out, _ = d.Decode(testExporter, times[0], dgs[0], out[:0]) // the template
	runtime.GC()                                               // not the setup's garbage during the loop
	decodeLoop(b, d, dgs[1:], times[1:], out)
}
