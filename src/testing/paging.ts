// The mock's shadow_op: paging_domctl and its log-dirty ops, in the order Xen 4.17 runs them
// (xen/arch/x86/mm/paging.c, xen/arch/x86/mm/hap/hap.c; line numbers at RELEASE-4.17.7).
//
// A paging op that reaches a preemption point where hypercall_preempt_check() says yes returns
// 'restart': Xen then creates a continuation of __HYPERVISOR_paging_domctl_cont (49) with the
// same u_domctl, and the caller's vcpu re-executes it. The mock does the same: the handler asks
// the hypervisor to continue with hypercall 49, and MockHypervisor.hypercall() dispatches it as
// a call of its own (named 'arch_1' in the history and for fault rules) before returning to the
// caller. Each re-entry copies the struct in again, so it can fault with the op still pending.

import { errnoNumber } from '../errors.js';
import { decode, encode } from '../layout.js';
import { DOMCTL, HYPERCALL, SHADOW_OP, XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_SHADOW } from '../hypercalls/numbers.js';
import { DOMCTL_PAYLOAD_OFFSET, xen_domctl, xen_domctl_shadow_op } from '../hypercalls/structs.js';
import type { MockHypervisor } from './hypervisor.js';
import { LOG_DIRTY_CHUNK_BYTES, LOGDIRTY_NODE_ENTRIES, type PreemptSite } from './log-dirty.js';
import type { MockDomain } from './world.js';

const E = (name: string): bigint => -BigInt(errnoNumber(name));
const OK = 0n;
const P = DOMCTL_PAYLOAD_OFFSET;
const LAST = LOGDIRTY_NODE_ENTRIES - 1;

/** A paging op stopped at a preemption point (-ERESTART): continue through hypercall 49. */
export type PagingResult = bigint | 'restart';

const opName = (op: number): PreemptSite['op'] => (op === SHADOW_OP.CLEAN ? 'clean' : op === SHADOW_OP.PEEK ? 'peek' : 'off');

/**
 * paging_domctl (paging.c lines 684-758), for arch_do_domctl (resuming = false) and
 * do_paging_domctl_cont (resuming = true). `v` is Xen's local copy of the struct: results go
 * there, and the caller copies them back.
 */
export function pagingDomctl(hv: MockHypervisor, name: string, d: MockDomain, v: DataView, resuming: boolean): PagingResult {
  const sc = decode(xen_domctl_shadow_op, v, P);
  // The checks, in Xen's order (lines 690-722).
  if (d.domid === 0) return E('EINVAL'); // d == current->domain: the mock's caller is always dom0
  if (d.dying) return OK; // "Ignoring paging op on dying domain"
  if (d.vcpus.length === 0 || !d.vcpus[0]) return E('EINVAL'); // no vcpus yet
  const pending = d.pagingPreempt;
  if (resuming ? !pending || pending.op !== sc.op : pending !== null && sc.op !== SHADOW_OP.GET_ALLOCATION) return E('EBUSY');

  switch (sc.op) {
    case SHADOW_OP.ENABLE:
      // ENABLE with the log-dirty mode bit is ENABLE_LOGDIRTY (lines 738-742).
      if (!(sc.mode & XEN_DOMCTL_SHADOW.ENABLE_LOG_DIRTY)) break;
      return logDirtyEnable(hv, name, d);
    case SHADOW_OP.ENABLE_LOGDIRTY:
      return logDirtyEnable(hv, name, d);
    case SHADOW_OP.OFF: {
      const rc = logDirtyDisable(hv, name, d, resuming);
      if (rc !== OK) return rc;
      break;
    }
    case SHADOW_OP.CLEAN:
    case SHADOW_OP.PEEK:
      if (sc.mode & ~XEN_DOMCTL_SHADOW.LOGDIRTY_FINAL) return E('EINVAL');
      return logDirtyOp(hv, name, d, v, resuming);
  }
  // hap_domctl (hap.c lines 665-693). The mock's HVM domains are HAP domains.
  switch (sc.op) {
    case SHADOW_OP.SET_ALLOCATION:
      d.shadowMb = sc.mb;
      hv.effect(name, 'paging.allocation', { domid: d.domid, mb: sc.mb });
      return OK;
    case SHADOW_OP.GET_ALLOCATION:
      v.setUint32(P + xen_domctl_shadow_op.fields.mb.offset, d.shadowMb, true);
      return OK;
    case SHADOW_OP.OFF:
      return OK;
    case SHADOW_OP.ENABLE:
    case SHADOW_OP.ENABLE_TEST:
    case SHADOW_OP.ENABLE_TRANSLATE:
      return E('EINVAL'); // hap_domctl's default case; shadow_domctl needs shadow paging
    default:
      return hv.unmodelled(name, `shadow_op op ${sc.op}`);
  }
}

