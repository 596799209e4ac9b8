// Package yamlconf is how clt-agent and clt-storage read their YAML
// configuration: strictly (an unknown key is an error that names it, so a
// typo never silently falls back to a default), over the defaults the
// caller put in the value, an empty file meaning "all defaults".
package yamlconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// Load reads the file at path and decodes it into v like [Parse].
func Load(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return Parse(b, v)
}

// Parse decodes YAML into v, which holds the defaults; keys the document
// leaves out keep them. Unknown keys are errors.
func Parse(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file: all defaults
		}
		return fmt.Errorf("parse config: %w", err)
	}
	// A second document would be ignored silently: refuse it.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("parse config: more than one YAML document")
	}
	return nil
}
