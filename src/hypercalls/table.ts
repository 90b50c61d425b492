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

export const TABLE: readonly Row[] = Object.freeze([
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
]);

const byName = new Map<string, Row>();

/** The rows of one (hypercall, sub-op), with what classify() needs to know about them up front. */
interface SubopRows {
  readonly rows: readonly Row[];
  /** The row whose layout decodes the argument struct (a layout row first, else the first). */
  readonly withLayout: Row;
  /** The row without a mode: the answer when no per-mode row matches. */
  readonly plain: Row | undefined;
  /** Whether a row's choice or verdict reads the decoded struct (a per-mode row or a condition). */
  readonly decides: boolean;
}

/**
 * Numeric key op * 2^33 + subop (2^32 for none; sub-ops are 32-bit) -> rows; a plain row first,
 * then per-mode rows. A number, not a string, so the per-call lookup builds nothing.
 */
const bySubop = new Map<number, SubopRows>();

const NO_SUBOP = 0x1_0000_0000;
function subopKey(op: number, subop: number | null): number {
  return op * 0x2_0000_0000 + (subop ?? NO_SUBOP);
}

{
  const lists = new Map<number, Row[]>();
  for (const row of TABLE) {
    if (byName.has(row.name)) throw new Error(`duplicate table row ${row.name}`);
    byName.set(row.name, row);
    const key = subopKey(HYPERCALLS[row.hypercall].number, row.subop);
    const list = lists.get(key) ?? [];
    list.push(row);
    lists.set(key, list);
  }
  for (const [key, rows] of lists) {
    bySubop.set(key, {
      rows,
      withLayout: rows.find((r) => r.layout) ?? rows[0]!,
      plain: rows.find((r) => !r.mode),
      decides: rows.some((r) => r.mode !== undefined || r.condition !== undefined),
    });
  }
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

  let subop: number | null = null;
  const loc = hypercall.subop;
  if (loc?.from === 'arg') {
    subop = Number(BigInt.asUintN(32, args[loc.arg] ?? 0n)) & (loc.mask ?? 0xffffffff);
  } else if (loc?.from === 'struct') {
    const at = args[loc.arg] ?? 0n;
    const v = read(loc.offset === 0 ? at : at + BigInt(loc.offset), 4);
    if (!v) return unclassified(hypercall, null);
    subop = v.getUint32(0, true);
  } else if (loc?.from === 'dm_op') {
    return unclassified(hypercall, null); // dm_op rows carry no layout; the table keeps raw dm_op unclassified.
  }

  // A hypercall whose sub-ops the table does not list one by one has a single row for all of
  // them (platform_op, vcpu_op, kexec_op, ...): fall back to it.
  const entry = bySubop.get(subopKey(hypercall.number, subop)) ?? bySubop.get(subopKey(hypercall.number, null));
  if (!entry) return unclassified(hypercall, subop);

  const payloadAddress = hypercall.payload
    ? hypercall.payload.offset === 0
      ? (args[hypercall.payload.arg] ?? 0n)
      : (args[hypercall.payload.arg] ?? 0n) + BigInt(hypercall.payload.offset)
    : undefined;
  const { withLayout } = entry;
  let decoded: Record<string, unknown> | undefined;
  if (withLayout.layout && payloadAddress !== undefined && (entry.decides || options.decode !== 'when-needed')) {
    const v = read(payloadAddress, withLayout.layout.size);
    if (v) decoded = decode(withLayout.layout, v, 0);
  }

  let row = entry.plain;
  if (decoded) {
    const moded = entry.rows.find((r) => r.mode && decoded![r.mode.field] === r.mode.value);
    if (moded) row = moded;
  }
  return { hypercall, subop, row, decoded, payloadAddress };
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
