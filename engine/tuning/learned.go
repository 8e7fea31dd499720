package tuning

import (
	"fmt"
	"strings"

	"github.com/flowguard/flowguard/engine"
)

// LearnedSource is what AddLearned reads: an engine after the input
// (engine.Engine.Learned, called from its goroutine).
type LearnedSource interface {
	Learned(id string, n int) (engine.LearnedSummary, bool)
}

// AddLearned puts in the report what each learning rule (baseline,
// new_terms, beacon) learned of every group of the input.
func (rep *Report) AddLearned(src LearnedSource) {
	for i := range rep.Rules {
		if s, ok := src.Learned(rep.Rules[i].Rule, 0); ok {
			rep.Rules[i].Learned = &s
		}
	}
}

// learnedTextGroups is how many learned groups the text report lists per
// rule; the JSON report has them all.
const learnedTextGroups = 20

// writeLearned writes what a learning rule learned, most telling groups
// first.
func writeLearned(b *strings.Builder, s *engine.LearnedSummary) {
	more := ""
	if s.Evicted > 0 {
		more = fmt.Sprintf(" (%d evicted)", s.Evicted)
	}
	fmt.Fprintf(b, "  learned     %s %s%s\n", s.Kind, count(int(s.Groups), "group"), more)
	for i, g := range s.Top {
		if i == learnedTextGroups {
			fmt.Fprintf(b, "  learned     ... and %d more groups (--stats json lists them all)\n", len(s.Top)-i)
			break
		}
		var what string
		switch s.Kind {
		case "baseline":
			what = fmt.Sprintf("mean %g spread %g over %s (%s)", g.Mean, g.Spread, count(g.Samples, "sample"), g.Season)
		case "new_terms":
			what = count(g.Terms, "term")
		case "beacon":
			what = fmt.Sprintf("every %gs jitter %g%% over %s, score %g", g.Interval, g.Jitter*100, count(g.Count, "start"), g.Score)
		}
		fmt.Fprintf(b, "  learned     %-44s %s\n", anyGroupText(g.Group), what)
	}
}

// anyGroupText renders a decoded group as "k=v k=v" in key order.
func anyGroupText(g map[string]any) string {
	m := make(map[string]string, len(g))
	for k, v := range g {
		m[k] = fmt.Sprint(v)
	}
	return groupText(m)
}
