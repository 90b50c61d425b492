// The table: every row, indexed for lookup by name and by (hypercall, sub-op, mode).
// Lookups are the only way the rest of the library learns what a hypercall is.

import { decode } from '../layout.js';
import { HYPERCALLS, hypercallByNumber, type HypercallName, type HypercallSpec } from './hypercalls.js';
import type { Row } from './row.js';
import { DM_OP_ROWS } from './rows/dm-op.js';
import { DOMCTL_ROWS } from './rows/domctl.js';
import { EVENT_CHANNEL_ROWS } from './rows/event-channel.js';
import { GRANT_TABLE_ROWS } from './rows/grant-table.js';
import { HVM_OP_ROWS } from './rows/hvm-op.js';
import { MEMORY_OP_ROWS } from './rows/memory-op.js';
import { NO_SUBOP_ROWS } from './rows/no-subops.js';
import { PHYSDEV_OP_ROWS } from './rows/physdev-op.js';
import { SCHED_OP_ROWS } from './rows/sched-op.js';
import { CONSOLE_IO_ROWS, XEN_VERSION_ROWS } from './rows/small.js';
import { SYSCTL_ROWS } from './rows/sysctl.js';

const ROWS = [
  ...XEN_VERSION_ROWS,
  ...DOMCTL_ROWS,
  ...SYSCTL_ROWS,
  ...MEMORY_OP_ROWS,
  ...EVENT_CHANNEL_ROWS,
  ...GRANT_TABLE_ROWS,
  ...SCHED_OP_ROWS,
  ...HVM_OP_ROWS,
  ...PHYSDEV_OP_ROWS,
  ...DM_OP_ROWS,
  ...CONSOLE_IO_ROWS,
  ...NO_SUBOP_ROWS,
];

export const TABLE: readonly Row[] = Object.freeze(ROWS);

/** Every row as the table files define it, its name a literal type (a type only: TABLE is the data). */
export type TableRow = (typeof ROWS)[number];
/** The name of every row in the table: "domctl.getdomaininfo", "domctl.shadow_op.clean", "mmu_update", ... */
export type RowName = TableRow['name'];
/** The rows that have a typed call: those with an argument schema. */
export type TypedRow = Extract<TableRow, { readonly args: unknown }>;
export type TypedRowName = TypedRow['name'];
/** A typed row's argument schema, by its name. */
export type ArgsSchemaOf<N extends TypedRowName> = Extract<TypedRow, { readonly name: N }>['args'];

const byName = new Map<string, Row>();

/** The rows of one (hypercall, sub-op), with what classification needs to know about them up front. */
interface SubopRows {
  readonly rows: readonly Row[];
  /** The row whose layout decodes the argument struct (a layout row first, else the first). */
  readonly withLayout: Row;
  /** The row without a mode: the answer when no per-mode row matches. */
  readonly plain: Row | undefined;
  /** Whether a row's choice or verdict reads the decoded struct (a per-mode row or a condition). */
  readonly decides: boolean;
  /**
   * The raw API's answer for every call of this (hypercall, sub-op) where no row reads the
   * struct: one frozen object, so classifying such a call allocates nothing.
   */
  readonly fixed: Classification | undefined;
}

/** One hypercall's rows by sub-op: small sub-ops in an array, the rest in a map, the row without one aside. */
interface OpRows {
  readonly hypercall: HypercallSpec;
  /**
   * Where the raw API reads the sub-op, flattened from hypercall.subop so every hypercall's entry
   * has one shape: 'arg' with its register and mask, 'struct' with its register (at offset 0,
   * as for domctl and sysctl), else 'other' (subopOf() decides).
   */
  readonly subopIn: 'arg' | 'struct' | 'other';
  readonly subopArg: number;
  readonly subopMask: number;
  readonly small: (SubopRows | undefined)[];
  readonly large: Map<number, SubopRows>;
  readonly none: SubopRows | undefined;
}

/** Sub-ops below this are array-indexed: every sub-op of the hypercalls a toolstack issues most. */
const SMALL_SUBOPS = 256;

/** By hypercall number (all below 64): a lookup per call that builds nothing and hashes nothing. */
const byOp: (OpRows | undefined)[] = [];

