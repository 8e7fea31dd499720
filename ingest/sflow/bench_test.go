package sflow

import (
	"bytes"
	"testing"

	gfsflow "github.com/netsampler/goflow2/v2/decoders/sflow"
	"github.com/netsampler/goflow2/v2/producer"
	protoproducer "github.com/netsampler/goflow2/v2/producer/proto"

	"github.com/flowguard/flowguard/flow"
)

// The benchmarks decode pmacctd's sFlow capture (570 flow samples in 60
// datagrams) and report ns and allocations per flow sample, for this
// package, goflow2's sFlow decoder alone, and goflow2's decoder + its
// ProtoProducer (which parses the sampled headers).

const benchFlows = 570

func perFlow(b *testing.B, flows int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(flows), "ns/flow")
}

func BenchmarkDecode(b *testing.B) {
	dgs, srcs, times := datagrams(b, "testdata/pmacctd-sfprobe.pcap")
	d := NewDecoder(Config{})
	var out []flow.Flow
	flows := 0
	b.ReportAllocs()
	for b.Loop() {
		for i := range dgs {
			var err error
			out, err = d.Decode(srcs[i], times[i], dgs[i], out[:0])
			if err != nil {
				b.Fatal(err)
			}
			flows += len(out)
		}
	}
	perFlow(b, flows)
}

func BenchmarkGoflow2Decoder(b *testing.B) {
	dgs, _, _ := datagrams(b, "testdata/pmacctd-sfprobe.pcap")
	b.ReportAllocs()
	flows := 0
	for b.Loop() {
		for _, p := range dgs {
			var pkt gfsflow.Packet
			if err := gfsflow.DecodeMessageVersion(bytes.NewBuffer(p), &pkt); err != nil {
				b.Fatal(err)
			}
		}
		flows += benchFlows
	}
	perFlow(b, flows)
}

func BenchmarkGoflow2Producer(b *testing.B) {
	dgs, srcs, times := datagrams(b, "testdata/pmacctd-sfprobe.pcap")
	cfg, err := (*protoproducer.ProducerConfig)(nil).Compile()
	if err != nil {
		b.Fatal(err)
	}
	prod, err := protoproducer.CreateProtoProducer(cfg, protoproducer.CreateSamplingSystem)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	flows := 0
	for b.Loop() {
		for i, p := range dgs {
			var pkt gfsflow.Packet
			if err := gfsflow.DecodeMessageVersion(bytes.NewBuffer(p), &pkt); err != nil {
				b.Fatal(err)
			}
			msgs, err := prod.Produce(&pkt, &producer.ProduceArgs{Src: srcs[i], SamplerAddress: srcs[i].Addr(), TimeReceived: times[i]})
			if err != nil {
				b.Fatal(err)
			}
			flows += len(msgs)
			prod.Commit(msgs)
		}
	}
	perFlow(b, flows)
}
