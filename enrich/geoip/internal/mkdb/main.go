// Command mkdb writes the demo test databases (geoiptest.Demo) into a
// folder: `go run ./enrich/geoip/internal/mkdb enrich/geoip/testdata`.
package main

import (
	"fmt"
	"os"

	"github.com/flowguard/flowguard/enrich/geoip/geoiptest"
)

func main() {
	dir := "."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	city, asn, err := geoiptest.WriteDemo(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdb:", err)
		os.Exit(1)
	}
	fmt.Println(city)
	fmt.Println(asn)
}
