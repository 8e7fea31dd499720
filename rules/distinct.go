package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/flow"
)

// pairKeyBytes bounds the stack buffer that joins the fields of a
// composite distinct key; addresses, ports and flags fit many times over,
// and a longer key (long strings) only costs an allocation, never a wrong
// count.
const pairKeyBytes = 128

// compositeField is the field that `distinct: [a, b, ...]` counts: one
// value per combination of the listed fields, as a 64-bit hash of their
// keys (xxhash: two combinations collide with odds of 2^-64, far below any
// threshold's error). The engine counts it as it counts any numeric field,
// so a list costs one hash per flow and no engine support.
func compositeField(fds []*flow.Field) *flow.Field {
	names := make([]string, len(fds))
	for i, fd := range fds {
		names[i] = fd.Name
	}
	parts := append([]*flow.Field(nil), fds...)
	return &flow.Field{
		Name: strings.Join(names, "+"),
		Kind: flow.KindUint,
		Uint: func(f *flow.Flow) uint64 {
			var buf [pairKeyBytes]byte
			key := buf[:0]
			for _, fd := range parts {
				key = fd.AppendKey(key, f)
			}
			return xxhash.Sum64(key)
		},
	}
}

// distinctField decodes `distinct`: one flow field, or a list of two or
// more whose combinations are counted (distinct: [src_addr, dst_port]).
func (d *ruleDecoder) distinctField() *flow.Field {
	n := d.keys["distinct"]
	if n == nil || n.Kind != yaml.SequenceNode {
		if _, sn := d.str("distinct"); sn != nil {
			return d.field(sn, "distinct")
		}
		return nil
	}
	names, nodes := d.strings("distinct")
	if len(nodes) < 2 {
		d.errorf(n, "distinct", "a list needs two fields or more (write one field as distinct: dst_port)")
		return nil
	}
	var fds []*flow.Field
	for i, name := range names {
		path := fmt.Sprintf("distinct[%d]", i)
		if slices.Contains(names[:i], name) {
			d.errorf(nodes[i], path, "%q is listed twice", name)
			return nil
		}
		fd := d.field(nodes[i], path)
		if fd == nil {
			return nil
		}
		fds = append(fds, fd)
	}
	return compositeField(fds)
}
