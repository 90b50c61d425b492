// Test helpers: a comparable snapshot of the mock's world, and small shorthands.

import fs from 'node:fs';
import { open, type Backend, type Xencall } from '../src/index.js';
import type { OpenOptions } from '../src/xencall.js';
import { MockHypervisor, type MockHypervisorOptions } from '../src/testing/index.js';

/** Everything about the mock's world a hypercall could change, as plain comparable data. */
export function worldState(hv: MockHypervisor): unknown {
  return {
    domains: hv.sortedDomains().map((d) => ({
      domid: d.domid,
      handle: Buffer.from(d.handle).toString('hex'),
      pause: d.controllerPauseCount,
      dying: d.dying,
      maxPages: d.maxPages.toString(),
      totPages: d.totPages,
      maxGpfn: d.maxGpfn(),
      maxVcpus: d.maxVcpus,
      shadowMb: d.shadowMb,
      logDirty: {
        enabled: d.logDirty.enabled,
        // Trailing zero bytes are room the bitmap grew into, not state.
        bitmap: Buffer.from(trimZeros(d.logDirty.bitmap)).toString('base64'),
        writable: Buffer.from(trimZeros(d.logDirty.writable)).toString('base64'),
        faultCount: d.logDirty.faultCount,
        dirtyCount: d.logDirty.dirtyCount,
      },
      pagingPreempt: d.pagingPreempt ? { ...d.pagingPreempt, done: String(d.pagingPreempt.done) } : null,
      pagingPaused: d.pagingPaused,
      evtchns: [...d.evtchns].map(([p, c]) => [p, c.state, c.pending]),
      vcpus: d.vcpus.map((v) => ({ hard: v.hardAffinity.toString(16), soft: v.softAffinity.toString(16) })),
      timeOffsetSeconds: d.timeOffsetSeconds.toString(),
      hvmContext: d.hvmContext ? Buffer.from(d.hvmContext).toString('base64') : null,
      hvmParams: d.hvmParams.map(String),
    })),
    console: { prod: hv.console.prod, cons: hv.console.cons },
  };
}

function trimZeros(b: Uint8Array): Uint8Array {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return b.subarray(0, end);
}

/**
 * Asserts that Xen holds nothing for the domain: no paging op pending for hypercall 49, no
 * pause of its own, and the toolstack's pause count as expected.
 */
export function assertNoPagingLeftovers(hv: MockHypervisor, domid: number, controllerPauses = 0, where = ''): void {
  const d = hv.domain(domid);
  if (!d) throw new Error(`${where}domain ${domid} is gone`);
  const state = { pending: d.pagingPreempt ? `op ${d.pagingPreempt.op} at ${d.pagingPreempt.done}` : null, pagingPaused: d.pagingPaused, controllerPauses: d.controllerPauseCount };
  if (state.pending !== null || state.pagingPaused || state.controllerPauses !== controllerPauses) {
    throw new Error(`${where}domain ${domid} left behind: ${JSON.stringify(state)} (expected nothing pending, not paused by Xen, ${controllerPauses} toolstack pauses)`);
  }
}

/** A mock hypervisor and a handle on it; retry tuned to never sleep. */
export async function mockHandle(options: MockHypervisorOptions = {}, open_: Partial<OpenOptions> = {}): Promise<{ hv: MockHypervisor; xc: Xencall }> {
  const hv = new MockHypervisor({ strict: true, ...options });
  const xc = await open({ backend: hv.backend(), sleep: { sync: () => {}, async: async () => {} }, ...open_ });
  return { hv, xc };
}

export const UUID_A = '0a0a0a0a-1111-4222-8333-444444444444';
export const UUID_B = '0b0b0b0b-1111-4222-8333-444444444444';

/** A backend that counts what reaches it: hypercalls, and pages allocated and freed. */
export function counting(inner: Backend): Backend & { hypercalls: number; allocs: number; frees: number } {
  const c = {
    hypercalls: 0,
    allocs: 0,
    frees: 0,
    kind: inner.kind,
    fd: inner.fd,
    hypercall(op: number, args: readonly bigint[]) {
      c.hypercalls++;
      return inner.hypercall(op, args);
    },
    hypercallAsync(op: number, args: readonly bigint[], cancel?: AbortSignal) {
      c.hypercalls++;
      return inner.hypercallAsync ? inner.hypercallAsync(op, args, cancel) : Promise.resolve(inner.hypercall(op, args));
    },
    allocPages(n: number) {
      c.allocs++;
      return inner.allocPages(n);
    },
    freePages(mem: Parameters<Backend['freePages']>[0]) {
      c.frees++;
      inner.freePages(mem);
    },
    buffersNeverFault: inner.buffersNeverFault.bind(inner),
    touchPages: inner.touchPages.bind(inner),
    close: inner.close.bind(inner),
  };
  return c;
}

/** VmFlags of the VMA holding `address` (/proc/self/smaps): "io" VM_IO, "lo" VM_LOCKED, "dc" VM_DONTCOPY. */
export function vmFlagsAt(address: bigint): string[] {
  let inside = false;
  for (const l of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(l);
    if (m) inside = BigInt(`0x${m[1]}`) <= address && address < BigInt(`0x${m[2]}`);
    else if (inside && l.startsWith('VmFlags:')) return l.slice(8).trim().split(/\s+/);
  }
  return [];
}
