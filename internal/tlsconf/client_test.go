package tlsconf

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClientConfig(t *testing.T) {
	tc, err := ClientConfig("export.tls", Client{ServerName: "storage.example"})
	require.NoError(t, err)
	assert.Equal(t, "storage.example", tc.ServerName)
	assert.EqualValues(t, tls.VersionTLS12, tc.MinVersion)
	assert.Nil(t, tc.RootCAs, "system roots")

	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	for _, c := range []struct {
		in   Client
		want string
	}{
		{Client{CAFile: filepath.Join(dir, "missing.pem")}, "upstream.tls: read ca_file"},
		{Client{CAFile: notPEM}, "upstream.tls: ca_file " + notPEM + ": no PEM certificates"},
		{Client{CertFile: filepath.Join(dir, "c.pem")}, "upstream.tls: client certificate"},
	} {
		_, err := ClientConfig("upstream.tls", c.in)
		assert.ErrorContains(t, err, c.want)
	}
}
