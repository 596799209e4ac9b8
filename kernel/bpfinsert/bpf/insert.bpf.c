// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//
// CLT transparent IOAM insertion: a tc egress program that reads the W3C
// traceparent of outgoing HTTP/1.x requests and inserts an IPv6 Hop-by-Hop
// header with the IOAM Pre-allocated Trace option (RFC 9197, RFC 9486,
// RFC 8200 §4.3) into every packet of that socket's current request, and a
// tc ingress program that clamps the MSS of the peer's SYN-ACK so full-size
// segments still fit once the header is added.
//
// The header bytes are a template built in Go by kernel/ioam6.AppendHBH
// (oss carrier: the sender's own entry holds the IDs); the program copies
// it and patches only the IDs and the own entry's timestamp. See
// kernel/bpfinsert (loader) and docs/wire-format.md §3.4.
//
// Rebuild with `make bpf` (clang -O2 -g -target bpf).

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "insert.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CLT_MAX_IFACES);
	__type(key, __u32); /* ifindex */
	__type(value, struct clt_ifcfg);
} clt_ifcfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, CLT_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct clt_lpm_key);
	__type(value, __u8);
} clt_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CLT_MAX_PORTS);
	__type(key, __u16); /* host order; 0 means any port */
	__type(value, __u8);
} clt_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* set by the loader */
	__type(key, __u64);         /* socket cookie */
	__type(value, struct clt_sock);
} clt_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CLT_NUM_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} clt_stats SEC(".maps");

struct clt_scratch {
	__u8 buf[CLT_SCAN_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct clt_scratch);
} clt_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct clt_rate);
} clt_rate SEC(".maps");

#define IP6_OFF ETH_HLEN
#define L4_OFF (ETH_HLEN + sizeof(struct ipv6hdr))

static __always_inline void count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&clt_stats, &idx);
	if (v)
		*v += n; /* per-CPU: no atomics needed */
}

/* rate_ok admits one more tagged request under cfg->rate_max per second. */
static __always_inline int rate_ok(const struct clt_ifcfg *cfg)
{
	if (!cfg->rate_max)
		return 1;
	__u32 zero = 0;
	struct clt_rate *r = bpf_map_lookup_elem(&clt_rate, &zero);
	if (!r)
		return 1;
	__u64 w = bpf_ktime_get_ns() / 1000000000ULL;
	if (r->window != w) {
		/* A racing CPU may reset too: the cap is approximate at window edges. */
		r->window = w;
		r->count = 0;
	}
	return __sync_fetch_and_add(&r->count, 1) < cfg->rate_max;
}

static __always_inline int dst_configured(const struct ipv6hdr *ip6, __u16 port, int src)
{
	struct clt_lpm_key k = {.prefixlen = 128};
	__builtin_memcpy(k.addr, src ? &ip6->saddr : &ip6->daddr, 16);
	if (!bpf_map_lookup_elem(&clt_prefixes, &k))
		return 0;
	__u16 any = 0;
	return bpf_map_lookup_elem(&clt_ports, &port) || bpf_map_lookup_elem(&clt_ports, &any);
}

/* The request line of an HTTP/1.x request starts with a method. */
static __always_inline int is_request(const __u8 *b)
{
	__u32 m = (__u32)b[0] << 24 | (__u32)b[1] << 16 | (__u32)b[2] << 8 | b[3];
	switch (m) {
	case 0x47455420: /* "GET " */
	case 0x504f5354: /* "POST" */
	case 0x50555420: /* "PUT " */
	case 0x48454144: /* "HEAD" */
	case 0x44454c45: /* "DELE" */
	case 0x50415443: /* "PATC" */
	case 0x4f505449: /* "OPTI" */
	case 0x54524143: /* "TRAC" */
		return 1;
	}
	return 0;
}

struct scan_ctx {
	struct clt_scratch *s; /* the per-CPU buffer (spilled map value pointer) */
	__u32 n;               /* bytes in the scratch buffer */
	__u32 pos;             /* offset of the traceparent value, 0 when not found */
};

