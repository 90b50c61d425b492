// Shared plumbing of the typed calls: argument parsing (zod, before any buffer is touched),
// buffer lifetimes, and issuing a table row's hypercall through the retry runner.

import type { z } from 'zod';
import type { BufferPool, HypercallBuffer, PageViews } from '../buffers.js';
import { ErrorCodes, ValidationError, XencallError, errnoNumber, hypercallError, type HypercallError } from '../errors.js';
import { decoderOf, encoderOf, type Decoded, type FieldMap, type StructLayout } from '../layout.js';
import { HYPERCALLS } from '../hypercalls/hypercalls.js';
import { rowByName, type ArgsSchemaOf, type TypedRowName } from '../hypercalls/table.js';
import { NOT_PARSED, compileParser, type FastParser } from '../hypercalls/fast-parse.js';
import type { Row } from '../hypercalls/row.js';
import { DOMCTL_PAYLOAD_OFFSET, SYSCTL_PAYLOAD_OFFSET, xen_domctl, xen_sysctl, xen_sysctl_physinfo } from '../hypercalls/structs.js';
import { XEN_DOMCTL_INTERFACE_VERSION, XEN_SYSCTL_INTERFACE_VERSION } from '../hypercalls/numbers.js';
import { issueOnceSync, mayReissue, runHypercall, runHypercallSync, type CallPlan, type Program, type RunEnv } from '../retry/runner.js';
import { decideRetry } from '../retry/decide.js';

export interface OpCtx {
  readonly pool: BufferPool;
  readonly env: RunEnv;
  /** The synchronous API's wait before a re-issue (the handle's sleep.sync). */
  readonly sleepSync?: (ms: number) => void;
  /** What the handle has learnt about the host (kept per handle; absent: learn it every time). */
  readonly host?: HostFacts;
}

/** Facts about the host that cannot change while Xen runs, read once per handle. */
export interface HostFacts {
  /** physinfo's max_cpu_id + 1. */
  cpuIds?: number;
}

export interface TypedOp<S extends z.ZodType = z.ZodType, R = unknown> {
  readonly row: Row;
  /** The row's argument schema (built, and zod loaded, on first use). */
  readonly schema: S;
  readonly run: (ctx: OpCtx, args: z.output<S>, row: Row) => Program<R>;
  /** Parses arguments as `schema` does: compiled from it for the common inputs, zod for the rest. */
  readonly parse: (input: unknown) => z.output<S>;
  /**
   * The same call as a plain function, for the synchronous API, where the call is simple enough
   * to have one (one hypercall): no generator, no driver.
   */
  readonly runSync?: (ctx: OpCtx, args: z.output<S>, row: Row) => R;
}

/** What a typed row's call works with: its arguments as its schema's parse gives them. */
export type ArgsOut<N extends TypedRowName> = z.output<ArgsSchemaOf<N>>;

/**
 * Declares a typed call for a table row. Its argument schema is the row's, and so is the type of
 * `args` in `run`: inferred from the schema the row defines, never written again here.
 */
export function typedOp<N extends TypedRowName, R>(
  rowName: N,
  run: (ctx: OpCtx, args: ArgsOut<N>, row: Row) => Program<R>,
  runSync?: (ctx: OpCtx, args: ArgsOut<N>, row: Row) => R,
): TypedOp<ArgsSchemaOf<N>, R> {
  type A = ArgsOut<N>;
  const row = rowByName(rowName);
  // `in`, not a read: reading builds the schema, which waits for the first call.
  if (!row || !('args' in row)) throw new Error(`typed call ${rowName} needs a table row with an args schema`);
  let fast: FastParser | undefined;
  const op: TypedOp<ArgsSchemaOf<N>, R> = {
    row,
    get schema() {
      return row.args as ArgsSchemaOf<N>;
    },
    run,
    runSync,
    parse: (input) => {
      const v = (fast ??= compileParser(op.schema))(input ?? {});
      return v === NOT_PARSED ? zodParse(op, input) : (v as A);
    },
  };
  return op;
}

