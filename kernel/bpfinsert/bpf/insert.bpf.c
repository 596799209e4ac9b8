// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//
// CLT transparent IOAM insertion: a tc egress program that reads the W3C
// traceparent of outgoing HTTP/1.x requests and inserts an IPv6 Hop-by-Hop
// header with the IOAM Pre-allocated Trace option (RFC 9197, RFC 9486,
// RFC 8200 §4.3) into every packet of that socket's current request, and a
// tc ingress program that clamps the MSS of the peer's SYN-ACK so full-size
// segments still fit once the header is added. Applications may set a
// socket's IDs themselves in the per-socket map (TCP, including the
// handshake, and UDP); the program then parses none of its requests.
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
#include <linux/udp.h>
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

/* The per-CPU buffer: the scanned payload, then the assembled header. Word
 * aligned so the scan and the template copy move 8 bytes at a time; the
 * slack lets a scan step read a whole line start past its last word. */
#define CLT_SCAN_STEP 32 /* payload bytes per bpf_loop step */
#define CLT_SLACK 64
struct clt_scratch {
	__u8 buf[CLT_SCAN_MAX + CLT_SLACK] __attribute__((aligned(8)));
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
/* The header is assembled at HDR_AT in the scratch buffer, preceded by the
 * IPv6 header's bytes 4-39 (payload length .. destination), so one store
 * writes both. */
#define HDR_AT 40
#define IP6_REWRITE 4 /* first IPv6 byte rewritten: payload length */

#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL

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

static __always_inline int dst_configured(const struct in6_addr *addr, __u16 port)
{
	struct clt_lpm_key k = {.prefixlen = 128};
	__builtin_memcpy(k.addr, addr, 16);
	if (!bpf_map_lookup_elem(&clt_prefixes, &k))
		return 0;
	__u16 any = 0;
	return bpf_map_lookup_elem(&clt_ports, &port) || bpf_map_lookup_elem(&clt_ports, &any);
}

/* linear returns the packet's start with its first len bytes in the linear
 * area, pulled there if needed, or 0 when the packet is shorter. */
static __always_inline void *linear(struct __sk_buff *skb, __u32 len)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	if (data + len <= end)
		return data;
	if (skb->len < len || bpf_skb_pull_data(skb, len) < 0)
		return 0;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	return data + len <= end ? data : 0;
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

/* load64 reads 8 bytes of a map value at any offset: one instruction (the
 * verifier allows unaligned map value loads on the 64-bit little-endian
 * targets this object is for; clang would split a memcpy into bytes). */
static __always_inline __u64 load64(const __u8 *p)
{
	return *(const __u64 *)p;
}

/* has_nl: some byte of x is '\n' (x ^ '\n' has a zero byte). */
static __always_inline int has_nl(__u64 x)
{
	x ^= ONES * '\n';
	return ((x - ONES) & ~x & HIGH) != 0;
}

struct scan_ctx {
	struct clt_scratch *s; /* the per-CPU buffer (spilled map value pointer) */
	__u32 n;               /* bytes in the scratch buffer */
	__u32 pos;             /* offset of the traceparent value, 0 when not found */
};

/* line_at checks the line after the '\n' at offset idx: 1 stops the scan
 * (end of the header block, or traceparent found: c->pos set). Not inlined:
 * it runs once per header line, the scan's word test runs per 8 bytes. */
static __noinline int line_at(struct scan_ctx *c, __u32 idx)
{
	struct clt_scratch *s = c->s;
	if (!s || idx + 14 > c->n)
		return 1;
	asm volatile("" : "+r"(idx));
	if (idx > CLT_SCAN_MAX)
		return 1;
	const __u8 *b = &s->buf[idx];
	__u8 c1 = b[1];
	if (c1 == '\r' || c1 == '\n')
		return 1; /* end of the header block */
	/* "traceparent:" case-insensitively (field names are): bytes 1-8 as a
	 * word, then 9-12; ':' | 0x20 is ':' itself. */
	__u64 w = load64(&b[1]) | (ONES * 0x20);
	if (w != 0x7261706563617274ULL) /* "tracepar", little-endian */
		return 0;
	if ((b[9] | 0x20) != 'e' || (b[10] | 0x20) != 'n' || (b[11] | 0x20) != 't' || b[12] != ':')
		return 0;
	c->pos = idx + 13;
	return 1;
}

/* One bpf_loop step over CLT_SCAN_STEP bytes: words without '\n' cost a few
 * instructions; the callback is verified once, whatever the iterations. */
static long scan_step(__u64 i, struct scan_ctx *c)
{
	struct clt_scratch *s = c->s;
	__u32 idx = (__u32)i * CLT_SCAN_STEP;

	if (!s || idx + 14 > c->n)
		return 1;
	/* Keep the bound on the register the access uses (clang may otherwise
	 * re-derive idx from i after the check). */
	asm volatile("" : "+r"(idx));
	if (idx > CLT_SCAN_MAX - CLT_SCAN_STEP)
		return 1;
	const __u8 *b = &s->buf[idx];
#pragma unroll
	for (int w = 0; w < CLT_SCAN_STEP / 8; w++) {
		if (!has_nl(*(const __u64 *)&b[w * 8]))
			continue;
#pragma unroll
		for (int k = 0; k < 8; k++) {
			if (b[w * 8 + k] == '\n' && line_at(c, idx + w * 8 + k))
				return 1;
		}
	}
	return 0;
}

/* hex8 decodes 8 lowercase hex digits (W3C trace-context allows no other)
 * at b into the 4 bytes at out; 0 when one is not such a digit. Bytewise in
 * one word: no byte below 0x80 carries into its neighbour. */
static __always_inline int hex8(const __u8 *b, __u32 *out)
{
	__u64 x = load64(b);
	if (x & HIGH)
		return 0;
	__u64 digit = (x + ONES * (0x80 - '0')) & ~(x + ONES * (0x7f - '9'));
	__u64 letter = (x + ONES * (0x80 - 'a')) & ~(x + ONES * (0x7f - 'f'));
	if (((digit | letter) & HIGH) != HIGH)
		return 0;
	/* '0'-'9' -> 0-9 (bit 6 clear), 'a'-'f' -> 1-6 + 9 (bit 6 set) */
	__u64 v = (x & (ONES * 0x0f)) + ((x >> 6) & ONES) * 9;
	/* nibbles n0 n1 n2 .. (memory order) -> bytes n0n1 n2n3 .. */
	v = ((v << 4) | (v >> 8)) & 0x00ff00ff00ff00ffULL;
	v = (v | (v >> 8)) & 0x0000ffff0000ffffULL;
	*out = (__u32)(v | (v >> 16));
	return 1;
}

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
 * plus one terminator byte are data, 64 bytes are readable). */
