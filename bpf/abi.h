/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The only header shared by the BPF program and C++. Fixed-width types and explicit padding
 * only; userspace/kernel/abi_check.cpp static_asserts every size and offset so drift breaks the
 * build.
 *
 * Consistency model (why the slot pool looks the way it does):
 *  - A slot is written in full while its expires_ns is 0 (the program ignores it), then
 *    activated by one aligned 8-byte store of expires_ns through the mmap()ed map. A packet
 *    therefore sees a slot either inactive or complete, never half-written.
 *  - Deactivation is the reverse store (expires_ns = 0). The slot is not written again until
 *    an RCU grace period has passed, so no program run that saw it active can still be reading
 *    it. The same quarantine applies to set bits and exemption rule bits.
 *  - Lifetimes are enforced here, not by the daemon: a slot past expires_ns is ignored, and
 *    when the lease in fl_ctl runs out every slot is ignored. The program reads the coarse
 *    monotonic clock (one tick behind CLOCK_MONOTONIC at most), so a fault may outlive its
 *    expiry by one scheduler tick.
 *  - Node sets: host entries (/32, /128) live in hash maps, checked first; other prefixes in LPM
 *    tries, consulted only when the hash misses and FL_CTL_LPM* says they hold anything. Every
 *    entry's mask already includes the bits of the prefixes that cover it.
 */
#ifndef FL_ABI_H
#define FL_ABI_H

#include <linux/types.h>

#define FL_MAX_SLOTS 128        /* pool: up to 64 active faults plus quarantine headroom */
#define FL_MAX_ACTIVE_FAULTS 64 /* per target namespace */
#define FL_SET_BITS 64          /* node sets (sides, src/dst selectors) per namespace */
#define FL_MAX_CIDRS 65536      /* prefixes (not hosts) per address family, per namespace */
#define FL_MAX_HOSTS 65536      /* /32 and /128 entries per address family, per namespace */
#define FL_EXEMPT_BITS 64       /* distinct exemption rules per namespace */
#define FL_MAX_EXEMPT_CIDRS 4096
#define FL_MAX_EXEMPT_PORTS 4096
#define FL_MAX_IFACES 64        /* interfaces named explicitly with --dev, per namespace */

/* Shaping: skb->priority values with this major are our HTB classes (0xfa17:minor). The egress
 * program clears such a priority on packets no shaping fault claims, so a priority set on
 * ingress (before an ifb) or by a process cannot land a forwarded packet in one of our classes. */
#define FL_HTB_MAJOR 0xfa17

/* fl_ifb values: the ifb's ifindex, with this bit when a tc filter of ours (act_mirred) does the
 * redirect instead of bpf_redirect(). Kernels before 6.4 do not mark bpf_redirect()ed packets
 * as redirected, and ifb drops unmarked packets; on the legacy clsact path the program only sets
 * the class and the filter after it redirects. */
#define FL_IFB_BY_TC (1u << 31)

/* Probabilities are fixed point with 2^32 meaning 1. */
#define FL_PROB_ONE (1ULL << 32)

/* fl_slot.kind: what the daemon made the slot for. The program never reads it (the flags and
 * masks say what to do); it tells a person or a test reading the map. */
enum fl_kind {
	FL_KIND_NONE = 0,
	FL_KIND_PARTITION = 1,
	FL_KIND_LOSS = 2,
	FL_KIND_ISOLATE = 3,
	FL_KIND_SHAPE = 4, /* every shaping kind: delay, rate, ..., each matrix pair */
};

/* Protocol classes as a slot selects them. ICMP covers ICMP and ICMPv6. */
enum fl_proto {
	FL_PROTO_ALL = 0,
	FL_PROTO_TCP = 1,
	FL_PROTO_UDP = 2,
	FL_PROTO_ICMP = 3,
	FL_PROTO_OTHER = 4, /* packet side only: an IP protocol no selector names */
};

enum fl_dir {
	FL_DIR_INGRESS = 1,
	FL_DIR_EGRESS = 2,
};

enum fl_slot_flags {
	FL_F_PORTS = 1 << 0,    /* sport/dport ranges apply: packet must carry TCP/UDP ports */
	FL_F_NEW_ONLY = 1 << 1, /* TCP SYN without ACK only */
	FL_F_ISOLATE = 1 << 2,  /* drop when exactly one endpoint is in `part` */
	FL_F_IFACES = 1 << 3,   /* only on interfaces whose bit is in if_mask */
	FL_F_SHAPE = 1 << 4,    /* classify into HTB class `prio` (egress) or via the ifb (ingress) */
};

