// The live-migration (save/restore) loop over log-dirty shadow_op calls: the hypercall side of
// what libxenguest's save does. Mapping and copying the guest's pages is the caller's job
// (libxencall does not map foreign memory): it is handed the dirty pages of each round.
//
// The one delicate step is CLEAN. Xen copies the dirty bitmap out chunk by chunk and clears
// each chunk right after copying it, so an EFAULT leaves some bits delivered-and-cleared and
// the rest still in Xen (paging_log_dirty_op). A plain re-issue would lose the delivered ones.
// This loop never does that: every bit Xen copied out is kept (OR-ed into the round's set, even
// from a failed call), then CLEAN is issued again into a fresh zeroed bitmap for the rest; an op
// left pending by a fault at continuation re-entry (-EBUSY afterwards) is finished through
// __HYPERVISOR_paging_domctl_cont, as Xen expects. Only when that fails too is the whole range
// treated as dirty for the round.

import type { HypercallBuffer } from './buffers.js';
import { ErrorCodes, HypercallError, ValidationError, XencallError } from './errors.js';
import { encode } from './layout.js';
import { DOMCTL, SHADOW_OP, XEN_DOMCTL_INTERFACE_VERSION } from './hypercalls/numbers.js';
import { DOMCTL_PAYLOAD_OFFSET, xen_domctl, xen_domctl_shadow_op } from './hypercalls/structs.js';
import { rowByName } from './hypercalls/table.js';
import type { Row } from './hypercalls/row.js';
import { issue, type OpCtx } from './ops/helpers.js';
import type { Xencall } from './xencall.js';

export type CleanStrategy =
  /** Keep what a failed CLEAN delivered, CLEAN again into a fresh bitmap, OR them (default). */
  | 'merge'
  /** After a failed CLEAN, resend every page of the range this round. */
  | 'all-dirty'
  /**
   * For demonstrations and tests only: re-issue CLEAN into the same, re-zeroed bitmap after an
   * EFAULT, as a retry-every-EFAULT toolstack would. It loses dirty pages; never use it for real.
   */
  | 'naive';

export interface LiveMigrationOptions {
  domain: number;
  /** Pages to track: the guest's pseudo-physical size (p2m entries). */
  pages: number;
  /** Copies the given pages of the guest to the destination; called once per round. */
  sendPages: (gfns: readonly number[], round: { round: number; final: boolean }) => void | Promise<void>;
  /** Live rounds after the first full pass, at most. Default 5. */
  maxRounds?: number;
  /** Stop the live rounds once fewer pages than this are dirty. Default 50. */
  dirtyThreshold?: number;
  /** After a CLEAN that failed: see CleanStrategy. Default 'merge'. */
  onCleanFault?: CleanStrategy;
  /** How many CLEAN/continuation calls one round may make before resending everything. Default 4. */
  cleanAttempts?: number;
  /** Called after every round (a progress bar, a log line). */
  onRound?: (r: RoundReport) => void;
  /** Called between the live rounds' hypercalls (a test's guest keeps writing here). */
  onTick?: () => void | Promise<void>;
  signal?: AbortSignal;
}

export interface RoundReport {
  round: number;
  final: boolean;
  dirty: number;
  sent: number;
  /** CLEAN calls that failed this round (EFAULT or EBUSY). */
  cleanFaults: number;
  /** Continuations finished through __HYPERVISOR_paging_domctl_cont. */
  continued: number;
  /** True when the round resent everything because CLEAN could not be completed. */
  allDirty: boolean;
}

export interface MigrationReport {
  rounds: RoundReport[];
  pagesSent: number;
  cleanFaults: number;
  continued: number;
  allDirtyRounds: number;
  /** True when log-dirty mode was already on after an EFAULT from ENABLE_LOGDIRTY. */
  enableRecovered: boolean;
}

