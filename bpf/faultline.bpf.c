// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * faultline data path: one program body, two entry points (ingress, egress), attached with tcx
 * or clsact/cls_bpf to every chosen interface of one target network namespace. Each target
 * namespace gets its own instance of this object and so its own maps.
 *
 * For every IP packet: parse to L4, look up the node-set masks of both addresses, then test the
 * active fault slots. Exemptions are checked before a fault may act. Drop wins when several
 * faults match. Anything that is not ours continues to the next program or qdisc.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "verdict.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- maps ---- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct fl_ctl);
} fl_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FL_MAX_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct fl_slot);
} fl_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FL_MAX_CIDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fl_lpm4_key);
	__type(value, __u64);
} fl_sets4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FL_MAX_CIDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fl_lpm6_key);
	__type(value, __u64);
} fl_sets6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FL_MAX_HOSTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); /* IPv4 address, network order */
	__type(value, __u64);
} fl_hosts4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FL_MAX_HOSTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fl_host6_key);
	__type(value, __u64);
} fl_hosts6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FL_MAX_EXEMPT_CIDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fl_lpm4_key);
	__type(value, __u64);
} fl_exempt4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FL_MAX_EXEMPT_CIDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fl_lpm6_key);
	__type(value, __u64);
} fl_exempt6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FL_MAX_EXEMPT_PORTS);
	__type(key, __u32); /* FL_EXEMPT_PORT_KEY */
	__type(value, __u64);
} fl_exempt_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FL_MAX_IFACES);
	__type(key, __u32); /* ifindex */
	__type(value, __u64);
} fl_ifaces SEC(".maps");

/* Ingress shaping: interface -> the ifb device that carries its shaping tree. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FL_MAX_IFACES);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* ifb ifindex */
} fl_ifb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FL_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct fl_counters);
} fl_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FL_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct fl_rng);
} fl_rng SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FL_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} fl_stats SEC(".maps");

/* ---- parsing ---- */

#define IPV6_NEXTHDR_HOP 0
#define IPV6_NEXTHDR_ROUTING 43
#define IPV6_NEXTHDR_FRAGMENT 44
#define IPV6_NEXTHDR_AUTH 51
#define IPV6_NEXTHDR_DEST 60
#define IPPROTO_ICMPV6_ 58
#define FL_IPV6_EXT_MAX 6
#define FL_PARSE_LIMIT 512 /* headers beyond this offset are not parsed */
#define FL_INLINE_SLOTS 8   /* slots scanned open-coded before bpf_loop takes over */

struct vlan_hdr_ {
	__be16 tci;
	__be16 encap_proto;
};

struct ipv6_opt_ {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct frag6_ {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 id;
};

struct pkt {
	__u64 src_m;
	__u64 dst_m;
	__u64 exempt; /* exemption rules that cover this packet, computed on first need */
	__u64 if_bit; /* this interface's --dev bit, computed on first need */
	__u64 now;
	union {
		struct fl_lpm4_key k4;
		struct fl_lpm6_key k6;
	} src, dst;
	__u32 ifindex;
	__u32 ctl_flags;
	__u32 prio;      /* class of the winning shaping slot; 0: none */
	__u32 prio_seq;  /* its shape_seq */
	__u32 prio_idx;  /* its slot index */
	__u16 sport;
	__u16 dport;
	__u8 family; /* 4 or 6 */
	__u8 pclass; /* enum fl_proto */
	__u8 has_ports;
	__u8 tcp_syn_only;
	__u8 nd;
	__u8 dir;
	__u8 exempt_done;
	__u8 if_done;
	__u8 drop;
};

enum parse_result { PARSE_OK, PARSE_NOT_IP, PARSE_TRUNCATED };

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&fl_stats, &which);
	if (v)
		*v += 1;
}

static __always_inline enum parse_result parse_l4(void *data, void *end, __u32 off, __u8 l4,
						  struct pkt *p)
{
	__u8 *h = data + off;

