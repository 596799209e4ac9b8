//go:build e2e && linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
	"github.com/cross-layer-telemetry/clt/plugin"
)

// The real-browser half of the demo's end-to-end test: the real jaeger-ui
// (JAEGER_UI_ASSETS, else ../shared/jaeger-ui/build) served by the demo's
// Jaeger, in the system's headless Chromium, asserting on what a person sees
// on the page (DOM text). Screenshots go to .cache/ui-shots/.

// chromiumPath is Debian's chromium (make chromium installs it).
const chromiumPath = "/usr/bin/chromium"

// requireOrSkip skips the test when ok is false, or fails it when
// CLT_REQUIRE_PRIVILEGED=1 (CI: a missing browser or UI build is a failure).
func requireOrSkip(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(netnstest.EnvRequirePrivileged) == "1" {
		t.Fatalf("%s (%s=1)", msg, netnstest.EnvRequirePrivileged)
	}
	t.Skip(msg)
}

// browser is one headless Chromium with one tab.
type browser struct {
	t       *testing.T
	ctx     context.Context
	base    string
	shots   string
	dataDir string
}

// newBrowser starts Chromium for base (the Jaeger UI URL); t.Cleanup closes
// it and checks that no process of it is left.
func newBrowser(t *testing.T, base, shots string) *browser {
	_, err := exec.LookPath(chromiumPath)
	requireOrSkip(t, err == nil, "no browser at %s (make chromium installs Debian's chromium): %v", chromiumPath, err)
	require.NoError(t, os.MkdirAll(shots, 0o755))
	dataDir := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(dataDir),
		chromedp.WindowSize(1600, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx, base: base, shots: shots, dataDir: dataDir}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = chromedp.Cancel(cctx)
		cancel()
		cancelTab()
		cancelAlloc() // waits for the browser process to exit
		if pids := processesWith(dataDir); len(pids) > 0 {
			t.Errorf("browser processes left behind: %v", pids)
		}
	})
	// Start it now so a broken browser fails here, clearly.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start %s", chromiumPath)
	return b
}

// processesWith lists the pids whose command line mentions s.
func processesWith(s string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, e.Name())
		}
	}
	return out
}

// open navigates to path (with query) and waits until the page shows want.
func (b *browser) open(path, want string) {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, chromedp.Navigate(b.base+path)), "open %s", path)
	b.waitText("body", want)
}

// eval runs a JavaScript expression in the page.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	require.NoError(b.t, err, "evaluate %s", js)
	return v
}

// jsString quotes s for JavaScript.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// texts returns the innerText of every element matching the CSS selector.
func (b *browser) texts(sel string) []string {
	b.t.Helper()
	return eval[[]string](b, `[...document.querySelectorAll(`+jsString(sel)+`)].map(e => e.innerText)`)
}

