package daemon

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	flowpb "github.com/netsampler/goflow2/v2/pb"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protodelim"
)

// With ingest.kafka, the daemon consumes goflow2's flow messages from a
// broker speaking the Kafka protocol (kfake, in the test process) as it
// takes the listeners' flows: a port scan in the topic raises the bundled
// rules' alert, and /metrics counts the records, flows and commits.
func TestKafkaInput(t *testing.T) {
	const topic, ports = "flow-messages", 150
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	now := time.Now()
	for i := range ports {
		at := uint64(now.Add(time.Duration(i-ports) * 10 * time.Millisecond).UnixNano())
		m := &flowpb.FlowMessage{
			Type: flowpb.FlowMessage_NETFLOW_V9, TimeReceivedNs: uint64(now.UnixNano()), SamplingRate: 1,
			SamplerAddress: []byte{127, 0, 0, 1}, TimeFlowStartNs: at, TimeFlowEndNs: at,
			SrcAddr: []byte{198, 51, 100, 7}, DstAddr: []byte{10, 0, 0, 9}, Proto: 6,
			SrcPort: 40000, DstPort: uint32(1 + i), TcpFlags: 0x02, Bytes: 44, Packets: 1,
		}
		var buf bytes.Buffer
		if _, err := protodelim.MarshalTo(&buf, m); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: buf.Bytes()}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	d := runDaemon(t, fmt.Sprintf("ingest:\n  kafka: {brokers: [%q], topic: %s, start: earliest}\n", c.ListenAddrs()[0], topic))
	d.waitMetric(t, "flowguard_kafka_flows_total", ports)
	d.waitMetric(t, "flowguard_engine_flows_total", ports)
	d.waitMetric(t, "flowguard_alerts_total", 1)
	d.waitMetric(t, "flowguard_kafka_commits_total", 1)
	if v := scrapeMetric(t, d.http, "flowguard_kafka_partitions"); v != 2 {
		t.Errorf("flowguard_kafka_partitions %v, want 2", v)
	}
	if v := scrapeMetric(t, d.http, "flowguard_kafka_malformed_total"); v != 0 {
		t.Errorf("flowguard_kafka_malformed_total %v", v)
	}
	var alerts []struct{ Rule string }
	getJSON(t, "http://"+d.http+"/api/alerts", &alerts)
	if len(alerts) == 0 || alerts[0].Rule != "vertical-port-scan" {
		t.Errorf("alerts %+v, want vertical-port-scan's", alerts)
	}
}
