package alert

// Severities are the severity levels, lowest first: the one list rules
// take a severity from, routes filter on (min_severity) and the notifiers
// map to their own scales (syslog, CEF, SNMP, Slack) by SeverityRank.
var Severities = []string{"info", "low", "medium", "high", "critical"}

// SeverityRank returns s's place in Severities (0 for info, 4 for
// critical), or -1 for a name that is none of them.
func SeverityRank(s string) int {
	for i, v := range Severities {
		if v == s {
			return i
		}
	}
	return -1
}

// SeverityOn maps s onto a scale of one value per severity, lowest first;
// a name that is none of them maps as info.
func SeverityOn[T any](s string, scale *[5]T) T {
	return scale[max(SeverityRank(s), 0)]
}
