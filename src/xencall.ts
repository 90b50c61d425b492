// The handle: libxencall's API (open, close, call0..call5, buffers, fd, buffers-never-fault) in
// camelCase, promise-first with synchronous twins, and the typed calls. Everything here is
// backend-agnostic: validation, classification, pristine inputs and retry sit above the Backend.

import { setMaxListeners } from 'node:events';
import type { Backend } from './backend.js';
import { openPrivcmd } from './backends/privcmd.js';
import { BufferPool, HypercallBuffer, SMALL_BIGINTS } from './buffers.js';
import { ErrorCodes, ValidationError, XenVersionUnsupportedError, XencallError, describeValue, isErrorResult, type XenVersion } from './errors.js';
import { callSignal, checkBackend, optionBag, optionalFunction } from './input.js';
import { handleOffsets, type StructLayout } from './layout.js';
import { HYPERCALL, XENVER, XEN_PAGE_SIZE } from './hypercalls/numbers.js';
import { XEN_SUPPORTED_VERSION } from './hypercalls/row.js';
import { classifyRaw, payloadOf, type Classification } from './hypercalls/table.js';
import { resolvePolicy, type RetryPolicy } from './retry/decide.js';
import { abortedBeforeStart, driveAsync, driveSync, issueOnceSync, mayReissue, runHypercall, runHypercallSync, sleepSync, type AsyncDriver, type CallPlan, type Program, type RunEnv, type SyncDriver } from './retry/runner.js';
import { RetryStats, type OpCounters } from './retry/stats.js';
import { bindTypedCalls, type TypedCalls, type TypedCallsSync } from './ops/index.js';
import { ForeignMemory } from './foreign-memory.js';
import type { HostFacts } from './ops/helpers.js';

/** libxencall's XENCALL_OPENFLAG_NON_REENTRANT: accepted for compatibility; JS is single-threaded per handle. */
export const XENCALL_OPENFLAG_NON_REENTRANT = 1;
const KNOWN_FLAGS = XENCALL_OPENFLAG_NON_REENTRANT;

/** XENVER_version's arguments: the sub-op, and no buffer. */
const XENVER_VERSION_ARGS: readonly bigint[] = Object.freeze([BigInt(XENVER.version), 0n, 0n, 0n, 0n]);

export interface OpenOptions {
  /** The backend to use. Default: the privcmd backend (Linux dom0), loaded lazily. */
  backend?: Backend;
  /** libxencall open flags; unknown bits are rejected. */
  flags?: number;
  /** Retry policy overrides (see docs/retry.md). `{ maxAttempts: 1 }` turns retry off. */
  retry?: Partial<RetryPolicy>;
  /** Injectable waits for the backoff: the synchronous API blocks, the promise API awaits. */
  sleep?: { sync?: (ms: number) => void; async?: (ms: number, signal?: AbortSignal) => Promise<void> };
}

export interface CallOptions {
  /** Cancels the call between attempts (never in the middle of a hypercall). */
  signal?: AbortSignal;
}

export type ArgValue = number | bigint;

/** Opens a handle; the promise API's entry point. */
export async function open(options?: OpenOptions): Promise<Xencall> {
  return openSync(options);
}

/** Opens a handle synchronously (the backend, if not given, is the privcmd one). */
export function openSync(options?: OpenOptions): Xencall {
  // Every option is checked before a privcmd node is opened, so a bad one leaks no fd.
  const o = handleOptions(options);
  return new Xencall(o.backend ?? openPrivcmd(), options);
}

interface HandleOptions {
  readonly backend: Backend | undefined;
  readonly policy: RetryPolicy;
  readonly sleepSync: ((ms: number) => void) | undefined;
  readonly sleepAsync: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
}