/* Key layout of the exemption port table: (proto class << 16) | port. Rules for any protocol
 * sit at (FL_PROTO_ALL << 16); rules for a protocol and any port at (proto << 16) | 0. */
#define FL_EXEMPT_PORT_KEY(proto, port) (((__u32)(proto) << 16) | (__u32)(port))

struct fl_lpm4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct fl_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/*
 * One fault as the data path sees it. Address conditions use the set masks that the LPM maps
 * give for source (s) and destination (d):
 *   (s & src_req) == src_req  and  (src_any == 0 or s & src_any)      likewise for d
 *   partition (part != 0, no FL_F_ISOLATE): drop only if (s & d & part) == 0
 *   isolate (FL_F_ISOLATE): drop only if ((s ^ d) & part) != 0
 */
struct fl_slot {
	/* First cache line: everything the scan reads to reject a slot. */
	__u64 expires_ns; /* CLOCK_MONOTONIC; 0 = inactive. Written last, cleared first. */
	__u64 src_req;
	__u64 src_any;
	__u64 dst_req;
	__u64 dst_any;
	__u64 part;
	__u8 kind;
	__u8 proto;
	__u8 dir;          /* FL_DIR_* bits */
	__u8 flags;        /* FL_F_* */
	__u32 gen;         /* changes on every (re)use of the slot; resets the RNG state */
	__u16 sport_lo;
	__u16 sport_hi;
	__u16 dport_lo;
	__u16 dport_hi;
	/* Second cache line: read only when the slot matches. */
	__u64 exempt_mask; /* exemption rules that protect traffic from this fault */
	__u64 if_mask;
	__u64 prob;        /* drop probability, FL_PROB_ONE = always */
	__u64 corr;        /* lag-1 correlation of drop decisions, same scale */
	__u64 seed;        /* 0: seed from bpf_get_prandom_u32 */
	/* Shaping (FL_F_SHAPE): the class a matching packet is put in, and the order that decides
	 * between two shaping slots matching one packet: the higher shape_seq wins (the daemon
	 * gives later applies higher numbers, so the most recently applied fault wins). */
	__u32 prio;        /* skb->priority: (FL_HTB_MAJOR << 16) | minor */
	__u32 shape_seq;
	__u8 pad[16];
};

enum fl_ctl_flags {
	FL_CTL_LPM4 = 1 << 0, /* fl_sets4 holds entries: look there when fl_hosts4 misses */
	FL_CTL_LPM6 = 1 << 1,
	/* Some active slot matches addresses in no node set (loss without --src/--dst). Without
	 * it, a packet whose addresses are in no set cannot match anything and skips the scan. */
	FL_CTL_UNSCOPED = 1 << 2,
};

struct fl_ctl {
	__u64 lease_expires_ns; /* 0 or past: every fault is off */
	__u32 nslots;           /* slots [0, nslots) are scanned */
	__u32 flags;            /* FL_CTL_* */
};

struct fl_host6_key {
	__u8 addr[16];
};

/* Per fault, per CPU. */
struct fl_counters {
	__u64 matched;  /* packets that met the fault's match */
	__u64 dropped;  /* of those, dropped by this fault */
	__u64 exempted; /* of those, passed because an exemption protects them */
	__u64 shaped;   /* of those, put in this fault's class (egress) or sent to the ifb (ingress) */
};

/* Per fault, per CPU: state of the drop decision stream. */
struct fl_rng {
	__u64 state;
	__u32 gen; /* slot gen this state belongs to */
	__u32 last_dropped;
};

/* Whole-program counters, per CPU, indexed by enum fl_stat. */
enum fl_stat {
	FL_STAT_SEEN = 0,
	FL_STAT_NOT_IP,
	FL_STAT_TRUNCATED,
	FL_STAT_FRAGMENT,   /* non-first fragments: matched on addresses and protocol only */
	FL_STAT_LEASE_OFF,  /* packets seen while the lease had run out */
	FL_STAT_DROPPED,
	FL_STAT_SHAPED,      /* egress packets given one of our classes */
	FL_STAT_REDIRECTED,  /* ingress packets sent to an ifb */
	FL_STAT_NO_IFB,      /* ingress packets a shaping fault matched on an interface without ifb */
	FL_STAT_MAX,
};

#endif /* FL_ABI_H */
