// The live-migration (save/restore) loop over log-dirty shadow_op calls: the hypercall side of
// what libxenguest's save does. Mapping and copying the guest's pages is the caller's job
// (libxencall does not map foreign memory): it is handed the dirty pages of each round.
//
// How Xen 4.17 tracks (xen/arch/x86/mm/paging.c, hap/hap.c, hvm/hvm.c at RELEASE-4.17.7):
// ENABLE and every *completed* CLEAN make all pages read-only (p2m_ram_logdirty); a guest's
// first write to a page faults, is logged, and makes the page writable, so its later writes are
// not seen until the next completed CLEAN re-arms. CLEAN copies the bitmap out leaf by leaf and
// clears each leaf right after copying it; a copy fault part-way leaves the earlier leaves
// copied-and-cleared and skips the re-arm. A preempted CLEAN continues through hypercall 49,
// whose re-entry can fault with the op left pending and the domain paused.
//
// So a round is only sound when it ends with a completed CLEAN after which its pages are sent:
// every bit Xen copied out is kept (OR-ed in, even from a failed call), a pending op is
// finished through hypercall 49, and CLEAN is issued again until one completes. If none does,
// the round resends everything, but only after a CLEAN with no bitmap (clear and re-arm, nothing
// to copy) completed; if even that fails, the guest is paused first and the round becomes the
// final one, so nothing can be written unseen after the copy.

//
// Everything here goes through the handle's public API (typed calls, buffers, stats), so a
// toolstack can write its own loop the same way: CLEAN into its own buffer (`bitmap`), keep
// what a failed one copied out, CLEAN again, and re-arm with `bitmap: null`.

import type { HypercallBuffer } from './buffers.js';
import { ErrorCodes, HypercallError, ValidationError, XencallError } from './errors.js';
import { requiredBag, signalOf } from './input.js';
import { abortedBeforeStart } from './retry/runner.js';
import type { Xencall } from './xencall.js';

export type CleanStrategy =
  /** Keep what a failed CLEAN delivered, CLEAN again into a fresh bitmap, OR them (default). */
  | 'merge'
  /** After a failed CLEAN, re-arm with a bitmap-less CLEAN and resend every page this round. */
  | 'all-dirty'
  /**
   * For demonstrations and tests only: drop what a failed CLEAN delivered and CLEAN again, as a
   * retry-every-EFAULT toolstack would. It loses dirty pages; never use it for real.
   */
  | 'naive';

export interface LiveMigrationOptions {
  domain: number;
  /** Pages to track: the guest's pseudo-physical size (p2m entries). */
  pages: number;
  /** Copies the given pages of the guest to the destination; called once per round. */
  /** The pages to copy (a fresh array each round; gfns ascending). */
  sendPages: (gfns: Uint32Array, round: { round: number; final: boolean }) => void | Promise<void>;
  /** Live rounds after the first full pass, at most. Default 5. */
  maxRounds?: number;
  /** Stop the live rounds once fewer pages than this are dirty. Default 50. */
  dirtyThreshold?: number;
  /** After a CLEAN that failed: see CleanStrategy. Default 'merge'. */
  onCleanFault?: CleanStrategy;
  /** How many CLEANs one round may issue before resending everything. Default 4. */
  cleanAttempts?: number;
  /** Called after every round (a progress bar, a log line). */
  onRound?: (r: RoundReport) => void;
  /** Called right after the domain is paused for the final round (the start of the downtime). */
  onPause?: () => void;
  /** Called between the live rounds' hypercalls (a test's guest keeps writing here). */
  onTick?: () => void | Promise<void>;
  /**
   * Stops the migration between rounds. Xen is left as it was found: no op pending, log-dirty
   * off, and the domain unpaused if the loop had paused it. The promise rejects with
   * XEN_ERR_ABORTED. A hypercall already issued is never interrupted.
   */
  signal?: AbortSignal;
}

