// The table as data for output: what `xencall table --json` prints and what
// docs/hypercalls.md is generated from. One function, so the CLI and the docs cannot disagree.

import { HYPERCALLS } from './hypercalls.js';
import { XEN_SOURCE, type Row } from './row.js';
import { TABLE } from './table.js';

export interface TableRowOutput {
  name: string;
  hypercall: number;
  hypercall_name: string;
  subop: number | null;
  mode: { field: string; value: number } | null;
  verdict: 'safe' | 'unsafe' | 'conditional';
  condition: string | null;
  faults: string;
  long_running: boolean;
  reason: string;
  source: string[];
  recovery: string | null;
  verified: boolean;
  struct: string | null;
  typed: boolean;
  /** true, false, or the rule for when it acts ("acts when clear != 0"). */
  read_only: boolean | string;
}

export function rowForOutput(r: Row): TableRowOutput {
  return {
    name: r.name,
    hypercall: HYPERCALLS[r.hypercall].number,
    hypercall_name: r.hypercall,
    subop: r.subop,
    mode: r.mode ? { field: r.mode.field, value: r.mode.value } : null,
    verdict: r.verdict,
    condition: r.condition?.text ?? null,
    faults: r.faults,
    long_running: r.longRunning,
    reason: r.reason,
    source: r.source.map((c) => `${XEN_SOURCE.repository}@${XEN_SOURCE.tag}:${c.file} ${c.function}${c.lines ? ` (lines ${c.lines})` : ''}`),
    recovery: r.recovery ?? null,
    verified: r.verified,
    struct: r.layout?.ctype ?? null,
    // `in`, not a read: reading the schema would build it (and load zod) for nothing.
    typed: 'args' in r,
    read_only: r.readOnly === undefined ? false : r.readOnly === true ? true : r.readOnly.text,
  };
}

export function tableRowsForOutput(rows: readonly Row[] = TABLE): TableRowOutput[] {
  return rows.map(rowForOutput);
}
