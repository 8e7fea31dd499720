package enrich

import (
	"errors"
	"fmt"

	"github.com/flowguard/flowguard/enrich/exporters"
	"github.com/flowguard/flowguard/enrich/geoip"
	"github.com/flowguard/flowguard/enrich/intel"
	"github.com/flowguard/flowguard/enrich/networks"
)

// Config is the enrich section of flowguard.yaml. The zero value is a
// working configuration: the default internal networks, no GeoIP, no
// threat lists.
type Config struct {
	Networks networks.Config `yaml:"networks"`
	GeoIP    geoip.Config    `yaml:"geoip"`
	Intel    intel.Config    `yaml:"intel"`
	// Exporters names exporters and their interfaces (exporter_name,
	// in_if_name, out_if_name).
	Exporters exporters.Config `yaml:"exporters"`
}

// Validate reports every problem at once, each naming its field from the
// top of the file ("enrich.geoip.databases[1]: open ...: no such file").
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, prefixed("enrich.networks.", c.Networks.Validate())...)
	errs = append(errs, prefixed("enrich.geoip.", c.GeoIP.Validate())...)
	errs = append(errs, prefixed("enrich.intel.", c.Intel.Validate())...)
	errs = append(errs, prefixed("enrich.", c.Exporters.Validate())...)
	return errors.Join(errs...)
}

// prefixed splits a joined error and puts the section's path before each.
func prefixed(prefix string, err error) []error {
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = fmt.Errorf("%s%w", prefix, e)
	}
	return out
}
