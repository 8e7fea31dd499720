package web

import (
	"net/http"
	"net/url"
)

// sameOrigin tells whether r may change state. Reads (GET, HEAD, OPTIONS)
// always may. Anything else must show it comes from the daemon's own
// origin: a browser's Sec-Fetch-Site of same-origin, or an Origin (else a
// Referer) naming the host the request was sent to, or an
// X-Requested-With header, which a browser sends cross-site only after a
// CORS preflight this server never grants. Tools such as curl send the
// header; a forged form or fetch from another site cannot.
func sameOrigin(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		return hostOf(o) == r.Host
	}
	if r.Header.Get("X-Requested-With") != "" {
		return true
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		return hostOf(ref) == r.Host
	}
	return false
}

func hostOf(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "\x00" // matches no Host
	}
	return u.Host
}
