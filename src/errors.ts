// One error base with stable string codes. Callers match on `err.code`, never on messages.
//
// Raw hypercall results become errors in exactly one place: `hypercallError()` below (the
// equivalent of nix's Errno::result). Everything else in the library throws through it or
// through the small constructors next to it.

import { XEN_ERRNO } from './errno-table.js';
import type { RefusalKind } from './retry/decide.js';

export const ErrorCodes = {
  /** The hypervisor (or privcmd) returned a negative errno and no retry applied. */
  HYPERCALL: 'XEN_ERR_HYPERCALL',
  /** An argument failed validation before anything reached the backend. */
  VALIDATION: 'XEN_ERR_VALIDATION',
  /** No privcmd node could be opened, or koffi could not load. */
  BACKEND_UNAVAILABLE: 'XEN_ERR_BACKEND_UNAVAILABLE',
  /** EFAULT on an op the table says must not be re-issued (or an op with no table row). */
  RETRY_REFUSED: 'XEN_ERR_RETRY_REFUSED',
  /** A retryable EFAULT persisted through every allowed attempt. */
  RETRY_EXHAUSTED: 'XEN_ERR_RETRY_EXHAUSTED',
  /** The caller's AbortSignal fired between attempts. */
  ABORTED: 'XEN_ERR_ABORTED',
  /** The handle was used after close(). */
  CLOSED: 'XEN_ERR_CLOSED',
  /** A hypercall buffer was used after it was freed. */
  BUFFER_FREED: 'XEN_ERR_BUFFER_FREED',
  /** The mock hypervisor's strict mode caught a test mistake (bad pointer, unmodelled op). */
  MOCK_STRICT: 'XEN_ERR_MOCK_STRICT',
  /** A foreign mapping was used after unmap() (or after its handle was closed). */
  UNMAPPED: 'XEN_ERR_UNMAPPED',
  /** A reservation op (populate_physmap) stopped making progress: Xen's count stayed short. */
  SHORT_COUNT: 'XEN_ERR_SHORT_COUNT',
  /** A save image is truncated, corrupt, of another version or out of order (ImageError's `problem`). */
  IMAGE_INVALID: 'XEN_ERR_IMAGE_INVALID',
  /** save/migrate refused a guest up front (dom0, dying, shut down, PV, no log-dirty); `reason` says which. */
  GUEST_UNSUPPORTED: 'XEN_ERR_GUEST_UNSUPPORTED',
  /** xencall/testing's test guest could not be built or booted (`step` names where), or made no progress in time. */
  TEST_GUEST: 'XEN_ERR_TEST_GUEST',
  /** A typed call on a Xen other than the one the table follows (XenVersionUnsupportedError's `running`, `supported`). */
  XEN_VERSION_UNSUPPORTED: 'XEN_ERR_XEN_VERSION_UNSUPPORTED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class XencallError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad input, caught before any buffer is touched. `field` is a dotted path. */
export class ValidationError extends XencallError {
  readonly field: string;
  readonly issues: readonly { path: string; message: string }[];
  constructor(field: string, message: string, issues?: readonly { path: string; message: string }[]) {
    super(ErrorCodes.VALIDATION, field ? `${field}: ${message}` : message);
    this.field = field;
    this.issues = issues ?? [{ path: field, message }];
  }
}

/** A Xen version, as XENVER_version answers it (major << 16 | minor). */
export interface XenVersion {
  readonly major: number;
  readonly minor: number;
}

/**
 * Typed calls refused: the running Xen is not the release the table follows, so its layouts,
 * sub-op numbers and retry verdicts may not hold. Nothing was issued but XENVER_version.
 */
export class XenVersionUnsupportedError extends XencallError {
  readonly running: XenVersion;
  readonly supported: XenVersion;
  constructor(running: XenVersion, supported: XenVersion) {
    const r = `${running.major}.${running.minor}`;
    const s = `${supported.major}.${supported.minor}`;
    super(
      ErrorCodes.XEN_VERSION_UNSUPPORTED,
      `this is Xen ${r}; xencall's typed calls and table are Xen ${s}'s, so they are refused here. Raw calls (xc.hypercall, callN) still work; use a xencall release for Xen ${r} for typed calls.`,
    );
    this.running = running;
    this.supported = supported;
  }
}

/** What the retry layer did: nothing (not a retryable failure), refused by the table, or ran out of attempts. */
export type RetryOutcome = 'none' | 'refused' | 'exhausted';

export interface HypercallErrorInfo {
  /** Positive errno number (Xen's and Linux's agree on x86). */
  errno: number;
  /** Hypercall number (__HYPERVISOR_*). */
  op: number;
  /** Sub-op (cmd) where the table knows how to read it, else null. */
  subop: number | null;
  /** The table row's dotted name, e.g. "domctl.createdomain", or null with no row. */
  name: string | null;
  /** How many times the hypercall was issued. */
  attempts: number;
  /** The row's verdict for these arguments ("safe", "unsafe"), or null with no row. */
  verdict: 'safe' | 'unsafe' | null;
  /** Why a retry was refused or what the table says about the op. */
  reason: string | null;
  /** What the caller should do instead (from the table's recovery column). */
  recovery: string | null;
  retry: RetryOutcome;
}

export class HypercallError extends XencallError implements HypercallErrorInfo {
  readonly errno: number;
  readonly errnoName: string;
  readonly op: number;
  readonly subop: number | null;
  /** The table row's name, e.g. "domctl.createdomain" (Error already owns `name`). */
  readonly opName: string | null;
  readonly attempts: number;
  readonly verdict: 'safe' | 'unsafe' | null;
  readonly reason: string | null;
  readonly recovery: string | null;
  readonly retry: RetryOutcome;
  constructor(code: ErrorCode, info: HypercallErrorInfo, message?: string) {
    const label = info.name ?? `hypercall ${info.op}${info.subop === null ? '' : `/${info.subop}`}`;
    const errnoName = errnoNameOf(info.errno);
    super(code, message ?? `${label} failed: ${errnoName} (${describeErrno(info.errno)})`);
    this.errno = info.errno;
    this.errnoName = errnoName;
    this.op = info.op;
    this.subop = info.subop;
    this.opName = info.name;
    this.attempts = info.attempts;
    this.verdict = info.verdict;
    this.reason = info.reason;
    this.recovery = info.recovery;
    this.retry = info.retry;
  }
}

/** A failed hypercall (or privcmd ioctl), as hypercallError() turns it into a HypercallError. */
export interface HypercallFailure {
  /** Positive errno. */
  readonly errno: number;
  /** Hypercall number; -1 for a privcmd ioctl or mapping that is not a hypercall. */
  readonly op: number;
  readonly subop?: number | null;
  /** The table row's name, or the ioctl's ("privcmd.restrict"); null without one. */
  readonly name?: string | null;
  /** Times it was issued. Default 1. */
  readonly attempts?: number;
  /**
   * What the retry decision said when it did not re-issue (decideRetry's 'fail' answer). Its
   * kind gives the code: 'exhausted' XEN_ERR_RETRY_EXHAUSTED, 'errno-not-retryable'
   * XEN_ERR_HYPERCALL, any other refusal XEN_ERR_RETRY_REFUSED. Without one: XEN_ERR_HYPERCALL.
   */
  readonly decision?: { readonly kind: RefusalKind; readonly verdict: 'safe' | 'unsafe' | null; readonly reason: string; readonly recovery: string | null };
  /** The row's reason, which an ordinary failure (XEN_ERR_HYPERCALL) carries. */
  readonly rowReason?: string | null;
  /** The message, where the default (which says what the code means) is not enough. */
  readonly message?: string;
}

/**
 * The one place a failed hypercall becomes an error: the code, the retry outcome and the message
 * all follow from the failure and the retry decision, the same way for the runner, the typed
 * calls' own checks, the privcmd backend's ioctls and the mock's.
 */
export function hypercallError(f: HypercallFailure): HypercallError {
  const d = f.decision;
  const code = !d || d.kind === 'errno-not-retryable' ? ErrorCodes.HYPERCALL : d.kind === 'exhausted' ? ErrorCodes.RETRY_EXHAUSTED : ErrorCodes.RETRY_REFUSED;
  const attempts = f.attempts ?? 1;
  const info: HypercallErrorInfo = {
    errno: f.errno,
    op: f.op,
    subop: f.subop ?? null,
    name: f.name ?? null,
    attempts,
    verdict: d?.verdict ?? null,
    reason: code === ErrorCodes.HYPERCALL ? (f.rowReason ?? null) : d!.reason,
    recovery: d?.recovery ?? null,
    retry: code === ErrorCodes.HYPERCALL ? 'none' : code === ErrorCodes.RETRY_EXHAUSTED ? 'exhausted' : 'refused',
  };
  let message = f.message;
  if (message === undefined && code !== ErrorCodes.HYPERCALL) {
    const label = info.name ?? `hypercall ${info.op}${info.subop === null ? '' : `/${info.subop}`}`;
    message =
      code === ErrorCodes.RETRY_REFUSED
        ? `${label} failed with ${errnoNameOf(f.errno)} and was not re-issued: ${d!.reason.replace(/\.$/, '')}${d!.recovery ? `. Instead: ${d!.recovery}` : ''}`
        : `${label} failed with ${errnoNameOf(f.errno)} on all ${attempts} attempts`;
  }
  return new HypercallError(code, info, message);
}

/**
 * A memory_op reservation call that Xen answered with fewer extents than asked, and that made no
 * further progress when the rest was re-issued. Xen reports no errno for these ops (they return
 * the count done); `done` says how many extents, from the start of the list, are in place.
 */
export class ShortCountError extends XencallError {
  readonly opName: string;
  readonly done: number;
  readonly requested: number;
  /** How many times the op was issued, the re-issues of the rest included. */
  readonly attempts: number;
  constructor(opName: string, done: number, requested: number, attempts: number, hint: string) {
    super(ErrorCodes.SHORT_COUNT, `${opName}: ${done} of ${requested} extents done; re-issuing the rest made no progress (${hint})`);
    this.opName = opName;
    this.done = done;
    this.requested = requested;
    this.attempts = attempts;
  }
}

const byNumber = new Map<number, { name: string; desc: string }>();
const byName = new Map<string, number>();
for (const e of XEN_ERRNO) {
  // Keep the first name for a number: EAGAIN before EWOULDBLOCK, EDEADLK before EDEADLOCK.
  if (!byNumber.has(e.num)) byNumber.set(e.num, { name: e.name, desc: e.desc });
  byName.set(e.name, e.num);
}

/** "EFAULT" for 14; "E123" for numbers Xen's errno.h does not name. */
export function errnoNameOf(errno: number): string {
  return byNumber.get(errno)?.name ?? `E${errno}`;
}

export function describeErrno(errno: number): string {
  return byNumber.get(errno)?.desc ?? 'unknown error';
}

/** Whether `name` is an errno name in Xen's errno.h ("EFAULT"). */
export function isErrnoName(name: string): boolean {
  return byName.has(name);
}

/** 14 for "EFAULT". Throws for names that are not in Xen's errno.h. */
export function errnoNumber(name: string): number {
  const n = byName.get(name);
  if (n === undefined) throw new ValidationError('errno', `"${name}" is not an errno name in Xen's errno.h`);
  return n;
}

/**
 * The one place a raw privcmd result becomes an error: the kernel passes Xen's `long` through
 * unchanged, and values in [-4095, -1] are negated errnos (glibc's own convention).
 */
export function isErrorResult(result: bigint): boolean {
  return result < 0n && result >= -4095n;
}

/**
 * Why a hypercall that was waiting to be issued never was: its cancel signal's reason when that
 * is already typed (XEN_ERR_CLOSED from a closing handle), else XEN_ERR_ABORTED.
 */
export function notIssued(reason: unknown): XencallError {
  return reason instanceof XencallError ? reason : new XencallError(ErrorCodes.ABORTED, 'aborted before the hypercall was issued', { cause: reason });
}

/** A short description of any value, even one whose toString throws. */
export function describeValue(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}
