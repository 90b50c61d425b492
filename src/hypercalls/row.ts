// The format of the hypercall table: one row per hypercall, sub-op and (where a field changes
// the answer) mode. The table is data and the single source of truth: the retry decision, the
// typed calls' schemas, the CLI's `table` output and docs/hypercalls.md all read these rows.

import type { z } from 'zod';
import type { Decoded, FieldMap, StructLayout } from '../layout.js';
import type { HypercallName } from './hypercalls.js';
import { schemas, type ArgsSchema, type Schemas } from './schemas.js';

/**
 * Whether a hypercall may be re-issued after -EFAULT.
 * - `safe`: every EFAULT comes before any effect, or the effect is idempotent and re-issuing
 *   from pristine inputs gives the same result and state.
 * - `unsafe`: an EFAULT can come after a side effect that a re-issue would repeat or lose.
 * - `conditional`: it depends on the arguments; the row's condition decides.
 */
export type Verdict = 'safe' | 'unsafe' | 'conditional';

/**
 * How the op can fail on a guest copy.
 * - `copies`: it copies from/to caller memory and can return -EFAULT.
 * - `no-pointer`: no argument points at memory; it cannot fault on a copy.
 * - `short-count`: it never returns -EFAULT; a failed copy ends it early and the result is the
 *   count of items done (memory_op's reservation ops). Resume from the count.
 */
export type FaultClass = 'copies' | 'no-pointer' | 'short-count';

/** A place in Xen's source: path from the repository root, the function, and where it matters the lines ("407-597", "521-527, 532-538") at XEN_SOURCE.tag. */
export interface Citation {
  readonly file: string;
  readonly function: string;
  readonly lines?: string;
}

/** Where the citations were read: repository and tag. */
export const XEN_SOURCE = { repository: 'xen-project/xen', tag: 'RELEASE-4.17.7' } as const;

/**
 * The Xen release the table and the typed calls follow (XEN_SOURCE's). Struct layouts, sub-op
 * numbers and the order of copies and effects are that release's; typed calls refuse to run on
 * another (raw calls do not look).
 */
export const XEN_SUPPORTED_VERSION = { major: 4, minor: 17 } as const;

export interface RowCondition<A> {
  /** Human-readable rule, e.g. "unsafe when clear != 0". Printed by `xencall table`. */
  readonly text: string;
  /** The predicate over the decoded argument struct: true means this call must not be re-issued. */
  readonly unsafeWhen: (args: A) => boolean;
}

/** When a row that reads can act after all: a field of its argument struct decides. */
export interface ActsWhen<A> {
  /** Human-readable rule, e.g. "acts when clear != 0". Printed by `xencall table`. */
  readonly text: string;
  readonly actsWhen: (args: A) => boolean;
}

export interface RowSpec<F extends FieldMap = FieldMap> {
  /** Xen's spelling, lowercase, without prefix: "domctl.getdomaininfo", "domctl.shadow_op.clean". */
  readonly name: string;
  readonly hypercall: HypercallName;
  /** The sub-op (cmd) number, or null for a hypercall without sub-ops. */
  readonly subop: number | null;
  /** For a per-mode row: the field of the argument struct that selects the mode, and its value. */
  readonly mode?: { readonly field: keyof F & string; readonly value: number };
  /** The sub-op's argument struct (inside the domctl/sysctl envelope where there is one). */
  readonly layout?: StructLayout<F>;
  readonly verdict: Verdict;
  readonly condition?: RowCondition<Decoded<F>>;
  readonly faults: FaultClass;
  /** Uses continuations or can run long: the async path keeps it off the event loop. */
  readonly longRunning: boolean;
  /** Where an EFAULT can happen relative to the side effect. */
  readonly reason: string;
  readonly source: readonly Citation[];
  /** For unsafe (and conditional) rows: what the caller should do instead after an EFAULT. */
  readonly recovery?: string;
  /** False where the order of copies and effects could not be traced in Xen's source. */
  readonly verified: boolean;
  /**
   * Typed-call argument schema (zod), where xencall offers a typed call for this row. Built (and
   * zod loaded) the first time it is read; `'args' in row` says whether there is one without
   * building it.
   */
  readonly args?: z.ZodType;
  /**
   * The op only reads: nothing in Xen or in any domain changes (a pause held just while state is
   * read counts as reading), so issuing it has no effect beyond what it copies to the caller.
   * `true`, or the rule for when it acts after all (decoded from the argument struct). Absent:
   * it acts, or it was not traced. The raw CLI (`xencall call`) issues only read-only calls
   * unless given --allow-writes.
   */
  readonly readOnly?: true | ActsWhen<Decoded<F>>;
}

