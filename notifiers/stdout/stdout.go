// Package stdout writes alerts to standard output (or any writer) as JSON
// lines or as one readable line of text each.
package stdout

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/flowguard/flowguard/alert"
)

// Formats the notifier writes.
const (
	FormatJSON = "json"
	FormatText = "text"
)

// Config configures the stdout notifier.
type Config struct {
	Format string `yaml:"format"` // json (default) or text
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch c.Format {
	case "", FormatJSON, FormatText:
		return nil
	}
	return fmt.Errorf("format: %q is not one of json, text", c.Format)
}

// Notifier writes alerts to a writer, one a line.
type Notifier struct {
	name string
	text bool
	mu   sync.Mutex
	w    *bufio.Writer
}

// New returns a notifier writing to w (os.Stdout when nil).
func New(name string, cfg Config, w io.Writer) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if w == nil {
		w = os.Stdout
	}
	return &Notifier{name: name, text: cfg.Format == FormatText, w: bufio.NewWriter(w)}, nil
}

// Name returns the notifier's name.
func (n *Notifier) Name() string { return n.name }

// Notify writes the alerts and flushes, so a reader sees each batch at once.
func (n *Notifier) Notify(_ context.Context, alerts ...*alert.Alert) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range alerts {
		if n.text {
			n.w.WriteString(a.Text())
		} else {
			b, err := json.Marshal(a)
			if err != nil {
				return fmt.Errorf("stdout: encoding alert %s: %w", a.ID, err)
			}
			n.w.Write(b)
		}
		n.w.WriteByte('\n')
	}
	return n.w.Flush()
}

// Close flushes what is buffered.
func (n *Notifier) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.w.Flush()
}
