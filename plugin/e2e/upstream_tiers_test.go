//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/internal/tlsconf/tlsconftest"
)

// TestUpstreamTierConfigs: the documented upstream tiers over Jaeger's
// distributed backends (docs/upstream/*.yaml) cannot run here (no
// Cassandra, Elasticsearch, OpenSearch or current ClickHouse can be
// installed), so this checks what can be: the real Jaeger accepts each
// file (`jaeger validate`), and started with every file it needs but no
// reachable database it fails on connecting to that database, not on its
// configuration.
func TestUpstreamTierConfigs(t *testing.T) {
	bin := jaegerBin(t)
	files, err := filepath.Glob("../../docs/upstream/remote-storage-*.yaml")
	require.NoError(t, err)
	require.Len(t, files, 4, "cassandra, clickhouse, elasticsearch, opensearch")

	p := tlsconftest.New(t)
	cert, key := p.Server("tier", "tier.test")
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	require.NoError(t, os.WriteFile(htpasswd, []byte("clt:secret\n"), 0o600))
	pw := filepath.Join(dir, "db.password")
	require.NoError(t, os.WriteFile(pw, []byte("secret\n"), 0o600))
	closed := freeAddr(t) // nothing listens there
	env := append(os.Environ(), "OTEL_TRACES_SAMPLER=always_off",
		"TIER_TLS_CERT="+cert, "TIER_TLS_KEY="+key, "TIER_CLIENT_CA="+p.CAFile, "TIER_HTPASSWD="+htpasswd,
		"CASSANDRA_CONTACT_POINTS="+closed, "CASSANDRA_CA="+p.CAFile,
		"ES_URL=http://"+closed, "ES_CA="+p.CAFile, "ES_PASSWORD_FILE="+pw,
		"OS_URL=http://"+closed, "OS_CA="+p.CAFile, "OS_PASSWORD_FILE="+pw,
		"CLICKHOUSE_ADDR="+closed)
	// What each backend says when its database is unreachable.
	want := map[string]string{
		"remote-storage-cassandra.yaml":     `failed to initialize storage 'main': gocql: unable to create session: unable to connect to initial hosts: dial tcp ` + closed,
		"remote-storage-elasticsearch.yaml": `failed to initialize storage 'main'.*no Elasticsearch node available`,
		"remote-storage-opensearch.yaml":    `failed to initialize storage 'main'.*no Elasticsearch node available`,
		"remote-storage-clickhouse.yaml":    `failed to initialize storage 'main': failed to ping ClickHouse: dial tcp ` + closed,
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			out, err := exec.Command(bin, "validate", "--config", f).CombinedOutput()
			require.NoError(t, err, "jaeger validate: %s", out)

			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			// Free ports instead of the files' fixed ones, should it get that far.
			cmd := exec.CommandContext(ctx, bin, "--config", f,
				"--set=extensions.healthcheckv2.http.endpoint="+freeAddr(t),
				"--set=extensions.remote_storage.endpoint="+freeAddr(t),
				"--set=receivers.otlp.protocols.grpc.endpoint="+freeAddr(t))
			cmd.Env = env
			out, err = cmd.CombinedOutput()
			require.Error(t, err, "no database: the tier cannot start")
			require.NoError(t, ctx.Err(), "it gave up on its own")
			assert.Regexp(t, want[name], string(out))
			assert.NotRegexp(t, `(?i)decoding failed|invalid keys|cannot unmarshal|error reading configuration`, string(out))
		})
	}
}