export interface RoundReport {
  round: number;
  final: boolean;
  dirty: number;
  sent: number;
  /** CLEAN and hypercall 49 calls that failed this round (EFAULT or EBUSY). */
  cleanFaults: number;
  /** Pending CLEANs finished through __HYPERVISOR_paging_domctl_cont (49). */
  continued: number;
  /** True when the round resent everything because CLEAN could not be completed. */
  allDirty: boolean;
  /**
   * True when not even a bitmap-less CLEAN could re-arm tracking, so the loop paused the guest
   * and made this round the final one.
   */
  pausedEarly: boolean;
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

/**
 * Runs the live-migration loop on the source side. The domain is left paused, log-dirty off.
 * On an error or abort it is left as found instead: no op pending, log-dirty off, unpaused if
 * the loop paused it.
 */
export async function liveMigrate(xc: Xencall, options: LiveMigrationOptions): Promise<MigrationReport> {
  const o = validate(options);
  // Checked before log-dirty mode is switched on: a fired signal issues nothing at all.
  if (o.signal?.aborted) throw abortedBeforeStart(o.signal);
  const bitmap = xc.allocBuffer(Math.ceil(o.pages / 8));
  const report: MigrationReport = { rounds: [], pagesSent: 0, cleanFaults: 0, continued: 0, allDirtyRounds: 0, enableRecovered: false };
  let pausedByUs = false;
  let enabled = false;
  try {
    try {
      report.enableRecovered = await enableLogDirty(xc, o.domain, o.signal);
    } catch (e) {
      // ENABLE acts before its copy-back, so a failed one may have switched the mode on; but
      // -EINVAL means someone else had it on, and theirs is not ours to switch off.
      enabled = !(e instanceof HypercallError && e.errnoName === 'EINVAL');
      throw e;
    }
    enabled = true;

    await o.sendPages(allGfns(o.pages), { round: 0, final: false });
    record(report, o, { round: 0, final: false, dirty: o.pages, sent: o.pages, cleanFaults: 0, continued: 0, allDirty: false, pausedEarly: false });

    for (let round = 1; ; round++) {
      throwIfAborted(o.signal, round);
      await o.onTick?.();
      throwIfAborted(o.signal, round);
      let final = round > o.maxRounds || report.rounds.at(-1)!.dirty < o.dirtyThreshold;
      if (final) {
        xc.sync.domctl.pausedomain({ domain: o.domain });
        pausedByUs = true;
        o.onPause?.();
      }
      const r = cleanRound(xc, o, bitmap, final);
      let pausedEarly = false;
      if (!r.rearmed && !final) {
        // Pages made writable since the last completed CLEAN would take writes unseen after
        // this copy. A paused guest writes nothing: copy everything now and stop there.
        xc.sync.domctl.pausedomain({ domain: o.domain });
        pausedByUs = true;
        o.onPause?.();
        final = true;
        pausedEarly = true;
      }
      await o.sendPages(r.gfns, { round, final });
      record(report, o, { round, final, dirty: r.gfns.length, sent: r.gfns.length, cleanFaults: r.faults, continued: r.continued, allDirty: r.allDirty, pausedEarly });
      if (final) break;
    }
    await xc.domctl.shadow_op.off({ domain: o.domain }, { signal: o.signal });
    enabled = false;
    return report;
  } catch (e) {
    await restore(xc, o, { enabled, pausedByUs }, e);
    throw e;
  } finally {
    xc.freeBuffer(bitmap);
  }
}

function throwIfAborted(signal: AbortSignal | undefined, round: number): void {
  if (signal?.aborted) throw new XencallError(ErrorCodes.ABORTED, `live migration aborted before round ${round}`, { cause: signal.reason });
}

/**
 * After a failure: switch log-dirty off and undo the loop's pause. OFF first finishes any op a
 * faulted continuation left pending (a CLEAN whose finishing ran out of tries, an OFF
 * interrupted by the abort). No signal: this must run to the end. Its own failure is attached
 * to the error being thrown.
 */
async function restore(xc: Xencall, o: Options, state: { enabled: boolean; pausedByUs: boolean }, error: unknown): Promise<void> {
  try {
    if (state.enabled) await xc.domctl.shadow_op.off({ domain: o.domain });
    if (state.pausedByUs) await xc.domctl.unpausedomain({ domain: o.domain });
  } catch (cleanupError) {
    if (error instanceof Error) (error as Error & { cleanupError?: unknown }).cleanupError = cleanupError;
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
async function enableLogDirty(xc: Xencall, domain: number, signal: AbortSignal | undefined): Promise<boolean> {
  // Each refused ENABLE is followed by an OFF (idempotent, nothing logged yet) and a fresh
  // ENABLE, as many times as the retry policy allows re-issues of a safe op.
  for (let attempt = 1; ; attempt++) {
    try {
      await xc.domctl.shadow_op.enable_logdirty({ domain }, { signal });
      return attempt > 1;
    } catch (e) {
      if (!(e instanceof HypercallError) || e.code !== ErrorCodes.RETRY_REFUSED || attempt >= xc.policy.maxAttempts) throw e;
      await xc.domctl.shadow_op.off({ domain }, { signal });
    }
  }
}

interface CleanResult {
  gfns: Uint32Array;
  faults: number;
  continued: number;
  allDirty: boolean;
  /** A CLEAN completed this round, so every page is read-only again (false only in the worst case). */
  rearmed: boolean;
}

/** Bitmap-less CLEANs tried to re-arm tracking before a round resends everything. */
const REARM_ATTEMPTS = 8;

/**
 * One round's CLEANs, synchronously: a CLEAN takes milliseconds, and in a dom0 with one vcpu and
 * a running guest every hand-off to a worker thread and back costs tens of them
 * (docs/performance.md). The typed CLEAN is never re-issued after an EFAULT (the table says
 * it is unsafe) and finishes a continuation its fault left pending through hypercall 49; what
 * it copied into `bitmap` before failing is kept here.
 */
function cleanRound(xc: Xencall, o: Options, bitmap: HypercallBuffer, final: boolean): CleanResult {
  const before = cleanFaultCount(xc);
  const faults = () => cleanFaultCount(xc) - before;
  const clean = (bm: HypercallBuffer | null) => xc.sync.domctl.shadow_op.clean({ domain: o.domain, pages: BigInt(o.pages), final, bitmap: bm });
  // The final round's CLEAN also marks the frames Xen keeps mapped writable (LOGDIRTY_FINAL, as
  // libxenguest's suspend_and_send_dirty asks for).
  const acc = new Uint8Array(bitmap.size);
  const bits = bitmap.bytes;
  let continued = 0;
  for (let attempt = 0; attempt < o.cleanAttempts; attempt++) {
    try {
      const r = clean(bitmap);
      orInto(acc, bits);
      if (r.continuations) continued++;
      return { gfns: bitsToGfns(acc, o.pages), faults: faults(), continued, allDirty: false, rearmed: true };
    } catch (e) {
      if (!isCleanFault(e)) throw e;
      // Whatever Xen copied out, even in a failed call, is dirty pages it may have cleared: keep
      // it (bytes it did not reach are still zero). 'naive' drops it, as a plain re-issue would.
      if (o.onCleanFault === 'naive') acc.fill(0);
      else orInto(acc, bits);
      if (o.onCleanFault === 'all-dirty') break;
    }
  }
  // Resend everything this round; but first re-arm, or the pages left writable by the failed
  // CLEANs would take writes unseen after they are sent. A CLEAN without a bitmap copies
  // nothing out, so it faults only on the struct: before its effect, or after it completed.
  const all = allGfns(o.pages);
  for (let attempt = 0; attempt < REARM_ATTEMPTS; attempt++) {
    try {
      const r = clean(null);
      return { gfns: all, faults: faults(), continued: continued + (r.continuations ? 1 : 0), allDirty: true, rearmed: true };
    } catch (e) {
      if (!isCleanFault(e)) throw e;
    }
  }
  return { gfns: all, faults: faults(), continued, allDirty: true, rearmed: false };
}

/** A CLEAN that failed without completing: an EFAULT (refused, what was pending dealt with), or -EBUSY. */
function isCleanFault(e: unknown): boolean {
  return e instanceof HypercallError && (e.errnoName === 'EFAULT' || e.errnoName === 'EBUSY');
}

/**
 * CLEANs that failed (EFAULT, EBUSY) and hypercall-49 calls that faulted, so far, from the
 * handle's counters (xc.stats()): a round runs synchronously, so its difference is the round's.
 */
function cleanFaultCount(xc: Xencall): number {
  const s = xc.stats();
  const clean = s['domctl.shadow_op.clean'];
  return (clean ? clean.efaults + clean.failed : 0) + (s['arch_1']?.efaults ?? 0);
}

/** acc |= bits, a 32-bit word at a time where both are aligned (the bitmap is page-aligned). */
function orInto(acc: Uint8Array, bits: Uint8Array): void {
  const words = acc.length >> 2;
  if (words > 0 && acc.byteOffset % 4 === 0 && bits.byteOffset % 4 === 0) {
    const a = new Uint32Array(acc.buffer, acc.byteOffset, words);
    const b = new Uint32Array(bits.buffer, bits.byteOffset, words);
    for (let i = 0; i < words; i++) a[i]! |= b[i]!;
  }
  for (let i = words << 2; i < acc.length; i++) acc[i]! |= bits[i]!;
}

/** The set bits of a dirty bitmap as gfns, skipping zero words (most are). */
function bitsToGfns(bits: Uint8Array, pages: number): Uint32Array {
  let n = 0;
  for (let i = 0; i < bits.length; i++) {
    let b = bits[i]!;
    while (b) {
      n++;
      b &= b - 1;
    }
  }
  const out = new Uint32Array(n);
  let k = 0;
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    if (!b) continue;
    for (let j = 0; j < 8; j++) if (b & (1 << j) && i * 8 + j < pages) out[k++] = i * 8 + j;
  }
  return out.subarray(0, k);
}

/** Gfns 0..pages-1. */
export function allGfns(pages: number): Uint32Array {
  const a = new Uint32Array(pages);
  for (let i = 0; i < pages; i++) a[i] = i;
  return a;
}

type Options = Required<Omit<LiveMigrationOptions, 'onRound' | 'onTick' | 'onPause' | 'signal'>> & Pick<LiveMigrationOptions, 'onRound' | 'onTick' | 'onPause' | 'signal'>;

function validate(options: LiveMigrationOptions): Options {
  const o = requiredBag('options', options);
  signalOf('signal', o.signal);
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