{
  const lists = new Map<number, Map<number | null, Row[]>>();
  for (const row of TABLE) {
    if (byName.has(row.name)) throw new Error(`duplicate table row ${row.name}`);
    byName.set(row.name, row);
    const number = HYPERCALLS[row.hypercall].number;
    const perOp = lists.get(number) ?? new Map<number | null, Row[]>();
    lists.set(number, perOp);
    const list = perOp.get(row.subop) ?? [];
    list.push(row);
    perOp.set(row.subop, list);
  }
  for (const [number, perOp] of lists) {
    const hypercall = hypercallByNumber(number)!;
    const entry = (subop: number | null, rows: Row[]): SubopRows => {
      const plain = rows.find((r) => !r.mode);
      const decides = rows.some((r) => r.mode !== undefined || r.condition !== undefined);
      return {
        rows,
        withLayout: rows.find((r) => r.layout) ?? rows[0]!,
        plain,
        decides,
        fixed: decides ? undefined : Object.freeze({ hypercall, subop, row: plain, decoded: undefined, payloadAddress: undefined }),
      };
    };
    const loc = hypercall.subop;
    const op: OpRows = {
      hypercall,
      subopIn: loc?.from === 'arg' ? 'arg' : loc?.from === 'struct' && loc.offset === 0 ? 'struct' : 'other',
      subopArg: loc?.from === 'arg' || loc?.from === 'struct' ? loc.arg : 0,
      subopMask: loc?.from === 'arg' ? (loc.mask ?? 0xffffffff) : 0xffffffff,
      small: [],
      large: new Map(),
      none: perOp.has(null) ? entry(null, perOp.get(null)!) : undefined,
    };
    for (const [subop, rows] of perOp) {
      if (subop === null) continue;
      if (subop >= 0 && subop < SMALL_SUBOPS) op.small[subop] = entry(subop, rows);
      else op.large.set(subop, entry(subop, rows));
    }
    byOp[number] = op;
  }
}

/**
 * The rows of (hypercall, sub-op). A hypercall whose sub-ops the table does not list one by one
 * has a single row for all of them (platform_op, vcpu_op, kexec_op, ...): that is the fallback.
 */
function subopRows(op: OpRows, subop: number | null): SubopRows | undefined {
  if (subop === null) return op.none;
  return (subop >= 0 && subop < SMALL_SUBOPS ? op.small[subop] : op.large.get(subop)) ?? op.none;
}

export function rowByName(name: string): Row | undefined {
  return byName.get(name);
}

/** Reads the caller's memory; null where the address is not inside a live hypercall buffer. */
export type MemoryReader = (address: bigint, length: number) => DataView | null;

export interface Classification {
  readonly hypercall: HypercallSpec | undefined;
  readonly subop: number | null;
  readonly row: Row | undefined;
  /** The sub-op's argument struct as the caller wrote it, where the row has a layout. */
  readonly decoded: Record<string, unknown> | undefined;
  /** Absolute address of the argument struct, where known. */
  readonly payloadAddress: bigint | undefined;
}

export interface ClassifyOptions {
  /**
   * `always` (the default): decode the argument struct wherever the row has a layout.
   * `when-needed`: only where the answer depends on it (a per-mode row or a row's condition);
   * elsewhere `decoded` is undefined. The raw hypercall path uses this: decoding a struct on
   * every call costs more than the rest of classification together.
   */
  readonly decode?: 'always' | 'when-needed';
}

/**
 * Finds the table row for a raw hypercall by reading its sub-op the way Xen does (from a
 * register, or from the struct an argument points at) and, for per-mode rows, the mode field.
 */
export function classify(op: number, args: readonly bigint[], read: MemoryReader, options: ClassifyOptions = {}): Classification {
  const hypercall = hypercallByNumber(op);
  if (!hypercall) return unclassified(hypercall, null);
  const subop = subopOf(hypercall, args, (address) => read(address, 4)?.getUint32(0, true) ?? null);
  if (subop === undefined) return unclassified(hypercall, null);
  const entry = subopRows(byOp[hypercall.number]!, subop);
  if (!entry) return unclassified(hypercall, subop);
  const payloadAddress = payloadOf(hypercall, args);
  const decoded = entry.decides || options.decode !== 'when-needed' ? decodePayload(entry, payloadAddress, read) : undefined;
  return { hypercall, subop, row: rowFor(entry, decoded), decoded, payloadAddress };
}

/**
 * @internal classify() with `decode: 'when-needed'` for the raw API, without the allocations:
 * a (hypercall, sub-op) whose rows do not read the struct answers with one shared object, and
 * the sub-op is read with `readU32` (no view made). Its payloadAddress is left undefined where the
 * struct was not read (payloadOf() gives it when a re-issue needs it).
 */
