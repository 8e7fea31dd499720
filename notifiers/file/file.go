// Package file appends alerts to a file as JSON lines (or readable text),
// and reopens it on request so that logrotate can move it away.
package file

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/notifiers"
)

// Formats the notifier writes.
const (
	FormatJSON = "json"
	FormatText = "text"
)

// Config configures the file notifier.
type Config struct {
	Path   string `yaml:"path"`
	Format string `yaml:"format"` // json (default) or text
	// Mode is the permission of a file the notifier creates, in octal
	// (default "0640").
	Mode string `yaml:"mode"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Format: FormatJSON, Mode: "0640"} }

// Validate checks the configuration; all errors at once.
func (c Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("path: must be set"))
	}
	switch c.Format {
	case FormatJSON, FormatText:
	default:
		errs = append(errs, fmt.Errorf("format: %q is not one of json, text", c.Format))
	}
	if _, err := c.mode(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) mode() (fs.FileMode, error) {
	m, err := strconv.ParseUint(c.Mode, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("mode: %q is not an octal permission like 0640", c.Mode)
	}
	return fs.FileMode(m), nil
}

func init() {
	notifiers.Register("file", func(name string, settings *yaml.Node, _ notifiers.Deps) (notifiers.Notifier, error) {
		cfg := DefaultConfig()
		if err := notifiers.Decode(settings, &cfg); err != nil {
			return nil, err
		}
		return New(name, cfg)
	})
}

// Notifier appends alerts to a file.
type Notifier struct {
	name string
	cfg  Config
	mode fs.FileMode

	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

// New returns a file notifier. The file is opened on the first alert, so
// that building the notifier checks the configuration only.
func New(name string, cfg Config) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, _ := cfg.mode()
	return &Notifier{name: name, cfg: cfg, mode: m}, nil
}

// Name returns the notifier's name.
func (n *Notifier) Name() string { return n.name }

func (n *Notifier) open() error {
	f, err := os.OpenFile(n.cfg.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, n.mode)
	if err != nil {
		return fmt.Errorf("file %s: %w", n.name, err)
	}
	n.f, n.w = f, bufio.NewWriter(f)
	return nil
}

// Notify appends the alerts, one a line, and flushes.
func (n *Notifier) Notify(_ context.Context, alerts ...*alert.Alert) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.f == nil {
		if err := n.open(); err != nil {
			return err
		}
	}
	for _, a := range alerts {
		if n.cfg.Format == FormatText {
			n.w.WriteString(a.Text())
		} else {
			b, err := json.Marshal(a)
			if err != nil {
				return notifiers.Permanent(fmt.Errorf("file %s: encoding alert %s: %w", n.name, a.ID, err))
			}
			n.w.Write(b)
		}
		n.w.WriteByte('\n')
	}
	if err := n.w.Flush(); err != nil {
		// A full disk or a vanished mount: reopen on the next attempt.
		n.f.Close()
		n.f, n.w = nil, nil
		return fmt.Errorf("file %s: %w", n.name, err)
	}
	return nil
}

// Reopen closes the file and opens the configured path again: after
// logrotate moved the file away, alerts go to a new one.
func (n *Notifier) Reopen() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	err := n.closeLocked()
	if oerr := n.open(); oerr != nil {
		return oerr
	}
	return err
}

// Close flushes and closes the file.
func (n *Notifier) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closeLocked()
}

func (n *Notifier) closeLocked() error {
	if n.f == nil {
		return nil
	}
	err := n.w.Flush()
	if cerr := n.f.Close(); err == nil {
		err = cerr
	}
	n.f, n.w = nil, nil
	return err
}
