// Shared plumbing of the typed calls: argument parsing (zod, before any buffer is touched),
// buffer lifetimes, and issuing a table row's hypercall through the retry runner.

import type { z } from 'zod';
import type { BufferPool, HypercallBuffer } from '../buffers.js';
import { ErrorCodes, HypercallError, ValidationError, XencallError, errnoNumber } from '../errors.js';
import { decode, encode, type Decoded, type FieldMap, type StructLayout } from '../layout.js';
import { HYPERCALLS } from '../hypercalls/hypercalls.js';
import { rowByName } from '../hypercalls/table.js';
import { NOT_PARSED, compileParser, type FastParser } from '../hypercalls/fast-parse.js';
import type { Row } from '../hypercalls/row.js';
import { DOMCTL_PAYLOAD_OFFSET, SYSCTL_PAYLOAD_OFFSET, xen_domctl, xen_sysctl, xen_sysctl_physinfo } from '../hypercalls/structs.js';
import { XEN_DOMCTL_INTERFACE_VERSION, XEN_SYSCTL_INTERFACE_VERSION } from '../hypercalls/numbers.js';
import { runHypercall, type Program, type RunEnv } from '../retry/runner.js';
import { decideRetry } from '../retry/decide.js';

export interface OpCtx {
  readonly pool: BufferPool;
  readonly env: RunEnv;
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
}

/** Declares a typed call for a table row; its argument schema is the row's. */
export function typedOp<R, A = any>(rowName: string, run: (ctx: OpCtx, args: A, row: Row) => Program<R>): TypedOp<z.ZodType<A>, R> {
  const row = rowByName(rowName);
  // `in`, not a read: reading builds the schema, which waits for the first call.
  if (!row || !('args' in row)) throw new Error(`typed call ${rowName} needs a table row with an args schema`);
  let fast: FastParser | undefined;
  const op: TypedOp<z.ZodType<A>, R> = {
    row,
    get schema() {
      return row.args as z.ZodType<A>;
    },
    run,
    parse: (input) => {
      const v = (fast ??= compileParser(op.schema))(input ?? {});
      return v === NOT_PARSED ? zodParse(op, input) : (v as A);
    },
  };
  return op;
}

/** Parses typed-call arguments; a failure is a ValidationError naming the field. */
export function parseArgs<S extends z.ZodType>(op: TypedOp<S, unknown>, input: unknown): z.output<S> {
  return op.parse(input);
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
  const bufs: HypercallBuffer[] = [];
  try {
    for (const s of sizes) bufs.push(ctx.pool.alloc(Math.max(1, s)));
    return yield* body(bufs);
  } finally {
    for (const b of bufs) if (!b.freed) ctx.pool.free(b);
  }
}

/** Copies 64-bit values into the start of a buffer, in one block where the memory is aligned. */
export function writeU64s(buf: HypercallBuffer, values: BigUint64Array): void {
  const b = buf.bytes;
  if (b.byteOffset % 8 === 0) new BigUint64Array(b.buffer, b.byteOffset, values.length).set(values);
  else b.set(new Uint8Array(values.buffer, values.byteOffset, values.length * 8));
}