	if (l4 == IPPROTO_TCP) {
		struct tcphdr *th = (void *)h;
		p->pclass = FL_PROTO_TCP;
		if ((void *)(th + 1) > end)
			return PARSE_TRUNCATED;
		p->sport = bpf_ntohs(th->source);
		p->dport = bpf_ntohs(th->dest);
		p->has_ports = 1;
		p->tcp_syn_only = th->syn && !th->ack;
	} else if (l4 == IPPROTO_UDP) {
		struct udphdr *uh = (void *)h;
		p->pclass = FL_PROTO_UDP;
		if ((void *)(uh + 1) > end)
			return PARSE_TRUNCATED;
		p->sport = bpf_ntohs(uh->source);
		p->dport = bpf_ntohs(uh->dest);
		p->has_ports = 1;
	} else if (l4 == IPPROTO_ICMP) {
		p->pclass = FL_PROTO_ICMP;
		if (h + 4 > (__u8 *)end)
			return PARSE_TRUNCATED;
	} else if (l4 == IPPROTO_ICMPV6_) {
		p->pclass = FL_PROTO_ICMP;
		if (h + 4 > (__u8 *)end)
			return PARSE_TRUNCATED;
		/* Router/neighbour solicitation/advertisement and redirect: cutting these breaks
		 * address resolution, which a partition between nodes must not do by accident. */
		if (h[0] >= 133 && h[0] <= 137)
			p->nd = 1;
	} else {
		p->pclass = FL_PROTO_OTHER;
	}
	return PARSE_OK;
}

static __always_inline enum parse_result parse(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__be16 proto;

	if ((void *)(eth + 1) > end)
		return PARSE_TRUNCATED;
	proto = eth->h_proto;

#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_hdr_ *vh;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		vh = data + off;
		if ((void *)(vh + 1) > end)
			return PARSE_TRUNCATED;
		proto = vh->encap_proto;
		off += sizeof(*vh);
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;
		__u32 ihl;

		if ((void *)(ip + 1) > end)
			return PARSE_TRUNCATED;
		ihl = ip->ihl;
		if (ihl < 5)
			return PARSE_TRUNCATED;
		p->family = 4;
		p->src.k4.prefixlen = 32;
		p->dst.k4.prefixlen = 32;
		__builtin_memcpy(p->src.k4.addr, &ip->saddr, 4);
		__builtin_memcpy(p->dst.k4.addr, &ip->daddr, 4);
		if (ip->frag_off & bpf_htons(0x1fff)) {
			/* A later fragment: addresses and protocol are known, ports are not. */
			p->pclass = ip->protocol == IPPROTO_TCP	   ? FL_PROTO_TCP
				    : ip->protocol == IPPROTO_UDP  ? FL_PROTO_UDP
				    : ip->protocol == IPPROTO_ICMP ? FL_PROTO_ICMP
								   : FL_PROTO_OTHER;
			stat_inc(FL_STAT_FRAGMENT);
			return PARSE_OK;
		}
		off += ihl * 4;
		if (off > FL_PARSE_LIMIT)
			return PARSE_TRUNCATED;
		return parse_l4(data, end, off, ip->protocol, p);
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;
		__u8 nh;

		if ((void *)(ip6 + 1) > end)
			return PARSE_TRUNCATED;
		p->family = 6;
		p->src.k6.prefixlen = 128;
		p->dst.k6.prefixlen = 128;
		__builtin_memcpy(p->src.k6.addr, &ip6->saddr, 16);
		__builtin_memcpy(p->dst.k6.addr, &ip6->daddr, 16);
		nh = ip6->nexthdr;
		off += sizeof(*ip6);

#pragma unroll
		for (int i = 0; i < FL_IPV6_EXT_MAX; i++) {
			if (nh == IPV6_NEXTHDR_HOP || nh == IPV6_NEXTHDR_ROUTING ||
			    nh == IPV6_NEXTHDR_DEST || nh == IPV6_NEXTHDR_AUTH) {
				struct ipv6_opt_ *oh = data + off;
				__u8 this_hdr = nh;

				if ((void *)(oh + 1) > end)
					return PARSE_TRUNCATED;
				nh = oh->nexthdr;
				/* The length rule is the skipped header's own: AH counts 4-octet
				 * units minus 2, the others 8-octet units minus 1 (RFC 4302, 8200). */
				if (this_hdr == IPV6_NEXTHDR_AUTH)
					off += ((__u32)oh->hdrlen + 2) * 4;
				else
					off += ((__u32)oh->hdrlen + 1) * 8;
			} else if (nh == IPV6_NEXTHDR_FRAGMENT) {
				struct frag6_ *fh = data + off;

				if ((void *)(fh + 1) > end)
					return PARSE_TRUNCATED;
				nh = fh->nexthdr;
				off += sizeof(*fh);
				if (fh->frag_off & bpf_htons(0xfff8)) {
					p->pclass = nh == IPPROTO_TCP	      ? FL_PROTO_TCP
						    : nh == IPPROTO_UDP	      ? FL_PROTO_UDP
						    : nh == IPPROTO_ICMPV6_ ? FL_PROTO_ICMP
									      : FL_PROTO_OTHER;
					stat_inc(FL_STAT_FRAGMENT);
					return PARSE_OK;
				}
			} else {
				break;
			}
			if (off > FL_PARSE_LIMIT)
				return PARSE_TRUNCATED;
		}
		return parse_l4(data, end, off, nh, p);
	}

	return PARSE_NOT_IP;
}

