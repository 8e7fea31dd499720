// Package kafka is the Kafka input: it consumes the flow messages goflow2
// writes to a topic (`goflow2 -transport kafka -format bin`: each record a
// varint-length-prefixed FlowMessage protobuf) as a member of a consumer
// group, so that several flowguard instances split the topic's partitions
// (and share their windows through the Redis store).
//
// Delivery is at least once, and exactly once across orderly restarts and
// rebalances: a poll's offsets are committed only after the Handler has
// returned for every flow of the poll (the engine's pipeline has taken
// them), and a rebalance waits until they are. A broker outage is retried
// by the client for as long as it lasts and counted; a record that does
// not decode is counted and skipped. What one poll holds is bounded in
// bytes (Config.MaxBatchBytes) and records (Config.MaxPollRecords).
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest"
)

// Config is the `ingest.kafka` section.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string `yaml:"brokers"`
	// Topic is goflow2's topic (goflow2's default: flow-messages).
	Topic string `yaml:"topic"`
	// Group is the consumer group; instances of one group split the
	// partitions (default "flowguard").
	Group string `yaml:"group"`
	// Start is where a group with no committed offset starts: "latest"
	// (default: flows from now on) or "earliest".
	Start string `yaml:"start"`
	// MaxBatchBytes bounds the bytes of one fetch, and so what a poll
	// holds (default 16 MiB; a partition gives at most a quarter of it).
	MaxBatchBytes int `yaml:"max_batch_bytes"`
	// MaxPollRecords bounds the records of one poll (default 10000).
	MaxPollRecords int `yaml:"max_poll_records"`
	// TLS, when set, connects over TLS.
	TLS *TLS `yaml:"tls"`
	// SASL, when set, authenticates.
	SASL *SASL `yaml:"sasl"`
}

// TLS is the TLS client side of the Kafka connection.
type TLS struct {
	CAFile             string `yaml:"ca_file"`   // PEM roots (default: the system's)
	CertFile           string `yaml:"cert_file"` // client certificate, with KeyFile
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`          // overrides the name checked
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"` // tests only
}

// SASL authenticates the connection.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism"`
	User      string `yaml:"user"`
	// PasswordEnv names the environment variable holding the password
	// (default FLOWGUARD_KAFKA_PASSWORD).
	PasswordEnv string `yaml:"password_env"`
}

// Defaults.
const (
	DefaultGroup          = "flowguard"
	DefaultMaxBatchBytes  = 16 << 20
	DefaultMaxPollRecords = 10000
	// BatchFlows is the most flows one Handler call carries.
	BatchFlows = 1024
	// retryPause is the pause after a poll that failed as a whole.
	retryPause = 500 * time.Millisecond
)

// Validate reports every problem of the section at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one host:port is needed"))
	}
	for i, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("brokers[%d]: %q is not host:port", i, b))
		}
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("topic: needed (goflow2's default is flow-messages)"))
	}
	switch c.Start {
	case "", "latest", "earliest":
	default:
		errs = append(errs, fmt.Errorf("start: %q is neither latest nor earliest", c.Start))
	}
	if c.MaxBatchBytes < 0 || c.MaxBatchBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("max_batch_bytes: %d is outside 0 (default) to 1 GiB", c.MaxBatchBytes))
	} else if c.MaxBatchBytes > 0 && c.MaxBatchBytes < 4*MaxMessageBytes {
		errs = append(errs, fmt.Errorf("max_batch_bytes: %d is below %d", c.MaxBatchBytes, 4*MaxMessageBytes))
	}
	if c.MaxPollRecords < 0 {
		errs = append(errs, fmt.Errorf("max_poll_records: %d is negative", c.MaxPollRecords))
	}
	if c.TLS != nil && (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls: cert_file and key_file go together"))
	}
	if c.SASL != nil {
		switch strings.ToUpper(c.SASL.Mechanism) {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			errs = append(errs, fmt.Errorf("sasl.mechanism: %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASL.Mechanism))
		}
		if c.SASL.User == "" {
			errs = append(errs, errors.New("sasl.user: needed"))
		}
	}
	return errors.Join(errs...)
}

// Stats counts what the input did. Every field only grows.
type Stats struct {
	Records       uint64 // records consumed
	Bytes         uint64 // bytes of their values
	Flows         uint64 // flows handed on
	Malformed     uint64 // records that did not decode (whole or in part), skipped
	FetchErrors   uint64 // failed fetches and group errors: retried
	ConnectErrors uint64 // failed connections to a broker: retried
	Commits       uint64 // offset commits that succeeded
	CommitErrors  uint64 // offset commits that failed: retried with the next
	Partitions    int    // partitions assigned to this member now
}

// Source consumes one topic as a member of a consumer group.
type Source struct {
	cfg       Config
	client    *kgo.Client
	flows     []flow.Flow
	closeOnce sync.Once

	records, bytes, flowsOut, malformed atomic.Uint64
	fetchErrs, connectErrs              atomic.Uint64
	commits, commitErrs                 atomic.Uint64
	lastError                           atomic.Pointer[string]
	partitions                          atomic.Int64
}

// New checks cfg and builds the client; it connects once Run polls.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.MaxBatchBytes == 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.MaxPollRecords == 0 {
		cfg.MaxPollRecords = DefaultMaxPollRecords
	}
	s := &Source{cfg: cfg}
	start := kgo.NewOffset().AtEnd()
	if cfg.Start == "earliest" {
		start = kgo.NewOffset().AtStart()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(start),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxBytes(int32(cfg.MaxBatchBytes)),
		kgo.FetchMaxPartitionBytes(int32(cfg.MaxBatchBytes / 4)),
		// A broker's answer is bounded too: a fetch response holds at
		// most the fetch's bytes and some framing.
		kgo.BrokerMaxReadBytes(int32(cfg.MaxBatchBytes + 1<<20)),
		kgo.WithHooks(connectHook{s}),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			s.partitions.Add(int64(len(m[cfg.Topic])))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			s.partitions.Add(-int64(len(m[cfg.Topic])))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			s.partitions.Add(-int64(len(m[cfg.Topic])))
		}),
		kgo.ClientID("flowguard"),
	}
	if cfg.TLS != nil {
		tc, err := cfg.TLS.build()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if cfg.SASL != nil {
		m, err := cfg.SASL.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	s.client = cl
	s.flows = make([]flow.Flow, 0, BatchFlows)
	return s, nil
}

// Name names the source in logs and metrics.
func (s *Source) Name() string { return "kafka:" + s.cfg.Topic }

// Run consumes until ctx is done, then commits what was handed on, leaves
// the group and returns ctx.Err(). Run may be called once.
func (s *Source) Run(ctx context.Context, h ingest.Handler) error {
	unhandled := false
	defer func() {
		// Commit what was handed on before leaving, so that the
		// partitions' next owner starts after it. The client's
		// uncommitted offsets are those of every record polled: when a
		// poll cut short by ctx was not handed on, they are not
		// committed (those records come again, to whoever owns them).
		if !unhandled {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			s.commit(cctx)
			cancel()
		}
		s.Close()
	}()
	for {
		fetches := s.client.PollRecords(ctx, s.cfg.MaxPollRecords)
		if ctx.Err() != nil {
			unhandled = fetches.NumRecords() > 0
			return ctx.Err()
		}
		if fetches.IsClientClosed() {
			return errors.New("kafka: client closed")
		}
		failed := false
		fetches.EachError(func(topic string, part int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			s.fetchErrs.Add(1)
			s.noteError(fmt.Errorf("fetch %s[%d]: %w", topic, part, err))
			failed = true
		})
		n := s.consume(fetches, h)
		if n > 0 {
			s.commit(ctx)
		}
		s.client.AllowRebalance()
		if failed && n == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(retryPause):
			}
		}
	}
}

