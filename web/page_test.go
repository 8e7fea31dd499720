package web

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"testing"
)

var nextLink = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// follow GETs url and every next page it announces, and returns the items.
func follow(t *testing.T, base, url string) ([]int, int) {
	t.Helper()
	var all []int
	pages := 0
	for url != "" {
		resp, err := http.Get(base + url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", url, resp.StatusCode, body)
		}
		var page []int
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("%s: %v: %s", url, err, body)
		}
		all = append(all, page...)
		pages++
		url = ""
		if m := nextLink.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
			url = m[1]
		}
	}
	return all, pages
}

func TestPagesRoundTrip(t *testing.T) {
	items := make([]int, 250)
	for i := range items {
		items[i] = i * 7
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/list", func(w http.ResponseWriter, r *http.Request) { WritePage(w, r, items, 120) })
	mux.HandleFunc("GET /api/empty", func(w http.ResponseWriter, r *http.Request) { WritePage(w, r, []int{}, 120) })
	base := "http://" + serve(t, newServer(t, Config{}), mux)

	for _, c := range []struct {
		url   string
		pages int
	}{
		{"/api/list", 3},               // default 100 a page
		{"/api/list?limit=120", 3},     // the maximum
		{"/api/list?limit=1&x=y", 250}, // other parameters kept
		{"/api/list?limit=50", 5},
	} {
		got, pages := follow(t, base, c.url)
		if pages != c.pages || len(got) != len(items) {
			t.Errorf("%s: %d items in %d pages, want %d in %d", c.url, len(got), pages, len(items), c.pages)
			continue
		}
		for i := range got {
			if got[i] != items[i] {
				t.Fatalf("%s: item %d is %d, want %d", c.url, i, got[i], items[i])
			}
		}
	}
	if got, pages := follow(t, base, "/api/empty"); len(got) != 0 || pages != 1 {
		t.Errorf("empty list: %v in %d pages", got, pages)
	}
	for _, bad := range []string{"limit=121", "limit=0", "limit=-1", "limit=x", "cursor=-5", "cursor=abc"} {
		resp, err := http.Get(base + "/api/list?" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}