static __always_inline int parse_value(const __u8 *b, struct clt_sock *st)
{
	if (b[0] != '0' || b[1] != '0' || b[2] != '-' || b[35] != '-' || b[52] != '-')
		return TP_INVALID;
	__u8 t = b[CLT_TP_LEN];
	if (t != '\r' && t != '\n' && t != ' ' && t != '\t')
		return TP_INVALID;
	__u32 *ids = (__u32 *)st->ids;
	if (!hex8(&b[3], &ids[0]) || !hex8(&b[11], &ids[1]) || !hex8(&b[19], &ids[2]) || !hex8(&b[27], &ids[3]) ||
	    !hex8(&b[36], &ids[4]) || !hex8(&b[44], &ids[5]))
		return TP_INVALID;
	if (!(ids[0] | ids[1] | ids[2] | ids[3]) || !(ids[4] | ids[5]))
		return TP_INVALID; /* all-zero trace or span ID */
	int fh = hexval(b[53]), fl = hexval(b[54]);
	if (fh < 0 || fl < 0)
		return TP_INVALID;
	/* A trace ID whose upper 64 bits are zero travels short (as kernel/clt). */
	if (!(ids[0] | ids[1]))
		st->flags |= CLT_SOCK_SHORT;
	return ((fh << 4 | fl) & 0x01) ? TP_SAMPLED : TP_UNSAMPLED; /* W3C "sampled" */
}

/* parse_request looks for traceparent in the header block within the first
 * CLT_SCAN_MAX bytes of the segment's payload. */
