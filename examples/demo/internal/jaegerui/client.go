package jaegerui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ErrNotFound is returned by GetTrace when Jaeger does not know the trace (yet).
var ErrNotFound = errors.New("trace not found")

// Client calls Jaeger's query HTTP API (the endpoints the UI uses).
// It is safe for concurrent use.
type Client struct {
	// BaseURL is e.g. "http://127.0.0.1:16686".
	BaseURL string
	// HTTP is the client used; nil means a client with a 10 s timeout.
	HTTP *http.Client
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// Get fetches path (with query) and returns the raw body. 404 maps to ErrNotFound.
func (c *Client) Get(ctx context.Context, pathAndQuery string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+pathAndQuery, nil)
	if err != nil {
		return nil, fmt.Errorf("jaeger query: %w", err)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("jaeger query: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("jaeger query %s: %w", pathAndQuery, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return body, ErrNotFound
	case resp.StatusCode != http.StatusOK:
		return body, fmt.Errorf("jaeger query %s: status %d: %.200s", pathAndQuery, resp.StatusCode, body)
	}
	return body, nil
}

// GetTrace returns `/api/traces/{id}`: the raw JSON and the decoded trace.
func (c *Client) GetTrace(ctx context.Context, traceID string) (*Trace, []byte, error) {
	body, err := c.Get(ctx, "/api/traces/"+url.PathEscape(traceID))
	if err != nil {
		return nil, body, err
	}
	r, err := Decode(body)
	if err != nil {
		return nil, body, err
	}
	if len(r.Data) == 0 {
		return nil, body, ErrNotFound
	}
	return &r.Data[0], body, nil
}

// Query is a trace search as the UI sends it.
type Query struct {
	Service string
	// Tags are matched as k:v (each becomes a `tag=k:v` parameter).
	Tags       map[string]string
	Start, End time.Time
	Limit      int
}

// Values returns the URL query of q.
func (q Query) Values() url.Values {
	v := url.Values{}
	v.Set("service", q.Service)
	for k, val := range q.Tags {
		v.Add("tag", k+":"+val)
	}
	if !q.Start.IsZero() {
		v.Set("start", strconv.FormatInt(q.Start.UnixMicro(), 10))
	}
	if !q.End.IsZero() {
		v.Set("end", strconv.FormatInt(q.End.UnixMicro(), 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// FindTraces runs `/api/traces?…` and returns the matching traces.
func (c *Client) FindTraces(ctx context.Context, q Query) ([]Trace, error) {
	body, err := c.Get(ctx, "/api/traces?"+q.Values().Encode())
	if err != nil {
		return nil, err
	}
	r, err := Decode(body)
	if err != nil {
		return nil, err
	}
	return r.Data, nil
}