/* ---- decisions ---- */

static __always_inline __u64 exempt_mask(const struct pkt *p, const void *key)
{
	__u64 *m;

	if (p->family == 4)
		m = bpf_map_lookup_elem(&fl_exempt4, key);
	else
		m = bpf_map_lookup_elem(&fl_exempt6, key);
	return m ? *m : 0;
}

/* Node-set bits of one address: the host hash first (most sets list hosts), the LPM trie only
 * when it holds anything. */
static __always_inline __u64 set_mask(const struct pkt *p, const void *key)
{
	__u64 *m;

	if (p->family == 4) {
		const struct fl_lpm4_key *k = key;
		__u32 a;

		__builtin_memcpy(&a, k->addr, 4);
		m = bpf_map_lookup_elem(&fl_hosts4, &a);
		if (!m && (p->ctl_flags & FL_CTL_LPM4))
			m = bpf_map_lookup_elem(&fl_sets4, key);
	} else {
		const struct fl_lpm6_key *k = key;

		m = bpf_map_lookup_elem(&fl_hosts6, k->addr);
		if (!m && (p->ctl_flags & FL_CTL_LPM6))
			m = bpf_map_lookup_elem(&fl_sets6, key);
	}
	return m ? *m : 0;
}

static __always_inline __u64 port_rules(__u32 key)
{
	__u64 *m = bpf_map_lookup_elem(&fl_exempt_ports, &key);

	return m ? *m : 0;
}

/* Exemption rules whose CIDR holds either endpoint and whose protocol/port fits the packet. */
static __always_inline __u64 packet_exemptions(struct pkt *p)
{
	__u64 cidr_rules = exempt_mask(p, &p->src) | exempt_mask(p, &p->dst);
	__u64 port_m;

	if (!cidr_rules)
		return 0;
	port_m = port_rules(FL_EXEMPT_PORT_KEY(FL_PROTO_ALL, 0));
	if (p->pclass != FL_PROTO_OTHER) {
		port_m |= port_rules(FL_EXEMPT_PORT_KEY(p->pclass, 0));
		if (p->has_ports) {
			port_m |= port_rules(FL_EXEMPT_PORT_KEY(p->pclass, p->sport));
			port_m |= port_rules(FL_EXEMPT_PORT_KEY(p->pclass, p->dport));
		}
	}
	return cidr_rules & port_m;
}