/* line_at checks the line starting after the '\n' at b[0]: 1 stops the
 * scan (end of the header block, or traceparent found: c->pos set). */
static __always_inline int line_at(const __u8 *b, __u32 idx, struct scan_ctx *c)
{
	if (idx + 14 > c->n)
		return 1;
	__u8 c1 = b[1];
	if (c1 == '\r' || c1 == '\n')
		return 1; /* end of the header block */
	if ((c1 | 0x20) != 't')
		return 0;
	/* "raceparent:" case-insensitively (field names are). */
	if ((b[2] | 0x20) != 'r' || (b[3] | 0x20) != 'a' || (b[4] | 0x20) != 'c' || (b[5] | 0x20) != 'e' ||
	    (b[6] | 0x20) != 'p' || (b[7] | 0x20) != 'a' || (b[8] | 0x20) != 'r' || (b[9] | 0x20) != 'e' ||
	    (b[10] | 0x20) != 'n' || (b[11] | 0x20) != 't' || b[12] != ':')
		return 0;
	c->pos = idx + 13;
	return 1;
}

/* One bpf_loop step over 8 bytes: a word without '\n' costs a few
 * instructions; the callback is verified once, whatever the iterations. */
static long scan_step(__u64 i, struct scan_ctx *c)
{
	struct clt_scratch *s = c->s;
	__u32 idx = (__u32)i * 8;

	if (!s || idx + 14 > c->n)
		return 1;
	/* Keep the bound on the register the access uses (clang may otherwise
	 * re-derive idx from i after the check). */
	asm volatile("" : "+r"(idx));
	if (idx > CLT_SCAN_MAX - 24)
		return 1;
	const __u8 *b = &s->buf[idx];
	__u64 x;
	__builtin_memcpy(&x, b, 8);
	x ^= 0x0a0a0a0a0a0a0a0aULL;
	if (!((x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL))
		return 0; /* no '\n' in these 8 bytes */
#pragma unroll
	for (int k = 0; k < 8; k++) {
		if (b[k] == '\n' && line_at(&b[k], idx + k, c))
			return 1;
	}
	return 0;
}

/* W3C trace-context allows lowercase hex only. */
static __always_inline int hexval(__u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

enum tp_result { TP_MISSING, TP_INVALID, TP_UNSAMPLED, TP_SAMPLED };

/* parse_value decodes "00-<32 hex>-<16 hex>-<2 hex>" at b (CLT_TP_LEN bytes
 * plus one terminator byte are readable). */
static __always_inline int parse_value(const __u8 *b, struct clt_sock *st)
{
	if (b[0] != '0' || b[1] != '0' || b[2] != '-' || b[35] != '-' || b[52] != '-')
		return TP_INVALID;
	__u8 t = b[CLT_TP_LEN];
	if (t != '\r' && t != '\n' && t != ' ' && t != '\t')
		return TP_INVALID;
	__u8 any = 0;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		int hi = hexval(b[3 + 2 * i]), lo = hexval(b[4 + 2 * i]);
		if (hi < 0 || lo < 0)
			return TP_INVALID;
		st->ids[i] = hi << 4 | lo;
		any |= st->ids[i];
	}
	if (!any)
		return TP_INVALID;
	any = 0;
#pragma unroll
	for (int i = 0; i < 8; i++) {
		int hi = hexval(b[36 + 2 * i]), lo = hexval(b[37 + 2 * i]);
		if (hi < 0 || lo < 0)
			return TP_INVALID;
		st->ids[16 + i] = hi << 4 | lo;
		any |= st->ids[16 + i];
	}
	if (!any)
		return TP_INVALID;
	int fh = hexval(b[53]), fl = hexval(b[54]);
	if (fh < 0 || fl < 0)
		return TP_INVALID;
	st->flags = (fh << 4 | fl) & CLT_SOCK_SAMPLED;
	/* A trace ID whose upper 64 bits are zero travels short (as kernel/clt). */
	__u8 hi8 = 0;
#pragma unroll
	for (int i = 0; i < 8; i++)
		hi8 |= st->ids[i];
	if (!hi8)
		st->flags |= CLT_SOCK_SHORT;
	return (st->flags & CLT_SOCK_SAMPLED) ? TP_SAMPLED : TP_UNSAMPLED;
}

/* parse_request looks for traceparent in the first CLT_SCAN_MAX bytes of the
 * segment's payload. */
static __always_inline int parse_request(struct __sk_buff *skb, __u32 off, __u32 len, struct clt_sock *st)
{
	__u32 zero = 0;
	struct clt_scratch *s = bpf_map_lookup_elem(&clt_scratch, &zero);
	if (!s)
		return TP_MISSING;
	__u64 n = len;
	if (n > CLT_SCAN_MAX)
		n = CLT_SCAN_MAX;
	asm volatile("" : "+r"(n));
	if (n < 16 || n > CLT_SCAN_MAX)
		return TP_MISSING;
	if (bpf_skb_load_bytes(skb, off, s->buf, n) < 0)
		return TP_MISSING;
	struct scan_ctx c = {.s = s, .n = n};
	bpf_loop((n + 7) / 8, scan_step, &c, 0);
	__u32 p = c.pos;
	if (!p)
		return TP_MISSING;
	asm volatile("" : "+r"(p));
	if (p > CLT_SCAN_MAX - CLT_TP_LEN - 8)
		return TP_INVALID;
	const __u8 *b = &s->buf[p];
	/* optional whitespace before the value */
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (*b == ' ' || *b == '\t') {
			b++;
			p++;
		}
	}
	if (p + CLT_TP_LEN + 1 > n)
		return TP_INVALID;
	return parse_value(b, st);
}