export function classifyRaw(
  op: number,
  args: readonly bigint[],
  readU32: (address: bigint) => number | null,
  read: MemoryReader,
  given?: readonly unknown[],
): Classification {
  const ops = byOp[op];
  if (!ops) return classify(op, args, read, { decode: 'when-needed' });
  const hypercall = ops.hypercall;
  let subop: number | null | undefined;
  if (ops.subopIn === 'struct') subop = readU32(args[ops.subopArg]!) ?? undefined;
  else {
    // A sub-op the caller passed in a register as a number is taken from that number: the same
    // value (`&` cuts to 32 bits as the register read does), without reading a bigint back.
    const inReg = ops.subopIn === 'arg' && given !== undefined ? given[ops.subopArg] : undefined;
    subop = typeof inReg === 'number' ? inReg & ops.subopMask : subopOf(hypercall, args, readU32);
  }
  if (subop === undefined) return unclassified(hypercall, null);
  const entry = subopRows(ops, subop);
  if (!entry) return unclassified(hypercall, subop);
  // The shared answer carries its own sub-op: a fallback row's calls say which they were.
  if (entry.fixed && entry.fixed.subop === subop) return entry.fixed;
  if (!entry.decides) return { hypercall, subop, row: entry.plain, decoded: undefined, payloadAddress: undefined };
  const payloadAddress = payloadOf(hypercall, args);
  const decoded = decodePayload(entry, payloadAddress, read);
  return { hypercall, subop, row: rowFor(entry, decoded), decoded, payloadAddress };
}

/** The sub-op as Xen reads it; null for a hypercall without one, undefined where it cannot be read. */
function subopOf(hypercall: HypercallSpec, args: readonly bigint[], readU32: (address: bigint) => number | null): number | null | undefined {
  const loc = hypercall.subop;
  if (loc === null) return null;
  if (loc.from === 'arg') {
    const a = args[loc.arg] ?? 0n;
    return (a <= 0xffffffffn ? Number(a) : Number(BigInt.asUintN(32, a))) & (loc.mask ?? 0xffffffff);
  }
  if (loc.from === 'struct') {
    const at = args[loc.arg] ?? 0n;
    return readU32(loc.offset === 0 ? at : at + BigInt(loc.offset)) ?? undefined;
  }
  return undefined; // dm_op rows carry no layout; the table keeps raw dm_op unclassified.
}

/** Where the sub-op's argument struct is, for a hypercall that has one. */
export function payloadOf(hypercall: HypercallSpec, args: readonly bigint[]): bigint | undefined {
  const p = hypercall.payload;
  if (!p) return undefined;
  const base = args[p.arg] ?? 0n;
  return p.offset === 0 ? base : base + BigInt(p.offset);
}

function decodePayload(entry: SubopRows, payloadAddress: bigint | undefined, read: MemoryReader): Record<string, unknown> | undefined {
  const layout = entry.withLayout.layout;
  if (!layout || payloadAddress === undefined) return undefined;
  const v = read(payloadAddress, layout.size);
  return v ? decode(layout, v, 0) : undefined;
}

/** The per-mode row the decoded struct selects, else the plain one. */
function rowFor(entry: SubopRows, decoded: Record<string, unknown> | undefined): Row | undefined {
  if (decoded) {
    const moded = entry.rows.find((r) => r.mode && decoded[r.mode.field] === r.mode.value);
    if (moded) return moded;
  }
  return entry.plain;
}

/** The answer without a row (built only on the paths that give it, not on every call). */
function unclassified(hypercall: HypercallSpec | undefined, subop: number | null): Classification {
  return { hypercall, subop, row: undefined, decoded: undefined, payloadAddress: undefined };
}

/**
 * Whether every guest pointer a call of this row makes Xen follow can be seen by whoever builds
 * its arguments: the registers always can; pointers inside the argument struct can where the
 * row has the struct's layout (its guest handles are named there), where Xen follows no pointer
 * at all (`no-pointer`), or where the hypercall's structs never hold one. The raw CLI checks
 * them all before issuing a call without --allow-writes.
 */
export function pointersVisible(row: Row): boolean {
  return row.layout !== undefined || row.faults === 'no-pointer' || HYPERCALLS[row.hypercall].pointerFreePayload === true;
}

export function rowsOf(hypercall: HypercallName): Row[] {
  return TABLE.filter((r) => r.hypercall === hypercall);
}