export type Row = RowSpec<FieldMap>;

/** A row as the table files write it: the argument schema as a function of the zod blocks. */
export type RowInput<F extends FieldMap = FieldMap> = Omit<RowSpec<F>, 'args'> & { readonly args?: ArgsSchema };

/**
 * A row as its definition knows it: its name as a literal type and, where it has a typed call,
 * the type of its argument schema (what the schema function returns). Nothing of this exists at
 * run time beyond the Row: it is how the typed calls' argument types, and the union of row
 * names, come from the table itself instead of being written again next to it.
 */
export type DefinedRow<N extends string, S> = Row & { readonly name: N } & (S extends z.ZodType ? { readonly args: S } : unknown);

export function defineRow<const F extends FieldMap, const N extends string, S extends z.ZodType | undefined = undefined>(
  spec: RowInput<F> & { readonly name: N; readonly args?: (s: Schemas) => S },
): DefinedRow<N, S> {
  if (!['safe', 'unsafe', 'conditional'].includes(spec.verdict)) {
    throw new Error(`row ${spec.name}: verdict must be safe, unsafe or conditional`);
  }
  if (!spec.verified && spec.verdict !== 'unsafe') {
    throw new Error(`row ${spec.name}: a row not traced in Xen's source is unsafe until proven otherwise`);
  }
  if (spec.verdict === 'conditional' && !spec.condition) {
    throw new Error(`row ${spec.name}: a conditional verdict needs a condition`);
  }
  if (spec.verdict !== 'safe' && !spec.recovery) {
    throw new Error(`row ${spec.name}: unsafe and conditional rows must say what to do instead`);
  }
  if (spec.condition && !spec.layout) {
    throw new Error(`row ${spec.name}: a condition needs the argument layout to decode`);
  }
  if (spec.readOnly !== undefined && !spec.verified) {
    throw new Error(`row ${spec.name}: only a row traced in Xen's source can be read-only`);
  }
  if (spec.readOnly === true && spec.verdict !== 'safe') {
    throw new Error(`row ${spec.name}: a read changes nothing, so a read-only row is safe to re-issue`);
  }
  if (spec.readOnly !== undefined && spec.readOnly !== true && !spec.layout) {
    throw new Error(`row ${spec.name}: a read-only rule needs the argument layout to decode`);
  }
  return extendRow(spec as unknown as Row, spec.args ? { args: spec.args } : {}) as DefinedRow<N, S>;
}

/**
 * A frozen copy of `row` with a layout or an argument schema added. The schema becomes a getter
 * that builds it on first read (copies keep the getter, so nothing is built by copying).
 */
function extendRow(row: Row, extra: { readonly layout?: StructLayout; readonly args?: ArgsSchema }): Row {
  // Every row gets the same properties in the same order (absent ones undefined), so the hot
  // paths' reads of row.subop, row.hypercall or row.condition meet one shape (two: rows with a
  // schema have its getter too), not one per combination of optional fields: a property read on
  // objects of many shapes is a slow generic lookup. The schema stays a getter that builds it on
  // first read; the index is a symbol, not enumerable, so spreads and copies do not carry it.
  const out: Record<string | symbol, unknown> = {
    name: row.name,
    hypercall: row.hypercall,
    subop: row.subop,
    mode: row.mode,
    layout: extra.layout ?? row.layout,
    verdict: row.verdict,
    condition: row.condition,
    faults: row.faults,
    longRunning: row.longRunning,
    reason: row.reason,
    source: row.source,
    recovery: row.recovery,
    verified: row.verified,
    readOnly: row.readOnly,
  };
  const schema = extra.args ?? schemaOf.get(row);
  if (schema) {
    let built: z.ZodType | undefined;
    Object.defineProperty(out, 'args', { get: () => (built ??= schema(schemas())), enumerable: true });
  }
  Object.defineProperty(out, ROW_INDEX, { value: rowCount++ });
  const frozen = Object.freeze(out) as unknown as Row;
  if (schema) schemaOf.set(frozen, schema);
  return frozen;
}

