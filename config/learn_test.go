package config

import (
	"testing"
	"time"

	"github.com/flowguard/flowguard/notifiers"
)

// Learned state goes beside the spool unless learn.state_dir says where,
// or "off".
func TestLearnStateDir(t *testing.T) {
	spool := notifiers.Config{Notifiers: []notifiers.NotifierConfig{{Delivery: notifiers.Delivery{SpoolDir: "/var/lib/fg/spool/"}}}}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Notifiers: spool}, "/var/lib/fg/learned"},
		{Config{Notifiers: spool, Learn: Learn{StateDir: "/srv/learned"}}, "/srv/learned"},
		{Config{Notifiers: spool, Learn: Learn{StateDir: "off"}}, ""},
		{Config{}, ""},
	} {
		if got := tc.c.LearnStateDir(); got != tc.want {
			t.Errorf("%+v: state dir %q, want %q", tc.c.Learn, got, tc.want)
		}
	}
	c, err := Load(write(t, "learn: {state_dir: /srv/learned, save_every: 1m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.LearnStateDir() != "/srv/learned" || c.Learn.SaveInterval() != time.Minute {
		t.Errorf("learn: %+v", c.Learn)
	}
}
