// Package examples embeds the bundled rule pack, so that flowguard runs
// with sensible detection when it is given no rules of its own.
package examples

import "embed"

// Rules holds examples/rules/*.yaml (test cases excluded) under "rules/".
//
//go:embed rules/*.yaml
var Rules embed.FS
