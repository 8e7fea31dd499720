package config

import (
	"strings"
	"testing"

	"github.com/flowguard/flowguard/ingest/kafka"
)

// ingest.kafka is checked with the rest of the file, every problem named.
func TestIngestKafkaValidate(t *testing.T) {
	bad := Ingest{Kafka: &kafka.Config{Brokers: []string{"nope"}, Start: "middle",
		SASL: &kafka.SASL{Mechanism: "GSSAPI"}}}
	err := bad.validate()
	if err == nil {
		t.Fatal("a bad ingest.kafka passed")
	}
	for _, want := range []string{"ingest.kafka", "brokers[0]", "topic", "start", "sasl.mechanism", "sasl.user"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	good := Ingest{Kafka: &kafka.Config{Brokers: []string{"127.0.0.1:9092"}, Topic: "flow-messages"}}
	if err := good.validate(); err != nil {
		t.Errorf("a good ingest.kafka failed: %v", err)
	}
}
