package roles

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Serve runs handler on every address until ctx is done, then shuts down
// gracefully (5 s bound). ready, if not nil, is called once every listener is bound.
func Serve(ctx context.Context, addrs []string, handler http.Handler, ready func()) error {
	if len(addrs) == 0 {
		return errors.New("no listen address")
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return fmt.Errorf("listen %s: %w", a, err)
		}
		lns = append(lns, ln)
	}
	if ready != nil {
		ready()
	}
	errc := make(chan error, len(lns))
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = errors.Join(err, srv.Shutdown(sctx))
	wg.Wait()
	return err
}
