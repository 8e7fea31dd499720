package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// DefaultPage is the number of items a list request gets without a limit.
const DefaultPage = 100

// Page is what a list request asks for: at most Limit items, starting
// after Cursor ("" for the first page). A cursor is opaque to clients:
// they pass on the one the previous page announced.
type Page struct {
	Limit  int
	Cursor string
}

// ParsePage reads limit and cursor from r's query. A limit above max is an
// error rather than silently cut, so a client learns the bound.
func ParsePage(r *http.Request, max int) (Page, error) {
	q := r.URL.Query()
	p := Page{Limit: min(DefaultPage, max), Cursor: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return p, fmt.Errorf("limit: %q is not a positive number", s)
		}
		if n > max {
			return p, fmt.Errorf("limit: %d is over the maximum of %d (http.limits.max_page)", n, max)
		}
		p.Limit = n
	}
	return p, nil
}

// SetNext announces the next page in a Link header (RFC 8288): the
// request's own URL with cursor=next. An empty next announces nothing.
func SetNext(w http.ResponseWriter, r *http.Request, next string) {
	if next == "" {
		return
	}
	u := *r.URL
	q := u.Query()
	q.Set("cursor", next)
	u.RawQuery = q.Encode()
	w.Header().Set("Link", "<"+u.RequestURI()+`>; rel="next"`)
}

// WriteJSONArray writes items as an indented JSON array, encoding one
// item at a time, so that a page is never held as one buffer.
func WriteJSONArray[T any](w http.ResponseWriter, items []T) {
	w.Header().Set("Content-Type", "application/json")
	if len(items) == 0 {
		w.Write([]byte("[]\n"))
		return
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("  ", "  ")
	for i := range items {
		sep := ",\n  "
		if i == 0 {
			sep = "[\n  "
		}
		w.Write([]byte(sep))
		if err := enc.Encode(&items[i]); err != nil {
			return // the client went away, or the write timed out
		}
	}
	w.Write([]byte("]\n"))
}

// WriteJSON answers code with v as indented JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// WritePage answers a list request with one page of items, a list whose
// order holds between requests: the cursor is the offset of the next
// item. A bad limit or cursor is answered 400.
func WritePage[T any](w http.ResponseWriter, r *http.Request, items []T, max int) {
	p, err := ParsePage(r, max)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	off := 0
	if p.Cursor != "" {
		off, err = strconv.Atoi(p.Cursor)
		if err != nil || off < 0 {
			http.Error(w, "cursor: not one this server gave", http.StatusBadRequest)
			return
		}
	}
	off = min(off, len(items))
	end := min(off+p.Limit, len(items))
	if end < len(items) {
		SetNext(w, r, strconv.Itoa(end))
	}
	WriteJSONArray(w, items[off:end])
}
