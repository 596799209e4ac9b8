package agent

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestKernelVersion(t *testing.T) {
	for rel, want := range map[string][3]int{
		"6.18.44-fc-v669":   {6, 18, 44},
		"5.15.0-91-generic": {5, 15, 0},
		"6.9":               {6, 9, 0},
		"7.0.11+":           {7, 0, 11},
		"garbage":           {0, 0, 0},
	} {
		maj, min, pat := kernelVersion(rel)
		assert.Equal(t, want, [3]int{maj, min, pat}, rel)
	}
}

func TestCheckKernelAndCapsPrint(t *testing.T) {
	var b strings.Builder
	c := &checker{w: &b}
	checkKernel(c)
	checkCaps(c, DefaultConfig())
	out := b.String()
	assert.Contains(t, out, "kernel ")
	assert.Contains(t, out, "CAP_NET_ADMIN")
	assert.Contains(t, out, "CAP_NET_RAW")
}