/** Validates open()'s options as a whole: each bad field is a ValidationError naming it. */
function handleOptions(options: OpenOptions | undefined): HandleOptions {
  const o = optionBag('options', options);
  const backend = o.backend === undefined ? undefined : checkBackend('backend', o.backend);
  const flags = o.flags ?? 0;
  // Checked as a number, not with `&`: bitwise operators cut to 32 bits, so 2^32 would pass as 0.
  if (typeof flags !== 'number' || !Number.isInteger(flags) || flags < 0 || flags > KNOWN_FLAGS || (flags & ~KNOWN_FLAGS) !== 0) {
    throw new ValidationError('flags', `unknown open flags ${describeValue(flags)} (known: XENCALL_OPENFLAG_NON_REENTRANT = 1)`);
  }
  const sleep = optionBag('sleep', o.sleep);
  return {
    backend,
    policy: resolvePolicy(o.retry),
    sleepSync: optionalFunction('sleep.sync', sleep.sync),
    sleepAsync: optionalFunction('sleep.async', sleep.async),
  };
}

export class Xencall {
  readonly backend: Backend;
  readonly policy: RetryPolicy;
  /** Typed calls returning promises: xc.domctl.getdomaininfo({ domain: 0 }). */
  readonly domctl: TypedCalls['domctl'];
  readonly sysctl: TypedCalls['sysctl'];
  readonly xen_version: TypedCalls['xen_version'];
  readonly memory_op: TypedCalls['memory_op'];
  readonly event_channel_op: TypedCalls['event_channel_op'];
  readonly hvm_op: TypedCalls['hvm_op'];
  /** The same typed calls, synchronous: xc.sync.domctl.getdomaininfo({ domain: 0 }). */
  readonly sync: TypedCallsSync;
  /** Other domains' memory mapped into this process: xc.foreignMemory.map(domid, gfns). */
  readonly foreignMemory: ForeignMemory;

  /** @internal */ readonly pool: BufferPool;
  /** @internal */ readonly retryStats = new RetryStats();
  /** @internal Host facts the typed calls learn once (the cpu id count). */
  readonly host: HostFacts = {};
  private closed = false;
  /** Promise-API calls not yet settled: buffers and the backend are released after the last. */
  private inflight = 0;
  /** Aborted by close(): ends backoff waits and cancels hypercalls still queued in the backend. */
  private readonly closing = closingController();
  /** @internal The synchronous API's wait before a re-issue. */
  readonly syncSleep: (ms: number) => void;
  private readonly sleepAsync: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;

  constructor(backend: Backend, options?: OpenOptions) {
    const o = handleOptions(options);
    this.backend = checkBackend('backend', backend);
    this.policy = o.policy;
    this.pool = new BufferPool(backend);
    this.syncSleep = o.sleepSync ?? sleepSync;
    this.sleepAsync = o.sleepAsync;
    const typed = bindTypedCalls(this);
    this.domctl = typed.async.domctl;
    this.sysctl = typed.async.sysctl;
    this.xen_version = typed.async.xen_version;
    this.memory_op = typed.async.memory_op;
    this.event_channel_op = typed.async.event_channel_op;
    this.hvm_op = typed.async.hvm_op;
    this.sync = typed.sync;
    this.foreignMemory = new ForeignMemory(backend, () => this.checkOpen());
  }

  /** libxencall's xencall_fd(): the privcmd descriptor (-1 for the mock). */
  get fd(): number {
    this.checkOpen();
    return this.backend.fd;
  }

  /** libxencall's xencall_buffers_never_fault(). */
  buffersNeverFault(): boolean {
    this.checkOpen();
    return this.backend.buffersNeverFault();
  }

  /**
   * Restricts the handle to one domain (IOCTL_PRIVCMD_RESTRICT). Afterwards raw hypercalls fail
   * with EPERM, as the kernel says; there is no way back.
   */
  restrict(domid: number): void {
    this.checkOpen();
    if (!Number.isInteger(domid) || domid < 0 || domid >= 0x7ff0) throw new ValidationError('domid', `must be an ordinary domain id (0..32751), got ${describeValue(domid)}`);
    if (!this.backend.restrict) throw new XencallError(ErrorCodes.BACKEND_UNAVAILABLE, `the ${this.backend.kind} backend cannot restrict its handle`);
    this.backend.restrict(domid);
  }

