package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/cross-layer-telemetry/clt/examples/demo/internal/roles"
	"github.com/cross-layer-telemetry/clt/examples/demo/internal/wire"
)

// wireAdminPort is the wire's control port on its management address.
const wireAdminPort = 8001

// wireState is the JSON of the wire's /delay endpoint.
type wireState struct {
	// PorthosToAramis and AramisToPorthos are Go durations ("50ms").
	PorthosToAramis string     `json:"porthos_to_aramis"`
	AramisToPorthos string     `json:"aramis_to_porthos"`
	Forward         wire.Stats `json:"forward"`
	Backward        wire.Stats `json:"backward"`
}

// runWire joins interfaces a (porthos side) and b (aramis side) and serves
// GET/PUT /delay?ab=…&ba=… on listen.
func runWire(ctx context.Context, log *slog.Logger, a, b string, listen []string) error {
	// The wire is a cable, not a host: no IPv6 stack on its ends.
	for _, ifname := range []string{a, b} {
		_ = os.WriteFile(fmt.Sprintf("/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname), []byte("1"), 0o644)
	}
	w, err := wire.Open(a, b)
	if err != nil {
		return err
	}
	w.Start()
	defer w.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) { _, _ = rw.Write([]byte("ok\n")) })
	state := func(rw http.ResponseWriter) {
		ab, ba := w.Delay()
		fs, bs := w.Stats()
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(wireState{PorthosToAramis: ab.String(), AramisToPorthos: ba.String(), Forward: fs, Backward: bs})
	}
	mux.HandleFunc("GET /delay", func(rw http.ResponseWriter, _ *http.Request) { state(rw) })
	mux.HandleFunc("PUT /delay", func(rw http.ResponseWriter, r *http.Request) {
		ab, ba := w.Delay()
		var errs []error
		parse := func(key string, into *time.Duration) {
			if v := r.URL.Query().Get(key); v != "" {
				d, err := time.ParseDuration(v)
				if err != nil || d < 0 || d > 10*time.Second {
					errs = append(errs, fmt.Errorf("%s=%q: want a duration in [0, 10s]", key, v))
					return
				}
				*into = d
			}
		}
		parse("ab", &ab)
		parse("ba", &ba)
		if err := errors.Join(errs...); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.SetDelay(ab, ba)
		log.Info("delay set", "porthos_to_aramis", ab, "aramis_to_porthos", ba)
		state(rw)
	})
	log.Info("wire up", "a", a, "b", b)
	return roles.Serve(ctx, listen, mux, nil)
}
