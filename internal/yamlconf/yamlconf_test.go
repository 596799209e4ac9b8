package yamlconf

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type inner struct {
	Listen string        `yaml:"listen"`
	Wait   time.Duration `yaml:"wait"`
}

type conf struct {
	Name  string `yaml:"name"`
	Inner inner  `yaml:"inner"`
}

func defaults() conf { return conf{Name: "d", Inner: inner{Listen: ":1", Wait: time.Second}} }

func TestParseOverDefaults(t *testing.T) {
	c := defaults()
	require.NoError(t, Parse([]byte("inner:\n  wait: 5ms\n"), &c))
	assert.Equal(t, conf{Name: "d", Inner: inner{Listen: ":1", Wait: 5 * time.Millisecond}}, c)

	for _, empty := range []string{"", "\n", "# only a comment\n"} {
		c := defaults()
		require.NoError(t, Parse([]byte(empty), &c), "%q", empty)
		assert.Equal(t, defaults(), c, "%q", empty)
	}
}

func TestParseRejects(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"unknown top key":    {"nmae: x\n", "nmae"},
		"unknown nested key": {"inner:\n  lisen: x\n", "lisen"},
		"wrong type":         {"inner:\n  wait: soon\n", "soon"},
		"two documents":      {"name: a\n---\nname: b\n", "more than one YAML document"},
	} {
		t.Run(name, func(t *testing.T) {
			c := defaults()
			err := Parse([]byte(tc.doc), &c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "parse config")
		})
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(p, []byte("name: file\n"), 0o600))
	c := defaults()
	require.NoError(t, Load(p, &c))
	assert.Equal(t, "file", c.Name)
	assert.ErrorContains(t, Load(filepath.Join(t.TempDir(), "missing.yaml"), &c), "read config")
}
