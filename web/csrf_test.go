package web

import (
	"io"
	"net/http"
	"testing"
)

// A state-changing route (a toy POST) is refused unless the request shows
// it comes from the same origin; reads are never refused.
func TestCrossSiteRequestsRefused(t *testing.T) {
	s := newServer(t, Config{})
	addr := serve(t, s, toyMux(nil, nil))
	base := "http://" + addr
	for _, c := range []struct {
		name, method string
		headers      map[string]string
		want         int
	}{
		{"plain POST", "POST", nil, 403},
		{"same Origin", "POST", map[string]string{"Origin": base}, 200},
		{"other Origin", "POST", map[string]string{"Origin": "https://evil.example"}, 403},
		{"null Origin", "POST", map[string]string{"Origin": "null"}, 403},
		{"other Origin with the custom header", "POST", map[string]string{"Origin": "https://evil.example", "X-Requested-With": "x"}, 403},
		{"custom header", "POST", map[string]string{"X-Requested-With": "curl"}, 200},
		{"same Referer", "POST", map[string]string{"Referer": base + "/ui"}, 200},
		{"other Referer", "POST", map[string]string{"Referer": "https://evil.example/" + addr}, 403},
		{"Sec-Fetch-Site same-origin", "POST", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{"Sec-Fetch-Site cross-site", "POST", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": base}, 403},
		{"Sec-Fetch-Site same-site", "POST", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"GET from another site", "GET", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, 200},
	} {
		req, _ := http.NewRequest(c.method, base+"/api/thing", nil)
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
	if got := metricOf(t, s, "flowguard_http_cross_site_refused_total"); got != 7 {
		t.Errorf("cross-site refusals counted %v, want 7", got)
	}
}
