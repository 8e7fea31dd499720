// Package netflow decodes NetFlow v1, v5, v7, v8, v9 and IPFIX export
// datagrams into flow.Flow records.
//
// A Decoder keeps, per exporter address, the templates of every
// observation domain (source id), the sampling rates announced in options
// data, and sequence trackers that count lost flows or packets. Templates
// are keyed by exporter address + version + observation domain, not by the
// exporter's source port, and expire when the exporter stops refreshing
// them (Config.TemplateTTL). Data sets that arrive before their template
// are held in a small bounded buffer and decoded when the template comes.
//
// The v9 and IPFIX decoders are this package's own: goflow2's decoders
// allocate a []DataField and an interface value per field of every record
// (see the benchmarks in bench_test.go), while a template here is compiled
// once into a plan of field operations that write straight into flow.Flow,
// so decoding allocates nothing per flow. README.md lists what is supported,
// the field mapping and the time, sampling and sequence semantics.
package netflow
