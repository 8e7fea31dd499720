//go:build race

package daemon

// raceEnabled: the race detector is on (allocation figures differ).
const raceEnabled = true