/** zod's own parse, for what the compiled parser leaves to it: its issues name the field. */
function zodParse<S extends z.ZodType>(op: TypedOp<S, unknown>, input: unknown): z.output<S> {
  const r = op.schema.safeParse(input ?? {});
  if (r.success) return r.data as z.output<S>;
  const issues = r.error.issues.map((i) => ({ path: [op.row.name, ...i.path.map(String)].join('.'), message: i.message }));
  const first = issues[0]!;
  throw new ValidationError(first.path, first.message, issues);
}

/** Allocates buffers for the body and frees them however it ends. */
export function* withBuffers<T>(ctx: OpCtx, sizes: readonly number[], body: (bufs: HypercallBuffer[]) => Program<T>): Program<T> {
  const bufs = allocAll(ctx.pool, sizes, true);
  try {
    return yield* body(bufs);
  } finally {
    freeAll(ctx.pool, bufs);
  }
}

/** Copies 64-bit values into the start of a buffer, in one block where the memory is aligned. */
export function writeU64s(buf: HypercallBuffer, values: BigUint64Array): void {
  const b = buf.live().bytes;
  if (b.byteOffset % 8 === 0) new BigUint64Array(b.buffer, b.byteOffset, values.length).set(values);
  else b.set(new Uint8Array(values.buffer, values.byteOffset, values.length * 8));
}

/** The low 32 bits of each of the first `n` 64-bit slots of a buffer (little-endian). */
export function lowWords(buf: HypercallBuffer, n: number): Uint32Array {
  const b = buf.live().bytes;
  const out = new Uint32Array(n);
  if (b.byteOffset % 4 === 0) {
    const words = new Uint32Array(b.buffer, b.byteOffset, n * 2);
    for (let i = 0; i < n; i++) out[i] = words[2 * i]!;
  } else {
    const v = buf.view();
    for (let i = 0; i < n; i++) out[i] = v.getUint32(i * 8, true);
  }
  return out;
}

/** The plan of a row's hypercall with the given registers (missing ones are 0). */
function planOf(row: Row, args: readonly bigint[], inputs: readonly HypercallBuffer[], decoded: Record<string, unknown> | undefined): CallPlan {
  return { op: opOf(row), args: fiveRegisters(args), subop: row.subop, row, decoded, inputs };
}

/** The five registers the backend takes: `args` itself where it has five, else padded with 0. */
function fiveRegisters(args: readonly bigint[]): readonly bigint[] {
  return args.length === 5 ? args : [args[0] ?? 0n, args[1] ?? 0n, args[2] ?? 0n, args[3] ?? 0n, args[4] ?? 0n];
}

/** A row's hypercall number. Calls come in runs of the same row: it is looked up once per run. */
function opOf(row: Row): number {
  if (row !== lastPlanRow) {
    lastPlanRow = row;
    lastPlanOp = HYPERCALLS[row.hypercall].number;
  }
  return lastPlanOp;
}
let lastPlanRow: Row | undefined;
let lastPlanOp = 0;

/** Issues a row's hypercall with the given registers; `inputs` are restored before re-issues. */
export function issue(ctx: OpCtx, row: Row, args: readonly bigint[], inputs: readonly HypercallBuffer[], decoded?: Record<string, unknown>): Program<bigint> {
  return runHypercall(planOf(row, args, inputs, decoded), ctx.env);
}

/** issue() for the synchronous API: the runner's plain loop, no generator. */
export function issueSync(ctx: OpCtx, row: Row, args: readonly bigint[], inputs: readonly HypercallBuffer[], decoded?: Record<string, unknown>): bigint {
  const env = ctx.env;
  if (!mayReissue(row, decoded, env)) return issueOnceSync(opOf(row), fiveRegisters(args), row.subop, row, decoded, env);
  return runHypercallSync(planOf(row, args, inputs, decoded), env, ctx.sleepSync);
}

export interface EnvelopeResult<T> {
  /** The envelope's domain field after the call (Xen rewrites it for getdomaininfo/createdomain). */
  readonly domain: number;
  readonly out: T;
  readonly result: bigint;
}

