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
/** key "op/subop" (subop "-" for none) -> rows; a plain row first, then per-mode rows. */
const bySubop = new Map<string, Row[]>();

for (const row of TABLE) {
  if (byName.has(row.name)) throw new Error(`duplicate table row ${row.name}`);
  byName.set(row.name, row);
  const key = subopKey(HYPERCALLS[row.hypercall].number, row.subop);
  const list = bySubop.get(key) ?? [];
  list.push(row);
  bySubop.set(key, list);
}

function subopKey(op: number, subop: number | null): string {
  return `${op}/${subop ?? '-'}`;
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

/**
 * Finds the table row for a raw hypercall by reading its sub-op the way Xen does (from a
 * register, or from the struct an argument points at) and, for per-mode rows, the mode field.
 */
export function classify(op: number, args: readonly bigint[], read: MemoryReader): Classification {
  const hypercall = hypercallByNumber(op);
  const none = { hypercall, subop: null, row: undefined, decoded: undefined, payloadAddress: undefined };
  if (!hypercall) return none;

  let subop: number | null = null;
  const loc = hypercall.subop;
  if (loc?.from === 'arg') {
    subop = Number(BigInt.asUintN(32, args[loc.arg] ?? 0n)) & (loc.mask ?? 0xffffffff);
  } else if (loc?.from === 'struct') {
    const v = read((args[loc.arg] ?? 0n) + BigInt(loc.offset), 4);
    if (!v) return { ...none, subop: null };
    subop = v.getUint32(0, true);
  } else if (loc?.from === 'dm_op') {
    return none; // dm_op rows carry no layout; the table keeps raw dm_op unclassified.
  }

  // A hypercall whose sub-ops the table does not list one by one has a single row for all of
  // them (platform_op, vcpu_op, kexec_op, ...): fall back to it.
  const rows = bySubop.get(subopKey(hypercall.number, subop)) ?? bySubop.get(subopKey(hypercall.number, null));
  if (!rows?.length) return { ...none, subop };

  const payloadAddress = hypercall.payload ? (args[hypercall.payload.arg] ?? 0n) + BigInt(hypercall.payload.offset) : undefined;
  const withLayout = rows.find((r) => r.layout) ?? rows[0]!;
  let decoded: Record<string, unknown> | undefined;
  if (withLayout.layout && payloadAddress !== undefined) {
    const v = read(payloadAddress, withLayout.layout.size);
    if (v) decoded = decode(withLayout.layout, v, 0);
  }

  let row = rows.find((r) => !r.mode);
  if (decoded) {
    const moded = rows.find((r) => r.mode && decoded![r.mode.field] === r.mode.value);
    if (moded) row = moded;
  }
  return { hypercall, subop, row, decoded, payloadAddress };
}

export function rowsOf(hypercall: HypercallName): Row[] {
  return TABLE.filter((r) => r.hypercall === hypercall);
}