SEC("tc")
int clt_egress(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IPV6)) {
		count(CLT_SKIP_NOT_IPV6, 1);
		return TC_ACT_OK;
	}
	__u32 ifindex = skb->ifindex;
	struct clt_ifcfg *cfg = bpf_map_lookup_elem(&clt_ifcfg, &ifindex);
	if (!cfg) {
		count(CLT_SKIP_NO_IFCFG, 1);
		return TC_ACT_OK;
	}
	struct ipv6hdr ip6;
	if (bpf_skb_load_bytes(skb, IP6_OFF, &ip6, sizeof(ip6)) < 0) {
		count(CLT_SKIP_NOT_IPV6, 1);
		return TC_ACT_OK;
	}
	if (ip6.nexthdr != IPPROTO_TCP) {
		count(ip6.nexthdr == 0 ? CLT_SKIP_EXT_HDR : CLT_SKIP_NOT_TCP, 1);
		return TC_ACT_OK;
	}
	struct tcphdr tcp;
	if (bpf_skb_load_bytes(skb, L4_OFF, &tcp, sizeof(tcp)) < 0) {
		count(CLT_SKIP_NOT_TCP, 1);
		return TC_ACT_OK;
	}
	if (!dst_configured(&ip6, bpf_ntohs(tcp.dest), 0)) {
		count(CLT_SKIP_UNCONFIGURED, 1);
		return TC_ACT_OK;
	}
	__u64 cookie = bpf_get_socket_cookie(skb);
	if (!cookie) {
		count(CLT_SKIP_NO_SOCKET, 1);
		return TC_ACT_OK;
	}

	__u32 doff = tcp.doff * 4;
	__u32 pay_off = L4_OFF + doff;
	if (skb->len > pay_off + 4) {
		__u8 m[4];
		if (bpf_skb_load_bytes(skb, pay_off, m, 4) == 0 && is_request(m)) {
			struct clt_sock st = {};
			int r = parse_request(skb, pay_off, skb->len - pay_off, &st);
			count(CLT_REQ_PARSED, 1);
			int want = r == TP_SAMPLED || (r == TP_UNSAMPLED && (cfg->flags & CLT_CFG_TAG_UNSAMPLED));
			if (want && rate_ok(cfg)) {
				bpf_map_update_elem(&clt_socks, &cookie, &st, BPF_ANY);
			} else if (want) {
				bpf_map_delete_elem(&clt_socks, &cookie);
				count(CLT_RATE_LIMITED, 1);
			} else {
				/* A new request without usable context ends the previous one's tagging. */
				bpf_map_delete_elem(&clt_socks, &cookie);
				count(r == TP_MISSING ? CLT_TP_MISSING : r == TP_INVALID ? CLT_TP_INVALID : CLT_TP_UNSAMPLED, 1);
			}
		}
	}

	struct clt_sock *sp = bpf_map_lookup_elem(&clt_socks, &cookie);
	if (!sp) {
		count(CLT_SKIP_NO_STATE, 1);
		return TC_ACT_OK;
	}
	struct clt_sock st = *sp;
	if (tcp.fin || tcp.rst)
		bpf_map_delete_elem(&clt_socks, &cookie); /* the socket is closing */

	const struct clt_tmpl *t = (st.flags & CLT_SOCK_SHORT) ? &cfg->tmpl[1] : &cfg->tmpl[0];
	__u32 hlen = t->len;
	if (hlen < 8 || hlen > CLT_MAX_HDR || t->ids_off + t->ids_len > hlen || t->ts_sec_off + 4 > hlen ||
	    t->ts_frac_off + 4 > hlen) {
		count(CLT_ERR_CONFIG, 1);
		return TC_ACT_OK;
	}
	__u32 plen = bpf_ntohs(ip6.payload_len);
	if (plen == 0 || plen + hlen > 0xffff) {
		count(CLT_SKIP_TOO_BIG, 1);
		return TC_ACT_OK;
	}
	__u32 segs = 1;
	if (skb->gso_segs > 1)
		segs = skb->gso_segs;
	if (!skb->gso_size && skb->len - ETH_HLEN + hlen > cfg->mtu) {
		count(CLT_SKIP_TOO_BIG, 1); /* would be dropped: send it untagged */
		return TC_ACT_OK;
	}

	/* Assemble the header in the per-CPU buffer (the parse is done with it):
	 * template, upper-layer protocol, IDs, timestamp; then one store. */
	__u32 zero = 0;
	struct clt_scratch *s = bpf_map_lookup_elem(&clt_scratch, &zero);
	if (!s)
		return TC_ACT_OK;
	__builtin_memcpy(s->buf, t->hdr, CLT_MAX_HDR);
	s->buf[0] = IPPROTO_TCP;
	/* Offsets below CLT_MAX_HDR (checked at start); the masks keep every
	 * write inside the 2048-byte buffer for the verifier. */
	__u32 ids_off = t->ids_off & 0x1ff;
	if (t->ids_len == 24)
		__builtin_memcpy(&s->buf[ids_off], st.ids, 24);
	else
		__builtin_memcpy(&s->buf[ids_off], &st.ids[8], 16);
	if (t->ts_sec_off || t->ts_frac_off) {
		__u64 now = bpf_ktime_get_tai_ns() + cfg->clock_off_ns;
		__be32 sec = bpf_htonl((__u32)(now / 1000000000ULL));
		__be32 frac = bpf_htonl((__u32)((now % 1000000000ULL) / 1000));
		__u32 so = t->ts_sec_off & 0x1ff, fo = t->ts_frac_off & 0x1ff;
		if (so)
			__builtin_memcpy(&s->buf[so], &sec, 4);
		if (fo)
			__builtin_memcpy(&s->buf[fo], &frac, 4);
	}
	/* IPv6 bytes 4-7: payload length, next header (Hop-by-Hop), hop limit. */
	__u8 w[4];
	__be16 npl = bpf_htons(plen + hlen);
	__builtin_memcpy(w, &npl, 2);
	w[2] = 0;
	w[3] = ip6.hop_limit;

	/* A GSO packet whose segments still fit with the header keeps its
	 * gso_size (BPF_F_ADJ_ROOM_FIXED_GSO: the MSS clamp made room, and TCP's
	 * segment count stays true); otherwise flags 0 lowers gso_size by hlen. */
	__u64 aflags = 0;
	if (skb->gso_size && sizeof(struct ipv6hdr) + hlen + doff + skb->gso_size <= cfg->mtu)
		aflags = BPF_F_ADJ_ROOM_FIXED_GSO;
	if (bpf_skb_adjust_room(skb, hlen, BPF_ADJ_ROOM_NET, aflags) < 0) {
		count(CLT_ERR_ADJUST, 1);
		return TC_ACT_OK;
	}
	int err = bpf_skb_store_bytes(skb, L4_OFF, s->buf, hlen, 0);
	err |= bpf_skb_store_bytes(skb, IP6_OFF + offsetof(struct ipv6hdr, payload_len), w, 4, 0);
	if (err) {
		/* Never send a half-written header: shrink back, else drop. */
		count(CLT_ERR_ADJUST, 1);
		if (bpf_skb_adjust_room(skb, -(__s32)hlen, BPF_ADJ_ROOM_NET, 0) < 0)
			return TC_ACT_SHOT;
		__u8 old[4];
		__builtin_memcpy(old, &ip6.payload_len, 2);
		old[2] = IPPROTO_TCP;
		old[3] = ip6.hop_limit;
		bpf_skb_store_bytes(skb, IP6_OFF + offsetof(struct ipv6hdr, payload_len), old, 4, 0);
		return TC_ACT_OK;
	}
	count(CLT_PKT_TAGGED, 1);
	count(CLT_BYTES_ADDED, (__u64)hlen * segs);
	return TC_ACT_OK;
}

