/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/* Shared layout of the maps of insert.bpf.c; kernel/bpfinsert/maps.go mirrors
 * it and TestObjectLayout checks both against the object's BTF. */
#ifndef CLT_INSERT_H
#define CLT_INSERT_H

#define CLT_MAX_HDR 264      /* 4 + 2 + 255 option bytes, rounded to 8 */
#define CLT_SCAN_MAX 2048    /* payload bytes searched for traceparent */
#define CLT_TP_LEN 55        /* "00-" 32 "-" 16 "-" 2 */
#define CLT_MAX_IFACES 64
#define CLT_MAX_PREFIXES 64
#define CLT_MAX_PORTS 64

/* struct clt_sock flags. An entry without CLT_SOCK_TAG remembers a socket
 * whose current request is not tagged. */
#define CLT_SOCK_TAG 0x01     /* tag this socket's packets with ids */
#define CLT_SOCK_SHORT 0x100  /* 64-bit trace ID (upper half zero) */
#define CLT_SOCK_DST_OK 0x200 /* set by the program: destination checked */
#define CLT_SOCK_API 0x400    /* set through the map API: requests not parsed */

#define CLT_CFG_TAG_UNSAMPLED 0x01

enum clt_counter {
	CLT_PKT_TAGGED,
	CLT_BYTES_ADDED,
	CLT_REQ_PARSED,
	CLT_TP_MISSING,
	CLT_TP_INVALID,
	CLT_TP_UNSAMPLED,
	CLT_SKIP_NOT_IPV6,
	CLT_SKIP_NOT_TCP,
	CLT_SKIP_EXT_HDR,
	CLT_SKIP_UNCONFIGURED,
	CLT_SKIP_NO_SOCKET,
	CLT_SKIP_NO_STATE,
	CLT_SKIP_TOO_BIG,
	CLT_SKIP_NO_IFCFG,
	CLT_ERR_ADJUST,
	CLT_ERR_CONFIG,
	CLT_MSS_CLAMPED,
	CLT_MSS_NOT_FIRST,
	CLT_RATE_LIMITED,
	CLT_NUM_COUNTERS,
};

/* One header variant: [0] 128-bit trace ID, [1] 64-bit (oss Length 4). */
struct clt_tmpl {
	__u8 hdr[CLT_MAX_HDR] __attribute__((aligned(8))); /* copied in words */
	__u16 len;
	__u16 ids_off;     /* offset of the IDs in hdr */
	__u16 ids_len;     /* 24 or 16 */
	__u16 ts_sec_off;  /* 0: no timestamp seconds field */
	__u16 ts_frac_off; /* 0: no timestamp fraction field */
	__u16 pad[3];
};

struct clt_ifcfg {
	struct clt_tmpl tmpl[2];
	__s64 clock_off_ns; /* CLOCK_REALTIME - CLOCK_TAI */
	__u32 mtu;          /* link MTU (L3 bytes) */
	__u32 flags;        /* CLT_CFG_* */
	__u16 mss_max;      /* 0: no clamp */
	__u16 pad;
	__u32 rate_max;     /* tagged requests per second, all CPUs; 0: no cap */
};

/* Fixed one-second window of the rate cap (approximate across CPUs). */
struct clt_rate {
	__u64 window; /* seconds since boot */
	__u64 count;  /* requests tagged in it */
};

struct clt_lpm_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct clt_sock {
	__u8 ids[24] __attribute__((aligned(8))); /* trace ID (16), span ID (8) */
	__u32 flags;  /* CLT_SOCK_* */
	__u32 pad;
};

#endif
