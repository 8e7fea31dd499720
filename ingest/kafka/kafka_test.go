package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/collector"
	"github.com/flowguard/flowguard/ingest/netflow"
	"github.com/flowguard/flowguard/ingest/pcap"
	"github.com/flowguard/flowguard/internal/freeport"
	"github.com/flowguard/flowguard/rules"
	flowpb "github.com/netsampler/goflow2/v2/pb"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protodelim"
)

// The tests run real goflow2 (v2.2.6, built once per test process) as the
// producer, fed the committed softflowd NetFlow export over loopback, and
// franz-go's kfake, a broker speaking the Kafka protocol, as the broker.

var (
	goflow2Once sync.Once
	goflow2Path string
	goflow2Err  error
	goflow2Dir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if goflow2Dir != "" {
		os.RemoveAll(goflow2Dir)
	}
	os.Exit(code)
}

// goflow2Binary builds goflow2 v2.2.6 with `go install` into a temporary
// GOBIN (the module cache keeps later builds quick).
func goflow2Binary(t *testing.T) string {
	t.Helper()
	goflow2Once.Do(func() {
		goflow2Dir, goflow2Err = os.MkdirTemp("", "flowguard-goflow2-")
		if goflow2Err != nil {
			return
		}
		cmd := exec.Command("go", "install", "github.com/netsampler/goflow2/v2/cmd/goflow2@v2.2.6")
		cmd.Dir = goflow2Dir
		cmd.Env = append(os.Environ(), "GOBIN="+goflow2Dir, "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			goflow2Err = fmt.Errorf("go install goflow2: %v\n%s", err, out)
			return
		}
		goflow2Path = filepath.Join(goflow2Dir, "goflow2")
	})
	if goflow2Err != nil {
		t.Fatal(goflow2Err)
	}
	return goflow2Path
}

// startGoflow2 runs goflow2 listening for NetFlow on a loopback port and
// writing to topic on brokers in its binary format; it returns the port.
func startGoflow2(t *testing.T, brokers []string, topic string) *net.UDPAddr {
	t.Helper()
	bin := goflow2Binary(t)
	udp, web := freeport.Get(t, "udp"), freeport.Get(t, "tcp")
	cmd := exec.Command(bin,
		// One decoding worker: with two, a data datagram can be decoded
		// before the template datagram sent ahead of it, and goflow2
		// drops its flows ("template error").
		"-listen", "netflow://127.0.0.1:"+strconv.Itoa(udp)+"?workers=1",
		"-addr", "127.0.0.1:"+strconv.Itoa(web),
		"-transport", "kafka", "-format", "bin",
		"-transport.kafka.brokers", brokers[0],
		"-transport.kafka.topic", topic,
		"-transport.kafka.flushfreq", "50ms",
		"-loglevel", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Its metrics page answers once the producer is up; its NetFlow
	// socket may be bound a moment later (a datagram sent before would
	// be refused), so that is waited for too.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(web) + "/metrics")
		if err == nil {
			resp.Body.Close()
			if udpBound(udp) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("goflow2 did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: udp}
}

// udpBound reports whether a UDP socket is bound to port on 127.0.0.1
// (Linux: /proc/net/udp; elsewhere it says yes).
func udpBound(port int) bool {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return true
	}
	return strings.Contains(string(b), fmt.Sprintf(" 0100007F:%04X ", port))
}

// exportDatagrams reads the UDP payloads of a committed capture of real
// softflowd export (ingest/netflow/testdata/README.md).
func exportDatagrams(t *testing.T, name string) [][]byte {
	t.Helper()
	var out [][]byte
	r, err := pcap.Open(filepath.Join("..", "netflow", "testdata", name), pcap.Config{
		Datagram: func(_ time.Time, _, _ netip.AddrPort, p []byte) bool {
			out = append(out, append([]byte(nil), p...))
			return true
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background(), func([]flow.Flow) {}); err != nil {
		t.Fatal(err)
	}
	return out
}

func send(t *testing.T, to *net.UDPAddr, dgs [][]byte) {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, to)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range dgs {
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // keep within the receiver's buffer
	}
}

// udpFlows is the UDP path: the datagrams through flowguard's own
// collector on a loopback socket.
func udpFlows(t *testing.T, dgs [][]byte) []flow.Flow {
	t.Helper()
	l, err := collector.Listen(collector.Config{Address: "127.0.0.1:0"},
		collector.Decoders{NetFlow: netflow.NewDecoder(netflow.Config{})})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	var flows []flow.Flow
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- l.Run(ctx, func(b []flow.Flow) { mu.Lock(); flows = append(flows, b...); mu.Unlock() })
	}()
	send(t, l.Addr().(*net.UDPAddr), dgs)
	for i := 0; i < 500 && l.Stats().Datagrams < uint64(len(dgs)); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	return flows
}

// collect is a Handler that keeps copies of the flows.
type collect struct {
	mu    sync.Mutex
	flows []flow.Flow
}

func (c *collect) handle(b []flow.Flow) { c.mu.Lock(); c.flows = append(c.flows, b...); c.mu.Unlock() }

func (c *collect) len() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.flows) }