// waitText polls until an element matching sel contains want (10 s).
func (b *browser) waitText(sel, want string) string {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last []string
	for {
		last = b.texts(sel)
		for _, s := range last {
			if strings.Contains(s, want) {
				return s
			}
		}
		if time.Now().After(deadline) {
			b.shot("failed-" + strings.NewReplacer("/", "_", " ", "_").Replace(want))
			b.t.Fatalf("no %q containing %q after 10s; page has: %.2000q", sel, want, strings.Join(last, " | "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// click clicks the first element matching sel whose text contains text.
func (b *browser) click(sel, text string) {
	b.t.Helper()
	b.waitText(sel, text)
	ok := eval[bool](b, `(() => { const e = [...document.querySelectorAll(`+jsString(sel)+`)].find(e => e.innerText.includes(`+jsString(text)+`)); if (!e) return false; e.scrollIntoView({block: "center"}); e.click(); return true })()`)
	require.True(b.t, ok, "click %s containing %q", sel, text)
}

// shot saves a full-page PNG as .cache/ui-shots/<name>.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.t.Logf("screenshot %s", p)
}

// timelineRow is one row of the trace timeline: service and operation.
type timelineRow struct{ Service, Operation string }

// timeline returns the rows of the trace page's timeline.
func (b *browser) timeline() []timelineRow {
	b.t.Helper()
	raw := eval[[][]string](b, `[...document.querySelectorAll("a.span-name")].map(a => [
		(a.querySelector(".span-svc-name") || {innerText: ""}).innerText.trim(),
		(a.querySelector(".endpoint-name") || {innerText: ""}).innerText.trim()])`)
	rows := make([]timelineRow, 0, len(raw))
	for _, r := range raw {
		if len(r) == 2 {
			rows = append(rows, timelineRow{r[0], r[1]})
		}
	}
	return rows
}

// errorRows returns the timeline rows that carry the UI's error icon.
func (b *browser) errorRows() []timelineRow {
	b.t.Helper()
	raw := eval[[][]string](b, `[...document.querySelectorAll(".span-row")].filter(r => r.querySelector(".SpanBarRow--errorIcon")).map(r => {
		const a = r.querySelector("a.span-name") || r;
		return [(a.querySelector(".span-svc-name") || {innerText: ""}).innerText.trim(),
			(a.querySelector(".endpoint-name") || {innerText: ""}).innerText.trim()] })`)
	rows := make([]timelineRow, 0, len(raw))
	for _, r := range raw {
		if len(r) == 2 {
			rows = append(rows, timelineRow{r[0], r[1]})
		}
	}
	return rows
}

// expand opens the detail of the timeline row service/operation (the
// first one that is not open yet).
func (b *browser) expand(service, operation string) {
	b.t.Helper()
	ok := eval[bool](b, `(() => {
		const a = [...document.querySelectorAll("a.span-name")].find(a =>
			(a.querySelector(".span-svc-name") || {}).innerText?.trim() === `+jsString(service)+` &&
			(a.querySelector(".endpoint-name") || {}).innerText?.trim() === `+jsString(operation)+` &&
			a.closest(".span-row") && !a.closest(".span-row").classList.contains("is-expanded"));
		if (!a) return false; a.scrollIntoView({block: "center"}); a.click(); return true })()`)
	require.True(b.t, ok, "timeline row %s %s", service, operation)
	b.waitText(".detail-row", operation)
}

// logLines returns the collapsed one-line summaries of the open span's logs
// ("show more..." clicked first, so every log is listed).
func (b *browser) logLines() []string {
	b.t.Helper()
	eval[bool](b, `(() => { for (const t of document.querySelectorAll(".detail-row .AccordianLogs--toggle")) { if (t.innerText.includes("more")) t.click() } return true })()`)
	return b.texts(".detail-row .AccordianLogs--content .AccordianKeyValues--header")
}

// warnings opens the Warnings section of the open span and returns its text.
func (b *browser) warnings() string {
	b.t.Helper()
	b.click(".detail-row .AccordianWarnings--header", "Warnings")
	return b.waitText(".detail-row .AccordianWarnings", "ioam")
}

// searchResult is one item of the search results: its trace id and text.
type searchResult struct{ ID, Text string }

func resultIDs(rs []searchResult) []string {
	ids := make([]string, 0, len(rs))
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

// search runs a trace search through the UI's URL (what the search form
// submits) and returns the results.
func (b *browser) search(service string, tags map[string]string) []searchResult {
	b.t.Helper()
	tj, _ := json.Marshal(tags)
	q := url.Values{"service": {service}, "lookback": {"1h"}, "limit": {"50"}, "tags": {string(tj)}}
	require.NoError(b.t, chromedp.Do(b.ctx, chromedp.Navigate(b.base+"/search?"+q.Encode())))
	// Wait for the result count ("N Traces") or the empty state.
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := eval[string](b, `(document.querySelector(".SearchResults--headerOverview h2") || {innerText: ""}).innerText`)
		if n != "" || strings.Contains(eval[string](b, `document.body.innerText`), "No trace results") {
			break
		}
		if time.Now().After(deadline) {
			b.shot("failed-search")
			b.t.Fatalf("search %v: no results shown after 15s", tags)
		}
		time.Sleep(100 * time.Millisecond)
	}
	items := eval[[][]string](b, `[...document.querySelectorAll(".ResultItem")].map(e => [
		(e.querySelector("a.ResultItemTitle--item") || {getAttribute: () => ""}).getAttribute("href") || "", e.innerText])`)
	out := make([]searchResult, 0, len(items))
	for _, it := range items {
		if len(it) == 2 {
			out = append(out, searchResult{ID: filepath.Base(it[0]), Text: it[1]})
		}
	}
	return out
}

// nodeLabel is how the UI names a demo node: the routers by their agents'
// node_name, athos (no agent) by clt-storage's nodes: map.
func nodeLabel(id int64) string {
	if name, ok := demoNodeNames[id]; ok {
		return name
	}
	return plugin.FallbackNodeLabel(uint64(id), false)
}

var demoNodeNames = map[int64]string{nodeAthos: roleAthos, nodePorthos: rolePorthos, nodeAramis: roleAramis, nodePlanchet: rolePlanchet}

var delayRE = regexp.MustCompile(`\+(\d+(?:\.\d+)?) ms`)

// checkUI opens the demo's traces in the real jaeger-ui and checks what a
// network engineer must see there (docs/contracts.md, UI naming contract).
func checkUI(t *testing.T, d *Demo, phases []*Phase) {
	requireOrSkip(t, d.opt.UIAssets != "", "no jaeger-ui build: set %s or put one at <repo>/%s", envUIAssets, defaultUIAssets)
	congested, rerouted, overflowed := traceLinks(phases)
	require.NotEmpty(t, congested, "congested trace")
	require.NotEmpty(t, rerouted, "re-routed trace")
	require.NotEmpty(t, overflowed, "overflowed trace")
	b := newBrowser(t, "http://"+d.opt.JaegerUI, filepath.Join(d.opt.Root, ".cache", "ui-shots"))
	athos, porthos, aramis, planchet := nodeLabel(nodeAthos), nodeLabel(nodePorthos), nodeLabel(nodeAramis), nodeLabel(nodePlanchet)

	t.Run("real UI, not the placeholder", func(t *testing.T) {
		b.t = t
		b.open("/search", "Find Traces")
	})

	t.Run("congested trace: routers in the timeline, hop summaries", func(t *testing.T) {
		b.t = t
		b.open("/trace/"+congested, "GET /check")
		rows := b.timeline()
		for _, want := range []timelineRow{
			{porthos, plugin.NetworkSpanName(athos, porthos)},
			{aramis, plugin.NetworkSpanName(porthos, aramis)},
		} {
			require.Contains(t, rows, want, "network span row in the timeline")
		}
		b.expand(roleAthos, "GET /check")
		b.shot("congested")
		lines := b.logLines()
		// "hop 2 · aramis (node 3) · if 31 → – · +50.416 ms", collapsed.
		head := plugin.EventHopPrefix + "2" + plugin.SummarySeparator + aramis + " (" + plugin.FallbackNodeLabel(nodeAramis, false) + ")"
		var line string
		for _, l := range lines {
			if strings.Contains(l, head) {
				line = l
			}
		}
		require.NotEmpty(t, line, "a hop summary %q among %q", head, lines)
		m := delayRE.FindStringSubmatch(line)
		require.NotNil(t, m, "hop summary %q has the delay since the previous hop", line)
		ms, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		require.GreaterOrEqual(t, ms, float64(e2eDelay/time.Millisecond), "porthos → aramis delay in %q", line)
	})

	t.Run("re-routed trace: the detour and the warning", func(t *testing.T) {
		b.t = t
		b.open("/trace/"+rerouted, "GET /data")
		rows := b.timeline()
		for _, want := range []timelineRow{
			{planchet, plugin.NetworkSpanName(porthos, planchet)},
			{aramis, plugin.NetworkSpanName(planchet, aramis)},
		} {
			require.Contains(t, rows, want, "network span row in the timeline")
		}
		// Without expanding anything: a red error icon on the warning's row.
		flagged := b.errorRows()
		require.True(t, hasPrefixRow(flagged, plugin.WarningSpanName(plugin.WarnPathChanged)),
			"a flagged warning row %q… in %q", plugin.WarningSpanName(plugin.WarnPathChanged), flagged)
		b.shot("rerouted")
		b.expand(roleAthos, "GET /data")
		w := b.warnings()
		b.shot("rerouted-warning")
		require.Contains(t, w, plugin.WarnPathChanged)
	})

	t.Run("overflowed trace: the warning", func(t *testing.T) {
		b.t = t
		b.open("/trace/"+overflowed, "GET /report")
		flagged := b.errorRows()
		require.True(t, hasPrefixRow(flagged, plugin.WarningSpanName(plugin.WarnOverflow)),
			"a flagged warning row %q… in %q", plugin.WarningSpanName(plugin.WarnOverflow), flagged)
		b.expand(roleAthos, "GET /report")
		w := b.warnings()
		b.shot("overflow-warning")
		require.Contains(t, w, plugin.WarnOverflow)
	})

	t.Run("search by node", func(t *testing.T) {
		b.t = t
		res := b.search(roleAthos, map[string]string{plugin.AttrNodeID: strconv.Itoa(nodePlanchet)})
		b.shot("search-node-planchet")
		require.ElementsMatch(t, []string{rerouted}, resultIDs(res), "%s=%d: the traces that crossed planchet", plugin.AttrNodeID, nodePlanchet)
		// The result says so without opening it: an error count and the router among the services.
		assert.Contains(t, res[0].Text, "1 Error")
		assert.Contains(t, res[0].Text, planchet)
	})

	t.Run("search by warning", func(t *testing.T) {
		b.t = t
		res := b.search(roleAthos, map[string]string{plugin.AttrOverflow: "true"})
		b.shot("search-overflow")
		require.ElementsMatch(t, []string{overflowed}, resultIDs(res), "%s=true", plugin.AttrOverflow)
		res = b.search(roleAthos, map[string]string{plugin.AttrPathChanged: "true"})
		require.ElementsMatch(t, []string{rerouted}, resultIDs(res), "%s=true", plugin.AttrPathChanged)
	})
}

func hasPrefixRow(rows []timelineRow, prefix string) bool {
	for _, r := range rows {
		if strings.HasPrefix(r.Operation, prefix) {
			return true
		}
	}
	return false
}
