// Log-dirty shadow_op calls (CLEAN, PEEK, OFF) and the continuation Xen can leave pending.
//
// Xen 4.17 runs CLEAN, PEEK and OFF preemptibly (xen/arch/x86/mm/paging.c, RELEASE-4.17.7):
// when hypercall_preempt_check() says so, it keeps the domain paused, records the op in
// d->arch.paging.preempt and makes the caller re-execute __HYPERVISOR_paging_domctl_cont (49)
// with the same struct (paging_log_dirty_op lines 521-538, arch_do_domctl lines 215-219). That
// re-entry copies the struct in again (do_paging_domctl_cont line 767); if the copy faults, the
// caller sees -EFAULT while the op stays pending, the domain stays paused, and every new
// shadow_op but GET_ALLOCATION answers -EBUSY (paging_domctl lines 711-722) until hypercall 49
// is issued again. An EFAULT from one of these ops therefore says nothing about whether an op
// is pending: the only way to know is to ask hypercall 49, which answers -EBUSY when nothing
// (or another op) is pending and has no effect then. finishPending() does that.

import type { HypercallBuffer } from '../buffers.js';
import { ErrorCodes, HypercallError, XencallError } from '../errors.js';
import { decode, encode, type Decoded } from '../layout.js';
import { DOMCTL, SHADOW_OP, XEN_DOMCTL_INTERFACE_VERSION } from '../hypercalls/numbers.js';
import { DOMCTL_PAYLOAD_OFFSET, xen_domctl, xen_domctl_shadow_op } from '../hypercalls/structs.js';
import { rowByName } from '../hypercalls/table.js';
import type { Row } from '../hypercalls/row.js';
import type { Program } from '../retry/runner.js';
import { issue, type OpCtx } from './helpers.js';

export type ShadowOpOut = Decoded<typeof xen_domctl_shadow_op.fields>;

/** One shadow_op request, from which a pristine struct is built before every call. */
export interface LogDirtyRequest {
  readonly domain: number;
  /** XEN_DOMCTL_SHADOW_OP_CLEAN, _PEEK or _OFF. */
  readonly op: number;
  readonly pages: bigint;
  /** XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL or 0. */
  readonly mode: number;
  /** Where Xen copies the bitmap; null: none (a CLEAN then only clears and re-arms). */
  readonly bitmap: HypercallBuffer | null;
}

const shadowOpName = (op: number) => (op === SHADOW_OP.CLEAN ? 'CLEAN' : op === SHADOW_OP.PEEK ? 'PEEK' : op === SHADOW_OP.OFF ? 'OFF' : `op ${op}`);

let contRow: Row | undefined;
function pagingDomctlContRow(): Row {
  contRow ??= rowByName('arch_1');
  if (!contRow) throw new XencallError(ErrorCodes.VALIDATION, 'the hypercall table has no row arch_1 (paging_domctl_cont)');
  return contRow;
}

/** Writes the request's struct xen_domctl, every field Xen reads, over whatever was there. */
export function writeShadowOp(struct: HypercallBuffer, r: LogDirtyRequest): void {
  const v = struct.view();
  new Uint8Array(v.buffer, v.byteOffset, xen_domctl.size).fill(0);
  encode(xen_domctl, v, 0, { cmd: DOMCTL.shadow_op, interface_version: XEN_DOMCTL_INTERFACE_VERSION, domain: r.domain });
  encode(xen_domctl_shadow_op, v, DOMCTL_PAYLOAD_OFFSET, { op: r.op, mode: r.mode, dirty_bitmap: r.bitmap?.address ?? 0n, pages: r.pages });
}

export type ShadowOpOutcome = { readonly ok: true; readonly out: ShadowOpOut } | { readonly ok: false; readonly error: HypercallError };

/**
 * Issues the request once through `row` (a shadow_op row, or arch_1 for the continuation) from
 * a freshly written struct. -EFAULT and -EBUSY come back as values; other errors are thrown.
 */
