package rules

import (
	"math"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/flow"
)

// NetworkThresholds gives a rule a threshold per named network of the
// enrichment (networks:), as FastNetMon's host groups do: one rule covers a
// busy CDN range and a quiet office range.
//
//	threshold:
//	  default: 500pps
//	  by: dst_network
//	  networks: {cdn: 50kpps, dns_servers: 20kpps}
type NetworkThresholds struct {
	// By is the flow field whose network name picks the threshold:
	// src_network or dst_network.
	By *flow.Field
	// Networks maps a network name to its threshold, in the rule's unit.
	Networks map[string]float64
}

// thresholdByFields are the fields a per-network threshold may key on.
var thresholdByFields = []string{"dst_network", "src_network"}

// ThresholdFor returns the threshold that applies to flow f's group: the
// one of the network f's By field names, else Threshold. It allocates
// nothing, and inlines for a rule without thresholds by network.
func (r *Rule) ThresholdFor(f *flow.Flow) float64 {
	if r.ByNetwork == nil {
		return r.Threshold
	}
	return r.networkThreshold(f)
}

func (r *Rule) networkThreshold(f *flow.Flow) float64 {
	if v, ok := r.ByNetwork.Networks[r.ByNetwork.By.String(f)]; ok {
		return v
	}
	return r.Threshold
}

// thresholdMapping decodes the mapping form of threshold and returns the
// node of its default, which the caller decodes as a plain threshold. The
// networks' quantities are checked by networkThresholds once the default's
// unit is known.
func (d *ruleDecoder) thresholdMapping(n *yaml.Node) (def *yaml.Node, by *flow.Field, nets []*yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		switch k.Value {
		case "default":
			if v.Kind != yaml.ScalarNode {
				d.errorf(v, "threshold.default", "must be a single value")
				continue
			}
			def = v
		case "by":
			if v.Kind != yaml.ScalarNode || (v.Value != "dst_network" && v.Value != "src_network") {
				d.errorf(v, "threshold.by", "must be one of %v (the enrichment's named networks)", thresholdByFields)
				continue
			}
			by, _ = flow.Lookup(v.Value)
		case "networks":
			if v.Kind != yaml.MappingNode {
				d.errorf(v, "threshold.networks", "must map network names to thresholds, as in {cdn: 1M}")
				continue
			}
			nets = v.Content
		default:
			d.errorf(k, "threshold."+k.Value, "unknown field%s (threshold takes default, by and networks)",
				didYouMean(k.Value, []string{"default", "by", "networks"}))
		}
	}
	if def == nil {
		d.errorf(n, "threshold.default", "required: the threshold of flows in no listed network")
	}
	if by == nil && nets != nil {
		d.errorf(n, "threshold.by", "required with networks: dst_network or src_network")
	}
	return def, by, nets
}

// networkThresholds parses the networks' thresholds, each in the unit of
// the default (def).
func (d *ruleDecoder) networkThresholds(by *flow.Field, nets []*yaml.Node, def Quantity) *NetworkThresholds {
	out := &NetworkThresholds{By: by, Networks: map[string]float64{}}
	for i := 0; i+1 < len(nets); i += 2 {
		k, v := nets[i], resolve(nets[i+1])
		path := "threshold.networks." + k.Value
		if v.Kind != yaml.ScalarNode {
			d.errorf(v, path, "must be a single value")
			continue
		}
		q, err := ParseQuantity(v.Value)
		switch {
		case err != nil:
			d.errorf(v, path, "%v", err)
			continue
		case q.Value <= 0 || math.IsNaN(q.Value) || math.IsInf(q.Value, 0):
			d.errorf(v, path, "must be > 0")
			continue
		case q.Unit != def.Unit:
			d.errorf(v, path, "%s: not in the default's unit (%s)", v.Value, def.Unit)
			continue
		}
		if _, dup := out.Networks[k.Value]; dup {
			d.errorf(k, path, "listed twice")
			continue
		}
		out.Networks[k.Value] = q.Value
	}
	return out
}