/** A row's schema function, so a copy of the row (withLayout) gets a getter of its own. */
const schemaOf = new WeakMap<Row, ArgsSchema>();

const ROW_INDEX = Symbol('row index');
let rowCount = 0;

/**
 * A small integer of the row's own, dense over every row made: per-handle tables (the retry
 * statistics) index arrays by it instead of hashing the row on every call.
 */
export function rowIndex(row: Row): number | undefined {
  return (row as unknown as { [ROW_INDEX]?: number })[ROW_INDEX];
}

/** Gives a row built by a helper the argument schema of its typed call. */
export function withArgs<R extends Row, S extends z.ZodType>(row: R, args: (s: Schemas) => S): R & { readonly args: S } {
  return extendRow(row, { args }) as R & { readonly args: S };
}

/** The verdict for one call: a conditional row resolves to safe or unsafe for its arguments. */
export function verdictFor(row: Row, decoded: Record<string, unknown> | undefined): 'safe' | 'unsafe' {
  if (row.verdict !== 'conditional') return row.verdict;
  // Without decoded arguments a conditional row cannot be proved safe.
  if (!decoded || !row.condition) return 'unsafe';
  return row.condition.unsafeWhen(decoded as never) ? 'unsafe' : 'safe';
}

/**
 * Gives a row built by a helper the layout of its argument struct, so the guest handles in it
 * are known (a raw caller can check where Xen will write, the runner which buffers to restore).
 */
export function withLayout<R extends Row>(row: R, layout: StructLayout): R {
  return extendRow(row, { layout }) as R;
}

/** Whether one call of the row only reads (the raw CLI's gate): a rule decides for these arguments. */
export function readOnlyFor(row: Row, decoded: Record<string, unknown> | undefined): boolean {
  if (row.readOnly === undefined) return false;
  if (row.readOnly === true) return true;
  // Without decoded arguments a rule cannot be proved to say "reads".
  return decoded !== undefined && !row.readOnly.actsWhen(decoded as never);
}

/** What a sub-op family's rows have in common; each row gives the rest and may override these. */
export type SubopRowSpec = Omit<RowInput, 'name' | 'hypercall' | 'subop' | 'faults' | 'longRunning' | 'verified' | 'verdict' | 'args'> &
  Partial<Pick<RowSpec, 'faults' | 'longRunning' | 'verified' | 'verdict'>>;

/**
 * A row factory for one hypercall's sub-ops: the name is `<hypercall>.<op>` in Xen's lowercase
 * spelling, the number comes from the header table, and the defaults (it copies, is not
 * long-running, was traced) apply unless the row says otherwise.
 */
export function subopRows<H extends HypercallName, T extends Readonly<Record<string, number>>>(
  hypercall: H,
  numbers: T,
  defaults: Partial<Pick<RowSpec, 'verdict' | 'faults' | 'longRunning' | 'verified'>> = {},
): <Op extends keyof T & string, S extends z.ZodType | undefined = undefined>(op: Op, spec: SubopRowSpec & { readonly args?: (s: Schemas) => S }) => DefinedRow<`${H}.${Lowercase<Op>}`, S> {
  return (op, spec) =>
    defineRow({
      name: `${hypercall}.${op.toLowerCase()}`,
      hypercall,
      subop: numbers[op]!,
      faults: 'copies',
      longRunning: false,
      verified: true,
      ...defaults,
      ...spec,
    } as RowInput & { name: string }) as never;
}
