package stack

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// WaitHTTP polls url until it answers 200, the process p (if not nil) exits,
// or timeout passes.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration, p *Proc) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	var last error
	var done <-chan struct{}
	if p != nil {
		done = p.Done()
	}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last: %v)", url, ctx.Err(), last)
		case <-done:
			return fmt.Errorf("wait for %s: %s exited: %v\n%s", url, p.Name, p.Err(), indent(p.Tail(20)))
		case <-time.After(150 * time.Millisecond):
		}
	}
}

// WaitTCP waits until addr accepts a TCP connection.
func WaitTCP(ctx context.Context, addr string, timeout time.Duration, p *Proc) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var done <-chan struct{}
	if p != nil {
		done = p.Done()
	}
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last: %v)", addr, ctx.Err(), err)
		case <-done:
			return fmt.Errorf("wait for %s: %s exited: %v\n%s", addr, p.Name, p.Err(), indent(p.Tail(20)))
		case <-time.After(150 * time.Millisecond):
		}
	}
}

// FreePort returns a TCP port that was free on host a moment ago.
func FreePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("free port on %s: %w", host, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