/**
 * Reads a call's answer out of its struct while the buffer is still the call's: the buffer's
 * views, and where the payload starts in them.
 */
export type PayloadReader<T> = (mem: PageViews, at: number) => T;

/** struct xen_domctl or xen_sysctl: where the header's fields and the payload are. */
interface Envelope {
  readonly size: number;
  readonly cmd: number;
  readonly version: number;
  readonly interfaceVersion: number;
  /** The domain field's offset; -1 for sysctl, which has none. */
  readonly domain: number;
  readonly payload: number;
}

const DOMCTL: Envelope = {
  size: xen_domctl.size,
  cmd: xen_domctl.fields.cmd.offset,
  version: xen_domctl.fields.interface_version.offset,
  interfaceVersion: XEN_DOMCTL_INTERFACE_VERSION,
  domain: xen_domctl.fields.domain.offset,
  payload: DOMCTL_PAYLOAD_OFFSET,
};
const SYSCTL: Envelope = {
  size: xen_sysctl.size,
  cmd: xen_sysctl.fields.cmd.offset,
  version: xen_sysctl.fields.interface_version.offset,
  interfaceVersion: XEN_SYSCTL_INTERFACE_VERSION,
  domain: -1,
  payload: SYSCTL_PAYLOAD_OFFSET,
};

/**
 * Writes the envelope (cmd, interface_version, domain) and the payload into `buf` (zeroed) and
 * decodes the input struct where the retry decision reads it (a conditional row).
 */
function writeEnvelope(e: Envelope, buf: HypercallBuffer, row: Row, domain: number, layout: StructLayout | undefined, payload: Record<string, unknown>): Record<string, unknown> | undefined {
  const v = buf.view();
  v.setUint32(e.cmd, row.subop!, true);
  v.setUint32(e.version, e.interfaceVersion, true);
  if (e.domain >= 0) v.setUint16(e.domain, domain, true);
  if (!layout) return undefined;
  // A call that sends no payload fields (getdomaininfo) has nothing to encode: the struct is zeroed.
  if (payload !== NO_FIELDS) encoderOf(layout)(v, e.payload, payload);
  // Only a conditional row's condition reads the decoded arguments (verdictFor).
  return row.condition !== undefined ? decoderOf(layout)(v, e.payload) : undefined;
}

/** What the call left in the envelope: the domain field and the payload, read while `buf` is the call's. */
function readEnvelope<T>(e: Envelope, buf: HypercallBuffer, layout: StructLayout | undefined, read: PayloadReader<T> | undefined, result: bigint): EnvelopeResult<T> {
  const v = buf.view();
  const out = read ? read(buf.views(), e.payload) : ((layout ? decoderOf(layout)(v, e.payload) : {}) as T);
  return { domain: e.domain >= 0 ? v.getUint16(e.domain, true) : 0, out, result };
}

/** One envelope call in the pool's struct page: write, issue, read what Xen left, give the page back. */
function* envelopeCall<T>(
  ctx: OpCtx,
  e: Envelope,
  row: Row,
  domain: number,
  layout: StructLayout | undefined,
  payload: Record<string, unknown>,
  extra: readonly HypercallBuffer[],
  read: PayloadReader<T> | undefined,
): Program<EnvelopeResult<T>> {
  const buf = ctx.pool.take(e.size);
  try {
    const decodedIn = writeEnvelope(e, buf, row, domain, layout, payload);
    const result = yield* issue(ctx, row, [buf.address], extra.length ? [buf, ...extra] : [buf], decodedIn);
    return readEnvelope(e, buf, layout, read, result);
  } finally {
    ctx.pool.giveBack(buf);
  }
}

/**
 * envelopeCall() for the synchronous API: the same steps with issueSync() in place of the
 * runner's generator, as runHypercallSync() twins runHypercall(). Keep the two alike.
 */
