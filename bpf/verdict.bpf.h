/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Verdicts in one place. tcx and legacy cls_bpf (direct-action) share the numbers we need:
 * TCX_NEXT == TC_ACT_UNSPEC == -1 lets the next program or filter decide; TCX_DROP ==
 * TC_ACT_SHOT == 2 drops. We never return TC_ACT_OK/TCX_PASS: on tcx that ends the chain and
 * would skip whatever the CNI attached after us.
 */
#ifndef FL_VERDICT_BPF_H
#define FL_VERDICT_BPF_H

#define FL_VERDICT_NEXT (-1)
#define FL_VERDICT_DROP 2
/* TC_ACT_REDIRECT == TCX_REDIRECT == 7: what bpf_redirect() returns; ingress shaping only. */
#define FL_VERDICT_REDIRECT 7

#endif
