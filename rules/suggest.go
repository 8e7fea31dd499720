package rules

import (
	"sort"
	"strings"
)

// didYouMean returns " (did you mean a, b?)" listing the candidates closest
// to word, or "" when none is close enough to help.
func didYouMean(word string, candidates []string) string {
	type scored struct {
		s string
		d int
	}
	var close []scored
	for _, c := range candidates {
		d := EditDistance(strings.ToLower(word), c)
		limit := 2
		if len(word) <= 3 {
			limit = 1
		}
		if d <= limit || (len(word) >= 3 && strings.Contains(c, strings.ToLower(word))) {
			close = append(close, scored{c, d})
		}
	}
	if len(close) == 0 {
		return ""
	}
	sort.SliceStable(close, func(i, j int) bool { return close[i].d < close[j].d })
	if len(close) > 3 {
		close = close[:3]
	}
	names := make([]string, len(close))
	for i, c := range close {
		names[i] = c.s
	}
	return " (did you mean " + strings.Join(names, ", ") + "?)"
}

// EditDistance is the Levenshtein distance between a and b, counting a
// swap of two neighbouring letters as one edit.
// The command line uses it to suggest a flag or command for a misspelt one.
func EditDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