function envelopeCallSync<T>(
  ctx: OpCtx,
  e: Envelope,
  row: Row,
  domain: number,
  layout: StructLayout | undefined,
  payload: Record<string, unknown>,
  extra: readonly HypercallBuffer[],
  read: PayloadReader<T> | undefined,
): EnvelopeResult<T> {
  const buf = ctx.pool.take(e.size);
  try {
    const decodedIn = writeEnvelope(e, buf, row, domain, layout, payload);
    // A call that cannot be re-issued needs no list of its inputs, and its registers are the
    // buffer's own (made once per buffer, and the typed calls' buffers are kept).
    const result = mayReissue(row, decodedIn, ctx.env)
      ? issueSync(ctx, row, [buf.address], extra.length ? [buf, ...extra] : [buf], decodedIn)
      : issueOnceSync(opOf(row), buf.asRegisters(), row.subop, row, decodedIn, ctx.env);
    return readEnvelope(e, buf, layout, read, result);
  } finally {
    ctx.pool.giveBack(buf);
  }
}

/**
 * One domctl: builds struct xen_domctl (cmd, interface_version, domain, payload) in the pool's
 * struct page, issues it and decodes the payload Xen left there (or reads it with `read`).
 * `extra` buffers are inputs too.
 */
export function domctl<F extends FieldMap, T = Decoded<F>>(
  ctx: OpCtx,
  row: Row,
  domain: number,
  layout: StructLayout<F> | undefined,
  payload: Partial<Decoded<F>>,
  extra: readonly HypercallBuffer[] = NO_BUFFERS,
  read?: PayloadReader<T>,
): Program<EnvelopeResult<T>> {
  return envelopeCall(ctx, DOMCTL, row, domain, layout, payload as Record<string, unknown>, extra, read);
}

/** One sysctl, as domctl() above but with struct xen_sysctl. */
export function sysctl<F extends FieldMap, T = Decoded<F>>(
  ctx: OpCtx,
  row: Row,
  layout: StructLayout<F> | undefined,
  payload: Partial<Decoded<F>>,
  extra: readonly HypercallBuffer[] = NO_BUFFERS,
  read?: PayloadReader<T>,
): Program<EnvelopeResult<T>> {
  return envelopeCall(ctx, SYSCTL, row, 0, layout, payload as Record<string, unknown>, extra, read);
}

const NO_BUFFERS: readonly HypercallBuffer[] = Object.freeze([]);

/** A typed call that is one domctl or sysctl: what it sends, and what it makes of Xen's answer. */
export interface EnvelopeOp<A, F extends FieldMap, T, R> {
  readonly layout?: StructLayout<F>;
  /** The domain the domctl is about (sysctl: none). */
  readonly domain?: (a: A) => number;
  /**
   * Sizes of the buffers the struct points Xen at (an array, a list): allocated before payload(),
   * inputs of the call (restored before a re-issue), freed once answer() has read them.
   */
  readonly buffers?: (a: A) => readonly number[];
  /** The payload's fields; it may fill the buffers. */
  readonly payload?: (a: A, bufs: readonly HypercallBuffer[]) => Partial<Decoded<F>>;
  /** Reads the answer out of the payload (default: the layout's decode). */
  readonly read?: PayloadReader<T>;
  readonly answer: (r: EnvelopeResult<T>, a: A, row: Row, bufs: readonly HypercallBuffer[]) => R;
}

/** The payload of a call that sends no fields. */
const NO_FIELDS: Record<string, unknown> = Object.freeze({});
const noPayload = (): Record<string, unknown> => NO_FIELDS;

/**
 * Declares a typed call that is exactly one domctl. From the one description come both the
 * program the promise API drives and a plain function for the synchronous API, which then runs
 * without a generator at all.
 */
export function domctlOp<N extends TypedRowName, R, F extends FieldMap = FieldMap, T = Decoded<F>>(rowName: N, spec: EnvelopeOp<ArgsOut<N>, F, T, R>): TypedOp<ArgsSchemaOf<N>, R> {
  return envelopeOp(DOMCTL, rowName, spec);
}

