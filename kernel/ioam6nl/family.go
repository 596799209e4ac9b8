//go:build linux

package ioam6nl

import (
	"bytes"
	"fmt"

	"github.com/cross-layer-telemetry/clt/kernel/internal/nlmsg"
)

// family is the resolved IOAM6 family.
type family struct {
	id         uint16
	eventGroup uint32 // 0 when absent
}

// decodeFamily reads the attributes of a CTRL_CMD_GETFAMILY reply: the
// family id and the id of the ioam6_events group, if any.
func decodeFamily(b []byte) (family, error) {
	var (
		fam    family
		haveID bool
	)
	it := nlmsg.Attrs(b)
	for it.Next() {
		switch it.Type {
		case ctrlAttrFamilyID:
			id, err := it.U16()
			if err != nil {
				return family{}, err
			}
			fam.id, haveID = id, true
		case ctrlAttrMcastGroup:
			groups := nlmsg.Attrs(it.Val)
			for groups.Next() {
				var (
					name []byte
					id   uint32
				)
				g := nlmsg.Attrs(groups.Val)
				for g.Next() {
					switch g.Type {
					case ctrlAttrGrpName:
						name = bytes.TrimRight(g.Val, "\x00")
					case ctrlAttrGrpID:
						v, err := g.U32()
						if err != nil {
							return family{}, err
						}
						id = v
					}
				}
				if g.Err() != nil {
					return family{}, g.Err()
				}
				if string(name) == eventGroupName {
					fam.eventGroup = id
				}
			}
			if groups.Err() != nil {
				return family{}, groups.Err()
			}
		}
	}
	if it.Err() != nil {
		return family{}, it.Err()
	}
	if !haveID {
		return family{}, fmt.Errorf("%w: family reply without CTRL_ATTR_FAMILY_ID", errMalformed)
	}
	return fam, nil
}
