// Issues one hypercall under the retry policy: snapshots the inputs before the first attempt,
// asks decideRetry() after each failure, restores the pristine inputs and re-touches the pages
// before every re-issue, publishes every step on diagnostics_channel and counts it.
//
// The runner is a generator of effects ("issue the hypercall", "sleep"), so one body serves the
// synchronous API (driven with a blocking sleep) and the promise API (driven with timers),
// without two copies of the logic drifting apart.

import diagnostics_channel from 'node:diagnostics_channel';
import { setTimeout as sleepAsync } from 'node:timers/promises';
import type { Backend } from '../backend.js';
import type { HypercallBuffer } from '../buffers.js';
import { ErrorCodes, XencallError, errnoNameOf, hypercallError, isErrorResult, type HypercallError } from '../errors.js';
import type { Row } from '../hypercalls/row.js';
import { decideRetry, mayRetry, type RefusalKind, type RetryDecision, type RetryPolicy } from './decide.js';
import type { OpCounters, RetryStats } from './stats.js';

/**
 * diagnostics_channel names; subscribe with diagnostics_channel.subscribe(name, fn). Every
 * hypercall the library issues (raw or typed, each hypercall of a typed call) publishes, when
 * anyone listens: `attempt` before each attempt, `retry` before each re-issue, `refuse` when a
 * failure is not re-issued for a retry reason, and `complete` once, however it ended.
 */
export const CHANNELS = {
  /** Before every attempt: AttemptMessage. */
  attempt: 'xencall:attempt',
  /** Before a re-issue: RetryMessage. */
  retry: 'xencall:retry',
  /** When a failed call is not re-issued (refused, exhausted, no row): RefuseMessage. */
  refuse: 'xencall:refuse',
  /** When the call ends, with its result or its error: CompleteMessage. */
  complete: 'xencall:complete',
} as const;

/** Which hypercall a message is about. */
export interface CallMessage {
  /** The table row's name, or null where the call has none. */
  readonly name: string | null;
  /** The hypercall number. */
  readonly op: number;
  /** The sub-op, where the table knows how to read it. */
  readonly subop: number | null;
}

/** CHANNELS.attempt: published before every attempt. */
export interface AttemptMessage extends CallMessage {
  /** 1 for the first issue, 2 for the first re-issue, ... */
  readonly attempt: number;
}

/** CHANNELS.retry: published before a re-issue. */
export interface RetryMessage extends CallMessage {
  /** The attempt that failed. */
  readonly attempt: number;
  readonly errno: number;
  readonly errnoName: string;
  /** The wait before the re-issue. */
  readonly delayMs: number;
}

/** CHANNELS.refuse: published when a failure is not re-issued for a retry reason (not for an ordinary errno). */
export interface RefuseMessage extends CallMessage {
  readonly attempts: number;
  readonly errno: number;
  readonly errnoName: string;
  readonly kind: RefusalKind;
  readonly reason: string | null;
  readonly recovery: string | null;
}

/** CHANNELS.complete: published once per hypercall, when it ends. */
export interface CompleteMessage extends CallMessage {
  /** How many times it reached the backend and came back (0: the handle closed before it was issued). */
  readonly attempts: number;
  /** Xen's result, for a call that succeeded; null otherwise. */
  readonly result: bigint | null;
  /**
   * What the call ended with: a HypercallError, XEN_ERR_ABORTED or XEN_ERR_CLOSED between
   * attempts, or whatever the backend threw; null for a success.
   */
  readonly error: unknown;
}

const attemptChannel = diagnostics_channel.channel(CHANNELS.attempt);
const retryChannel = diagnostics_channel.channel(CHANNELS.retry);
const refuseChannel = diagnostics_channel.channel(CHANNELS.refuse);
const completeChannel = diagnostics_channel.channel(CHANNELS.complete);

export type Effect =
  | { readonly type: 'hypercall'; readonly op: number; readonly args: readonly bigint[]; readonly longRunning: boolean }
  | { readonly type: 'sleep'; readonly ms: number };

/** A generator that yields effects and is resumed with each hypercall's raw result. */
export type Program<T> = Generator<Effect, T, bigint | undefined>;

