package main

import (
	"context"
	"io"
	"os"
	"os/signal"

	"github.com/flowguard/flowguard/daemon/replay"
	"github.com/flowguard/flowguard/engine/tuning"
)

const replaySynopsis = `flowguard replay [-c FILE] [--rules PATH]... [--format json|text] [--stats text|json|none] [--truth FILE] [--speed N] [--notify] [--learn STATE] FILE...

Reads pcap/pcapng captures (packets are metered into flows), goflow2 JSON
lines, flowguard flow JSON lines and nfdump CSV (format detected from
content, gzip allowed), runs them through the rules on the flows' own time,
prints alerts to stdout and a summary to stderr. Without --rules (or a
config naming rules) the bundled example rules are used. Alerts are
written in time order (fired_at; 10,000 held at most) at the end, or as
they fire with --speed. With --truth, the summary ends with how the alerts
compare with what the input is known to hold: per rule, expected, detected,
recall, false alarms, each miss and false alarm. --learn STATE loads what
the rules that learn learned from the file STATE (if it exists) and writes
it back with what the replay taught them: the learned.json a daemon's
learn.state_dir holds.`

func cmdReplay(args []string, out, errw io.Writer) error {
	fs := newFlagSet("replay", replaySynopsis, out, errw)
	var rulePaths listFlag
	fs.Var(&rulePaths, "rules", "rule file or folder (repeatable; default: the bundled examples/rules)")
	format := fs.String("format", "text", "alert output: json (one object a line) or text")
	cfgPath := fs.String("c", "", "config file (rules, engine and meter settings)")
	quiet := fs.Bool("q", false, "no summary on stderr")
	speed := fs.Float64("speed", 0, "replay at N times the flows' own pace (0: as fast as possible)")
	stats := fs.String("stats", "text", "tuning summary on stderr: text, json or none")
	truthPath := fs.String("truth", "", "the alerts the input must raise (gen scenario's .truth.json, JSON lines or \"RULE FIELD=VALUE ...\" lines): recall and false alarms per rule in the summary")
	live := fs.Bool("notify", false, "also send alerts to the config's notifiers (with --speed, a rehearsal against live receivers)")
	exportPorts := fs.String("export-ports", "auto", "captured flow export in pcaps: UDP datagrams to these ports (comma-separated) "+
		"are decoded as NetFlow/IPFIX/sFlow instead of metered; auto: any UDP datagram that decodes as one; none: meter everything")
	learn := fs.String("learn", "", "learned-state file of the rules that learn: loaded if it exists, written after the replay")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return usagef("replay: no input file given")
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if len(rulePaths) > 0 {
		cfg.Rules = rulePaths
	}
	set, err := loadRulesWith(cfg.Rules, cfg.RulesOptions(), errw)
	if err != nil {
		return err
	}
	if *stats != "text" && *stats != "json" && *stats != "none" {
		return usagef("--stats: %q is not text, json or none", *stats)
	}
	var truth *tuning.Truth
	if *truthPath != "" {
		if *stats == "none" || *quiet {
			return usagef("--truth: the comparison is part of the summary; give --stats text or json, not none or -q")
		}
		if truth, err = tuning.LoadTruth(*truthPath); err != nil {
			return usagef("--truth: %v", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// After the first Ctrl-C, a second one kills at once.
	defer context.AfterFunc(ctx, stop)()
	return replay.Run(ctx, cfg, set, replay.Options{Files: files, Format: *format, Quiet: *quiet, Speed: *speed,
		Stats: *stats, Notify: *live, ExportPorts: *exportPorts, Version: version, Truth: truth, Learn: *learn}, out, errw)
}