func (c *collect) get() []flow.Flow {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.flows)
}

// consumer runs a Source until stop is called, which returns Run's error.
func consumer(t *testing.T, cfg Config, h func([]flow.Flow)) (*Source, func() error) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, h) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { stop() })
	return s, stop
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cluster(t *testing.T, partitions int32, topic string, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// flowKey is what both paths must agree on for one flow.
func flowKey(f *flow.Flow) string {
	return fmt.Sprintf("%s %s %s:%d>%s:%d p%d f%#x b%d/%d r%d %d-%d", f.Type, f.SamplerAddress, f.SrcAddr, f.SrcPort,
		f.DstAddr, f.DstPort, f.Proto, f.TCPFlags, f.Bytes, f.Packets, f.SamplingRate,
		f.TimeFlowStart.UnixMilli(), f.TimeFlowEnd.UnixMilli())
}

func flowKeys(flows []flow.Flow) []string {
	out := make([]string, len(flows))
	for i := range flows {
		out[i] = flowKey(&flows[i])
	}
	slices.Sort(out)
	return out
}

// alertKeys runs flows through an engine with the bundled rules and
// returns what each alert says: rule, group and value.
func alertKeys(t *testing.T, flows []flow.Flow) []string {
	t.Helper()
	set, err := rules.Load(filepath.Join("..", "..", "examples", "rules"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	eng, err := engine.New(engine.Config{Emit: func(a *alert.Alert) {
		out = append(out, fmt.Sprintf("%s %s %g", a.Rule, a.GroupString(), a.Value))
	}}, set)
	if err != nil {
		t.Fatal(err)
	}
	batch := slices.Clone(flows)
	eng.Process(batch)
	eng.Flush()
	slices.Sort(out)
	return out
}

// Every flow of a real softflowd export goes softflowd → goflow2 →
// Kafka → flowguard and arrives as flowguard's own collector decodes it,
// with the same alerts from the bundled rules.
func TestGoflow2Export(t *testing.T) {
	for _, capture := range []string{"export-v5.pcap", "export-v9.pcap"} {
		t.Run(capture, func(t *testing.T) {
			dgs := exportDatagrams(t, capture)
			want := udpFlows(t, dgs)
			if len(want) == 0 {
				t.Fatal("the UDP path decoded no flow")
			}
			const topic = "flows"
			c := cluster(t, 1, topic) // one partition: the export's order
			gf := startGoflow2(t, c.ListenAddrs(), topic)
			var got collect
			src, stop := consumer(t, Config{Brokers: c.ListenAddrs(), Topic: topic, Start: "earliest"}, got.handle)
			send(t, gf, dgs)
			waitFor(t, "every flow", 30*time.Second, func() bool { return got.len() >= len(want) })
			if err := stop(); !errors.Is(err, context.Canceled) {
				t.Fatalf("Run: %v", err)
			}
			flows := got.get()
			if !slices.Equal(flowKeys(flows), flowKeys(want)) {
				g, w := flowKeys(flows), flowKeys(want)
				for i := range min(len(g), len(w)) {
					if g[i] != w[i] {
						t.Fatalf("flows differ: kafka %q, udp %q", g[i], w[i])
					}
				}
				t.Fatalf("%d flows through kafka, %d through udp", len(g), len(w))
			}
			ga, wa := alertKeys(t, flows), alertKeys(t, want)
			if len(wa) == 0 {
				t.Fatal("the bundled rules raised no alert on the export: nothing compared")
			}
			if !slices.Equal(ga, wa) {
				t.Errorf("alerts differ:\nkafka %q\nudp   %q", ga, wa)
			}
			st := src.Stats()
			if st.Flows != uint64(len(want)) || st.Malformed != 0 || st.Commits == 0 {
				t.Errorf("stats %+v, want %d flows, none malformed, commits", st, len(want))
			}
			t.Logf("%d flows, %d records, alerts %q", st.Flows, st.Records, wa)
		})
	}
}

// Two members of one group split the partitions between them: each
// takes some of the flows, and together they take every flow once.
func TestGroupSplitsPartitions(t *testing.T) {
	dgs := exportDatagrams(t, "export-v9.pcap")
	want := udpFlows(t, dgs)
	const topic = "flows"
	c := cluster(t, 4, topic) // goflow2 writes to the partitions in turn
	gf := startGoflow2(t, c.ListenAddrs(), topic)
	cfg := Config{Brokers: c.ListenAddrs(), Topic: topic, Group: "split", Start: "earliest"}
	var a, b collect
	sa, _ := consumer(t, cfg, a.handle)
	sb, _ := consumer(t, cfg, b.handle)
	waitFor(t, "both members assigned", 30*time.Second, func() bool {
		return sa.Stats().Partitions > 0 && sb.Stats().Partitions > 0 &&
			sa.Stats().Partitions+sb.Stats().Partitions == 4
	})
	send(t, gf, dgs)
	waitFor(t, "every flow", 30*time.Second, func() bool { return a.len()+b.len() >= len(want) })
	time.Sleep(200 * time.Millisecond) // a duplicate would show up now
	if a.len() == 0 || b.len() == 0 {
		t.Fatalf("one member took everything: %d and %d flows", a.len(), b.len())
	}
	all := append(a.get(), b.get()...)
	if !slices.Equal(flowKeys(all), flowKeys(want)) {
		t.Fatalf("%d+%d flows through kafka, %d through udp, or not the same", a.len(), b.len(), len(want))
	}
	t.Logf("member a: %d partitions, %d flows; member b: %d partitions, %d flows",
		sa.Stats().Partitions, a.len(), sb.Stats().Partitions, b.len())
}

// A member that stops commits what it handed on; its successor in the
// group starts after it: no flow is lost or seen twice, and the alerts
// are the UDP path's.
func TestRestartResumes(t *testing.T) {
	dgs := exportDatagrams(t, "export-v5.pcap")
	want := udpFlows(t, dgs)
	first := udpFlows(t, dgs[:len(dgs)/2])
	const topic = "flows"
	c := cluster(t, 2, topic)
	gf := startGoflow2(t, c.ListenAddrs(), topic)
	cfg := Config{Brokers: c.ListenAddrs(), Topic: topic, Group: "restart", Start: "earliest"}

	var before collect
	s1, stop := consumer(t, cfg, before.handle)
	send(t, gf, dgs[:len(dgs)/2])
	waitFor(t, "the first half", 30*time.Second, func() bool { return before.len() >= len(first) })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	send(t, gf, dgs[len(dgs)/2:]) // while no member runs
	var after collect
	s2, _ := consumer(t, cfg, after.handle)
	waitFor(t, "the second half", 30*time.Second, func() bool { return before.len()+after.len() >= len(want) })
	time.Sleep(200 * time.Millisecond) // a duplicate would show up now
	all := append(before.get(), after.get()...)
	if !slices.Equal(flowKeys(all), flowKeys(want)) {
		t.Fatalf("%d+%d flows, %d exported, or not the same", before.len(), after.len(), len(want))
	}
	if ga, wa := alertKeys(t, all), alertKeys(t, want); !slices.Equal(ga, wa) {
		t.Errorf("alerts differ:\nkafka %q\nudp   %q", ga, wa)
	}
	if s1.Stats().Commits == 0 || s2.Stats().Flows != uint64(after.len()) {
		t.Errorf("stats %+v then %+v", s1.Stats(), s2.Stats())
	}
}

// A broker that is not there yet is retried and counted; once it is up,
// every flow arrives.
func TestBrokerOutage(t *testing.T) {
	port := freeport.Get(t, "tcp")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	const topic = "flows"
	var got collect
	s, _ := consumer(t, Config{Brokers: []string{addr}, Topic: topic, Group: "outage", Start: "earliest"}, got.handle)
	waitFor(t, "failed connections counted", 30*time.Second, func() bool { return s.Stats().ConnectErrors >= 2 })
	if s.LastError() == "" {
		t.Error("no error kept")
	}
	c := cluster(t, 1, topic, kfake.Ports(port))
	dgs := exportDatagrams(t, "export-v5.pcap")
	gf := startGoflow2(t, c.ListenAddrs(), topic)
	send(t, gf, dgs)
	waitFor(t, "every flow after the outage", 60*time.Second, func() bool { return got.len() >= 438 })
	t.Logf("stats %+v", s.Stats())
}

// Records that do not decode are counted and skipped; the records around
// them arrive.
func TestMalformedRecords(t *testing.T) {
	const topic = "flows"
	c := cluster(t, 1, topic)
	good := goodMessage(t)
	records := [][]byte{
		good,
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // a length that is no varint
		good[:len(good)-3],                   // cut short
		{0x05, 0x08, 0x01, 0x32, 0x03, 0x01}, // src_addr of 3 bytes
		append(slices.Clone(good), good...),  // two messages in one record
	}
	produce(t, c.ListenAddrs(), topic, records)
	var got collect
	s, _ := consumer(t, Config{Brokers: c.ListenAddrs(), Topic: topic, Start: "earliest"}, got.handle)
	waitFor(t, "every record", 30*time.Second, func() bool { return s.Stats().Records == uint64(len(records)) })
	st := s.Stats()
	if st.Malformed != 3 || st.Flows != 3 || got.len() != 3 {
		t.Errorf("stats %+v, %d flows handed on; want 3 malformed, 3 flows", st, got.len())
	}
}

func produce(t *testing.T, brokers []string, topic string, values [][]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, v := range values {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// goodMessage is one flow as goflow2 writes it: its FlowMessage with a
// varint length before it.
func goodMessage(t testing.TB) []byte {
	t.Helper()
	m := &flowpb.FlowMessage{
		Type: flowpb.FlowMessage_NETFLOW_V9, TimeReceivedNs: 1_700_000_001_000_000_000,
		SequenceNum: 7, SamplingRate: 100, SamplerAddress: []byte{192, 0, 2, 1},
		TimeFlowStartNs: 1_700_000_000_000_000_000, TimeFlowEndNs: 1_700_000_000_500_000_000,
		Bytes: 1500, Packets: 3, SrcAddr: []byte{198, 51, 100, 7},
		DstAddr: netip.MustParseAddr("2001:db8::1").AsSlice(), Etype: 0x86dd, Proto: 6,
		SrcPort: 40000, DstPort: 443, InIf: 3, OutIf: 4, TcpFlags: 0x12, SrcAs: 64500, DstAs: 64501,
		NextHop: []byte{192, 0, 2, 254}, SrcNet: 24, DstNet: 48, BgpCommunities: []uint32{1, 2},
		AsPath: []uint32{64500, 64501}, MplsLabel: []uint32{16},
	}
	var buf bytes.Buffer
	if _, err := protodelim.MarshalTo(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
