package notifiers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// SnippetLen is how much of a failed request's answer its error quotes.
const SnippetLen = 256

// PostJSON POSTs body as application/json, with header's entries, to
// target. A 2xx answer is success; network errors and 408, 429 and 5xx
// answers come back as retryable errors, other answers as Permanent. The
// error quotes the start of the answer with red's secrets hidden (even
// one straddling the cut) and the status's standard text, not the
// receiver's reason phrase; it never repeats target (which may hold
// tokens): callers prefix it with the receiver as they show it, and
// redact.
func PostJSON(ctx context.Context, client *http.Client, target string, header http.Header, body []byte, red *Redactor) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return Permanent(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the full URL
		}
		return err
	}
	defer resp.Body.Close()
	// Reading a secret's length more than quoted lets Snippet see a
	// secret that straddles the cut whole.
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, int64(SnippetLen+red.MaxLen())))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode/100 == 2 {
		return nil
	}
	status := strings.TrimSpace(strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode))
	err = fmt.Errorf("%s: %q", status, strings.TrimSpace(red.Snippet(answer, SnippetLen)))
	if !HTTPRetryable(resp.StatusCode) {
		return Permanent(err)
	}
	return err
}

// HTTPRetryable reports whether an HTTP answer is worth retrying: request
// timeout, too many requests and server errors are; other client errors
// will not get better.
func HTTPRetryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}