export interface CallPlan {
  readonly op: number;
  readonly args: readonly bigint[];
  readonly subop: number | null;
  readonly row: Row | undefined;
  readonly decoded: Record<string, unknown> | undefined;
  /**
   * Buffers whose contents are inputs: restored from a pristine copy before every re-issue. A
   * function is called only when a re-issue is possible, so finding them costs nothing otherwise.
   */
  readonly inputs: readonly HypercallBuffer[] | (() => readonly HypercallBuffer[]);
}

export interface RunEnv {
  readonly backend: Backend;
  readonly policy: RetryPolicy;
  readonly stats: RetryStats;
  readonly signal?: AbortSignal | undefined;
  /**
   * Whether the backend's buffers can fault (not libxencall's buffers_never_fault): fixed for a
   * backend's life, so the handle asks once instead of on every call.
   */
  readonly canFault: boolean;
}

/**
 * Issues the planned hypercall. Returns the raw non-negative result; throws HypercallError
 * (XEN_ERR_HYPERCALL, XEN_ERR_RETRY_REFUSED or XEN_ERR_RETRY_EXHAUSTED) otherwise.
 *
 * The steps (start, attempt, failed, waited) are shared with runHypercallSync(), the plain loop
 * the synchronous raw API runs without a generator; only the issuing and the waiting differ.
 */
export function* runHypercall(plan: CallPlan, env: RunEnv): Program<bigint> {
  const call = start(plan, env);
  const effect: Effect = { type: 'hypercall', op: plan.op, args: plan.args, longRunning: plan.row?.longRunning ?? false };
  try {
    for (let attempt = 1; ; attempt++) {
      attempted(call, attempt);
      const result = (yield effect) as bigint;
      call.issued = attempt;
      if (!isErrorResult(result)) return succeeded(call, attempt, result);
      const delayMs = failed(call, result, attempt);
      if (delayMs > 0) yield { type: 'sleep', ms: delayMs };
      waited(call, attempt, delayMs);
    }
  } catch (e) {
    // However it ended: refused, exhausted, aborted, or the handle closed under it.
    if (completeChannel.hasSubscribers) completed(call, null, e);
    throw e;
  }
}

/**
 * runHypercall() without the generator: the same steps, issued with env.backend.hypercall()
 * and waited with `sleep`. For the synchronous raw API, where a generator, its effect objects
 * and the driver loop would cost more than the steps themselves.
 */
export function runHypercallSync(plan: CallPlan, env: RunEnv, sleep: (ms: number) => void = sleepSync): bigint {
  if (!mayReissue(plan.row, plan.decoded, env)) return issueOnceSync(plan.op, plan.args, plan.subop, plan.row, plan.decoded, env);
  const call = start(plan, env);
  try {
    for (let attempt = 1; ; attempt++) {
      attempted(call, attempt);
      const result = env.backend.hypercall(plan.op, plan.args);
      call.issued = attempt;
      if (!isErrorResult(result)) return succeeded(call, attempt, result);
      const delayMs = failed(call, result, attempt);
      if (delayMs > 0) sleep(delayMs);
      waited(call, attempt, delayMs);
    }
  } catch (e) {
    if (completeChannel.hasSubscribers) completed(call, null, e);
    throw e;
  }
}

/**
 * Whether a failure of this call could be re-issued at all: only then are its inputs worth a
 * pristine copy, and only then does it need the loop. With buffers that cannot fault (dom0 with
 * /dev/xen/hypercall) no call can.
 */
export function mayReissue(row: Row | undefined, decoded: Record<string, unknown> | undefined, env: RunEnv): boolean {
  return env.canFault && mayRetry(row, decoded, true, env.policy);
}

/**
 * A synchronous call that cannot be re-issued (mayReissue() is false): the loop's steps for its
 * one attempt (counters, attempt and complete messages, the same errors) without a plan, a state
 * object or a snapshot, which are made only if it fails. The synchronous raw API and the typed
 * calls' issueSync() come here for every such call; the caller has checked mayReissue().
 */
