package plugin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc/credentials"
)

// upstreamAuth sends upstream.auth's authorization header on every
// upstream call. The secret is read at start and again by reload (SIGHUP);
// a failed reload keeps the previous one.
type upstreamAuth struct {
	cfg    UpstreamAuthConfig
	header atomic.Pointer[string]
}

var _ credentials.PerRPCCredentials = (*upstreamAuth)(nil)

func newUpstreamAuth(cfg UpstreamAuthConfig) (*upstreamAuth, error) {
	a := &upstreamAuth{cfg: cfg}
	if err := a.reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// secret reads a file (trimmed) or an environment variable.
func secret(fileKey, file, envKey, env string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("upstream.auth.%s: %w", fileKey, err)
		}
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("upstream.auth.%s: %s is empty", fileKey, file)
	}
	if v := strings.TrimSpace(os.Getenv(env)); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("upstream.auth.%s: environment variable %s is empty or unset", envKey, env)
}

// reload re-reads the secret.
func (a *upstreamAuth) reload() error {
	var h string
	switch c := a.cfg; {
	case c.BearerTokenFile != "" || c.BearerTokenEnv != "":
		tok, err := secret("bearer_token_file", c.BearerTokenFile, "bearer_token_env", c.BearerTokenEnv)
		if err != nil {
			return err
		}
		h = "Bearer " + tok
	case c.Username != "":
		pw, err := secret("password_file", c.PasswordFile, "password_env", c.PasswordEnv)
		if err != nil {
			return err
		}
		h = "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+pw))
	default:
		return errors.New("upstream.auth: no credential configured")
	}
	a.header.Store(&h)
	return nil
}

func (a *upstreamAuth) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": *a.header.Load()}, nil
}

// RequireTransportSecurity: credentials never travel in clear text.
func (a *upstreamAuth) RequireTransportSecurity() bool { return true }