// Close releases the client of a source that will not Run (Run closes it
// when it returns).
func (s *Source) Close() {
	s.closeOnce.Do(s.client.CloseAllowingRebalance)
}

// consume decodes the records of a poll and hands their flows on in
// batches of at most BatchFlows; it returns the records seen.
func (s *Source) consume(fetches kgo.Fetches, h ingest.Handler) int {
	n := 0
	fetches.EachRecord(func(r *kgo.Record) {
		n++
		s.records.Add(1)
		s.bytes.Add(uint64(len(r.Value)))
		before := len(s.flows)
		var err error
		s.flows, err = decodeRecord(r.Value, s.flows)
		if err != nil {
			s.malformed.Add(1)
			s.noteError(fmt.Errorf("record %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err))
		}
		s.flowsOut.Add(uint64(len(s.flows) - before))
		if len(s.flows) >= BatchFlows {
			s.hand(h)
		}
	})
	s.hand(h)
	return n
}

func (s *Source) hand(h ingest.Handler) {
	for b := s.flows; len(b) > 0; {
		k := min(len(b), BatchFlows)
		h(b[:k])
		b = b[k:]
	}
	clear(s.flows) // drop references to strings of earlier flows
	s.flows = s.flows[:0]
}

// commit commits the offsets of every record handed on so far.
func (s *Source) commit(ctx context.Context) {
	if err := s.client.CommitUncommittedOffsets(ctx); err != nil {
		s.commitErrs.Add(1)
		s.noteError(fmt.Errorf("commit: %w", err))
		return
	}
	s.commits.Add(1)
}

func (s *Source) noteError(err error) {
	msg := err.Error()
	s.lastError.Store(&msg)
}

// LastError returns the latest fetch, commit or decoding error, "" when
// none.
func (s *Source) LastError() string {
	if p := s.lastError.Load(); p != nil {
		return *p
	}
	return ""
}

// Stats returns the counters; safe from any goroutine.
func (s *Source) Stats() Stats {
	return Stats{
		Records: s.records.Load(), Bytes: s.bytes.Load(), Flows: s.flowsOut.Load(),
		Malformed: s.malformed.Load(), FetchErrors: s.fetchErrs.Load(),
		ConnectErrors: s.connectErrs.Load(), Commits: s.commits.Load(), CommitErrors: s.commitErrs.Load(),
		Partitions: int(s.partitions.Load()),
	}
}

// IngestStats is the common part of Stats, for replay-style summaries.
func (s *Source) IngestStats() ingest.Stats {
	return ingest.Stats{Packets: s.records.Load(), Flows: s.flowsOut.Load(), Malformed: s.malformed.Load()}
}

// connectHook counts failed connections to brokers.
type connectHook struct{ s *Source }

func (c connectHook) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		c.s.connectErrs.Add(1)
		c.s.noteError(fmt.Errorf("connect: %w", err))
	}
}

func (t *TLS) build() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // operator's explicit choice
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls.cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (a *SASL) mechanism() (sasl.Mechanism, error) {
	env := a.PasswordEnv
	if env == "" {
		env = "FLOWGUARD_KAFKA_PASSWORD"
	}
	pass := os.Getenv(env)
	if pass == "" {
		return nil, fmt.Errorf("kafka sasl: the environment variable %s holds no password", env)
	}
	switch strings.ToUpper(a.Mechanism) {
	case "PLAIN":
		return plain.Auth{User: a.User, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: a.User, Pass: pass}.AsSha256Mechanism(), nil
	default:
		return scram.Auth{User: a.User, Pass: pass}.AsSha512Mechanism(), nil
	}
}