/** Runs the live-migration loop on the source side. The domain is left paused, log-dirty off. */
export async function liveMigrate(xc: Xencall, options: LiveMigrationOptions): Promise<MigrationReport> {
  const o = validate(options);
  const ctx: OpCtx = { pool: xc.pool, env: xc.env(o.signal) };
  const cleanRow = mustRow('domctl.shadow_op.clean');
  const contRow = mustRow('arch_1');
  const bytes = Math.ceil(o.pages / 8);
  const bitmap = xc.allocBuffer(bytes);
  const struct = xc.allocBuffer(xen_domctl.size);
  const report: MigrationReport = { rounds: [], pagesSent: 0, cleanFaults: 0, continued: 0, allDirtyRounds: 0, enableRecovered: false };
  try {
    report.enableRecovered = await enableLogDirty(xc, o.domain);

    const all = Array.from({ length: o.pages }, (_, i) => i);
    await o.sendPages(all, { round: 0, final: false });
    record(report, o, { round: 0, final: false, dirty: o.pages, sent: o.pages, cleanFaults: 0, continued: 0, allDirty: false });

    for (let round = 1; ; round++) {
      await o.onTick?.();
      const final = round > o.maxRounds || report.rounds.at(-1)!.dirty < o.dirtyThreshold;
      if (final) await xc.domctl.pausedomain({ domain: o.domain }, { signal: o.signal });
      const r = await cleanRound(xc, ctx, cleanRow, contRow, o, struct, bitmap);
      await o.sendPages(r.gfns, { round, final });
      record(report, o, { round, final, dirty: r.gfns.length, sent: r.gfns.length, cleanFaults: r.faults, continued: r.continued, allDirty: r.allDirty });
      if (final) break;
    }
    report.continued += await settle(xc, ctx, contRow, o, struct);
    await xc.domctl.shadow_op.off({ domain: o.domain }, { signal: o.signal });
    return report;
  } finally {
    xc.freeBuffer(bitmap);
    xc.freeBuffer(struct);
  }
}

function record(report: MigrationReport, o: Pick<LiveMigrationOptions, 'onRound'>, r: RoundReport): void {
  report.rounds.push(r);
  report.pagesSent += r.sent;
  report.cleanFaults += r.cleanFaults;
  report.continued += r.continued;
  if (r.allDirty) report.allDirtyRounds++;
  o.onRound?.(r);
}

/**
 * ENABLE_LOGDIRTY is unsafe to re-issue: after an EFAULT on its copy-back the mode is on and a
 * second ENABLE fails with EINVAL. OFF is idempotent and nothing is logged yet, so after an
 * EFAULT switch it off and enable again (paging_log_dirty_enable, paging_log_dirty_disable).
 */
async function enableLogDirty(xc: Xencall, domain: number): Promise<boolean> {
  try {
    await xc.domctl.shadow_op.enable_logdirty({ domain });
    return false;
  } catch (e) {
    if (!(e instanceof HypercallError) || e.code !== ErrorCodes.RETRY_REFUSED) throw e;
    await xc.domctl.shadow_op.off({ domain });
    await xc.domctl.shadow_op.enable_logdirty({ domain });
    return true;
  }
}

interface CleanResult {
  gfns: number[];
  faults: number;
  continued: number;
  allDirty: boolean;
}

async function cleanRound(xc: Xencall, ctx: OpCtx, cleanRow: Row, contRow: Row, o: Options, struct: HypercallBuffer, bitmap: HypercallBuffer): Promise<CleanResult> {
  const acc = new Uint8Array(bitmap.size);
  let faults = 0;
  let continued = 0;
  let pending = false;
  for (let attempt = 0; attempt < o.cleanAttempts; attempt++) {
    bitmap.bytes.fill(0);
    const v = struct.view();
    new Uint8Array(v.buffer, v.byteOffset, v.byteLength).fill(0);
    encode(xen_domctl, v, 0, { cmd: DOMCTL.shadow_op, interface_version: XEN_DOMCTL_INTERFACE_VERSION, domain: o.domain });
    encode(xen_domctl_shadow_op, v, DOMCTL_PAYLOAD_OFFSET, { op: SHADOW_OP.CLEAN, dirty_bitmap: bitmap.address, pages: BigInt(o.pages) });
    // The row decides retry: both are unsafe, so a fault comes back here and is never re-issued
    // from a "pristine" (zeroed) bitmap that would wipe what Xen delivered.
    const row = pending ? contRow : cleanRow;
    let error: HypercallError | undefined;
    try {
      await xc.runAsync(issue(ctx, row, [struct.address], [struct, bitmap]), o.signal);
    } catch (e) {
      if (!(e instanceof HypercallError)) throw e;
      error = e;
    }
    // Whatever Xen copied out, even from a failed call, is dirty pages it has already cleared:
    // keep it. Bytes it did not reach are still zero.
    for (let i = 0; i < acc.length; i++) acc[i]! |= bitmap.bytes[i]!;
    if (!error) {
      if (pending) continued++;
      return { gfns: bitsToGfns(acc, o.pages), faults, continued, allDirty: false };
    }
    faults++;
    if (error.errnoName === 'EBUSY') {
      // A continuation slice faulted on re-entry: the op is still pending in Xen, the domain
      // paused. Finish it through paging_domctl_cont with the same request.
      pending = true;
      continue;
    }
    if (error.errnoName !== 'EFAULT') throw error;
    if (o.onCleanFault === 'all-dirty') break;
    if (o.onCleanFault === 'naive') acc.fill(0); // what a plain re-issue amounts to
    // After an EFAULT Xen may or may not have an op pending; a fresh CLEAN answers EBUSY if so.
    pending = false;
  }
  // Resend everything this round; but first make sure no op is left pending in Xen, or every
  // later shadow_op (the next CLEAN, OFF) would answer -EBUSY.
  continued += await settle(xc, ctx, contRow, o, struct);
  return { gfns: Array.from({ length: o.pages }, (_, i) => i), faults, continued, allDirty: true };
}

