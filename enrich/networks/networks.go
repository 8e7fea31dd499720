// Package networks says which addresses are ours (internal), which named
// network of the operator's address plan holds them, and so which way a
// flow goes: inbound, outbound, internal or external.
package networks

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/flowguard/flowguard/enrich/internal/addrtable"
	"github.com/flowguard/flowguard/flow"
)

// DefaultInternal are the internal networks when none are configured:
// private (RFC 1918, RFC 4193), shared (RFC 6598) and link-local. The
// bundled rule pack's internal_nets list holds the same networks.
//
// Loopback (127.0.0.0/8, ::1) is not internal: no router exports flows of
// it, so loopback flows come from captures and tests made on one host,
// where they stand for traffic with the outside (the demo captures' scans
// and uploads). Configure it in enrich.networks.internal to count it as ours.
var DefaultInternal = []string{
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", // RFC 1918
	"100.64.0.0/10",  // RFC 6598 shared address space (CGNAT)
	"169.254.0.0/16", // link-local
	"fc00::/7",       // unique local
	"fe80::/10",      // link-local
}

// Config is the networks section of the enrichment configuration.
type Config struct {
	// Internal are the networks that are ours; given, they replace
	// DefaultInternal (list the defaults you keep).
	Internal []string `yaml:"internal"`
	// Named are networks of the address plan, matched most specific first.
	Named []NamedConfig `yaml:"named"`
}

// NamedConfig is one named network: a prefix, or several, and free-form
// attributes (site, role, owner...).
type NamedConfig struct {
	Name       string            `yaml:"name"`
	Prefix     string            `yaml:"prefix"`
	Prefixes   []string          `yaml:"prefixes"`
	Attributes map[string]string `yaml:"attributes"`
}

// Network is a named network once parsed.
type Network struct {
	Name       string            `json:"name"`
	Prefixes   []netip.Prefix    `json:"prefixes"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Info is what the networks say about one address.
type Info struct {
	Internal   bool              `json:"internal"`
	Network    string            `json:"network,omitempty"`
	Prefix     netip.Prefix      `json:"network_prefix,omitzero"` // the named network's prefix that matched
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Networks classifies addresses. It is immutable and safe for concurrent
// use.
type Networks struct {
	table    *addrtable.Table
	internal []netip.Prefix
	named    []Network
}

// The table's values: bit 0 says internal, the bits above the index + 1
// of the most specific named network (0: none).
const internalBit = 1

func combine(outer, inner uint64) uint64 {
	v := (outer | inner) & internalBit
	if inner>>1 != 0 {
		return v | inner&^internalBit
	}
	return v | outer&^internalBit
}

// Validate reports every problem at once, each naming its field relative
// to the section ("named[2].prefix: ...").
func (c Config) Validate() error {
	_, err := New(c)
	return err
}

// New builds the networks of c.
func New(c Config) (*Networks, error) {
	var errs []error
	var b addrtable.Builder
	n := &Networks{}
	internal, field := c.Internal, "internal"
	if internal == nil {
		internal, field = DefaultInternal, "default internal"
	}
	for i, s := range internal {
		p, err := parsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", field, i, err))
			continue
		}
		n.internal = append(n.internal, p)
		b.Add(p, internalBit)
	}
	names := map[string]int{}
	owner := map[netip.Prefix]string{}
	for i, nc := range c.Named {
		at := fmt.Sprintf("named[%d]", i)
		switch j, dup := names[nc.Name]; {
		case nc.Name == "":
			errs = append(errs, fmt.Errorf("%s.name: missing", at))
		case dup:
			errs = append(errs, fmt.Errorf("%s.name: %q already names named[%d]", at, nc.Name, j))
		default:
			names[nc.Name] = i
		}
		nw := Network{Name: nc.Name, Attributes: maps.Clone(nc.Attributes)}
		add := func(field, s string) {
			p, err := parsePrefix(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.%s: %w", at, field, err))
				return
			}
			if o, dup := owner[p]; dup {
				errs = append(errs, fmt.Errorf("%s.%s: %s already belongs to %s", at, field, p, o))
				return
			}
			owner[p] = fmt.Sprintf("%s (%s)", at, nc.Name)
			nw.Prefixes = append(nw.Prefixes, p)
			b.Add(p, uint64(len(n.named)+1)<<1)
		}
		if nc.Prefix != "" {
			add("prefix", nc.Prefix)
		}
		for j, s := range nc.Prefixes {
			add(fmt.Sprintf("prefixes[%d]", j), s)
		}
		if nc.Prefix == "" && len(nc.Prefixes) == 0 {
			errs = append(errs, fmt.Errorf("%s: one of prefix or prefixes is required", at))
		}
		n.named = append(n.named, nw)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	n.table = b.Build(combine, nil)
	return n, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		// A bare address is a network of one.
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a prefix like 10.0.0.0/8 or an address", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set (the network is %s)", s, p.Masked())
	}
	return p, nil
}

// Enrich sets src_internal, dst_internal, src_network, dst_network and
// direction.
func (n *Networks) Enrich(f *flow.Flow) {
	sv, dv := n.table.Lookup(f.SrcAddr), n.table.Lookup(f.DstAddr)
	f.SrcInternal, f.DstInternal = sv&internalBit != 0, dv&internalBit != 0
	f.SrcNetwork, f.DstNetwork = n.name(sv), n.name(dv)
	switch {
	case f.SrcInternal && f.DstInternal:
		f.Direction = flow.DirectionInternal
	case f.SrcInternal:
		f.Direction = flow.DirectionOutbound
	case f.DstInternal:
		f.Direction = flow.DirectionInbound
	default:
		f.Direction = flow.DirectionExternal
	}
}

func (n *Networks) name(v uint32) string {
	if i := v >> 1; i != 0 {
		return n.named[i-1].Name
	}
	return ""
}

// Internal reports whether a is in an internal network.
func (n *Networks) Internal(a netip.Addr) bool {
	return n.table.Lookup(a)&internalBit != 0
}

// Lookup returns what the networks say about a.
func (n *Networks) Lookup(a netip.Addr) Info {
	v := n.table.Lookup(a)
	info := Info{Internal: v&internalBit != 0}
	if i := v >> 1; i != 0 {
		nw := n.named[i-1]
		info.Network, info.Attributes = nw.Name, nw.Attributes
		a = a.Unmap()
		for _, p := range nw.Prefixes {
			if p.Contains(a) && p.Bits() > info.Prefix.Bits() {
				info.Prefix = p
			}
		}
	}
	return info
}

// InternalPrefixes are the internal networks in service.
func (n *Networks) InternalPrefixes() []netip.Prefix { return slices.Clone(n.internal) }

// Named are the named networks in configuration order.
func (n *Networks) Named() []Network { return slices.Clone(n.named) }

// Attributes returns the attributes of the named network called name, for
// rules and alerts that want the site or owner of src_network.
func (n *Networks) Attributes(name string) map[string]string {
	for _, nw := range n.named {
		if nw.Name == name {
			return nw.Attributes
		}
	}
	return nil
}
