// What the mock's hypercall handlers share: errno results, names of sub-op numbers, and the
// callback that names the call being handled (dispatch in index.ts records it).

import { errnoNumber } from '../../errors.js';
import type { MockDomain } from '../world.js';

export const E = (name: string): bigint => -BigInt(errnoNumber(name));
export const OK = 0n;
/** What a handler returns when it made a continuation: the caller never sees it (hypercall() goes on). */
export const RESTARTED = E('ERESTART');

/** Reverse lookups of the number tables, built once per table (dispatch runs on every call). */
const reverse = new WeakMap<object, Map<number, string>>();
export function nameOf(table: Record<string, number>, value: number): string | undefined {
  let m = reverse.get(table);
  if (!m) {
    m = new Map();
    for (const [k, v] of Object.entries(table)) if (!m.has(v)) m.set(v, k);
    reverse.set(table, m);
  }
  return m.get(value);
}

/** Names the call being handled, once its sub-op is known: what history and fault rules see. */
export type Begin = (name: string) => void;

/** A vcpu that is up runs while its domain is not paused (getvcpuinfo's `running`). */
export function syncRunning(d: MockDomain): void {
  if (!d.hvmState) return;
  for (const vc of d.vcpus) if (vc && vc.online && vc.initialised) vc.running = !d.paused;
}

export function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
