package geoip

//go:generate go run ./internal/mkdb testdata