/** The low 32 bits of each of the first `n` 64-bit slots of a buffer (little-endian). */
export function lowWords(buf: HypercallBuffer, n: number): Uint32Array {
  const b = buf.bytes;
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

/** Issues a row's hypercall with the given registers; `inputs` are restored before re-issues. */
export function issue(ctx: OpCtx, row: Row, args: readonly bigint[], inputs: readonly HypercallBuffer[], decoded?: Record<string, unknown>): Program<bigint> {
  const regs = [0n, 0n, 0n, 0n, 0n];
  args.forEach((a, i) => (regs[i] = a));
  return runHypercall({ op: HYPERCALLS[row.hypercall].number, args: regs, subop: row.subop, row, decoded, inputs }, ctx.env);
}

export interface EnvelopeResult<F extends FieldMap> {
  /** The envelope's domain field after the call (Xen rewrites it for getdomaininfo/createdomain). */
  readonly domain: number;
  readonly out: Decoded<F>;
  readonly result: bigint;
}

/**
 * One domctl: builds struct xen_domctl (cmd, interface_version, domain, payload) in a buffer,
 * issues it and decodes the payload Xen left there. `extra` buffers are inputs too.
 */
export function* domctl<F extends FieldMap>(
  ctx: OpCtx,
  row: Row,
  domain: number,
  layout: StructLayout<F> | undefined,
  payload: Partial<Decoded<F>>,
  extra: readonly HypercallBuffer[] = [],
): Program<EnvelopeResult<F>> {
  // withBuffers() inlined: one generator less for every effect to pass through.
  const buf = ctx.pool.alloc(xen_domctl.size);
  try {
    const v = buf.view();
    encode(xen_domctl, v, 0, { cmd: row.subop!, interface_version: XEN_DOMCTL_INTERFACE_VERSION, domain });
    if (layout) encode(layout, v, DOMCTL_PAYLOAD_OFFSET, payload);
    const decodedIn = layout && readsArgs(row) ? (decode(layout, v, DOMCTL_PAYLOAD_OFFSET) as Record<string, unknown>) : undefined;
    const result = yield* issue(ctx, row, [buf.address], [buf, ...extra], decodedIn);
    return {
      domain: v.getUint16(8, true),
      out: (layout ? decode(layout, v, DOMCTL_PAYLOAD_OFFSET) : {}) as Decoded<F>,
      result,
    };
  } finally {
    if (!buf.freed) ctx.pool.free(buf);
  }
}

/**
 * Whether the retry decision reads the decoded arguments: only a conditional row's condition
 * does (verdictFor). Elsewhere decoding the input struct before the call would be wasted work.
 */
function readsArgs(row: Row): boolean {
  return row.condition !== undefined;
}

/** One sysctl, as domctl() above but with struct xen_sysctl. */
export function* sysctl<F extends FieldMap>(
  ctx: OpCtx,
  row: Row,
  layout: StructLayout<F> | undefined,
  payload: Partial<Decoded<F>>,
  extra: readonly HypercallBuffer[] = [],
): Program<EnvelopeResult<F>> {
  const buf = ctx.pool.alloc(xen_sysctl.size);
  try {
    const v = buf.view();
    encode(xen_sysctl, v, 0, { cmd: row.subop!, interface_version: XEN_SYSCTL_INTERFACE_VERSION });
    if (layout) encode(layout, v, SYSCTL_PAYLOAD_OFFSET, payload);
    const decodedIn = layout && readsArgs(row) ? (decode(layout, v, SYSCTL_PAYLOAD_OFFSET) as Record<string, unknown>) : undefined;
    const result = yield* issue(ctx, row, [buf.address], [buf, ...extra], decodedIn);
    return { domain: 0, out: (layout ? decode(layout, v, SYSCTL_PAYLOAD_OFFSET) : {}) as Decoded<F>, result };
  } finally {
    if (!buf.freed) ctx.pool.free(buf);
  }
}

/** A struct passed by pointer in arg1 (memory_op, event_channel_op, ...): encode, issue, decode. */
export function* structCall<F extends FieldMap>(
  ctx: OpCtx,
  row: Row,
  cmd: bigint,
  layout: StructLayout<F>,
  payload: Partial<Decoded<F>>,
): Program<{ out: Decoded<F>; result: bigint }> {
  return yield* withBuffers(ctx, [layout.size], function* ([buf]) {
    const v = buf!.view();
    encode(layout, v, 0, payload);
    const decodedIn = readsArgs(row) ? (decode(layout, v, 0) as Record<string, unknown>) : undefined;
    const result = yield* issue(ctx, row, [cmd, buf!.address], [buf!], decodedIn);
    return { out: decode(layout, v, 0), result };
  });
}

/** An error for a condition Xen does not report as one (getdomaininfo's next-domain answer). */
export function syntheticError(row: Row, errnoName: 'ESRCH', message: string): HypercallError {
  return new HypercallError(
    ErrorCodes.HYPERCALL,
    {
      errno: 3,
      op: HYPERCALLS[row.hypercall].number,
      subop: row.subop,
      name: row.name,
      attempts: 1,
      verdict: null,
      reason: null,
      recovery: null,
      retry: 'none',
    },
    `${row.name}: ${message} (${errnoName})`,
  );
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
  const code = d.kind === 'exhausted' ? ErrorCodes.RETRY_EXHAUSTED : d.kind === 'errno-not-retryable' ? ErrorCodes.HYPERCALL : ErrorCodes.RETRY_REFUSED;
  if (code === ErrorCodes.RETRY_EXHAUSTED) counters.exhausted++;
  else if (code === ErrorCodes.RETRY_REFUSED) counters.refused++;
  else counters.failed++;
  throw new HypercallError(
    code,
    {
      errno,
      op: HYPERCALLS[row.hypercall].number,
      subop: row.subop,
      name: row.name,
      attempts: attempt,
      verdict: d.verdict,
      reason: d.reason,
      recovery: d.recovery,
      retry: code === ErrorCodes.RETRY_EXHAUSTED ? 'exhausted' : code === ErrorCodes.RETRY_REFUSED ? 'refused' : 'none',
    },
    `${row.name} returned 0 but ${what} was not written back (a copy fault Xen did not report); ${d.reason}`,
  );
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
