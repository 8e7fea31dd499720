package daemon

import (
	"context"

	"github.com/flowguard/flowguard/ingest/kafka"
	"github.com/flowguard/flowguard/lifecycle"
)

// The Kafka input (ingest.kafka): goflow2's flow messages from a topic, as
// a member of a consumer group, handed to the engine queue like the
// listeners' batches. It starts after the engine and stops before it, so
// that every flow it hands on is processed, and its offsets are committed
// once the queue has taken them.

var (
	kafkaRecordsDesc       = desc("kafka_records_total", "Kafka records consumed (ingest.kafka).")
	kafkaBytesDesc         = desc("kafka_bytes_total", "Bytes of the Kafka records consumed.")
	kafkaFlowsDesc         = desc("kafka_flows_total", "Flows decoded from Kafka records and handed to the engine.")
	kafkaMalformedDesc     = desc("kafka_malformed_total", "Kafka records that did not decode as goflow2 flow messages: skipped.")
	kafkaFetchErrorsDesc   = desc("kafka_fetch_errors_total", "Kafka fetches and group operations that failed: retried.")
	kafkaConnectErrorsDesc = desc("kafka_connect_errors_total", "Connections to Kafka brokers that failed: retried.")
	kafkaCommitsDesc       = desc("kafka_commits_total", "Offset commits, each after the engine took the flows before it.")
	kafkaCommitErrorsDesc  = desc("kafka_commit_errors_total", "Offset commits that failed: retried with the next.")
	kafkaPartitionsDesc    = desc("kafka_partitions", "Partitions of the topic assigned to this instance.")
)

// newKafka builds the Kafka input when the config asks for one (nil
// otherwise).
func newKafka(d *Daemon) (*kafka.Source, error) {
	if d.cfg.Ingest.Kafka == nil {
		return nil, nil
	}
	return kafka.New(*d.cfg.Ingest.Kafka)
}

// kafkaComponent runs the Kafka input, nil without one.
func (d *Daemon) kafkaComponent(failed func(error)) lifecycle.Component {
	if d.kafka == nil {
		return nil
	}
	return lifecycle.Run("kafka", func(ctx context.Context) error {
		d.log.Info("consuming", "source", d.kafka.Name())
		return d.kafka.Run(ctx, d.handleFlows)
	}, failed)
}

// kafkaMetrics reads the Kafka input's stats (none without one).
func (d *Daemon) kafkaMetrics() metricSet {
	return func(m emit) {
		if d.kafka == nil {
			return
		}
		st := d.kafka.Stats()
		m.counter(kafkaRecordsDesc, st.Records)
		m.counter(kafkaBytesDesc, st.Bytes)
		m.counter(kafkaFlowsDesc, st.Flows)
		m.counter(kafkaMalformedDesc, st.Malformed)
		m.counter(kafkaFetchErrorsDesc, st.FetchErrors)
		m.counter(kafkaConnectErrorsDesc, st.ConnectErrors)
		m.counter(kafkaCommitsDesc, st.Commits)
		m.counter(kafkaCommitErrorsDesc, st.CommitErrors)
		m.gauge(kafkaPartitionsDesc, float64(st.Partitions))
	}
}