export function issueOnceSync(op: number, args: readonly bigint[], subop: number | null, row: Row | undefined, decoded: Record<string, unknown> | undefined, env: RunEnv): bigint {
  const counters = row ? env.stats.forRow(row) : env.stats.counters(callLabel(op, subop));
  counters.calls++;
  counters.attempts++;
  if (attemptChannel.hasSubscribers) {
    const m: AttemptMessage = { name: row?.name ?? null, op, subop, attempt: 1 };
    attemptChannel.publish(m);
  }
  let result: bigint;
  try {
    result = env.backend.hypercall(op, args);
  } catch (e) {
    if (completeChannel.hasSubscribers) {
      const m: CompleteMessage = { name: row?.name ?? null, op, subop, attempts: 0, result: null, error: e };
      completeChannel.publish(m);
    }
    throw e;
  }
  if (!isErrorResult(result)) {
    if (completeChannel.hasSubscribers) {
      const m: CompleteMessage = { name: row?.name ?? null, op, subop, attempts: 1, result, error: null };
      completeChannel.publish(m);
    }
    return result;
  }
  // The failure is counted, decided and published by the loop's own steps; with no pristine copy
  // it is never re-issued, whatever the decision.
  const call: CallState = { plan: { op, args, subop, row, decoded, inputs: NO_INPUTS }, env, counters, pristine: null, retrying: null, issued: 1 };
  try {
    const errno = countFailure(call, result);
    return fail(call, errno, 1, decisionAfter(call, errno, 1));
  } catch (e) {
    if (completeChannel.hasSubscribers) completed(call, null, e);
    throw e;
  }
}
const NO_INPUTS: readonly HypercallBuffer[] = Object.freeze([]);

/** One call's state across its attempts. */
interface CallState {
  readonly plan: CallPlan;
  readonly env: RunEnv;
  readonly counters: OpCounters;
  readonly pristine: readonly { readonly buffer: HypercallBuffer; readonly bytes: Uint8Array }[] | null;
  /** The failure a re-issue is about to follow (for the cause of an abort). */
  retrying: { readonly errno: number; readonly decision: RetryDecision } | null;
  /** Attempts that reached the backend and came back. */
  issued: number;
}

/** The call's name in statistics and messages: its row's, or "hypercall N/M". */
function labelOf(plan: CallPlan): string {
  return plan.row?.name ?? callLabel(plan.op, plan.subop);
}
function callLabel(op: number, subop: number | null): string {
  return `hypercall ${op}${subop === null ? '' : `/${subop}`}`;
}

function start(plan: CallPlan, env: RunEnv): CallState {
  // A row's counters are found by its index; only calls without a row build their key.
  const counters = plan.row ? env.stats.forRow(plan.row) : env.stats.counters(labelOf(plan));
  counters.calls++;
  // Xen writes results into argument buffers in place, so a re-issue must start from a copy
  // taken before the first attempt. Only calls that could be re-issued pay for the copy.
  const pristine =
    env.canFault && mayRetry(plan.row, plan.decoded, true, env.policy)
      ? (typeof plan.inputs === 'function' ? plan.inputs() : plan.inputs).map((b) => ({ buffer: b, bytes: b.bytes.slice() }))
      : null;
  return { plan, env, counters, pristine, retrying: null, issued: 0 };
}

/** Before each attempt. */
function attempted(call: CallState, attempt: number): void {
  call.counters.attempts++;
  if (attemptChannel.hasSubscribers) {
    const m: AttemptMessage = { name: call.plan.row?.name ?? null, op: call.plan.op, subop: call.plan.subop, attempt };
    attemptChannel.publish(m);
  }
}

function succeeded(call: CallState, attempt: number, result: bigint): bigint {
  if (attempt > 1) call.counters.recovered++;
  if (completeChannel.hasSubscribers) completed(call, result, null);
  return result;
}

function completed(call: CallState, result: bigint | null, error: unknown): void {
  const m: CompleteMessage = { name: call.plan.row?.name ?? null, op: call.plan.op, subop: call.plan.subop, attempts: call.issued, result, error };
  completeChannel.publish(m);
}

/**
 * After a failed attempt: either restores the pristine inputs and returns the delay before the
 * re-issue, or throws the error that ends the call.
 */
