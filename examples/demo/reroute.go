//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

// The route switch is the re-route phase's "routing change": porthos sends
// aramis's fd00:3::2 through planchet while a /128 route is in place (it
// beats the connected /64 of the direct link), and directly once it is
// removed. The demo serves it on the management network so that athos can
// flip it between two requests of one span: the path change then lands
// between two packets of one span, every run, instead of whenever a timer
// fires.
const (
	viaDirect   = "direct"
	viaPlanchet = "planchet"
	// routeSwitchPath is the endpoint (PUT ?via=direct|planchet, GET).
	routeSwitchPath = "/route"
)

type routeSwitch struct {
	d   *Demo
	srv *http.Server
	url string

	mu  sync.Mutex
	via string
	// Switches counts route changes applied (GET shows it).
	switches int
}

// startRouteSwitch listens on a free port of the management bridge address.
func (d *Demo) startRouteSwitch() error {
	ln, err := net.Listen("tcp", net.JoinHostPort(d.mgmt.Host.String(), "0"))
	if err != nil {
		return fmt.Errorf("route switch: %w", err)
	}
	rs := &routeSwitch{d: d, via: viaDirect, url: "http://" + ln.Addr().String() + routeSwitchPath}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+routeSwitchPath, func(w http.ResponseWriter, _ *http.Request) { rs.state(w) })
	mux.HandleFunc("PUT "+routeSwitchPath, func(w http.ResponseWriter, r *http.Request) {
		if err := rs.Set(r.URL.Query().Get("via")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rs.state(w)
	})
	rs.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = rs.srv.Serve(ln) }()
	d.routes = rs
	d.closers = append(d.closers, rs.Close)
	d.log.Info("route switch up", "url", rs.url)
	return nil
}

func (rs *routeSwitch) state(w http.ResponseWriter) {
	rs.mu.Lock()
	st := map[string]any{"via": rs.via, "switches": rs.switches}
	rs.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// detour is porthos's route toward aramis through planchet.
var detour = netnstest.RouteSpec{Node: rolePorthos, Dst: netip.PrefixFrom(addrAramis, 128), Via: addrPlanchetP}

// Set routes porthos → aramis directly or through planchet.
func (rs *routeSwitch) Set(via string) error {
	if via != viaDirect && via != viaPlanchet {
		return fmt.Errorf("via=%q: want %s or %s", via, viaDirect, viaPlanchet)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	node := rs.d.topo.Node(rolePorthos)
	var err error
	if via == viaPlanchet {
		err = node.ReplaceRoute(detour)
	} else {
		err = node.DeleteRoute(detour)
	}
	if err != nil {
		return fmt.Errorf("route switch: %w", err)
	}
	if rs.via != via {
		rs.switches++
	}
	rs.via = via
	rs.d.log.Debug("porthos → aramis", "via", via)
	return nil
}

// Close stops serving and puts the direct route back.
func (rs *routeSwitch) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return errors.Join(rs.srv.Shutdown(ctx), rs.Set(viaDirect))
}
