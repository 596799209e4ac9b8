//go:build linux

package ioam6nl

import (
	"bytes"
	"fmt"
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
	it := attrIter{b: b}
	for it.next() {
		switch it.typ {
		case ctrlAttrFamilyID:
			id, err := it.u16()
			if err != nil {
				return family{}, err
			}
			fam.id, haveID = id, true
		case ctrlAttrMcastGroup:
			groups := attrIter{b: it.val}
			for groups.next() {
				var (
					name []byte
					id   uint32
				)
				g := attrIter{b: groups.val}
				for g.next() {
					switch g.typ {
					case ctrlAttrGrpName:
						name = bytes.TrimRight(g.val, "\x00")
					case ctrlAttrGrpID:
						v, err := g.u32()
						if err != nil {
							return family{}, err
						}
						id = v
					}
				}
				if g.err != nil {
					return family{}, g.err
				}
				if string(name) == eventGroupName {
					fam.eventGroup = id
				}
			}
			if groups.err != nil {
				return family{}, groups.err
			}
		}
	}
	if it.err != nil {
		return family{}, it.err
	}
	if !haveID {
		return family{}, fmt.Errorf("%w: family reply without CTRL_ATTR_FAMILY_ID", errMalformed)
	}
	return fam, nil
}