export function* shadowOpCall(ctx: OpCtx, row: Row, struct: HypercallBuffer, req: LogDirtyRequest): Program<ShadowOpOutcome> {
  writeShadowOp(struct, req);
  try {
    yield* issue(ctx, row, [struct.address], req.bitmap ? [struct, req.bitmap] : [struct]);
  } catch (e) {
    if (e instanceof HypercallError && (e.errnoName === 'EFAULT' || e.errnoName === 'EBUSY')) return { ok: false, error: e };
    throw e;
  }
  return { ok: true, out: decode(xen_domctl_shadow_op, struct.view(), DOMCTL_PAYLOAD_OFFSET) };
}

export interface FinishOutcome {
  /**
   * 'finished': a hypercall 49 completed the pending op (a CLEAN is then complete and re-armed).
   * 'none': the first one answered -EBUSY: nothing of this kind was pending.
   * 'ended': one faulted and a later one answered -EBUSY: the op ended inside the faulted call,
   * either complete (its copy-back faulted) or dropped by a faulting leaf copy (goto out: the
   * domain unpaused, tracking not re-armed). Either way nothing is pending now.
   */
  readonly outcome: 'finished' | 'none' | 'ended';
  /** Hypercall 49 calls made. */
  readonly calls: number;
  /** Of which failed with -EFAULT. */
  readonly faults: number;
  /** u.shadow_op as the finishing call copied it back (stats, pages), when 'finished'. */
  readonly out?: ShadowOpOut;
}

/** How many hypercall 49 calls finishPending() makes before giving up. */
export const FINISH_PENDING_TRIES = 16;

/**
 * Finishes a log-dirty op Xen may hold pending for this domain, by issuing hypercall 49 with a
 * pristine struct for `req` until it completes or answers -EBUSY. The bitmap is never zeroed
 * between these calls: a resumed slice writes only at offsets past what earlier slices wrote.
 * Throws XEN_ERR_RETRY_EXHAUSTED, naming the paused domain, if every call faults.
 */
export function* finishPending(ctx: OpCtx, struct: HypercallBuffer, req: LogDirtyRequest, tries = FINISH_PENDING_TRIES): Program<FinishOutcome> {
  const row = pagingDomctlContRow();
  let faults = 0;
  for (let calls = 1; calls <= tries; calls++) {
    const r = yield* shadowOpCall(ctx, row, struct, req);
    if (r.ok) return { outcome: 'finished', calls, faults, out: r.out };
    if (r.error.errnoName === 'EBUSY') return { outcome: faults ? 'ended' : 'none', calls, faults };
    faults++;
  }
  throw new XencallError(
    ErrorCodes.RETRY_EXHAUSTED,
    `domain ${req.domain}: a pending log-dirty ${shadowOpName(req.op)} could not be finished: ${tries} calls of paging_domctl_cont (hypercall 49) faulted. Xen keeps the domain paused and answers -EBUSY to every shadow_op but GET_ALLOCATION until hypercall 49 completes it`,
  );
}

/**
 * Whether a failed shadow_op may have left its own op pending in Xen: only an EFAULT can (a
 * faulted continuation re-entry), seen directly, as the -EBUSY a re-issue then met, or as the
 * cause of an abort between attempts.
 */
export function mayHaveLeftPending(e: unknown): boolean {
  if (e instanceof HypercallError) return e.errnoName === 'EFAULT' || (e.errnoName === 'EBUSY' && e.attempts > 1);
  if (e instanceof XencallError && e.code === ErrorCodes.ABORTED) return mayHaveLeftPending(e.cause);
  return false;
}

/** The same error with what the follow-up found appended to its message. */
export function withFinding<E extends XencallError>(e: E, finding: string): E {
  e.message = `${e.message.replace(/\.$/, '')}. Afterwards: ${finding}`;
  return e;
}

/** A sentence for a FinishOutcome, for error messages and reports. */
export function describeFinish(op: number, f: FinishOutcome): string {
  const name = shadowOpName(op);
  switch (f.outcome) {
    case 'none':
      return `hypercall 49 found no ${name} pending, so the domain is not held paused by it.`;
    case 'ended':
      return `the ${name} it left pending was resumed through hypercall 49, which faulted in turn; nothing is pending now${op === SHADOW_OP.CLEAN ? ', but tracking may not be re-armed: CLEAN again' : ''}.`;
    case 'finished':
      return `the ${name} it left pending was finished through hypercall 49 (${f.calls} call${f.calls === 1 ? '' : 's'}).`;
  }
}
