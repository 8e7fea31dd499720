package alertstate

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/flowguard/flowguard/alert"
)

// Silence statuses.
const (
	StatusActive  = "active"
	StatusPending = "pending"
	StatusExpired = "expired"
)

// Bounds on what a silence and the store hold.
const (
	MaxMatchers     = 32
	MaxValueBytes   = 1024
	MaxCommentBytes = 4096
	MaxSilences     = 1000               // active and pending
	MaxExpired      = 1000               // expired ones kept to be listed
	keepExpired     = 7 * 24 * time.Hour // expired silences are forgotten after this
)

// Matcher selects alerts by one of their fields: rule (or alertname),
// severity, tag (any of the alert's tags) or group.<field> (a group_by
// field such as group.src_addr; absent is ""). IsRegex matches the whole
// value with an RE2 expression; IsEqual false negates.
type Matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"is_regex"`
	IsEqual bool   `json:"is_equal"`

	re *regexp.Regexp
}

// Silence holds back the notifications of the alerts all its matchers
// select between StartsAt and EndsAt (wall-clock time).
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment"`
	// Status is StatusActive, StatusPending or StatusExpired when listed.
	Status string `json:"status"`
}

// statusAt is the silence's status at now.
func (s *Silence) statusAt(now time.Time) string {
	switch {
	case !now.Before(s.EndsAt):
		return StatusExpired
	case now.Before(s.StartsAt):
		return StatusPending
	}
	return StatusActive
}

// ValidationError is a silence the store refuses, with the reason.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &ValidationError{Msg: fmt.Sprintf(format, args...)}
}

// compile checks a matcher and compiles its expression.
func (m *Matcher) compile(i int) error {
	switch {
	case m.Name == "rule" || m.Name == "alertname" || m.Name == "severity" || m.Name == "tag":
	case strings.HasPrefix(m.Name, "group.") && len(m.Name) > len("group."):
	default:
		return invalid("matchers[%d]: name %q: want rule, severity, tag or group.<field> (such as group.src_addr)", i, m.Name)
	}
	if len(m.Value) > MaxValueBytes || !utf8.ValidString(m.Value) {
		return invalid("matchers[%d]: value: at most %d bytes of UTF-8", i, MaxValueBytes)
	}
	m.re = nil
	if m.IsRegex {
		re, err := regexp.Compile("^(?:" + m.Value + ")$")
		if err != nil {
			return invalid("matchers[%d]: value %q: not a regular expression: %v", i, m.Value, err)
		}
		m.re = re
	}
	return nil
}

// matchValue reports whether v satisfies the matcher's value.
func (m *Matcher) matchValue(v string) bool {
	if m.re != nil {
		return m.re.MatchString(v)
	}
	return v == m.Value
}

// matches reports whether the matcher selects a.
func (m *Matcher) matches(a *alert.Alert) bool {
	if m.Name == "tag" { // any tag; a negative matcher: none of them
		any := slices.ContainsFunc(a.Tags, m.matchValue)
		return any == m.IsEqual
	}
	var v string
	switch m.Name {
	case "rule", "alertname":
		v = a.Rule
	case "severity":
		v = a.Severity
	default:
		if g, ok := a.Group[strings.TrimPrefix(m.Name, "group.")]; ok {
			v = fmt.Sprint(g)
		}
	}
	return m.matchValue(v) == m.IsEqual
}

// Silences is the silence store, persisted to a JSON file (when it has a
// path) on every change, atomically.
type Silences struct {
	path string
	now  func() time.Time

	mu   sync.Mutex
	list []*Silence
}

// OpenSilences loads the silences from path (a missing file is an empty
// store). An empty path keeps them in memory only. now is the clock
// (nil: time.Now).
func OpenSilences(path string, now func() time.Time) (*Silences, error) {
	if now == nil {
		now = time.Now
	}
	s := &Silences{path: path, now: now}
	if path == "" {
		return s, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("silences: %w", err)
	}
	var list []*Silence
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("silences: %s: %w (move the file away to start without silences)", path, err)
	}
	for _, sl := range list {
		for i := range sl.Matchers {
			if err := sl.Matchers[i].compile(i); err != nil {
				return nil, fmt.Errorf("silences: %s: silence %s: %w", path, sl.ID, err)
			}
		}
	}
	s.list = list
	return s, nil
}

// List returns every silence held, with its status now, newest first.
func (s *Silences) List() []Silence {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Silence, 0, len(s.list))
	for i := len(s.list) - 1; i >= 0; i-- {
		c := *s.list[i]
		c.Matchers = slices.Clone(c.Matchers)
		c.Status = c.statusAt(now)
		out = append(out, c)
	}
	return out
}