/** The same for a call that is exactly one sysctl. */
export function sysctlOp<N extends TypedRowName, R, F extends FieldMap = FieldMap, T = Decoded<F>>(rowName: N, spec: EnvelopeOp<ArgsOut<N>, F, T, R>): TypedOp<ArgsSchemaOf<N>, R> {
  return envelopeOp(SYSCTL, rowName, spec);
}

function envelopeOp<N extends TypedRowName, R, F extends FieldMap, T>(e: Envelope, rowName: N, spec: EnvelopeOp<ArgsOut<N>, F, T, R>): TypedOp<ArgsSchemaOf<N>, R> {
  const call = envelopeCalls(e, spec);
  return typedOp(rowName, call.run, call.runSync);
}

/** One envelope call of a spec, as a program and as a plain function: for typed calls made of several. */
export interface EnvelopeCalls<A, R> {
  readonly run: (ctx: OpCtx, a: A, row: Row) => Program<R>;
  readonly runSync: (ctx: OpCtx, a: A, row: Row) => R;
}

export function domctlCalls<R, A = any, F extends FieldMap = FieldMap, T = Decoded<F>>(spec: EnvelopeOp<A, F, T, R>): EnvelopeCalls<A, R> {
  return envelopeCalls(DOMCTL, spec);
}

export function sysctlCalls<R, A = any, F extends FieldMap = FieldMap, T = Decoded<F>>(spec: EnvelopeOp<A, F, T, R>): EnvelopeCalls<A, R> {
  return envelopeCalls(SYSCTL, spec);
}

function envelopeCalls<R, A, F extends FieldMap, T>(e: Envelope, spec: EnvelopeOp<A, F, T, R>): EnvelopeCalls<A, R> {
  const { layout, read, answer, buffers } = spec;
  const domainOf = spec.domain ?? (() => 0);
  const payloadOf = (spec.payload ?? noPayload) as (a: A, bufs: readonly HypercallBuffer[]) => Record<string, unknown>;
  return {
    *run(ctx, a, row) {
      const bufs = buffers ? allocAll(ctx.pool, buffers(a)) : NO_BUFFERS;
      try {
        return answer(yield* envelopeCall(ctx, e, row, domainOf(a), layout, payloadOf(a, bufs), bufs, read), a, row, bufs);
      } finally {
        freeAll(ctx.pool, bufs);
      }
    },
    runSync(ctx, a, row) {
      const bufs = buffers ? allocAll(ctx.pool, buffers(a)) : NO_BUFFERS;
      try {
        return answer(envelopeCallSync(ctx, e, row, domainOf(a), layout, payloadOf(a, bufs), bufs, read), a, row, bufs);
      } finally {
        freeAll(ctx.pool, bufs);
      }
    },
  };
}

/**
 * Buffers of the given sizes (at least a byte each); if one cannot be had, those made are freed.
 * `exact`: each buffer's `size` is the size asked for (a caller that hands Xen `buf.size`);
 * otherwise they are the pool's kept buffers (take()), whose size is whole pages.
 */
export function allocAll(pool: BufferPool, sizes: readonly number[], exact = false): HypercallBuffer[] {
  const bufs: HypercallBuffer[] = [];
  try {
    for (let i = 0; i < sizes.length; i++) {
      const size = Math.max(1, sizes[i]!);
      bufs.push(exact ? pool.alloc(size) : pool.take(size));
    }
  } catch (e) {
    freeAll(pool, bufs);
    throw e;
  }
  return bufs;
}

/** Gives back what allocAll() gave (those not freed already). */
export function freeAll(pool: BufferPool, bufs: readonly HypercallBuffer[]): void {
  for (let i = 0; i < bufs.length; i++) if (!bufs[i]!.freed) pool.giveBack(bufs[i]!);
}

/**
 * Declares a typed call that is one hypercall with no buffer (the arguments are the registers),
 * with a synchronous twin that runs without a generator.
 */
