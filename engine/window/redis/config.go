package rediswindow

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Config selects a Redis server or Cluster and tunes the store. Either
// URL or Addrs names the server; the password comes from the environment
// (PasswordEnv), never from the config file.
type Config struct {
	// URL is redis://host:port/db, rediss://host:port/db (TLS), or
	// redis+cluster://h1:p1,h2:p2 (rediss+cluster:// with TLS) for a
	// Cluster's seed nodes. A user name may precede the host
	// (redis://flowguard@host:6379/0).
	URL string `yaml:"url"`
	// Addrs lists host:port seed nodes of a Cluster, instead of URL. One
	// address is a standalone server unless Cluster is set.
	Addrs []string `yaml:"addrs"`
	// Cluster makes a single address in Addrs a Cluster seed.
	Cluster bool `yaml:"cluster"`
	// Username for Redis ACLs (overrides the URL's).
	Username string `yaml:"username"`
	// PasswordEnv names the environment variable holding the password
	// (default FLOWGUARD_REDIS_PASSWORD; unset or empty: no password).
	PasswordEnv string `yaml:"password_env"`
	// DB is the database of a standalone server (overrides the URL's).
	DB int `yaml:"db"`
	// KeyPrefix starts every key the store writes (default "fg:").
	KeyPrefix string `yaml:"key_prefix"`
	// FlushInterval is how often local deltas go to Redis and shared
	// totals come back (default 200ms). It bounds how late an alert that
	// needs other instances' flows can be.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// DialTimeout, ReadTimeout and WriteTimeout bound each connection
	// attempt and command (default 1s each).
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// ClaimTimeout bounds the round trip of a suppression claim; past it
	// the claim is decided locally (default 50ms).
	ClaimTimeout time.Duration `yaml:"claim_timeout"`
	// MaxBackoff caps the wait between reconnection attempts while Redis
	// is unreachable (default 5s; the first wait is FlushInterval).
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// MaxPending caps the deltas (groups and distinct items) waiting for
	// a flush, so that memory stays bounded while Redis is away; past it
	// deltas are dropped and counted (default 1048576).
	MaxPending int `yaml:"max_pending"`
	// ExchangeMaxKeys caps, per window, the groups whose other instances'
	// part rose with a flush and that wait for the engine to compare them
	// with the threshold (default 4096); past it, rises are counted and
	// those groups are compared at their next local flow.
	ExchangeMaxKeys int `yaml:"exchange_max_keys"`
	// ShipAll sends every group's updates to Redis, as the store did
	// before it kept the groups far below their threshold to itself (see
	// README.md, "What is sent"); for comparison and for rules whose
	// alerts must see every instance's part at once.
	ShipAll bool `yaml:"ship_all"`
	// TLS configures rediss:// connections (and enables TLS for Addrs).
	TLS TLSConfig `yaml:"tls"`

	// Logger receives the store's few log lines (default slog.Default()).
	Logger *slog.Logger `yaml:"-"`
}

