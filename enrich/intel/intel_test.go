package intel

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

var addr = netip.MustParseAddr

func TestParseLayouts(t *testing.T) {
	for file, want := range map[string][]string{
		"testdata/drop.txt":              {"192.0.2.0/24", "198.51.100.128/25", "203.0.113.64/26"},
		"testdata/drop_v4.json":          {"192.0.2.0/24", "198.51.100.128/25"},
		"testdata/firehol_level1.netset": {"0.0.0.0/8", "127.0.0.5/32", "192.0.2.128/25", "203.0.113.0/24"},
	} {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := Parse(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", file, got, want)
		}
	}
	ps, err := Parse(strings.NewReader("2001:db8::1\n  10.1.2.3/8   # sloppy\n\t192.0.2.9 trailing text\n"))
	if err != nil || len(ps) != 3 || ps[0].Bits() != 128 || ps[1].String() != "10.0.0.0/8" || ps[2].Bits() != 32 {
		t.Errorf("Parse = %v, %v", ps, err)
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(map[string]string{"bad": "testdata/broken.txt", "gone": "testdata/none.txt"}, nil)
	for _, want := range []string{
		`list "bad": testdata/broken.txt:3: "<html><head><title>503": not an address or CIDR prefix`,
		`list "gone": stat testdata/none.txt: no such file`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nlacks %q", err, want)
		}
	}
	err = Config{Lists: map[string]string{"gone": "testdata/none.txt", "empty": ""}}.Validate()
	for _, want := range []string{"lists.gone: open testdata/none.txt: no such file", "lists.empty: empty path"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v\nlacks %q", err, want)
		}
	}
}

func TestLookup(t *testing.T) {
	l, err := Open(map[string]string{
		"spamhaus-drop":  "testdata/drop.txt",
		"firehol-level1": "testdata/firehol_level1.netset",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string][]string{
		"192.0.2.1":          {"spamhaus-drop"},
		"192.0.2.200":        {"firehol-level1", "spamhaus-drop"},
		"::ffff:192.0.2.200": {"firehol-level1", "spamhaus-drop"},
		"127.0.0.5":          {"firehol-level1"},
		"127.0.0.6":          nil,
		"203.0.113.70":       {"firehol-level1", "spamhaus-drop"},
		"203.0.113.1":        {"firehol-level1"},
		"2001:db8::1":        nil,
	} {
		if got := l.Lookup(addr(a)); !reflect.DeepEqual(got, want) {
			t.Errorf("Lookup(%s) = %v, want %v", a, got, want)
		}
	}
	// One shared slice per set of lists.
	x, y := l.Lookup(addr("192.0.2.200")), l.Lookup(addr("203.0.113.70"))
	if &x[0] != &y[0] {
		t.Error("the same set of lists gives different slices")
	}
	f := flow.Flow{SrcAddr: addr("127.0.0.5"), DstAddr: addr("8.8.8.8"), DstLists: []string{"stale"}}
	l.Enrich(&f)
	if !reflect.DeepEqual(f.SrcLists, []string{"firehol-level1"}) || f.DstLists != nil {
		t.Errorf("Enrich: %v %v", f.SrcLists, f.DstLists)
	}
	if n := testing.AllocsPerRun(100, func() { l.Enrich(&f) }); n != 0 {
		t.Errorf("Enrich allocates %v times", n)
	}
	m := l.Matches(addr("192.0.2.200"))
	if len(m) != 2 || m[0].List != "firehol-level1" || m[0].Entry.String() != "192.0.2.128/25" {
		t.Errorf("Matches = %+v", m)
	}
	if info := l.Lists(); len(info) != 2 || info[1].Name != "spamhaus-drop" || info[1].Entries != 3 {
		t.Errorf("Lists = %+v", info)
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "block.txt")
	write := func(s string, age time.Duration) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := time.Now().Add(age)
		os.Chtimes(path, mt, mt)
	}
	write("192.0.2.1\n", -time.Hour)
	var logs bytes.Buffer
	l, err := Open(map[string]string{"block": path}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	a, b := addr("192.0.2.1"), addr("192.0.2.2")
	write("192.0.2.2\n", -time.Minute)
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if l.Lookup(a) != nil || l.Lookup(b) == nil {
		t.Errorf("after reload: %v %v", l.Lookup(a), l.Lookup(b))
	}
	write("192.0.2.3\nnot an address\n", -time.Second)
	if err := l.Reload(); err == nil || !strings.Contains(err.Error(), path+":2:") {
		t.Errorf("bad reload: %v", err)
	}
	if l.Lookup(b) == nil {
		t.Error("a bad reload dropped the list")
	}
	if err := l.Reload(); err != nil {
		t.Errorf("the same bad version was tried again: %v", err)
	}
	if s := l.Stats(); s.Reloads != 1 || s.ReloadErrors != 1 {
		t.Errorf("stats %+v", s)
	}
	if !strings.Contains(logs.String(), "keeping the previous version") {
		t.Errorf("logs:\n%s", logs.String())
	}
}