static __always_inline __u64 next_random(__u64 *s)
{
	/* xorshift64*: fast, good enough for drop decisions, and seedable for replays. */
	__u64 x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/*
 * Drop decision with mean probability p and lag-1 correlation c: after a drop the next packet
 * drops with c + (1-c)p, otherwise with (1-c)p. The stationary drop rate stays exactly p (unlike
 * netem's value blending, which skews it), and c = 0 is plain Bernoulli.
 */
static __always_inline int decide(const struct fl_slot *s, __u32 idx)
{
	struct fl_rng *r;
	__u64 base, pe, u;

	if (s->prob >= FL_PROB_ONE)
		return 1;
	r = bpf_map_lookup_elem(&fl_rng, &idx);
	if (!r)
		return 0;
	/* state 0 is a fixed point of xorshift: treat it as "not seeded" whatever the gen. */
	if (r->gen != s->gen || !r->state) {
		__u64 seed = s->seed;

		if (!seed)
			seed = ((__u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32();
		/* Distinct, reproducible stream per CPU. */
		seed ^= ((__u64)bpf_get_smp_processor_id() + 1) * 0x9E3779B97F4A7C15ULL;
		r->state = seed ? seed : 1;
		r->gen = s->gen;
		r->last_dropped = 0;
	}
	u = next_random(&r->state) >> 32;
	base = ((FL_PROB_ONE - s->corr) * s->prob) >> 32;
	pe = r->last_dropped ? s->corr + base : base;
	r->last_dropped = u < pe;
	return r->last_dropped;
}

static __always_inline int addr_ok(__u64 m, __u64 req, __u64 any)
{
	return (m & req) == req && (!any || (m & any));
}

static __always_inline int slot_matches(const struct fl_slot *s, struct pkt *p)
{
	/* Addresses first: for most traffic they are what tells a fault no. The shared-side test
	 * comes before the membership tests because traffic within a side is the bulk. */
	if (s->flags & FL_F_ISOLATE) {
		if (!((p->src_m ^ p->dst_m) & s->part))
			return 0;
	} else if (p->src_m & p->dst_m & s->part) {
		return 0; /* both endpoints share a side: a bridge or the same side */
	}
	if (!addr_ok(p->src_m, s->src_req, s->src_any) || !addr_ok(p->dst_m, s->dst_req, s->dst_any))
		return 0;
	if (!(s->dir & p->dir))
		return 0;
	if (s->proto != FL_PROTO_ALL && s->proto != p->pclass)
		return 0;
	if (p->nd && s->proto != FL_PROTO_ICMP)
		return 0;
	if (s->flags & FL_F_PORTS) {
		if (!p->has_ports || p->sport < s->sport_lo || p->sport > s->sport_hi ||
		    p->dport < s->dport_lo || p->dport > s->dport_hi)
			return 0;
	}
	if ((s->flags & FL_F_NEW_ONLY) && !p->tcp_syn_only)
		return 0;
	if (s->flags & FL_F_IFACES) {
		if (!p->if_done) {
			__u64 *b = bpf_map_lookup_elem(&fl_ifaces, &p->ifindex);

			p->if_bit = b ? *b : 0;
			p->if_done = 1;
		}
		if (!(p->if_bit & s->if_mask))
			return 0;
	}
	return 1;
}

static __always_inline void check_slot(__u32 idx, struct pkt *p)
{
	struct fl_slot *s;
	struct fl_counters *c;
	__u64 exp;

	s = bpf_map_lookup_elem(&fl_slots, &idx);
	if (!s)
		return;
	/* Activation is the single store of expires_ns; everything else was written before it. */
	exp = *(volatile __u64 *)&s->expires_ns;
	if (p->now >= exp)
		return;
	if (!slot_matches(s, p))
		return;
	c = bpf_map_lookup_elem(&fl_counters, &idx);
	if (!c)
		return;
	c->matched++;
	if (!p->exempt_done) {
		p->exempt = packet_exemptions(p);
		p->exempt_done = 1;
	}
	if (p->exempt & s->exempt_mask) {
		c->exempted++;
		return;
	}
	if (s->prob && decide(s, idx)) {
		c->dropped++;
		p->drop = 1;
		return;
	}
	/* Among shaping slots the highest shape_seq wins (the most recently applied fault; within a
	 * matrix, the pair listed last). Its counter is bumped once the scan is over and the
	 * packet is known not to be dropped by anything else. */
	if ((s->flags & FL_F_SHAPE) && s->prio && s->shape_seq >= p->prio_seq) {
		p->prio = s->prio;
		p->prio_seq = s->shape_seq;
		p->prio_idx = idx;
	}
	/* No early exit on drop: every matching fault keeps its counters and its random stream
	 * honest, so stacked faults behave the same whatever their order. */
	return;
}

static long check_slot_cb(__u32 i, void *ctx)
{
	check_slot(i + FL_INLINE_SLOTS, ctx);
	return 0;
}

/*
 * Egress: the root HTB of ours on this interface looks skb->priority up as a class id, so
 * setting it is the whole classification, and the next program still runs. Ingress has no
 * qdisc to queue in: the packet goes to this interface's ifb, whose egress carries the same
 * tree and which hands the packet back to the stack (without running tc ingress again).
 */
static __always_inline int shape(struct __sk_buff *skb, struct pkt *p)
{
	struct fl_counters *c;
	__u32 *ifb = 0;

	if (p->dir == FL_DIR_INGRESS) {
		ifb = bpf_map_lookup_elem(&fl_ifb, &p->ifindex);
		if (!ifb) {
			stat_inc(FL_STAT_NO_IFB);
			return FL_VERDICT_NEXT;
		}
	}
	c = bpf_map_lookup_elem(&fl_counters, &p->prio_idx);
	if (c)
		c->shaped++;
	skb->priority = p->prio;
	if (!ifb) {
		stat_inc(FL_STAT_SHAPED);
		return FL_VERDICT_NEXT;
	}
	stat_inc(FL_STAT_REDIRECTED);
	if (*ifb & FL_IFB_BY_TC)
		return FL_VERDICT_NEXT; /* fl_ifb_match's filter redirects it */
	return bpf_redirect(*ifb, 0);
}

static __always_inline int fl_handle(struct __sk_buff *skb, __u8 dir)
{
	struct pkt p = {};
	struct fl_ctl *ctl;
	__u32 zero = 0, n;

	stat_inc(FL_STAT_SEEN);
	ctl = bpf_map_lookup_elem(&fl_ctl, &zero);
	if (!ctl)
		return FL_VERDICT_NEXT;
	n = ctl->nslots;
	if (!n)
		return FL_VERDICT_NEXT;
	/* Coarse clock: a few ns instead of a clocksource read; lifetimes are in ms anyway. */
	p.now = bpf_ktime_get_coarse_ns();
	if (p.now >= ctl->lease_expires_ns) {
		/* The daemon stopped renewing: every fault is off until it comes back. */
		stat_inc(FL_STAT_LEASE_OFF);
		return FL_VERDICT_NEXT;
	}

	switch (parse(skb, &p)) {
	case PARSE_OK:
		break;
	case PARSE_NOT_IP:
		stat_inc(FL_STAT_NOT_IP);
		return FL_VERDICT_NEXT;
	default:
		stat_inc(FL_STAT_TRUNCATED);
		return FL_VERDICT_NEXT;
	}

	p.dir = dir;
	p.ifindex = skb->ifindex;
	p.ctl_flags = ctl->flags;
	p.src_m = set_mask(&p, &p.src);
	p.dst_m = set_mask(&p, &p.dst);
	if (!(p.src_m | p.dst_m) && !(p.ctl_flags & FL_CTL_UNSCOPED))
		return FL_VERDICT_NEXT;

	/* The first slots are scanned open-coded, the rest through bpf_loop. An open-coded loop is
	 * the cheaper per slot (no call per iteration) but costs the verifier per iteration: over
	 * FL_MAX_SLOTS it takes more than a second per load. The daemon fills low slots first. */
#pragma unroll
	for (__u32 i = 0; i < FL_INLINE_SLOTS; i++) {
		if (i >= n)
			goto scanned;
		check_slot(i, &p);
	}
	if (n > FL_MAX_SLOTS)
		n = FL_MAX_SLOTS;
	bpf_loop(n - FL_INLINE_SLOTS, check_slot_cb, &p, 0);
scanned:

	/* Drop wins over shaping: a packet some fault drops is never queued. Silent to the sender
	 * on egress: see fl_verdict_drop(). */
	if (p.drop) {
		stat_inc(FL_STAT_DROPPED);
		return fl_verdict_drop(dir);
	}
	if (p.prio)
		return shape(skb, &p);
	return FL_VERDICT_NEXT;
}

/*
 * tc/tcx ingress of a target interface. Runs before the stack sees the packet. Must never
 * modify the packet's bytes, and must return FL_VERDICT_NEXT for anything it neither drops nor
 * shapes so that other programs on the hook (CNI datapaths) still run. A packet shaped on
 * ingress is redirected to an ifb: programs after ours on this hook do not see it (the ifb
 * returns it to the stack past tc ingress); docs/FAULTS.md says so.
 */
SEC("tc")
int fl_ingress(struct __sk_buff *skb)
{
	/* A class id of ours can arrive from another namespace (a veth keeps skb->priority): it is
	 * not ours to act on here. Only this program may set one on ingress. */
	if ((skb->priority >> 16) == FL_HTB_MAJOR)
		skb->priority = 0;
	return fl_handle(skb, FL_DIR_INGRESS);
}

/*
 * Legacy path only: a cls_bpf filter in classic (not direct-action) mode after fl_ingress, whose
 * act_mirred redirects to the interface's ifb what fl_ingress gave a class of ours. 0 is "no
 * match", -1 "match, run the actions".
 */
SEC("tc")
int fl_ifb_match(struct __sk_buff *skb)
{
	return (skb->priority >> 16) == FL_HTB_MAJOR ? -1 : 0;
}

/*
 * tc/tcx egress of a target interface. Same contract as fl_ingress, except that shaping only
 * sets skb->priority and the next program still runs, and that a drop is a redirect to no
 * interface, so that the sender is not told (fl_verdict_drop()). Sees locally generated and
 * forwarded packets after routing.
 */
SEC("tc")
int fl_egress(struct __sk_buff *skb)
{
	/* A class of ours is only ever given here, by a matching slot: whatever set one before
	 * (a shaped ingress packet being forwarded, a process with SO_PRIORITY) is cleared. */
	if ((skb->priority >> 16) == FL_HTB_MAJOR)
		skb->priority = 0;
	return fl_handle(skb, FL_DIR_EGRESS);
}