// TLSConfig configures TLS to Redis.
type TLSConfig struct {
	Enabled            bool   `yaml:"enabled"`     // TLS with Addrs; implied by rediss://
	CAFile             string `yaml:"ca_file"`     // PEM roots (default: the system's)
	CertFile           string `yaml:"cert_file"`   // client certificate, with KeyFile
	KeyFile            string `yaml:"key_file"`    //
	ServerName         string `yaml:"server_name"` // default: the host
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Defaults for Config's zero fields.
const (
	DefaultPasswordEnv   = "FLOWGUARD_REDIS_PASSWORD"
	DefaultKeyPrefix     = "fg:"
	DefaultFlushInterval = 200 * time.Millisecond
	DefaultTimeout       = time.Second
	DefaultClaimTimeout  = 50 * time.Millisecond
	DefaultMaxBackoff    = 5 * time.Second
	DefaultMaxPending    = 1 << 20
)

// DefaultExchangeMaxKeys is Config.ExchangeMaxKeys's default.
const DefaultExchangeMaxKeys = 4096

// DefaultConfig returns the defaults, with no server named.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.PasswordEnv == "" {
		c.PasswordEnv = DefaultPasswordEnv
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultTimeout
	}
	if c.ClaimTimeout <= 0 {
		c.ClaimTimeout = DefaultClaimTimeout
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.ExchangeMaxKeys <= 0 {
		c.ExchangeMaxKeys = DefaultExchangeMaxKeys
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every problem of the config at once, each naming its
// field. Zero durations and sizes take defaults; negative ones are errors.
// Errors never quote the URL's password.
func (c Config) Validate() error {
	var errs []error
	if (c.URL == "") == (len(c.Addrs) == 0) {
		errs = append(errs, errors.New("exactly one of url & addrs must be configured"))
	}
	if c.URL != "" {
		if _, err := parseURL(c.URL); err != nil {
			errs = append(errs, fmt.Errorf("url: %w", err))
		}
	}
	for i, a := range c.Addrs {
		if err := checkAddr(a); err != nil {
			errs = append(errs, fmt.Errorf("addrs[%d]: %w", i, err))
		}
	}
	if c.DB < 0 {
		errs = append(errs, fmt.Errorf("db: must be >= 0, got %d", c.DB))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"flush_interval", c.FlushInterval}, {"dial_timeout", c.DialTimeout},
		{"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout},
		{"claim_timeout", c.ClaimTimeout}, {"max_backoff", c.MaxBackoff},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must be >= 0, got %v", d.name, d.v))
		}
	}
	if c.MaxPending < 0 {
		errs = append(errs, fmt.Errorf("max_pending: must be >= 0, got %d", c.MaxPending))
	}
	if c.ExchangeMaxKeys < 0 {
		errs = append(errs, fmt.Errorf("exchange_max_keys: must be >= 0, got %d", c.ExchangeMaxKeys))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls: cert_file & key_file must be configured together"))
	}
	return errors.Join(errs...)
}

// target is where a config points: addresses, cluster or not, TLS or not.
type target struct {
	addrs    []string
	cluster  bool
	tls      bool
	username string
	db       int
}

// parseURL reads redis://, rediss://, redis+cluster:// and
// rediss+cluster:// URLs. Its errors never quote the URL.
func parseURL(raw string) (target, error) {
	var t target
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return t, errors.New("want scheme://host:port, such as redis://127.0.0.1:6379/0")
	}
	switch scheme {
	case "redis":
	case "rediss":
		t.tls = true
	case "redis+cluster":
		t.cluster = true
	case "rediss+cluster":
		t.cluster, t.tls = true, true
	default:
		return t, fmt.Errorf("scheme %q is not one of redis, rediss, redis+cluster, rediss+cluster", scheme)
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		return t, errors.New("query and fragment are not supported; use the config's fields")
	}
	hosts, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(hosts, '@'); i >= 0 {
		user := hosts[:i]
		hosts = hosts[i+1:]
		if strings.Contains(user, ":") {
			return t, errors.New("a password in the URL is not accepted; set it in the environment (password_env)")
		}
		t.username = user
	}
	for h := range strings.SplitSeq(hosts, ",") {
		if h == "" {
			return t, errors.New("empty host")
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(h, "6379")
		}
		if err := checkAddr(h); err != nil {
			return t, err
		}
		t.addrs = append(t.addrs, h)
	}
	if len(t.addrs) > 1 && !t.cluster {
		return t, fmt.Errorf("%d hosts need the redis+cluster scheme", len(t.addrs))
	}
	if path != "" {
		if t.cluster {
			return t, errors.New("a Cluster has no database number")
		}
		db, err := strconv.Atoi(path)
		if err != nil || db < 0 {
			return t, fmt.Errorf("database %q: want a number >= 0", path)
		}
		t.db = db
	}
	return t, nil
}

func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("address %q: want host:port", a)
	}
	if host == "" {
		return fmt.Errorf("address %q: empty host", a)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("address %q: port must be 1-65535", a)
	}
	return nil
}

// client builds the go-redis client the config asks for. c has defaults.
func (c Config) client() (redis.UniversalClient, bool, error) {
	var t target
	if c.URL != "" {
		var err error
		if t, err = parseURL(c.URL); err != nil {
			return nil, false, fmt.Errorf("url: %w", err)
		}
	} else {
		t = target{addrs: c.Addrs, cluster: c.Cluster || len(c.Addrs) > 1, tls: c.TLS.Enabled}
	}
	if c.Username != "" {
		t.username = c.Username
	}
	if c.DB != 0 {
		t.db = c.DB
	}
	if t.cluster && t.db != 0 {
		return nil, false, errors.New("db: a Cluster has no database number")
	}
	opts := &redis.UniversalOptions{
		Addrs:           t.addrs,
		IsClusterMode:   t.cluster,
		DB:              t.db,
		Username:        t.username,
		Password:        os.Getenv(c.PasswordEnv),
		ClientName:      "flowguard",
		DialTimeout:     c.DialTimeout,
		ReadTimeout:     c.ReadTimeout,
		WriteTimeout:    c.WriteTimeout,
		MaxRetries:      -1, // none: a script call resent after a lost reply could count twice (flush.go, requeue)
		DialerRetries:   1,  // the store retries with its own backoff
		DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}
	if t.tls || c.TLS.Enabled {
		tc, err := c.TLS.config()
		if err != nil {
			return nil, false, fmt.Errorf("tls: %w", err)
		}
		opts.TLSConfig = tc
	}
	return redis.NewUniversalClient(opts), t.cluster, nil
}

func (t TLSConfig) config() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the operator's explicit choice
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s: no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