function failed(call: CallState, result: bigint, attempt: number): number {
  const { plan, env, pristine } = call;
  const name = plan.row?.name ?? null;
  const errno = countFailure(call, result);
  const decision = decisionAfter(call, errno, attempt);

  if (decision.action === 'retry' && pristine) {
    call.retrying = { errno, decision };
    if (env.signal?.aborted) throw aborted(call, attempt);
    if (retryChannel.hasSubscribers) {
      const m: RetryMessage = { name, op: plan.op, subop: plan.subop, attempt, errno, errnoName: errnoNameOf(errno), delayMs: decision.delayMs };
      retryChannel.publish(m);
    }
    for (const p of pristine) {
      p.buffer.bytes.set(p.bytes);
      env.backend.touchPages(p.buffer.live());
    }
    return decision.delayMs;
  }
  return fail(call, errno, attempt, decision);
}

/** The errno of a failed attempt, counted. */
function countFailure(call: CallState, result: bigint): number {
  const errno = Number(-result);
  if (errnoNameOf(errno) === 'EFAULT') call.counters.efaults++;
  return errno;
}

function decisionAfter(call: CallState, errno: number, attempt: number): RetryDecision {
  const { plan, env } = call;
  return decideRetry({ errno, attempt, row: plan.row, args: plan.decoded, buffersCanFault: env.canFault, policy: env.policy });
}

/** Ends a call whose failure is not re-issued: counts it, publishes a refusal, throws its error. */
function fail(call: CallState, errno: number, attempt: number, decision: RetryDecision): never {
  const { plan, counters } = call;
  const name = plan.row?.name ?? null;
  const err = failure(plan, errno, attempt, decision);
  if (err.code === ErrorCodes.RETRY_REFUSED) counters.refused++;
  else if (err.code === ErrorCodes.RETRY_EXHAUSTED) counters.exhausted++;
  else counters.failed++;
  if (refuseChannel.hasSubscribers && err.code !== ErrorCodes.HYPERCALL) {
    const m: RefuseMessage = {
      name,
      op: plan.op,
      subop: plan.subop,
      attempts: attempt,
      errno,
      errnoName: err.errnoName,
      kind: decision.action === 'fail' ? decision.kind : 'exhausted',
      reason: err.reason,
      recovery: err.recovery,
    };
    refuseChannel.publish(m);
  }
  throw err;
}

/** After the wait before a re-issue (if there was one), which is where a caller's abort lands. */
function waited(call: CallState, attempt: number, delayMs: number): void {
  // Never re-issue after an abort that came during the wait.
  if (delayMs > 0 && call.env.signal?.aborted) throw aborted(call, attempt);
  call.counters.retries++;
}

function aborted(call: CallState, attempt: number): XencallError {
  const { errno, decision } = call.retrying!;
  return new XencallError(ErrorCodes.ABORTED, `${labelOf(call.plan)}: aborted before re-issue ${attempt + 1}`, {
    cause: failure(call.plan, errno, attempt, decision),
  });
}
function failure(plan: CallPlan, errno: number, attempts: number, decision: RetryDecision): HypercallError {
  // A 'retry' decision without a pristine snapshot cannot happen (mayRetry agrees with
  // decideRetry); treat it as exhausted rather than re-issue from dirty inputs.
  const d = decision.action === 'fail' ? decision : ({ kind: 'exhausted', verdict: 'safe', reason: decision.reason, recovery: null } as const);
  return hypercallError({ errno, op: plan.op, subop: plan.subop, name: plan.row?.name ?? null, attempts, decision: d, rowReason: plan.row?.reason ?? null });
}

// ---- drivers ------------------------------------------------------------------------------

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the thread for `ms` (sub-millisecond waits spin); the synchronous API's backoff. */
export function sleepSync(ms: number): void {
  if (ms <= 0) return;
  Atomics.wait(sleepCell, 0, 0, ms);
}

export interface SyncDriver {
  readonly backend: Backend;
  readonly sleep?: (ms: number) => void;
}

export function driveSync<T>(program: Program<T>, driver: SyncDriver): T {
  const sleep = driver.sleep ?? sleepSync;
  let step = program.next();
  while (!step.done) {
    const effect = step.value;
    if (effect.type === 'hypercall') {
      step = program.next(driver.backend.hypercall(effect.op, effect.args));
    } else {
      sleep(effect.ms);
      step = program.next();
    }
  }
  return step.value;
}

