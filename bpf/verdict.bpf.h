/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Verdicts in one place. tcx and legacy cls_bpf (direct-action) share the numbers we need:
 * TCX_NEXT == TC_ACT_UNSPEC == -1 lets the next program or filter decide; TCX_DROP ==
 * TC_ACT_SHOT == 2 drops. We never return TC_ACT_OK/TCX_PASS: on tcx that ends the chain and
 * would skip whatever the CNI attached after us.
 */
#ifndef FL_VERDICT_BPF_H
#define FL_VERDICT_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"

#define FL_VERDICT_NEXT (-1)
#define FL_VERDICT_SHOT 2
/* Ingress shaping and every egress drop (below) return what bpf_redirect() returns,
 * TC_ACT_REDIRECT == TCX_REDIRECT == 7, as it is: no name of our own for it. */

/* No interface has index 0 (dev_new_index() starts at 1). */
#define FL_NO_IFINDEX 0

/*
 * How a packet is dropped depends on the hook, because a drop must look like network loss: the
 * sender is never told.
 *
 * Ingress: TC_ACT_SHOT. The packet came from elsewhere; whoever sent it cannot learn that we
 * dropped it, and the stack never sees it.
 *
 * Egress: TC_ACT_SHOT would be heard by the sender. sch_handle_egress() (net/core/dev.c, 6.1
 * with clsact and 6.6+ with tcx alike) turns it into NET_XMIT_DROP, which the sending socket
 * gets back: ENOBUFS from send() under IP_RECVERR (ping prints "No buffer space available" and
 * sends the same echo again), and TCP takes it as local congestion (CWR) and retries the segment
 * at once instead of waiting for a retransmission. So an egress drop is a redirect to an
 * interface that does not exist. For TC_ACT_REDIRECT, sch_handle_egress() calls
 * skb_do_redirect(), which finds no device for ifindex 0 and frees the packet (kfree_skb: a
 * kernel drop, visible to drop monitors), and reports NET_XMIT_SUCCESS to the caller, on both
 * kernels. The sending call succeeds, the packet never leaves: TCP retransmits as on a lossy
 * network.
 *
 * Not TC_ACT_STOLEN, though clsact consumes it just as silently: tcx_action_code() maps every
 * code it does not know, STOLEN included, to TCX_NEXT, so on tcx the packet would pass.
 */
static __always_inline int fl_verdict_drop(__u8 dir)
{
	if (dir == FL_DIR_EGRESS)
		return bpf_redirect(FL_NO_IFINDEX, 0);
	return FL_VERDICT_SHOT;
}

#endif
