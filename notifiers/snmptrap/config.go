package snmptrap

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/flowguard/flowguard/notifiers"
)

// DefaultBaseOID is the OID of flowguardMIB in FLOWGUARD-MIB.txt:
// enterprises.32473, IANA's example enterprise number (RFC 5612), a
// placeholder until the MIB is moved under an organisation's own number.
const DefaultBaseOID = "1.3.6.1.4.1.32473"

// Config configures an SNMP notification sender. Community and the v3
// passwords may hold ${NAME} references to environment variables.
type Config struct {
	// Address is the receiver's host:port (port 162 when left out).
	Address string `yaml:"address"`
	Version string `yaml:"version"` // "2c" (default) or "3"
	// Inform sends acknowledged InformRequests instead of traps: a lost
	// one is retried by the dispatcher.
	Inform    bool   `yaml:"inform"`
	Community string `yaml:"community"` // v2c (default public)
	// Timeout bounds the wait for an inform's answer (default 5s).
	Timeout notifiers.Duration `yaml:"timeout"`
	// Retries is how often gosnmp resends an unanswered inform before the
	// attempt fails (default 1).
	Retries int `yaml:"retries"`
	// BaseOID is flowguardMIB's OID: the notification is BaseOID.0.1 and
	// the objects BaseOID.1.N.0. Change it together with the MIB.
	BaseOID string `yaml:"base_oid"`
	V3      V3     `yaml:"v3"`
}

// V3 holds SNMPv3 user-based security.
type V3 struct {
	User string `yaml:"user"`
	// SecurityLevel: authPriv (default), authNoPriv, noAuthNoPriv.
	SecurityLevel string `yaml:"security_level"`
	// AuthProtocol: SHA (default), SHA224, SHA256, SHA384, SHA512, MD5.
	AuthProtocol string `yaml:"auth_protocol"`
	AuthPassword string `yaml:"auth_password"`
	// PrivProtocol: AES (default), AES192, AES256, AES192C, AES256C, DES.
	PrivProtocol string `yaml:"priv_protocol"`
	PrivPassword string `yaml:"priv_password"`
	// EngineID is flowguard's own (authoritative) engine id for traps, in
	// hex; the receiver's user entry names it (snmptrapd: createUser -e).
	// Default: 80007ed904 + hex("flowguard-" + hostname), cut to 32 octets.
	EngineID string `yaml:"engine_id"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Version: "2c", Community: "public", Timeout: notifiers.Duration(5 * time.Second), Retries: 1,
		BaseOID: DefaultBaseOID,
		V3:      V3{SecurityLevel: "authPriv", AuthProtocol: "SHA", PrivProtocol: "AES"},
	}
}

// DefaultEngineID is the engine id used when v3.engine_id is not set.
func DefaultEngineID() []byte {
	host, _ := os.Hostname()
	id := []byte{0x80, 0x00, 0x7e, 0xd9, 0x04} // enterprise 32473, format 4 (text)
	id = append(id, "flowguard-"+host...)
	if len(id) > 32 {
		id = id[:32]
	}
	return id
}

// resolve validates the configuration and expands secrets; all errors
// at once, none holding a secret.
func (c Config) resolve() (Config, []int, []byte, error) {
	var errs []error
	if c.Address == "" {
		errs = append(errs, errors.New("address: must be set (host or host:port)"))
	} else if _, _, err := net.SplitHostPort(c.Address); err != nil {
		c.Address = net.JoinHostPort(strings.Trim(c.Address, "[]"), "162")
	}
	base, err := parseOID(c.BaseOID)
	if err != nil {
		errs = append(errs, fmt.Errorf("base_oid: %w", err))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("timeout: must be > 0"))
	}
	if c.Retries < 0 {
		errs = append(errs, errors.New("retries: must be >= 0"))
	}
	expand := func(field string, s *string) {
		v, err := notifiers.ExpandEnv(*s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
		*s = v
	}
	var engine []byte
	switch c.Version {
	case "2c":
		expand("community", &c.Community)
		if c.Community == "" {
			errs = append(errs, errors.New("community: must be set for version 2c"))
		}
	case "3":
		v := &c.V3
		if v.User == "" {
			errs = append(errs, errors.New("v3.user: must be set"))
		}
		if _, ok := authProtocols[v.AuthProtocol]; !ok {
			errs = append(errs, fmt.Errorf("v3.auth_protocol: %q is not one of MD5, SHA, SHA224, SHA256, SHA384, SHA512", v.AuthProtocol))
		}
		if _, ok := privProtocols[v.PrivProtocol]; !ok {
			errs = append(errs, fmt.Errorf("v3.priv_protocol: %q is not one of DES, AES, AES192, AES256, AES192C, AES256C", v.PrivProtocol))
		}
		expand("v3.auth_password", &v.AuthPassword)
		expand("v3.priv_password", &v.PrivPassword)
		switch v.SecurityLevel {
		case "authPriv":
			if len(v.PrivPassword) < 8 {
				errs = append(errs, errors.New("v3.priv_password: must have at least 8 characters for authPriv"))
			}
			fallthrough
		case "authNoPriv":
			if len(v.AuthPassword) < 8 {
				errs = append(errs, errors.New("v3.auth_password: must have at least 8 characters"))
			}
		case "noAuthNoPriv":
		default:
			errs = append(errs, fmt.Errorf("v3.security_level: %q is not one of authPriv, authNoPriv, noAuthNoPriv", v.SecurityLevel))
		}
		if v.EngineID == "" {
			engine = DefaultEngineID()
		} else if e, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(v.EngineID), "0x")); err != nil || len(e) < 5 || len(e) > 32 {
			errs = append(errs, fmt.Errorf("v3.engine_id: %q is not 5 to 32 octets in hex", v.EngineID))
		} else {
			engine = e
		}
	default:
		errs = append(errs, fmt.Errorf("version: %q is not one of 2c, 3", c.Version))
	}
	return c, base, engine, errors.Join(errs...)
}

func parseOID(s string) ([]int, error) {
	s = strings.TrimPrefix(s, ".")
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%q is not a dotted OID like 1.3.6.1.4.1.32473", s)
	}
	oid := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a dotted OID like 1.3.6.1.4.1.32473", s)
		}
		oid[i] = int(n)
	}
	return oid, nil
}
