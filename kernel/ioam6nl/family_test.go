//go:build linux

package ioam6nl

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// familyReply is the attribute stream of a CTRL_CMD_GETFAMILY reply for
// IOAM6 on Linux 6.9+ (host-order headers; operations omitted):
//
//	FAMILY_NAME "IOAM6\0", FAMILY_ID u16 = 30,
//	MCAST_GROUPS { 1: { GRP_NAME "ioam6_events\0", GRP_ID u32 = 11 } }
func familyReply() []byte {
	grp := cat(
		ne16(4+13), ne16(ctrlAttrGrpName), []byte("ioam6_events\x00"), []byte{0, 0, 0},
		ne16(8), ne16(ctrlAttrGrpID), ne32(11),
	)
	return cat(
		ne16(4+6), ne16(2), []byte("IOAM6\x00"), []byte{0, 0},
		ne16(6), ne16(ctrlAttrFamilyID), ne16(30), []byte{0, 0},
		ne16(uint16(4+4+len(grp))), ne16(ctrlAttrMcastGroup|0x8000), // NLA_F_NESTED
		ne16(uint16(4+len(grp))), ne16(1|0x8000), grp,
	)
}

func TestDecodeFamilyGolden(t *testing.T) {
	fam, err := decodeFamily(familyReply())
	require.NoError(t, err)
	assert.Equal(t, family{id: 30, eventGroup: 11}, fam)

	// Linux 5.15–6.8: no groups.
	fam, err = decodeFamily(familyReply()[:20])
	require.NoError(t, err)
	assert.Equal(t, family{id: 30}, fam)
}

func TestDecodeFamilyErrors(t *testing.T) {
	good := familyReply()
	for name, b := range map[string][]byte{
		"no id":          good[:12],
		"short id":       cat(ne16(5), ne16(ctrlAttrFamilyID), []byte{30, 0, 0, 0}),
		"truncated":      good[:len(good)-2],
		"bad group id":   cat(good[:20], ne16(16), ne16(ctrlAttrMcastGroup), ne16(12), ne16(1), ne16(6), ne16(ctrlAttrGrpID), ne16(1), []byte{0, 0}),
		"bad group list": cat(good[:20], ne16(8), ne16(ctrlAttrMcastGroup), ne16(9), ne16(1)),
	} {
		_, err := decodeFamily(b)
		assert.ErrorIs(t, err, errMalformed, name)
	}
}

func FuzzDecodeFamily(f *testing.F) {
	f.Add(familyReply())
	f.Add(familyReply()[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		fam, err := decodeFamily(b)
		if err != nil {
			assert.Equal(t, family{}, fam)
		}
	})
}
