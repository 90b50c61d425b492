// The retry decision: a pure function of (errno, attempt, table row, decoded arguments, policy).
// No I/O, no clock, no state: the runner does the waiting and the restoring; tests and
// property tests call this directly.

import { ValidationError, describeValue, errnoNameOf, isErrnoName } from '../errors.js';
import { optionBag } from '../input.js';
import { verdictFor, type Row } from '../hypercalls/row.js';

export interface RetryPolicy {
  /**
   * Total attempts allowed, the first included (1 turns retry off). Default 5: under sustained
   * migration of a buffer's pages the faults cluster (the EFAULT study measured 11% of calls
   * faulting once, 18% of those twice, 35% of those three times), so libxc's 3 is too few there;
   * under ordinary compaction the first re-issue almost always succeeds.
   */
  readonly maxAttempts: number;
  /** errno names that may be retried at all. Default ["EFAULT"]. */
  readonly retryOn: readonly string[];
  /** Delay before the first re-issue, in ms. Default 0: a page migration lasts microseconds. */
  readonly initialDelayMs: number;
  /** Each later delay is the previous one times this. Default 2. */
  readonly backoffFactor: number;
  /** Upper bound of one delay, in ms. Default 10. */
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  retryOn: Object.freeze(['EFAULT']),
  initialDelayMs: 0,
  backoffFactor: 2,
  maxDelayMs: 10,
});

export interface RetryInput {
  /** Positive errno of the attempt that just failed. */
  readonly errno: number;
  /** 1-based number of the attempt that just failed. */
  readonly attempt: number;
  /** The table row, or undefined where the call has none. */
  readonly row: Row | undefined;
  /** The decoded argument struct, for conditional rows. */
  readonly args: Record<string, unknown> | undefined;
  /** False where the backend's buffers cannot fault (then an EFAULT is not transient). */
  readonly buffersCanFault: boolean;
  readonly policy: RetryPolicy;
}

export type RefusalKind =
  /** The errno is not one the policy retries: an ordinary hypercall error. */
  | 'errno-not-retryable'
  /** The call has no table row: xencall cannot know it is safe. */
  | 'no-row'
  /** The row (or its condition for these arguments) says unsafe. */
  | 'unsafe'
  /** Buffers come from /dev/xen/hypercall: an EFAULT is a real bad address, not migration. */
  | 'buffers-never-fault'
  /** The attempt budget is spent. */
  | 'exhausted';

export type RetryDecision =
  | { readonly action: 'retry'; readonly delayMs: number; readonly reason: string }
  | {
      readonly action: 'fail';
      readonly kind: RefusalKind;
      readonly verdict: 'safe' | 'unsafe' | null;
      readonly reason: string;
      readonly recovery: string | null;
    };

export function delayBeforeAttempt(nextAttempt: number, policy: RetryPolicy): number {
  // nextAttempt 2 is the first re-issue.
  const n = nextAttempt - 2;
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.backoffFactor ** Math.max(0, n));
}

export function decideRetry(input: RetryInput): RetryDecision {
  const { errno, attempt, row, policy } = input;
  const errnoName = errnoNameOf(errno);
  const verdict = row ? verdictFor(row, input.args) : null;
  const fail = (kind: RefusalKind, reason: string) =>
    ({ action: 'fail', kind, verdict, reason, recovery: row?.recovery ?? null }) as const;

  if (!policy.retryOn.includes(errnoName)) {
    return fail('errno-not-retryable', `${errnoName} is not in the retry policy (${policy.retryOn.join(', ') || 'none'})`);
  }
  if (!row) return fail('no-row', 'the call has no row in the hypercall table, so it is never re-issued');
  if (verdict === 'unsafe') {
    const why = row.verdict === 'conditional' && row.condition ? `${row.condition.text}: ${row.reason}` : row.reason;
    return fail('unsafe', why);
  }
  if (!input.buffersCanFault) {
    return fail('buffers-never-fault', 'buffers come from /dev/xen/hypercall and cannot fault transiently: this EFAULT is a real bad address');
  }
  if (attempt >= policy.maxAttempts) {
    return fail('exhausted', `${errnoName} persisted through ${attempt} attempt${attempt === 1 ? '' : 's'}`);
  }
  return {
    action: 'retry',
    delayMs: delayBeforeAttempt(attempt + 1, policy),
    reason: `${row.name} is ${row.verdict === 'conditional' ? 'safe for these arguments' : 'safe'} to re-issue after ${errnoName}`,
  };
}

/** Whether a call could ever be retried: decides if pristine inputs are worth snapshotting. */
export function mayRetry(row: Row | undefined, args: Record<string, unknown> | undefined, buffersCanFault: boolean, policy: RetryPolicy): boolean {
  return policy.maxAttempts > 1 && buffersCanFault && row !== undefined && verdictFor(row, args) === 'safe';
}

/** Validates and fills a partial policy. */
export function resolvePolicy(p: Partial<RetryPolicy> | undefined): RetryPolicy {
  const given = optionBag('retry', p);
  // A misspelt key would otherwise be ignored and its default silently used.
  for (const k of Object.keys(given)) {
    if (!Object.hasOwn(DEFAULT_RETRY_POLICY, k)) throw new ValidationError(`retry.${k}`, `is not a retry policy option (${Object.keys(DEFAULT_RETRY_POLICY).join(', ')})`);
  }
  const out = { ...DEFAULT_RETRY_POLICY, ...given };
  if (typeof out.maxAttempts !== 'number' || !Number.isInteger(out.maxAttempts) || out.maxAttempts < 1 || out.maxAttempts > 100) {
    throw new ValidationError('retry.maxAttempts', `must be an integer from 1 to 100, got ${describeValue(out.maxAttempts)}`);
  }
  for (const k of ['initialDelayMs', 'maxDelayMs', 'backoffFactor'] as const) {
    if (typeof out[k] !== 'number' || !Number.isFinite(out[k]) || out[k] < 0) throw new ValidationError(`retry.${k}`, `must be a finite number >= 0, got ${describeValue(out[k])}`);
  }
  // A string is iterable too: 'EFAULT' would become ['E', 'F', ...] and match nothing.
  if (!Array.isArray(out.retryOn)) throw new ValidationError('retry.retryOn', `must be an array of errno names such as ["EFAULT"], got ${describeValue(out.retryOn)}`);
  for (const name of out.retryOn as unknown[]) {
    if (typeof name !== 'string' || !isErrnoName(name)) throw new ValidationError('retry.retryOn', `${describeValue(name)} is not an errno name in Xen's errno.h`);
  }
  return Object.freeze({ ...out, retryOn: Object.freeze([...out.retryOn]) });
}