/** paging_log_dirty_enable(d, true) (lines 216-237) and hap_enable_log_dirty (hap.c 182-211). */
function logDirtyEnable(hv: MockHypervisor, name: string, d: MockDomain): bigint {
  const ld = d.logDirty;
  if (ld.enabled) return E('EINVAL');
  // Inside domain_pause/domain_unpause: PG_log_dirty on, then every p2m_ram_rw page becomes
  // p2m_ram_logdirty. Neither the bitmap nor the counters are reset here.
  ld.enabled = true;
  ld.rearm();
  hv.effect(name, 'logdirty.enabled', { domid: d.domid });
  return OK;
}

/** paging_log_dirty_disable (lines 239-261), hap_disable_log_dirty (hap.c 213-228). */
function logDirtyDisable(hv: MockHypervisor, name: string, d: MockDomain, resuming: boolean): PagingResult {
  if (!resuming) {
    d.pagingPaused = true; // domain_pause(d), line 245
    if (d.logDirty.enabled) {
      // Mode off and every page p2m_ram_rw again; the bitmap is freed below.
      d.logDirty.enabled = false;
      hv.effect(name, 'logdirty.disabled', { domid: d.domid });
    }
  }
  const rc = freeLogDirtyBitmap(hv, name, d);
  if (rc === 'restart') return rc; // the domain stays paused until the continuation finishes
  d.pagingPaused = false; // domain_unpause(d), line 258
  return rc;
}

/**
 * paging_free_log_dirty_bitmap (lines 114-214): frees the trie, checking for preemption after
 * each present l3 entry and each present l4 entry (absent entries are skipped before the check).
 */
function freeLogDirtyBitmap(hv: MockHypervisor, name: string, d: MockDomain): PagingResult {
  const ld = d.logDirty;
  if (!ld.allocated) return OK; // log_dirty.top is INVALID_MFN
  const pending = d.pagingPreempt;
  if (pending && pending.op !== SHADOW_OP.OFF) return E('EBUSY');
  let i4 = pending?.i4 ?? 0;
  let i3 = pending?.i3 ?? 0;
  const l3Keys = [...ld.l3Nodes].sort((a, b) => a - b);
  for (const k4 of l3Keys) {
    if (k4 < i4) continue;
    if (k4 > i4) i3 = 0;
    i4 = k4;
    const l2Keys = [...ld.l2Nodes].filter((k) => k >> 9 === k4 && (k & LAST) >= i3).sort((a, b) => a - b);
    for (const key of l2Keys) {
      ld.freeL2Node(key);
      const j3 = key & LAST;
      if (j3 < LAST && hv.preemptCheck({ op: 'off', domid: d.domid, level: 'l3', i4: k4, i3: j3, done: 0n })) {
        return preempted(hv, name, d, { op: SHADOW_OP.OFF, done: 0n, i4: k4, i3: j3 + 1 });
      }
    }
    ld.l3Nodes.delete(k4);
    if (k4 < LAST && hv.preemptCheck({ op: 'off', domid: d.domid, level: 'l4', i4: k4, i3: 0, done: 0n })) {
      return preempted(hv, name, d, { op: SHADOW_OP.OFF, done: 0n, i4: k4 + 1, i3: 0 });
    }
  }
  ld.freeAll();
  d.pagingPreempt = null;
  hv.effect(name, 'logdirty.freed', { domid: d.domid });
  return OK;
}

function preempted(hv: MockHypervisor, name: string, d: MockDomain, state: NonNullable<MockDomain['pagingPreempt']>): 'restart' {
  d.pagingPreempt = state;
  hv.effect(name, 'paging.preempted', { domid: d.domid, op: opName(state.op), done: state.done, i4: state.i4, i3: state.i3 });
  return 'restart';
}

/**
 * paging_log_dirty_op (lines 407-596): the bitmap goes out leaf by leaf, each leaf copied
 * (copy_to_guest_offset; clear_guest_offset for an absent one) and then, for CLEAN, cleared
 * (clear_page); hypercall_preempt_check() after each l3 entry while i3 < 511 (so also after the
 * last, lines 521-527) and after each l4 entry (lines 532-538). A copy fault is `goto out`
 * (lines 581-595): the leaves before it stay copied-and-cleared, the preempt state is dropped,
 * the domain unpaused, and tracking is NOT re-armed. Only a completed CLEAN zeroes the counters
 * and calls ops->clean (hap_clean_dirty_bitmap: every p2m_ram_rw page back to p2m_ram_logdirty).
 */