export interface AsyncDriver {
  readonly backend: Backend;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** The caller's signal: it cancels waits and hypercalls still queued, never one being issued. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Aborted when the handle closes: from then on nothing more is issued or waited for (the
   * program is thrown XEN_ERR_CLOSED at its next effect), while a hypercall already issued runs
   * to the end and its result is decoded from buffers that stay live until the program ends.
   */
  readonly closed?: AbortSignal;
  /** Called once the program has ended, however it ended (the handle counts calls in flight). */
  readonly settled?: () => void;
}

export async function driveAsync<T>(program: Program<T>, driver: AsyncDriver): Promise<T> {
  const sleep = driver.sleep ?? ((ms: number, signal?: AbortSignal) => sleepAsync(ms, undefined, { signal }));
  // What cancels a wait or a queued hypercall: the caller's signal or the handle's close, joined
  // only when both exist and only once a call waits on either.
  let cancel: JoinedSignal | undefined;
  const cancelSignal = (): AbortSignal | undefined => {
    if (!driver.signal || !driver.closed) return driver.signal ?? driver.closed;
    return (cancel ??= joinSignals(driver.signal, driver.closed)).signal;
  };
  try {
    let step = program.next();
    while (!step.done) {
      const effect = step.value;
      try {
        if (driver.closed?.aborted) throw closedError(driver.closed, effect);
        if (effect.type === 'hypercall') {
          // Long-running ops go to the backend's worker thread; short ones are cheaper inline.
          const r =
            effect.longRunning && driver.backend.hypercallAsync
              ? await driver.backend.hypercallAsync(effect.op, effect.args, cancelSignal())
              : driver.backend.hypercall(effect.op, effect.args);
          step = program.next(r);
        } else {
          await sleep(effect.ms, cancelSignal());
          step = program.next();
        }
      } catch (e) {
        step = program.throw(asCancelled(e, driver, effect));
      }
    }
    return step.value;
  } finally {
    cancel?.dispose();
    driver.settled?.();
  }
}

/** The error a program is thrown when its handle closed before its next effect. */
function closedError(closed: AbortSignal, effect: Effect): XencallError {
  const reason = closed.reason;
  const what = effect.type === 'hypercall' ? `hypercall ${effect.op} was not issued` : 'the wait before a re-issue ended';
  return new XencallError(ErrorCodes.CLOSED, `the handle was closed while the call was in flight; ${what}`, { cause: reason });
}

/** A failure from a wait or a queued hypercall, read in the light of why it was cancelled. */
function asCancelled(e: unknown, driver: AsyncDriver, effect: Effect): unknown {
  if (e instanceof XencallError) return e;
  if (driver.closed?.aborted) return closedError(driver.closed, effect);
  if (driver.signal?.aborted) return new XencallError(ErrorCodes.ABORTED, 'aborted while waiting to re-issue', { cause: e });
  return e;
}

interface JoinedSignal {
  readonly signal: AbortSignal;
  dispose(): void;
}

/**
 * A signal that fires when either does, with that one's reason. AbortSignal.any() would do, but
 * it is missing before Node 20.3 and keeps its sources' listeners until garbage collection.
 */
function joinSignals(a: AbortSignal, b: AbortSignal): JoinedSignal {
  const c = new AbortController();
  const fromA = () => c.abort(a.reason);
  const fromB = () => c.abort(b.reason);
  if (a.aborted) fromA();
  else if (b.aborted) fromB();
  else {
    a.addEventListener('abort', fromA, { once: true });
    b.addEventListener('abort', fromB, { once: true });
  }
  return {
    signal: c.signal,
    dispose: () => {
      a.removeEventListener('abort', fromA);
      b.removeEventListener('abort', fromB);
    },
  };
}

/** The error for a call whose signal had fired before anything was issued. */
export function abortedBeforeStart(signal: AbortSignal): XencallError {
  return new XencallError(ErrorCodes.ABORTED, 'the signal had already fired: nothing was issued', { cause: signal.reason });
}