  /** The domain this handle was restricted to, or null. */
  get restricted(): number | null {
    return this.backend.restricted ?? null;
  }

  /**
   * Closes the handle. Idempotent. New calls fail with XEN_ERR_CLOSED at once. A promise-API call
   * still in flight either finishes correctly (its hypercall was already issued: the result is
   * decoded from its buffers, which are freed only after it ends) or rejects with XEN_ERR_CLOSED
   * (it was waiting to be issued or to be re-issued; nothing more is sent). Foreign mappings,
   * buffers and the backend are released when the last such call settles, at once when there is
   * none.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort(new XencallError(ErrorCodes.CLOSED, 'the handle was closed'));
    if (this.inflight === 0) this.release();
  }

  /** `using xc = openSync()`: close() at the end of the block. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * `await using xc = await open()`: close(), then wait until every call that was in flight has
   * settled and the backend is released (close() alone returns at once).
   */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    if (this.released) return Promise.resolve();
    return (this.whenReleased ??= new Promise<void>((resolve) => {
      this.onReleased = resolve;
    }));
  }

  private released = false;
  private whenReleased: Promise<void> | undefined;
  private onReleased: (() => void) | undefined;

  private release(): void {
    try {
      this.foreignMemory.unmapAll();
      this.pool.drain();
    } finally {
      try {
        this.backend.close();
      } finally {
        this.released = true;
        this.onReleased?.();
      }
    }
  }

  private readonly settled = (): void => {
    if (--this.inflight === 0 && this.closed) this.release();
  };

  get isClosed(): boolean {
    return this.closed;
  }

  // ---- buffers ---------------------------------------------------------------------------

  /** xencall_alloc_buffer(): `size` bytes of hypercall-safe memory, zeroed. */
  allocBuffer(size: number): HypercallBuffer {
    this.checkOpen();
    return this.pool.alloc(size);
  }

  /** xencall_free_buffer(). */
  freeBuffer(buf: HypercallBuffer): void {
    this.checkOpen();
    if (!(buf instanceof HypercallBuffer)) throw new ValidationError('buffer', `must be a HypercallBuffer from allocBuffer(), got ${describeValue(buf)}`);
    this.pool.free(buf);
  }

  /** xencall_alloc_buffer_pages(): `pages` whole pages. */
  allocBufferPages(pages: number): HypercallBuffer {
    this.checkOpen();
    if (!Number.isInteger(pages) || pages < 1 || pages > 1 << 18) {
      throw new ValidationError('pages', `must be an integer from 1 to ${1 << 18}, got ${describeValue(pages)}`);
    }
    return this.pool.alloc(pages * XEN_PAGE_SIZE);
  }

  /** xencall_free_buffer_pages(). */
  freeBufferPages(buf: HypercallBuffer): void {
    this.freeBuffer(buf);
  }

  // ---- raw calls -------------------------------------------------------------------------

  /**
   * Issues hypercall `op` with up to five arguments (missing ones are 0). Resolves with Xen's
   * non-negative result as a bigint (all 64 bits); rejects with HypercallError otherwise. The
   * call is classified against the table by reading its sub-op from the caller's buffers, and
   * retried after EFAULT only where the table says it is safe.
   */
  hypercall(op: ArgValue, args: readonly ArgValue[] = [], options?: CallOptions): Promise<bigint> {
    try {
      const signal = callSignal(options);
      return this.runAsync(runHypercall(this.rawPlan(op, args), this.env(signal)), signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The synchronous twin of hypercall(). */
  hypercallSync(op: ArgValue, args: readonly ArgValue[] = NO_ARGS): bigint {
    // The same steps as runHypercall() under driveSync(), without the generator; and where the
    // call cannot be re-issued (always, with buffers that cannot fault), without a plan either.
    this.checkOpen();
    const opNum = typeof op === 'number' && op >>> 0 === op ? op : opNumber(op);
    const regs = registers(args);
    const c = classifyRaw(opNum, regs, this.pool.readU32Bound, this.pool.reader, args);
    const env = this.plainEnv ?? this.env();
    if (!mayReissue(c.row, c.decoded, env)) return issueOnceSync(opNum, regs, c.subop, c.row, c.decoded, env);
    return runHypercallSync({ op: opNum, args: regs, subop: c.subop, row: c.row, decoded: c.decoded, inputs: () => this.reachableBuffers(regs, c) }, env, this.syncSleep);
  }

  call0(op: ArgValue): Promise<bigint> {
    return this.hypercall(op, []);
  }
  call1(op: ArgValue, a1: ArgValue): Promise<bigint> {
    return this.hypercall(op, [a1]);
  }
  call2(op: ArgValue, a1: ArgValue, a2: ArgValue): Promise<bigint> {
    return this.hypercall(op, [a1, a2]);
  }
  call3(op: ArgValue, a1: ArgValue, a2: ArgValue, a3: ArgValue): Promise<bigint> {
    return this.hypercall(op, [a1, a2, a3]);
  }
  call4(op: ArgValue, a1: ArgValue, a2: ArgValue, a3: ArgValue, a4: ArgValue): Promise<bigint> {
    return this.hypercall(op, [a1, a2, a3, a4]);
  }
  call5(op: ArgValue, a1: ArgValue, a2: ArgValue, a3: ArgValue, a4: ArgValue, a5: ArgValue): Promise<bigint> {
    return this.hypercall(op, [a1, a2, a3, a4, a5]);
  }
  call0Sync(op: ArgValue): bigint {
    return this.hypercallSync(op, []);
  }
  call1Sync(op: ArgValue, a1: ArgValue): bigint {
    return this.hypercallSync(op, [a1]);
  }
  call2Sync(op: ArgValue, a1: ArgValue, a2: ArgValue): bigint {
    return this.hypercallSync(op, [a1, a2]);
  }
  call3Sync(op: ArgValue, a1: ArgValue, a2: ArgValue, a3: ArgValue): bigint {
    return this.hypercallSync(op, [a1, a2, a3]);
  }
  call4Sync(op: ArgValue, a1: ArgValue, a2: ArgValue, a3: ArgValue, a4: ArgValue): bigint {
    return this.hypercallSync(op, [a1, a2, a3, a4]);
  }
  call5Sync(op: ArgValue, a1: ArgValue, a2: ArgValue, a3: ArgValue, a4: ArgValue, a5: ArgValue): bigint {
    return this.hypercallSync(op, [a1, a2, a3, a4, a5]);
  }

  // ---- statistics ------------------------------------------------------------------------

  /** Per-op counters: calls, attempts, EFAULTs, retries, recoveries, refusals, exhaustions. */
  stats(): Record<string, OpCounters> {
    return this.retryStats.snapshot();
  }

  resetStats(): void {
    this.retryStats.reset();
  }

  // ---- internals -------------------------------------------------------------------------

  /** @internal */
  env(signal?: AbortSignal): RunEnv {
    // Without a signal the environment is the same for every call: built once.
    if (!signal) return (this.plainEnv ??= { backend: this.backend, policy: this.policy, stats: this.retryStats, signal: undefined, canFault: this.canFault() });
    return { backend: this.backend, policy: this.policy, stats: this.retryStats, signal, canFault: this.canFault() };
  }
  private plainEnv: RunEnv | undefined;
  private buffersCanFault: boolean | undefined;

  /**
   * Whether the backend's buffers can fault. A backend's answer is fixed for its life
   * (libxencall's buffers_never_fault is whether /dev/xen/hypercall opened), so it is asked once.
   */
  private canFault(): boolean {
    return (this.buffersCanFault ??= !this.backend.buffersNeverFault());
  }
  private syncDriver: SyncDriver | undefined;
  private plainDriver: AsyncDriver | undefined;

  /** @internal Runs a program synchronously. */
  runSync<T>(program: Program<T>): T {
    this.checkOpen();
    return driveSync(program, (this.syncDriver ??= { backend: this.backend, sleep: this.syncSleep }));
  }

  /**
   * @internal Runs a program with the promise driver. A signal that has already fired stops it
   * before its first step: nothing is issued.
   */
  runAsync<T>(program: Program<T>, signal?: AbortSignal): Promise<T> {
    this.checkOpen();
    if (signal?.aborted) return Promise.reject(abortedBeforeStart(signal));
    this.inflight++;
    const driver = signal
      ? { backend: this.backend, sleep: this.sleepAsync, signal, closed: this.closing.signal, settled: this.settled }
      : (this.plainDriver ??= { backend: this.backend, sleep: this.sleepAsync, closed: this.closing.signal, settled: this.settled });
    return driveAsync(program, driver);
  }

  /**
   * @internal Before every typed call: refuses it (XenVersionUnsupportedError) on a Xen other
   * than the one the table follows. The handle's first typed call asks XENVER_version, which
   * takes no buffer (Xen answers major << 16 | minor); the answer is kept, so every later call
   * costs one boolean test. A call whose signal has already fired asks nothing: runAsync then
   * rejects it with XEN_ERR_ABORTED before anything is issued.
   */
  checkXenVersion(signal?: AbortSignal): void {
    if (this.xenVersionSupported) return;
    if (signal?.aborted) return;
    this.askXenVersion();
  }
  /** True once XENVER_version answered the supported version (or could not be asked). */
  private xenVersionSupported = false;
  /** The other version XENVER_version answered: typed calls are refused without asking again. */
  private unsupportedXen: XenVersion | undefined;

  private askXenVersion(): void {
    if (!this.unsupportedXen) {
      const r = this.backend.hypercall(HYPERCALL.xen_version, XENVER_VERSION_ARGS);
      // An error (EPERM on a restricted fd) tells nothing about the version; the typed call
      // then meets the same refusal on its own, with its own error.
      const running = isErrorResult(r) ? null : { major: Number(r >> 16n) & 0xffff, minor: Number(r) & 0xffff };
      if (!running || (running.major === XEN_SUPPORTED_VERSION.major && running.minor === XEN_SUPPORTED_VERSION.minor)) {
        this.xenVersionSupported = true;
        return;
      }
      this.unsupportedXen = running;
    }
    throw new XenVersionUnsupportedError(this.unsupportedXen, XEN_SUPPORTED_VERSION);
  }

  /** @internal */
  checkOpen(): void {
    if (this.closed) throw new XencallError(ErrorCodes.CLOSED, 'this xencall handle was closed; open a new one');
  }

  /** Validates and classifies a raw call: what runHypercall() needs to issue it. */
  private rawPlan(op: ArgValue, args: readonly ArgValue[]): CallPlan {
    this.checkOpen();
    const opNum = typeof op === 'number' && op >>> 0 === op ? op : opNumber(op);
    const regs = registers(args);
    // The struct is decoded only where the row choice or the verdict reads it.
    const c = classifyRaw(opNum, regs, this.pool.readU32Bound, this.pool.reader, args);
    // Pristine inputs are only ever restored before a re-issue, so the runner asks for the
    // buffers the call can reach only when a re-issue is possible (never with /dev/xen/hypercall).
    const inputs = this.canFault() ? () => this.reachableBuffers(regs, c) : NO_BUFFERS;
    return { op: opNum, args: regs, subop: c.subop, row: c.row, decoded: c.decoded, inputs };
  }

  /** Buffers a call can read: those its arguments point into, and those its struct's handles point into. */
  private reachableBuffers(args: readonly bigint[], c: Classification): HypercallBuffer[] {
    const out: HypercallBuffer[] = [];
    const add = (b: HypercallBuffer | undefined) => {
      if (b && !out.includes(b)) out.push(b);
    };
    for (const a of args) add(this.pool.find(a));
    const layout = c.row?.layout;
    const at = c.payloadAddress ?? (c.hypercall ? payloadOf(c.hypercall, args) : undefined);
    if (layout && at !== undefined) {
      const v = this.pool.reader(at, layout.size);
      if (v) for (const off of handleOffsetsOf(layout)) add(this.pool.find(v.getBigUint64(off, true)));
    }
    return out;
  }
}

const U64_LIMIT = 1n << 64n;
const NO_BUFFERS: readonly HypercallBuffer[] = Object.freeze([]);
const NO_ARGS: readonly ArgValue[] = Object.freeze([]);

/** A raw call's hypercall number: `op >>> 0 === op` took the plain ones; this checks the rest and names the field. */
function opNumber(op: unknown): number {
  if (typeof op === 'number' && Number.isInteger(op) && op >= 0 && op <= 0xffffffff) return op;
  const wide = toU64('op', op);
  if (wide > 0xffffffffn) throw new ValidationError('op', `hypercall number ${wide} is out of range`);
  return Number(wide);
}

/** A raw call's five registers from its up to five arguments (missing ones are 0), each checked. */
function registers(args: readonly ArgValue[]): bigint[] {
  if (!Array.isArray(args) || args.length > 5) {
    throw new ValidationError('args', `a hypercall takes at most five arguments, got ${Array.isArray(args) ? args.length : typeof args}`);
  }
  const n = args.length;
  return [n > 0 ? register(args, 0) : 0n, n > 1 ? register(args, 1) : 0n, n > 2 ? register(args, 2) : 0n, n > 3 ? register(args, 3) : 0n, n > 4 ? register(args, 4) : 0n];
}

/**
 * One argument as a register. Numbers from 0 to 1023 come from SMALL_BIGINTS and other
 * non-negative safe integers and bigints below 2^64 are taken as they are (no bigint made per
 * call); toU64() does the rest and names the field (the name is only built when it is needed).
 */
function register(args: readonly ArgValue[], i: number): bigint {
  const a = args[i];
  if (typeof a === 'number') {
    if (a >>> 0 === a) return a < SMALL_BIGINTS.length ? SMALL_BIGINTS[a]! : BigInt(a);
    if (Number.isSafeInteger(a) && a >= 0) return BigInt(a);
  } else if (typeof a === 'bigint' && a >= 0n && a < U64_LIMIT) return a;
  return toU64(`args[${i}]`, a);
}

/**
 * The controller close() aborts. Every call waiting in the backend listens to its signal, and
 * thousands may wait at once: that is the design, not a listener leak, so the limit is lifted.
 */
function closingController(): AbortController {
  const c = new AbortController();
  setMaxListeners(0, c.signal);
  return c;
}

/** handleOffsets() per layout, computed once: layouts are frozen data. */
const handleOffsetCache = new WeakMap<StructLayout, readonly number[]>();
function handleOffsetsOf(layout: StructLayout): readonly number[] {
  let o = handleOffsetCache.get(layout);
  if (!o) handleOffsetCache.set(layout, (o = handleOffsets(layout)));
  return o;
}

/** Accepts a non-negative integer below 2^64, or a negative one down to -2^63 (as C's cast would). */
export function toU64(field: string, v: unknown): bigint {
  if (typeof v === 'bigint') {
    if (v >= -(1n << 63n) && v < 1n << 64n) return BigInt.asUintN(64, v);
  } else if (typeof v === 'number' && Number.isSafeInteger(v)) {
    return v >= 0 ? BigInt(v) : BigInt.asUintN(64, BigInt(v));
  }
  throw new ValidationError(field, `must be an integer (number or bigint) in the 64-bit range, got ${describeValue(v)}`);
}