function logDirtyOp(hv: MockHypervisor, name: string, d: MockDomain, v: DataView, resuming: boolean): PagingResult {
  const ld = d.logDirty;
  const sc = decode(xen_domctl_shadow_op, v, P);
  if (!resuming) {
    // hvm_mapped_guest_frames_mark_dirty (lines 423-425): the frames Xen writes without faulting.
    if (d.hvm && sc.mode & XEN_DOMCTL_SHADOW.LOGDIRTY_FINAL) for (const gfn of ld.mappedFrames) ld.markPfnDirty(gfn);
    d.pagingPaused = true; // domain_pause(d), line 427: held across every slice until the end
  }
  const pending = d.pagingPreempt;
  if (pending && pending.op !== sc.op) {
    if (!resuming) d.pagingPaused = false;
    return E('EBUSY');
  }
  const clean = sc.op === SHADOW_OP.CLEAN;
  // Stats go into Xen's copy of the struct at every slice, before anything is cleared.
  encode(xen_domctl_shadow_op, v, P, { stats: { fault_count: Math.min(ld.faultCount, 0xffffffff), dirty_count: Math.min(ld.dirtyCount, 0xffffffff) } });
  const peek = sc.dirty_bitmap !== 0n; // a null handle: clear (CLEAN) and count, copy nothing
  let i4 = pending?.i4 ?? 0;
  let i3 = pending?.i3 ?? 0;
  let pages = pending?.done ?? 0n;
  for (; pages < sc.pages && i4 < LOGDIRTY_NODE_ENTRIES; i4++, i3 = 0) {
    for (; pages < sc.pages && i3 < LOGDIRTY_NODE_ENTRIES; i3++) {
      for (let i2 = 0; pages < sc.pages && i2 < LOGDIRTY_NODE_ENTRIES; i2++) {
        const leaf = (i4 * LOGDIRTY_NODE_ENTRIES + i3) * LOGDIRTY_NODE_ENTRIES + i2;
        let bytes = LOG_DIRTY_CHUNK_BYTES;
        const left = (sc.pages - pages + 7n) >> 3n;
        if (left < BigInt(bytes)) bytes = Number(left);
        const present = ld.leafPresent(leaf);
        if (peek) {
          const at = sc.dirty_bitmap + (pages >> 3n);
          const what = `dirty_bitmap[${pages >> 3n}..+${bytes}) (${present ? 'copy_to_guest_offset' : 'clear_guest_offset'})`;
          if (!hv.copyToGuest(name, at, present ? ld.leafBytes(leaf, bytes) : new Uint8Array(bytes), what)) {
            d.pagingPreempt = null;
            d.pagingPaused = false;
            return E('EFAULT');
          }
        }
        pages += BigInt(bytes) << 3n;
        if (present && clean && ld.clearLeaf(leaf) > 0) hv.effect(name, 'logdirty.leaf_cleared', { domid: d.domid, leaf });
      }
      if (i3 < LAST && hv.preemptCheck({ op: opName(sc.op), domid: d.domid, level: 'l3', i4, i3, done: pages })) {
        return preempted(hv, name, d, { op: sc.op, done: pages, i4, i3: i3 + 1 });
      }
    }
    if (i4 < LAST && hv.preemptCheck({ op: opName(sc.op), domid: d.domid, level: 'l4', i4, i3: 0, done: pages })) {
      return preempted(hv, name, d, { op: sc.op, done: pages, i4: i4 + 1, i3: 0 });
    }
  }
  d.pagingPreempt = null;
  if (clean) {
    ld.faultCount = 0;
    ld.dirtyCount = 0;
  }
  if (pages < sc.pages) v.setBigUint64(P + xen_domctl_shadow_op.fields.pages.offset, pages, true);
  if (clean) {
    ld.rearm();
    hv.effect(name, 'logdirty.rearmed', { domid: d.domid });
  }
  d.pagingPaused = false; // domain_unpause(d), line 578
  return OK;
}

/**
 * __HYPERVISOR_paging_domctl_cont (do_paging_domctl_cont, lines 760-800): copies the whole
 * struct in again, checks it, resumes the pending op, and copies back only u.shadow_op, on
 * every outcome but another -ERESTART.
 */
export function pagingDomctlCont(hv: MockHypervisor, name: string, uDomctl: bigint): bigint | 'restart' {
  const opBytes = hv.copyFromGuest(name, uDomctl, xen_domctl.size, 'arg0 (struct xen_domctl)');
  if (!opBytes) return E('EFAULT'); // line 767: the op stays pending, the domain paused
  const v = new DataView(opBytes.buffer, opBytes.byteOffset, opBytes.byteLength);
  const op = decode(xen_domctl, v);
  if (op.interface_version !== XEN_DOMCTL_INTERFACE_VERSION || op.cmd !== DOMCTL.shadow_op) return E('EOPNOTSUPP');
  const d = hv.domain(op.domain);
  if (!d) return E('ESRCH');
  const ret = pagingDomctl(hv, name, d, v, true);
  if (ret === 'restart') {
    hv.continueWith(HYPERCALL.arch_1, uDomctl);
    return 'restart';
  }
  const member = opBytes.subarray(P, P + xen_domctl_shadow_op.size);
  if (!hv.copyToGuest(name, uDomctl + BigInt(P), member, 'arg0 u.shadow_op')) return E('EFAULT');
  return ret;
}
