package ioam6nl

import "time"

// Names and numbers from include/uapi/linux/ioam6_genl.h (Linux 6.9+ for the
// event enums; distro headers from 6.1 lack them).
const (
	familyName     = "IOAM6"        // IOAM6_GENL_NAME
	familyVersion  = 1              // IOAM6_GENL_VERSION
	eventGroupName = "ioam6_events" // IOAM6_GENL_EV_GRP_NAME
)

// Configuration attributes (enum IOAM6_ATTR_*).
const (
	attrNsID       = 1 // IOAM6_ATTR_NS_ID, u16
	attrNsData     = 2 // IOAM6_ATTR_NS_DATA, u32
	attrNsDataWide = 3 // IOAM6_ATTR_NS_DATA_WIDE, u64
	attrScID       = 4 // IOAM6_ATTR_SC_ID, u32
	attrScData     = 5 // IOAM6_ATTR_SC_DATA, binary
	attrScNone     = 6 // IOAM6_ATTR_SC_NONE, flag
	attrPad        = 7 // IOAM6_ATTR_PAD (alignment of u64)
)

// Commands (enum IOAM6_CMD_*).
const (
	cmdAddNamespace   = 1
	cmdDelNamespace   = 2
	cmdDumpNamespaces = 3
	cmdAddSchema      = 4
	cmdDelSchema      = 5
	cmdDumpSchemas    = 6
	cmdNsSetSchema    = 7
)

// Event numbers come from package ioam6 (ioam6.EventTrace,
// ioam6.EventAttrTrace*), which owns the event format.

// MaxSchemaDataLen is IOAM6_MAX_SCHEMA_DATA_LEN (255 * 4 bytes).
const MaxSchemaDataLen = 255 * 4

// Netlink framing (headers, attributes, acks) is package
// kernel/internal/nlmsg, shared with kernel/clt.

// Generic netlink controller (include/uapi/linux/genetlink.h): the reply
// to CTRL_CMD_GETFAMILY carries CTRL_ATTR_FAMILY_ID (u16) and
// CTRL_ATTR_MCAST_GROUPS, a nested array of {CTRL_ATTR_MCAST_GRP_NAME
// (string), CTRL_ATTR_MCAST_GRP_ID (u32)}.
const (
	ctrlVersion        = 2
	ctrlAttrFamilyID   = 1
	ctrlAttrMcastGroup = 7
	ctrlAttrGrpName    = 1
	ctrlAttrGrpID      = 2
	// resolveTimeout bounds the wait for the controller's reply.
	resolveTimeout = 5 * time.Second
)