static __always_inline int parse_request(struct __sk_buff *skb, struct clt_scratch *s, __u32 off, __u32 len,
					 struct clt_sock *st)
{
	__u64 n = len;
	if (n > CLT_SCAN_MAX)
		n = CLT_SCAN_MAX;
	asm volatile("" : "+r"(n));
	if (n < 16 || n > CLT_SCAN_MAX)
		return TP_MISSING;
	if (bpf_skb_load_bytes(skb, off, s->buf, n) < 0)
		return TP_MISSING;
	struct scan_ctx c = {.s = s, .n = n};
	bpf_loop((n + CLT_SCAN_STEP - 1) / CLT_SCAN_STEP, scan_step, &c, 0);
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

/* insert puts the header for sp's IDs between the IPv6 header and the
 * upper-layer header (proto, l4len bytes), unless the packet would not
 * fit; the socket's entry goes when it is closing. */
static __always_inline int insert(struct __sk_buff *skb, const struct clt_ifcfg *cfg, struct clt_scratch *s,
				  const struct clt_sock *sp, const struct ipv6hdr *ip6, __u8 proto, __u32 l4len,
				  __u32 plen, __u8 hop_limit, int closing, __u64 cookie)
{
	const struct clt_tmpl *t = (sp->flags & CLT_SOCK_SHORT) ? &cfg->tmpl[1] : &cfg->tmpl[0];
	__u32 hlen = t->len;
	if (hlen < 8 || hlen > CLT_MAX_HDR || t->ids_off + t->ids_len > hlen || t->ts_sec_off + 4 > hlen ||
	    t->ts_frac_off + 4 > hlen) {
		count(CLT_ERR_CONFIG, 1);
		return TC_ACT_OK;
	}
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

	/* Assemble in the per-CPU buffer (the parse is done with it): IPv6 bytes
	 * 4-39 with the new payload length and next header, then the template
	 * with the upper-layer protocol, IDs and timestamp; then one store. */
	__builtin_memcpy(&s->buf[HDR_AT], t->hdr, CLT_MAX_HDR);
	__be16 npl = bpf_htons(plen + hlen);
	__builtin_memcpy(&s->buf[IP6_REWRITE], &npl, 2);
	s->buf[IP6_REWRITE + 2] = 0; /* Hop-by-Hop */
	s->buf[IP6_REWRITE + 3] = hop_limit;
	__builtin_memcpy(&s->buf[IP6_REWRITE + 4], &ip6->saddr, 32);
	s->buf[HDR_AT] = proto;
	/* Offsets below CLT_MAX_HDR (checked above); the masks keep every write
	 * inside the buffer for the verifier. */
	__u32 ids_off = (HDR_AT + t->ids_off) & 0x1ff;
	if (t->ids_len == 24)
		__builtin_memcpy(&s->buf[ids_off], sp->ids, 24);
	else
		__builtin_memcpy(&s->buf[ids_off], &sp->ids[8], 16);
	if (closing)
		bpf_map_delete_elem(&clt_socks, &cookie); /* the socket is closing */
	if (t->ts_sec_off || t->ts_frac_off) {
		__u64 now = bpf_ktime_get_tai_ns() + cfg->clock_off_ns;
		__be32 sec = bpf_htonl((__u32)(now / 1000000000ULL));
		__be32 frac = bpf_htonl((__u32)((now % 1000000000ULL) / 1000));
		__u32 so = (HDR_AT + t->ts_sec_off) & 0x1ff, fo = (HDR_AT + t->ts_frac_off) & 0x1ff;
		if (t->ts_sec_off)
			__builtin_memcpy(&s->buf[so], &sec, 4);
		if (t->ts_frac_off)
			__builtin_memcpy(&s->buf[fo], &frac, 4);
	}

	/* A GSO packet whose segments still fit with the header keeps its
	 * gso_size (BPF_F_ADJ_ROOM_FIXED_GSO: the MSS clamp made room, and TCP's
	 * segment count stays true); otherwise flags 0 lowers TCP's gso_size by
	 * hlen. A UDP gso_size delimits datagrams: it cannot change. */
	__u64 aflags = 0;
	if (skb->gso_size && sizeof(struct ipv6hdr) + hlen + l4len + skb->gso_size <= cfg->mtu)
		aflags = BPF_F_ADJ_ROOM_FIXED_GSO;
	else if (skb->gso_size && proto != IPPROTO_TCP) {
		count(CLT_SKIP_TOO_BIG, 1);
		return TC_ACT_OK;
	}
	if (bpf_skb_adjust_room(skb, hlen, BPF_ADJ_ROOM_NET, aflags) < 0) {
		count(CLT_ERR_ADJUST, 1);
		return TC_ACT_OK;
	}
	if (bpf_skb_store_bytes(skb, IP6_OFF + IP6_REWRITE, &s->buf[IP6_REWRITE], HDR_AT - IP6_REWRITE + hlen, 0)) {
		/* Never send a half-written header: shrink back, else drop. The
		 * IPv6 header was not written (the store checks before copying). */
		count(CLT_ERR_ADJUST, 1);
		if (bpf_skb_adjust_room(skb, -(__s32)hlen, BPF_ADJ_ROOM_NET, 0) < 0)
			return TC_ACT_SHOT;
		return TC_ACT_OK;
	}
	count(CLT_PKT_TAGGED, 1);
	count(CLT_BYTES_ADDED, (__u64)hlen * segs);
	return TC_ACT_OK;
}

/* udp_egress tags the datagrams of UDP sockets whose IDs an application set
 * through the map (there is no request to parse). */
static __always_inline int udp_egress(struct __sk_buff *skb, const struct clt_ifcfg *cfg)
{
	void *data = linear(skb, L4_OFF + sizeof(struct udphdr));
	if (!data) {
		count(CLT_SKIP_NOT_TCP, 1);
		return TC_ACT_OK;
	}
	struct ipv6hdr *ip6 = data + IP6_OFF;
	struct udphdr *udp = data + L4_OFF;
	__u64 cookie = bpf_get_socket_cookie(skb);
	if (!cookie) {
		count(CLT_SKIP_NO_SOCKET, 1);
		return TC_ACT_OK;
	}
	struct clt_sock *sp = bpf_map_lookup_elem(&clt_socks, &cookie);
	if (!sp || !(sp->flags & CLT_SOCK_TAG)) {
		count(CLT_SKIP_NO_STATE, 1);
		return TC_ACT_OK;
	}
	if (!(sp->flags & CLT_SOCK_DST_OK) && !dst_configured(&ip6->daddr, bpf_ntohs(udp->dest))) {
		count(CLT_SKIP_UNCONFIGURED, 1);
		return TC_ACT_OK;
	}
	__u32 zero = 0;
	struct clt_scratch *s = bpf_map_lookup_elem(&clt_scratch, &zero);
	if (!s)
		return TC_ACT_OK;
	return insert(skb, cfg, s, sp, ip6, IPPROTO_UDP, sizeof(struct udphdr), bpf_ntohs(ip6->payload_len),
		      ip6->hop_limit, 0, cookie);
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
	/* The headers are read in place (a local socket's are in the linear
	 * area; anything else is pulled there). */
	void *data = linear(skb, L4_OFF);
	if (!data) {
		count(CLT_SKIP_NOT_IPV6, 1);
		return TC_ACT_OK;
	}
	struct ipv6hdr *ip6 = data + IP6_OFF;
	if (ip6->nexthdr == IPPROTO_UDP)
		return udp_egress(skb, cfg);
	if (ip6->nexthdr != IPPROTO_TCP) {
		count(ip6->nexthdr == 0 ? CLT_SKIP_EXT_HDR : CLT_SKIP_NOT_TCP, 1);
		return TC_ACT_OK;
	}
	data = linear(skb, L4_OFF + sizeof(struct tcphdr));
	if (!data) {
		count(CLT_SKIP_NOT_TCP, 1);
		return TC_ACT_OK;
	}
	ip6 = data + IP6_OFF;
	struct tcphdr *tcp = data + L4_OFF;
	__u64 cookie = bpf_get_socket_cookie(skb);
	if (!cookie) {
		count(CLT_SKIP_NO_SOCKET, 1);
		return TC_ACT_OK;
	}
	/* What the rest needs from the headers, before helpers that may move
	 * the packet invalidate the pointers. */
	__u32 doff = tcp->doff * 4;
	int closing = tcp->fin || tcp->rst;
	__u32 plen = bpf_ntohs(ip6->payload_len);
	__u8 hop_limit = ip6->hop_limit;

	__u32 zero = 0;
	struct clt_scratch *s = bpf_map_lookup_elem(&clt_scratch, &zero);
	if (!s)
		return TC_ACT_OK;
	struct clt_sock *sp = bpf_map_lookup_elem(&clt_socks, &cookie);

	__u32 pay_off = L4_OFF + doff;
	__u8 m[4];
	int request = skb->len > pay_off + 4 && bpf_skb_load_bytes(skb, pay_off, m, 4) == 0 && is_request(m);
	/* The destination is checked once per socket (a socket's does not
	 * change): at its first request, and on every packet of state the program
	 * did not write (the map API's). */
	if ((sp ? !(sp->flags & CLT_SOCK_DST_OK) : request) && !dst_configured(&ip6->daddr, bpf_ntohs(tcp->dest))) {
		count(CLT_SKIP_UNCONFIGURED, 1);
		return TC_ACT_OK;
	}
	/* An application that set its socket's IDs through the map owns them
	 * until it deletes the entry: its requests are not parsed. */
	if (request && !(sp && (sp->flags & CLT_SOCK_API))) {
		struct clt_sock st = {};
		int r = parse_request(skb, s, pay_off, skb->len - pay_off, &st);
		count(CLT_REQ_PARSED, 1);
		int want = r == TP_SAMPLED || (r == TP_UNSAMPLED && (cfg->flags & CLT_CFG_TAG_UNSAMPLED));
		if (want && rate_ok(cfg)) {
			st.flags |= CLT_SOCK_TAG | CLT_SOCK_DST_OK;
		} else {
			/* A request without usable context ends the previous one's
			 * tagging; the entry stays, untagged, for the next request. */
			st.flags = CLT_SOCK_DST_OK;
			if (want)
				count(CLT_RATE_LIMITED, 1);
			else
				count(r == TP_MISSING ? CLT_TP_MISSING : r == TP_INVALID ? CLT_TP_INVALID : CLT_TP_UNSAMPLED, 1);
		}
		/* A keep-alive socket's entry is rewritten in place: this socket's
		 * packets are sent one at a time (TCP holds its lock), and an LRU
		 * update would allocate. */
		if (sp) {
			*sp = st;
		} else {
			bpf_map_update_elem(&clt_socks, &cookie, &st, BPF_ANY);
			sp = bpf_map_lookup_elem(&clt_socks, &cookie);
		}
	}
	if (!sp || !(sp->flags & CLT_SOCK_TAG)) {
		if (sp && closing)
			bpf_map_delete_elem(&clt_socks, &cookie);
		count(CLT_SKIP_NO_STATE, 1);
		return TC_ACT_OK;
	}

	return insert(skb, cfg, s, sp, ip6, IPPROTO_TCP, doff, plen, hop_limit, closing, cookie);
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
	/* Every received packet comes here: headers read in place, the SYN
	 * test before any lookup. */
	void *data = linear(skb, L4_OFF);
	if (!data || ((struct ipv6hdr *)(data + IP6_OFF))->nexthdr != IPPROTO_TCP)
		return TC_ACT_OK;
	data = linear(skb, L4_OFF + sizeof(struct tcphdr));
	if (!data)
		return TC_ACT_OK;
	struct ipv6hdr *ip6 = data + IP6_OFF;
	struct tcphdr *tcp = data + L4_OFF;
	if (!tcp->syn) /* a SYN-ACK, or a client's SYN to a tagging server */
		return TC_ACT_OK;
	/* The MSS option is the first option of a SYN-ACK on Linux, the BSDs and
	 * Windows (a general option walk costs the verifier too much here). */
	if (tcp->doff < 6)
		return TC_ACT_OK;
	if (!dst_configured(&ip6->saddr, bpf_ntohs(tcp->source)))
		return TC_ACT_OK;
	__u8 opt[4];
	if (bpf_skb_load_bytes(skb, L4_OFF + sizeof(struct tcphdr), opt, 4) < 0)
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
	if (bpf_skb_store_bytes(skb, L4_OFF + sizeof(struct tcphdr) + 2, &newv, 2, 0) < 0)
		return TC_ACT_OK;
	count(CLT_MSS_CLAMPED, 1);
	return TC_ACT_OK;
}
