// Per-op counters of what the retry layer saw and did. A caller reads them with
// xc.stats(); they are plain numbers, cheap enough to keep on every call.

import { rowIndex, type Row } from '../hypercalls/row.js';

export interface OpCounters {
  /** Calls made (one per raw or typed call, however many attempts it took). */
  calls: number;
  /** Hypercalls issued, re-issues included. */
  attempts: number;
  /** Attempts that returned -EFAULT. */
  efaults: number;
  /** Re-issues made. */
  retries: number;
  /** Calls that succeeded after at least one re-issue. */
  recovered: number;
  /** Failures the table refused to re-issue (XEN_ERR_RETRY_REFUSED). */
  refused: number;
  /** Failures that ran out of attempts (XEN_ERR_RETRY_EXHAUSTED). */
  exhausted: number;
  /** Other failures, passed through as XEN_ERR_HYPERCALL. */
  failed: number;
}

export class RetryStats {
  private readonly byOp = new Map<string, OpCounters>();
  /** The same counters by row index (row.ts rowIndex): what every call looks up, without hashing. */
  private readonly byRow: (OpCounters | undefined)[] = [];

  counters(op: string): OpCounters {
    let c = this.byOp.get(op);
    if (!c) {
      c = { calls: 0, attempts: 0, efaults: 0, retries: 0, recovered: 0, refused: 0, exhausted: 0, failed: 0 };
      this.byOp.set(op, c);
    }
    return c;
  }

  /** The counters of a table row (those of its name). */
  forRow(row: Row): OpCounters {
    // Calls come in runs of the same op: the last row answers without a lookup (rows have many
    // shapes, so reading their index is a megamorphic load).
    if (row === this.lastRow) return this.lastCounters!;
    const c = this.lookupRow(row);
    this.lastRow = row;
    this.lastCounters = c;
    return c;
  }
  private lastRow: Row | undefined;
  private lastCounters: OpCounters | undefined;

  private lookupRow(row: Row): OpCounters {
    const i = rowIndex(row);
    // A row made outside defineRow (a test's hand-made one) has no index: found by name.
    if (i === undefined) return this.counters(row.name);
    return (this.byRow[i] ??= this.counters(row.name));
  }

  /** A copy of every op's counters, keyed by table row name (or "hypercall N/M"); ops with nothing counted are left out. */
  snapshot(): Record<string, OpCounters> {
    return Object.fromEntries([...this.byOp].filter(([, v]) => !isZero(v)).map(([k, v]) => [k, { ...v }]));
  }

  /** Sums over every op. */
  total(): OpCounters {
    const t: OpCounters = { calls: 0, attempts: 0, efaults: 0, retries: 0, recovered: 0, refused: 0, exhausted: 0, failed: 0 };
    for (const c of this.byOp.values()) for (const k of Object.keys(t) as (keyof OpCounters)[]) t[k] += c[k];
    return t;
  }

  /** Zeroes every counter. In place: the objects stay, so lookups cached by row stay right. */
  reset(): void {
    for (const c of this.byOp.values()) for (const k of Object.keys(c) as (keyof OpCounters)[]) c[k] = 0;
  }
}

function isZero(c: OpCounters): boolean {
  return Object.values(c).every((v) => v === 0);
}