/* clt_ingress lowers the MSS a configured server advertises in its SYN-ACK
 * so that our full-size segments plus the header still fit the MTU. */
SEC("tc")
int clt_ingress(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	__u32 ifindex = skb->ifindex;
	struct clt_ifcfg *cfg = bpf_map_lookup_elem(&clt_ifcfg, &ifindex);
	if (!cfg || !cfg->mss_max)
		return TC_ACT_OK;
	struct ipv6hdr ip6;
	struct tcphdr tcp;
	if (bpf_skb_load_bytes(skb, IP6_OFF, &ip6, sizeof(ip6)) < 0 || ip6.nexthdr != IPPROTO_TCP)
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, L4_OFF, &tcp, sizeof(tcp)) < 0 || !tcp.syn)
		return TC_ACT_OK;
	if (!dst_configured(&ip6, bpf_ntohs(tcp.source), 1))
		return TC_ACT_OK;
	/* The MSS option is the first option of a SYN-ACK on Linux, the BSDs and
	 * Windows (a general option walk costs the verifier too much here). */
	if (tcp.doff < 6)
		return TC_ACT_OK;
	__u8 opt[4];
	if (bpf_skb_load_bytes(skb, L4_OFF + sizeof(tcp), opt, 4) < 0)
		return TC_ACT_OK;
	if (opt[0] != 2 || opt[1] != 4) {
		count(CLT_MSS_NOT_FIRST, 1);
		return TC_ACT_OK;
	}
	__u16 mss = (__u16)opt[2] << 8 | opt[3];
	if (mss <= cfg->mss_max)
		return TC_ACT_OK;
	__be16 oldv = bpf_htons(mss), newv = bpf_htons(cfg->mss_max);
	if (bpf_l4_csum_replace(skb, L4_OFF + offsetof(struct tcphdr, check), oldv, newv, 2) < 0)
		return TC_ACT_OK;
	if (bpf_skb_store_bytes(skb, L4_OFF + sizeof(tcp) + 2, &newv, 2, 0) < 0)
		return TC_ACT_OK;
	count(CLT_MSS_CLAMPED, 1);
	return TC_ACT_OK;
}