export function registerOp<N extends TypedRowName, R>(rowName: N, regs: (a: ArgsOut<N>) => readonly bigint[], answer: (result: bigint, a: ArgsOut<N>) => R): TypedOp<ArgsSchemaOf<N>, R> {
  return typedOp(
    rowName,
    function* (ctx, a, row) {
      return answer(yield* issue(ctx, row, regs(a), NO_BUFFERS), a);
    },
    (ctx, a, row) => answer(issueSync(ctx, row, regs(a), NO_BUFFERS), a),
  );
}

/** A struct passed by pointer in arg1 (memory_op, event_channel_op, ...): encode, issue, decode. */
export function* structCall<F extends FieldMap>(
  ctx: OpCtx,
  row: Row,
  cmd: bigint,
  layout: StructLayout<F>,
  payload: Partial<Decoded<F>>,
): Program<{ out: Decoded<F>; result: bigint }> {
  const buf = ctx.pool.take(layout.size);
  try {
    const v = buf.view();
    encoderOf(layout)(v, 0, payload as Record<string, unknown>);
    const decodedIn = row.condition !== undefined ? decoderOf(layout)(v, 0) : undefined;
    const result = yield* issue(ctx, row, [cmd, buf.address], [buf], decodedIn);
    return { out: decoderOf(layout)(v, 0) as Decoded<F>, result };
  } finally {
    ctx.pool.giveBack(buf);
  }
}

/** An error for a condition Xen does not report as one (getdomaininfo's next-domain answer). */
export function syntheticError(row: Row, errnoName: 'ESRCH', message: string): HypercallError {
  return hypercallError({ errno: errnoNumber(errnoName), op: HYPERCALLS[row.hypercall].number, subop: row.subop, name: row.name, message: `${row.name}: ${message} (${errnoName})` });
}

/**
 * After a call that returned 0 although one of its copies failed (Xen reassigned ret over the
 * -EFAULT: vcpu_affinity_domctl with both cpumaps), decides as if it had returned -EFAULT on
 * `attempt`: returns to re-issue from pristine inputs, or throws the error the runner would.
 */
export function* hiddenFault(ctx: OpCtx, row: Row, attempt: number, what: string): Program<void> {
  const errno = errnoNumber('EFAULT');
  const counters = ctx.env.stats.counters(row.name);
  counters.efaults++;
  const d = decideRetry({ errno, attempt, row, args: undefined, buffersCanFault: !ctx.env.backend.buffersNeverFault(), policy: ctx.env.policy });
  if (d.action === 'retry') {
    if (ctx.env.signal?.aborted) throw new XencallError(ErrorCodes.ABORTED, `${row.name}: aborted before re-issue ${attempt + 1}`);
    if (d.delayMs > 0) yield { type: 'sleep', ms: d.delayMs };
    counters.retries++;
    return;
  }
  const err = hypercallError({
    errno,
    op: HYPERCALLS[row.hypercall].number,
    subop: row.subop,
    name: row.name,
    attempts: attempt,
    decision: d,
    rowReason: row.reason,
    message: `${row.name} returned 0 but ${what} was not written back (a copy fault Xen did not report); ${d.reason}`,
  });
  if (err.code === ErrorCodes.RETRY_EXHAUSTED) counters.exhausted++;
  else if (err.code === ErrorCodes.RETRY_REFUSED) counters.refused++;
  else counters.failed++;
  throw err;
}

/**
 * physinfo's max_cpu_id + 1: how many cpu ids there are (libxc's xc_get_max_cpus). Xen reports
 * nr_cpu_ids - 1 (xen/common/sysctl.c:258 at RELEASE-4.17.7), which is fixed at boot, so one
 * read serves the handle's lifetime: a second call, or a cpu list refused for naming a cpu this
 * host lacks, issues nothing more.
 */
export function* cpuIdCount(ctx: OpCtx): Program<number> {
  const known = ctx.host?.cpuIds;
  if (known !== undefined) return known;
  const { out } = yield* sysctl(ctx, rowByName('sysctl.physinfo')!, xen_sysctl_physinfo, {});
  const n = out.max_cpu_id + 1;
  if (ctx.host) ctx.host.cpuIds = n;
  return n;
}
