//go:build race

package main

// raceEnabled makes the tests build the daemon they run with the race
// detector too, so that races in the running daemon fail them.
const raceEnabled = true