/**
 * Finishes a log-dirty op Xen may still hold pending, through paging_domctl_cont with no bitmap
 * (the round already counts every page as dirty). -EBUSY means nothing is pending.
 */
async function settle(xc: Xencall, ctx: OpCtx, contRow: Row, o: Options, struct: HypercallBuffer): Promise<number> {
  for (let i = 0; i < 16; i++) {
    const v = struct.view();
    new Uint8Array(v.buffer, v.byteOffset, v.byteLength).fill(0);
    encode(xen_domctl, v, 0, { cmd: DOMCTL.shadow_op, interface_version: XEN_DOMCTL_INTERFACE_VERSION, domain: o.domain });
    encode(xen_domctl_shadow_op, v, DOMCTL_PAYLOAD_OFFSET, { op: SHADOW_OP.CLEAN, dirty_bitmap: 0n, pages: BigInt(o.pages) });
    try {
      await xc.runAsync(issue(ctx, contRow, [struct.address], [struct]), o.signal);
      return 1;
    } catch (e) {
      if (!(e instanceof HypercallError)) throw e;
      if (e.errnoName === 'EBUSY') return 0;
      if (e.errnoName !== 'EFAULT') throw e;
    }
  }
  throw new XencallError(ErrorCodes.RETRY_EXHAUSTED, `domain ${o.domain}: a pending log-dirty op could not be finished through paging_domctl_cont`);
}

function bitsToGfns(bits: Uint8Array, pages: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    if (!b) continue;
    for (let j = 0; j < 8; j++) if (b & (1 << j) && i * 8 + j < pages) out.push(i * 8 + j);
  }
  return out;
}

type Options = Required<Omit<LiveMigrationOptions, 'onRound' | 'onTick' | 'signal'>> & Pick<LiveMigrationOptions, 'onRound' | 'onTick' | 'signal'>;

function validate(o: LiveMigrationOptions): Options {
  const int = (name: string, v: unknown, min: number, max: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ValidationError(name, `must be an integer from ${min} to ${max}`);
  };
  int('domain', o.domain, 1, 0x7fef);
  int('pages', o.pages, 1, 1 << 30);
  const r: Options = {
    ...o,
    maxRounds: o.maxRounds ?? 5,
    dirtyThreshold: o.dirtyThreshold ?? 50,
    onCleanFault: o.onCleanFault ?? 'merge',
    cleanAttempts: o.cleanAttempts ?? 4,
  };
  int('maxRounds', r.maxRounds, 0, 1000);
  int('dirtyThreshold', r.dirtyThreshold, 0, 1 << 30);
  int('cleanAttempts', r.cleanAttempts, 1, 100);
  if (!['merge', 'all-dirty', 'naive'].includes(r.onCleanFault)) throw new ValidationError('onCleanFault', 'must be merge, all-dirty or naive');
  if (typeof o.sendPages !== 'function') throw new ValidationError('sendPages', 'must be a function');
  return r;
}

function mustRow(name: string): Row {
  const row = rowByName(name);
  if (!row) throw new XencallError(ErrorCodes.VALIDATION, `the hypercall table has no row ${name}`);
  return row;
}