// Add validates sl and stores it under a new id. StartsAt defaults to now.
// A *ValidationError says what is wrong with it.
func (s *Silences) Add(sl Silence) (string, error) {
	now := s.now()
	if sl.ID != "" {
		return "", invalid("id: a new silence has none; the server gives it")
	}
	if len(sl.Matchers) == 0 {
		return "", invalid("matchers: at least one is needed")
	}
	if len(sl.Matchers) > MaxMatchers {
		return "", invalid("matchers: at most %d", MaxMatchers)
	}
	sl.Matchers = slices.Clone(sl.Matchers)
	selective := false
	for i := range sl.Matchers {
		m := &sl.Matchers[i]
		if err := m.compile(i); err != nil {
			return "", err
		}
		selective = selective || m.matchValue("") != m.IsEqual
	}
	if !selective {
		return "", invalid("matchers: each matches an empty value: the silence would hold back every alert; give one that must be set, such as {name: rule, value: vertical-port-scan}")
	}
	if sl.StartsAt.IsZero() {
		sl.StartsAt = now
	}
	switch {
	case sl.EndsAt.IsZero():
		return "", invalid("ends_at: required (RFC 3339, such as %s)", now.Add(2*time.Hour).UTC().Format(time.RFC3339))
	case !sl.EndsAt.After(now):
		return "", invalid("ends_at: %s is in the past", sl.EndsAt.Format(time.RFC3339))
	case !sl.EndsAt.After(sl.StartsAt):
		return "", invalid("ends_at: %s is not after starts_at %s", sl.EndsAt.Format(time.RFC3339), sl.StartsAt.Format(time.RFC3339))
	}
	sl.CreatedBy, sl.Comment = strings.TrimSpace(sl.CreatedBy), strings.TrimSpace(sl.Comment)
	switch {
	case sl.CreatedBy == "":
		return "", invalid("created_by: required (who silences)")
	case sl.Comment == "":
		return "", invalid("comment: required (why)")
	case len(sl.Comment) > MaxCommentBytes || len(sl.CreatedBy) > MaxValueBytes ||
		!utf8.ValidString(sl.Comment) || !utf8.ValidString(sl.CreatedBy):
		return "", invalid("comment, created_by: at most %d and %d bytes of UTF-8", MaxCommentBytes, MaxValueBytes)
	}
	var id [16]byte
	rand.Read(id[:])
	sl.ID = hex.EncodeToString(id[:])
	sl.Status = ""
	sl.StartsAt, sl.EndsAt = sl.StartsAt.UTC(), sl.EndsAt.UTC()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	live := 0
	for _, o := range s.list {
		if o.statusAt(now) != StatusExpired {
			live++
		}
	}
	if live >= MaxSilences {
		return "", invalid("silences: %d active or pending already, the most held; expire some first", live)
	}
	next := append(slices.Clone(s.list), &sl)
	if err := s.save(next); err != nil {
		return "", err
	}
	s.list = next
	return sl.ID, nil
}

// ErrNotFound is the answer for an unknown silence id.
var ErrNotFound = errors.New("no silence with that id")

// Expire ends a silence now. Expiring an expired silence changes nothing.
func (s *Silences) Expire(id string) error {
	now := s.now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.list, func(sl *Silence) bool { return sl.ID == id })
	if i < 0 {
		return ErrNotFound
	}
	if s.list[i].statusAt(now) == StatusExpired {
		return nil
	}
	c := *s.list[i]
	c.EndsAt = now
	if c.StartsAt.After(now) {
		c.StartsAt = now // a pending silence never starts
	}
	next := slices.Clone(s.list)
	next[i] = &c
	if err := s.save(next); err != nil {
		return err
	}
	s.list = next
	return nil
}

// Matching returns the ids of the active silences that match a at now.
func (s *Silences) Matching(a *alert.Alert, now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, sl := range s.list {
		if sl.statusAt(now) != StatusActive {
			continue
		}
		all := true
		for i := range sl.Matchers {
			if !sl.Matchers[i].matches(a) {
				all = false
				break
			}
		}
		if all {
			ids = append(ids, sl.ID)
		}
	}
	return ids
}

// prune forgets expired silences older than keepExpired, and the oldest
// expired past MaxExpired. Nothing is saved: the next save drops them.
func (s *Silences) prune(now time.Time) {
	expired := 0
	for _, sl := range s.list {
		if sl.statusAt(now) == StatusExpired {
			expired++
		}
	}
	s.list = slices.DeleteFunc(s.list, func(sl *Silence) bool {
		if sl.statusAt(now) != StatusExpired {
			return false
		}
		if expired > MaxExpired || now.Sub(sl.EndsAt) > keepExpired {
			expired--
			return true
		}
		return false
	})
}

// save writes list to the file atomically: a temporary file in the same
// folder, synced, renamed over the old one, and the folder synced.
func (s *Silences) save(list []*Silence) error {
	if s.path == "" {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if list == nil {
		list = []*Silence{}
	}
	if err := enc.Encode(list); err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("silences: %w", err)
	}
	f, err := os.CreateTemp(dir, ".silences-*.tmp")
	if err != nil {
		return fmt.Errorf("silences: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(buf.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("silences: saving %s: %w", s.path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
