// The EFAULT study: the seed's failure reproduced on a real Xen and counted four ways.
//
// A domain is created and populated; getpageframeinfo3 asks for the types of its pages in
// 1024-entry batches, as save/restore does, while a worker thread soft-offlines random pages of
// the very buffers the calls use (madvise(MADV_SOFT_OFFLINE) forces a page migration, during
// which Xen's copies to and from the page fail with -EFAULT). Every batch's result is checked
// against a fault-free reference. The four ways:
//   1. buffers from /dev/xen/hypercall, xencall's retry (the kernel refuses to migrate them);
//   2. locked-memory buffers, retry off (EFAULTs surface, as Xen 4.11's save/restore saw them);
//   3. locked-memory buffers, xencall's retry (re-issues from pristine inputs);
//   4. locked-memory buffers, libxenctrl's retry: the same buffers re-issued up to twice without
//      restoring the gfn array that Xen overwrote with types up to the fault.
// Then an unsafe op under the same stressor: alloc_unbound is refused after EFAULT, and the
// recovery the refusal names (scan the ports with status) finds the leaked port.
//
// Run in dom0 by scripts/efault-study.sh (npm run study:efault), shortened by
// test/xen/efault-study.test.ts, and on the host with --mock (MockHypervisor with seeded copy
// faults instead of page migration, no Xen needed: it checks the counting and shows the
// naive retry's harm in the mock's world).

import { randomUUID } from 'node:crypto';
import diagnostics_channel from 'node:diagnostics_channel';
import fs from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { openPrivcmd } from '../src/backends/privcmd.js';
import type { Backend } from '../src/backend.js';
import type { HypercallBuffer } from '../src/buffers.js';
import { ErrorCodes, HypercallError, XencallError } from '../src/errors.js';
import { DOMCTL, HYPERCALL, XENMEM, XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_PFINFO, XEN_PAGE_SIZE } from '../src/hypercalls/numbers.js';
import { DOMCTL_PAYLOAD_OFFSET, xen_domctl, xen_domctl_getpageframeinfo3, xen_memory_reservation } from '../src/hypercalls/structs.js';
import { encode } from '../src/layout.js';
import { findLeakedPorts } from '../src/recovery.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../src/retry/decide.js';
import { CHANNELS } from '../src/retry/runner.js';
import { open, type Xencall } from '../src/xencall.js';
import { MockHypervisor, type FaultOpName } from '../src/testing/index.js';
import { BufferStressor } from './buffer-stressor.js';

// ---- options and results ----------------------------------------------------------------------

export interface StudyOptions {
  /** 'xen' in a dom0 (the real study); 'mock' on any host, with seeded copy faults. */
  platform: 'xen' | 'mock';
  /** Which of the four ways to run, in order. */
  ways: WayNumber[];
  /** Seconds of calls per way. */
  waySeconds: number;
  /** Seconds of alloc_unbound under the stressor (0 skips the unsafe-op part). */
  unsafeSeconds: number;
  /** Entries per getpageframeinfo3 batch (Xen's limit is 1024). */
  batch: number;
  /** Pause between two soft-offlines, in ms (the notes' recipe: 0.2). */
  intervalMs: number;
  /** At most this many pages soft-offlined per phase: each one is lost to dom0 until reboot. */
  capPerPhase: number;
  /**
   * Attempts xencall's retry may make per call in ways 1 and 3 (and the unsafe op, where it never
   * re-issues anyway). Default 3, the library's default.
   */
  maxAttempts: number;
  /** xencall's wait before its first re-issue, in ms (RetryPolicy.initialDelayMs; library default 0). */
  retryDelayMs: number;
  /** mock only: probability that one guest copy of the stressed op fails. */
  mockFaultRate: number;
  /** Progress lines (stderr by default). */
  log: (line: string) => void;
}

export type WayNumber = 1 | 2 | 3 | 4;

export const DEFAULT_OPTIONS: StudyOptions = {
  platform: 'xen',
  ways: [1, 2, 3, 4],
  waySeconds: 20,
  unsafeSeconds: 30,
  batch: 1024,
  intervalMs: 0.2,
  capPerPhase: 5000,
  // xencall's own default: the study measures the policy users get.
  maxAttempts: DEFAULT_RETRY_POLICY.maxAttempts,
  retryDelayMs: 0,
  mockFaultRate: 0.00002,
  log: (l) => process.stderr.write(`${l}\n`),
};

export interface StressorCounts {
  /** madvise(MADV_SOFT_OFFLINE) calls made (xen), or copies the fault rule matched (mock). */
  attempts: number;
  /** Pages migrated and retired (xen), or copy faults injected (mock). */
  offlined: number;
  /** Refused with EIO: "unhandlable page" (the /dev/xen/hypercall pages). */
  eio: number;
  ebusy: number;
  otherErrors: number;
  lastOtherErrno: number;
  capReached: boolean;
  /** Seconds the stressor was at work: until the cap was reached or the phase ended. */
  stressedSeconds: number;
}

export interface WayResult {
  way: WayNumber;
  label: string;
  buffers: 'hypercall-dev' | 'locked';
  retry: 'xencall' | 'off' | 'naive';
  seconds: number;
  /** getpageframeinfo3 batches asked for (logical calls). */
  calls: number;
  /** Of those, the ones made while the stressor was at work (before its cap). */
  callsUnderStress: number;
  /** Hypercalls issued (first attempts and re-issues). */
  hypercalls: number;
  /** -EFAULT results the backend returned. */
  efaults: number;
  /** Re-issues after EFAULT. */
  retries: number;
  /** Calls that succeeded after at least one re-issue. */
  recovered: number;
  /** Errors that reached the caller, by error code and errno name ("XEN_ERR_RETRY_EXHAUSTED/EFAULT"). */
  surfaced: number;
  surfacedBy: Record<string, number>;
  /** Surfaced errors that were typed HypercallErrors with errno EFAULT (way 2's expectation). */
  surfacedTypedEfault: number;
  /** Calls whose result was compared with the reference (the successful ones). */
  checked: number;
  /** Calls with at least one type different from the reference, and the entries concerned. */
  wrongCalls: number;
  wrongEntries: number;
  /** Calls whose first hypercall was number n (1-based) that first saw an EFAULT, or null. */
  firstEfaultAtCall: number | null;
  /** Hypercall attempts that used a buffer page the stressor was not aiming at (should be 0). */
  offTargetAttempts: number;
  /** Pages the stressor aimed at. */
  targetPages: number;
  stressor: StressorCounts;
  /** xc.stats() of the op at the end of the way. */
  stats: Record<string, unknown>;
}

export interface UnsafeResult {
  op: 'event_channel_op.alloc_unbound';
  seconds: number;
  calls: number;
  callsUnderStress: number;
  allocated: number;
  efaults: number;
  /** Refusals: XEN_ERR_RETRY_REFUSED with errno EFAULT, attempts 1 and a recovery text. */
  refused: number;
  refusedTyped: number;
  /** Refusals after which the scan found exactly one unknown unbound port: the EFAULT came after the allocation. */
  refusedAfterAllocation: number;
  /** Refusals after which the scan found none: the EFAULT came at the copy-in, before any effect. */
  refusedBeforeAllocation: number;
  /** Refusals after which the scan found more than one port (a re-issue would do that; must be 0). */
  refusedWithSeveralLeaks: number;
  /** Leaked ports found by the recovery scan and closed. */
  leakedRecovered: number;
  /** Scans that themselves surfaced an error and were repeated. */
  scanRepeats: number;
  /** Recovery scans after refusals, their status calls and time (under the stressor too). */
  scans: number;
  scanStatusCalls: number;
  scanSeconds: number;
  /** Ports a scan looks at: every port of dom0 up to the first one Xen calls invalid. */
  fullScanPorts: number;
  /** Other errors that reached the caller (close, status), by code/errno. */
  otherErrors: Record<string, number>;
  /** Unbound ports to the remote domain still open at the end that nobody knew of (must be 0). */
  unaccountedAtEnd: number;
  offTargetAttempts: number;
  targetPages: number;
  stressor: StressorCounts;
  stats: Record<string, unknown>;
  recoveryText: string | null;
}

export interface StudyResult {
  meta: {
    platform: 'xen' | 'mock';
    startedAt: string;
    finishedAt: string;
    node: string;
    cpus: number;
    xenVersion: string | null;
    kernel: string | null;
    dom0MemMb: number | null;
    vcpus: number | null;
    qemuSmp: number | null;
    options: Omit<StudyOptions, 'log'>;
  };
  domain: {
    domid: number;
    /** Pages populated and asked about. */
    pages: number;
    /** Entries per batch: domain frames, plus invalid frame numbers (XTAB in the reference). */
    batch: number;
    invalidEntries: number;
    /** Reference types, counted by name. */
    referenceTypes: Record<string, number>;
    /** The reference, asked again after every way: identical each time. */
    referenceStable: boolean;
    /**
     * The types of the reference types read as frame numbers, as a re-issue over an array Xen
     * already overwrote would ask: entries that differ from the reference. Every such entry that
     * was overwritten before an EFAULT comes back wrong from a naive re-issue.
     */
    reinterpretedDiffers: number;
  };
  ways: WayResult[];
  unsafe: UnsafeResult | null;
  invariants: { name: string; ok: boolean; detail: string }[];
}

// ---- platforms: real privcmd + soft-offline worker, or the mock + seeded faults ---------------

interface Stressor {
  start(): Promise<void>;
  /** False once the cap was reached: calls after that run unstressed. */
  active(): boolean;
  stop(): Promise<StressorCounts>;
}

interface Platform {
  readonly kind: 'xen' | 'mock';
  open(buffers: 'hypercall-dev' | 'locked', retry: Partial<RetryPolicy>): Promise<Xencall>;
  /** A stressor aimed at these pages (xen) or at copies of this op (mock). */
  stressor(pages: bigint[], op: FaultOpName, opts: StudyOptions): Stressor;
  /** Creates and populates the domain; returns the batch to ask about and how to tear down. */
  prepare(admin: Xencall, opts: StudyOptions): Promise<{ domid: number; gfns: bigint[]; pages: number; invalid: number; destroy(): Promise<void> }>;
}

const NO_STRESS: StressorCounts = { attempts: 0, offlined: 0, eio: 0, ebusy: 0, otherErrors: 0, lastOtherErrno: 0, capReached: false, stressedSeconds: 0 };

/** The shared soft-offline stressor (buffer-stressor.ts), aimed at a fixed set of pages. */
class SoftOfflineStressor implements Stressor {
  private readonly s: BufferStressor;
  constructor(pages: bigint[], opts: StudyOptions) {
    if (pages.length === 0) throw new Error('the stressor needs at least one page to aim at');
    this.s = new BufferStressor({ intervalMs: opts.intervalMs, cap: opts.capPerPhase });
    this.s.aimAtPages(pages);
  }
  start(): Promise<void> {
    return this.s.start();
  }
  active(): boolean {
    return this.s.active();
  }
  async stop(): Promise<StressorCounts> {
    const { pagesAimedAt: _, ...counts } = await this.s.stop();
    return counts;
  }
}

function xenPlatform(): Platform {
  return {
    kind: 'xen',
    async open(buffers, retry) {
      // hypercallBufPath null: locked anonymous memory (MAP_LOCKED), as on kernels before 4.18.
      const backend = openPrivcmd(buffers === 'locked' ? { hypercallBufPath: null } : {});
      if (backend.buffersNeverFault() !== (buffers === 'hypercall-dev')) {
        backend.close();
        throw new Error(buffers === 'hypercall-dev' ? '/dev/xen/hypercall is missing: way 1 needs a boot without --no-hypercall-dev' : 'locked buffers were asked for but the backend says they never fault');
      }
      return open({ backend, retry });
    },
    stressor: (pages, _op, opts) => new SoftOfflineStressor(pages, opts),
    async prepare(admin, opts) {
      const invalid = Math.floor(opts.batch / 32);
      const pages = opts.batch - invalid;
      const { domid } = await admin.domctl.createdomain({ handle: randomUUID(), max_vcpus: 1 });
      const destroy = async () => {
        await admin.domctl.destroydomain({ domain: domid });
      };
      try {
        // Room for the pages (max_mem is in KiB); populate_physmap is refused beyond it.
        await admin.domctl.max_mem({ domain: domid, max_memkb: BigInt((pages + 64) * 4) });
        const mfns = populatePhysmap(admin, domid, pages);
        // Frame numbers past the last RAM page are not valid MFNs: Xen answers XTAB for them.
        const maxRam = await admin.memory_op.maximum_ram_page();
        // Every 32nd entry is invalid, the rest are the domain's frames in allocation order.
        let m = 0;
        const gfns = Array.from({ length: opts.batch }, (_, i) => (i % 32 === 31 ? maxRam + 16n + BigInt(i) : mfns[m++]!));
        return { domid, gfns, pages, invalid, destroy };
      } catch (e) {
        await destroy().catch(() => undefined);
        throw e;
      }
    },
  };
}

/**
 * XENMEM_populate_physmap for a PV domain: gpfns 0..n-1 in, and Xen writes each allocated MFN
 * back over its gpfn (a PV guest is not translated: it addresses machine frames). Returns the MFNs.
 */
function populatePhysmap(admin: Xencall, domid: number, n: number): bigint[] {
  const ext = admin.allocBuffer(n * 8);
  const res = admin.allocBuffer(xen_memory_reservation.size);
  try {
    const ev = ext.view();
    for (let i = 0; i < n; i++) ev.setBigUint64(i * 8, BigInt(i), true);
    encode(xen_memory_reservation, res.view(), 0, { extent_start: ext.address, nr_extents: BigInt(n), extent_order: 0, mem_flags: 0, domid });
    // It never returns -EFAULT: the result is the number of extents done (short on a fault).
    const done = admin.hypercallSync(HYPERCALL.memory_op, [XENMEM.populate_physmap, res.address]);
    if (done !== BigInt(n)) throw new Error(`populate_physmap did ${done} of ${n} extents for domain ${domid}`);
    return Array.from({ length: n }, (_, i) => ev.getBigUint64(i * 8, true));
  } finally {
    admin.freeBuffer(res);
    admin.freeBuffer(ext);
  }
}

function mockPlatform(): Platform & { hv: MockHypervisor } {
  const hv = new MockHypervisor({ strict: true });
  let seed = 1;
  return {
    kind: 'mock',
    hv,
    async open(buffers, retry) {
      if (buffers === 'hypercall-dev') throw new Error('way 1 (/dev/xen/hypercall) has no mock counterpart: run it on Xen');
      return open({ backend: hv.backend() as Backend, retry, sleep: { sync: () => {}, async: async () => {} } });
    },
    stressor(_pages, op, opts) {
      let rule: { readonly fired: number } | null = null;
      const t0 = performance.now();
      return {
        active: () => true,
        async start() {
          rule = hv.faults.random({ rate: opts.mockFaultRate, seed: seed++, op });
        },
        async stop() {
          const fired = rule?.fired ?? 0;
          hv.faults.clear();
          return { ...NO_STRESS, offlined: fired, stressedSeconds: (performance.now() - t0) / 1000 };
        },
      };
    },
    async prepare(_admin, opts) {
      // The mock's PV guest keeps page tables at gfns 1..7 (world.ts pageType); their types read
      // as gfns are far past the domain's end, so a naive re-issue visibly gets them wrong.
      const d = hv.addDomain({ domid: 7, totPages: 4096 });
      const gfns = Array.from({ length: opts.batch }, (_, i) => (i % 32 === 31 ? 1_000_000n + BigInt(i) : BigInt(1 + (i % 7))));
      return { domid: d.domid, gfns, pages: 7, invalid: gfns.filter((g) => g >= 1_000_000n).length, destroy: async () => undefined };
    },
  };
}

// ---- helpers ------------------------------------------------------------------------------------

const TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(XEN_DOMCTL_PFINFO)
    .filter(([k]) => !k.endsWith('SHIFT') && !k.endsWith('MASK'))
    .map(([k, v]) => [v >>> 0, k]),
);

function typeName(t: number): string {
  const base = TYPE_NAMES[t >>> 0];
  if (base) return base;
  const pinned = (t & XEN_DOMCTL_PFINFO.LPINTAB) !== 0 ? TYPE_NAMES[(t & ~XEN_DOMCTL_PFINFO.LPINTAB) >>> 0] : undefined;
  return pinned ? `${pinned}|LPINTAB` : `0x${(t >>> 0).toString(16)}`;
}

function countWrong(types: ArrayLike<number>, ref: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < ref.length; i++) if (types[i] !== ref[i]) n++;
  return n;
}

function errorKey(e: unknown): string {
  if (e instanceof HypercallError) return `${e.code}/${e.errnoName}`;
  if (e instanceof XencallError) return e.code;
  return `untyped: ${(e as Error)?.message ?? String(e)}`;
}

/**
 * Collects the pages of every live pool buffer at each hypercall attempt of `xc`: the buffers a
 * typed call is using right then. The attempt channel fires synchronously inside the runner,
 * while those buffers are allocated, so this is exactly the set the hypercalls read and write.
 */
function watchBufferPages(xc: Xencall): { pages: Set<bigint>; offTarget: number; aim(): void; stop(): void } {
  const state = { pages: new Set<bigint>(), offTarget: 0, aimed: false };
  const onAttempt = () => {
    for (const b of xc.pool.liveBuffers()) {
      for (let p = 0; p < b.pages; p++) {
        const a = b.address + BigInt(p * XEN_PAGE_SIZE);
        if (!state.aimed) state.pages.add(a);
        else if (!state.pages.has(a)) state.offTarget++;
      }
    }
  };
  diagnostics_channel.subscribe(CHANNELS.attempt, onAttempt);
  return {
    pages: state.pages,
    get offTarget() {
      return state.offTarget;
    },
    aim() {
      state.aimed = true;
    },
    stop() {
      diagnostics_channel.unsubscribe(CHANNELS.attempt, onAttempt);
    },
  };
}

function pagesOf(bufs: HypercallBuffer[]): bigint[] {
  return bufs.flatMap((b) => Array.from({ length: b.pages }, (_, p) => b.address + BigInt(p * XEN_PAGE_SIZE)));
}

const WAYS: Record<WayNumber, { label: string; buffers: 'hypercall-dev' | 'locked'; retry: 'xencall' | 'off' | 'naive' }> = {
  1: { label: '/dev/xen/hypercall buffers, xencall retry', buffers: 'hypercall-dev', retry: 'xencall' },
  2: { label: 'locked buffers, retry off', buffers: 'locked', retry: 'off' },
  3: { label: 'locked buffers, xencall retry (pristine inputs)', buffers: 'locked', retry: 'xencall' },
  4: { label: 'locked buffers, libxc-style retry (same buffers, inputs not restored)', buffers: 'locked', retry: 'naive' },
};

// ---- the four ways ------------------------------------------------------------------------------

interface Target {
  domid: number;
  gfns: bigint[];
  reference: Uint32Array;
}

async function runWay(platform: Platform, way: WayNumber, target: Target, opts: StudyOptions): Promise<WayResult> {
  const spec = WAYS[way];
  // libxc's retry is done by hand below, over raw calls with xencall's retry off.
  const xc = await platform.open(spec.buffers, spec.retry === 'xencall' ? { maxAttempts: opts.maxAttempts, initialDelayMs: opts.retryDelayMs } : { maxAttempts: 1 });
  const r: WayResult = {
    way,
    ...spec,
    seconds: 0,
    calls: 0,
    callsUnderStress: 0,
    hypercalls: 0,
    efaults: 0,
    retries: 0,
    recovered: 0,
    surfaced: 0,
    surfacedBy: {},
    surfacedTypedEfault: 0,
    checked: 0,
    wrongCalls: 0,
    wrongEntries: 0,
    firstEfaultAtCall: null,
    offTargetAttempts: 0,
    targetPages: 0,
    stressor: NO_STRESS,
    stats: {},
  };
  const surface = (e: unknown) => {
    r.surfaced++;
    const k = errorKey(e);
    r.surfacedBy[k] = (r.surfacedBy[k] ?? 0) + 1;
    if (e instanceof HypercallError && e.errnoName === 'EFAULT') r.surfacedTypedEfault++;
  };
  const check = (types: ArrayLike<number>) => {
    r.checked++;
    const w = countWrong(types, target.reference);
    if (w > 0) {
      r.wrongCalls++;
      r.wrongEntries += w;
    }
  };

  try {
    let one: () => void;
    let pages: bigint[];
    let watch: ReturnType<typeof watchBufferPages> | null = null;
    if (spec.retry !== 'naive') {
      const call = () => xc.sync.domctl.getpageframeinfo3({ domain: target.domid, gfns: target.gfns }).types;
      // One call with the watcher learning: the pool hands the same cached buffers to every
      // later call (freed buffers of 1-4 pages are reused last-in first-out).
      watch = watchBufferPages(xc);
      if (countWrong(call(), target.reference) !== 0) throw new Error(`way ${way}: the warm-up call, before any stress, disagrees with the reference`);
      watch.aim();
      pages = [...watch.pages];
      one = () => {
        try {
          check(call());
        } catch (e) {
          surface(e);
        }
      };
    } else {
      // Built once, as libxc builds the domctl and bounces the array: the same two buffers for
      // every call and every re-issue. The caller's array is copied in before each call (libxc's
      // bounce_pre), but never again between re-issues of one call.
      const arr = xc.allocBuffer(target.gfns.length * 8);
      const dc = xc.allocBuffer(xen_domctl.size);
      encode(xen_domctl, dc.view(), 0, { cmd: DOMCTL.getpageframeinfo3, interface_version: XEN_DOMCTL_INTERFACE_VERSION, domain: target.domid });
      encode(xen_domctl_getpageframeinfo3, dc.view(), DOMCTL_PAYLOAD_OFFSET, { num: BigInt(target.gfns.length), array: arr.address });
      pages = pagesOf([arr, dc]);
      const av = arr.view();
      const n = target.gfns.length;
      one = () => {
        for (let i = 0; i < n; i++) av.setBigUint64(i * 8, target.gfns[i]!, true);
        // do_domctl_maybe_retry_efault: up to two re-issues while the errno is EFAULT.
        for (let attempt = 1; ; attempt++) {
          r.hypercalls++;
          try {
            xc.hypercallSync(HYPERCALL.domctl, [dc.address]);
          } catch (e) {
            const efault = e instanceof HypercallError && e.errnoName === 'EFAULT';
            if (efault) {
              r.efaults++;
              r.firstEfaultAtCall ??= r.calls;
            }
            if (efault && attempt < 3) {
              r.retries++;
              continue;
            }
            surface(e);
            return;
          }
          if (attempt > 1) r.recovered++;
          break;
        }
        check(Array.from({ length: n }, (_, i) => Number(av.getBigUint64(i * 8, true))));
      };
    }
    r.targetPages = pages.length;

    const stressor = platform.stressor(pages, 'domctl.getpageframeinfo3', opts);
    await stressor.start();
    const t0 = performance.now();
    const end = t0 + opts.waySeconds * 1000;
    try {
      let lastEfaults = 0;
      while (performance.now() < end) {
        r.calls++;
        if (stressor.active()) r.callsUnderStress++;
        one();
        if (spec.retry !== 'naive' && r.firstEfaultAtCall === null) {
          const s = xc.stats()['domctl.getpageframeinfo3'];
          if (s && s.efaults > lastEfaults) r.firstEfaultAtCall = r.calls;
          lastEfaults = s?.efaults ?? 0;
        }
      }
    } finally {
      r.seconds = (performance.now() - t0) / 1000;
      r.stressor = await stressor.stop();
    }
    if (watch) {
      r.offTargetAttempts = watch.offTarget;
      watch.stop();
    }
    const s = xc.stats()['domctl.getpageframeinfo3'];
    r.stats = { ...s };
    if (spec.retry !== 'naive' && s) {
      // The warm-up call is not part of the count.
      r.hypercalls = s.attempts - 1;
      r.efaults = s.efaults;
      r.retries = s.retries;
      r.recovered = s.recovered;
    }
  } finally {
    xc.close();
  }
  opts.log(
    `way ${way} (${spec.label}): ${r.calls} calls, ${r.hypercalls} hypercalls, ${r.efaults} EFAULTs, ${r.retries} retries, ` +
      `${r.surfaced} surfaced, ${r.wrongCalls} wrong calls (${r.wrongEntries} entries) in ${r.seconds.toFixed(1)} s; ` +
      `stressor: ${r.stressor.offlined} offlined, ${r.stressor.eio} EIO, ${r.stressor.attempts} tries`,
  );
  return r;
}

// ---- the unsafe op ------------------------------------------------------------------------------

async function runUnsafe(platform: Platform, target: Target, opts: StudyOptions): Promise<UnsafeResult> {
  const xc = await platform.open('locked', { maxAttempts: opts.maxAttempts });
  const remote = target.domid;
  const dom = 0;
  const r: UnsafeResult = {
    op: 'event_channel_op.alloc_unbound',
    seconds: 0,
    calls: 0,
    callsUnderStress: 0,
    allocated: 0,
    efaults: 0,
    refused: 0,
    refusedTyped: 0,
    refusedAfterAllocation: 0,
    refusedBeforeAllocation: 0,
    refusedWithSeveralLeaks: 0,
    leakedRecovered: 0,
    scanRepeats: 0,
    scans: 0,
    scanStatusCalls: 0,
    scanSeconds: 0,
    fullScanPorts: 0,
    otherErrors: {},
    unaccountedAtEnd: 0,
    offTargetAttempts: 0,
    targetPages: 0,
    stressor: NO_STRESS,
    stats: {},
    recoveryText: null,
  };
  const other = (e: unknown) => {
    const k = errorKey(e);
    r.otherErrors[k] = (r.otherErrors[k] ?? 0) + 1;
  };
  // Ports this loop holds and has not closed yet: never reported as leaked.
  const known = new Set<number>();
  const closePort = (port: number) => {
    try {
      xc.sync.event_channel_op.close({ port });
      known.delete(port);
    } catch (e) {
      other(e);
    }
  };
  const statusCalls = () => xc.stats()['event_channel_op.status']?.calls ?? 0;
  const scan = async (full = false): Promise<number[]> => {
    for (let i = 0; ; i++) {
      try {
        const t = performance.now();
        const before = statusCalls();
        const found = await findLeakedPorts(xc, { dom, remote_dom: remote, known });
        if (full) r.fullScanPorts = statusCalls() - before;
        else {
          r.scans++;
          r.scanStatusCalls += statusCalls() - before;
          r.scanSeconds += (performance.now() - t) / 1000;
        }
        return found;
      } catch (e) {
        // status is safe and retried; a scan fails only when a status call exhausts its attempts,
        // which two dom0 vcpus and this stressor make common (half of all attempts fault in a
        // short run): scan again, as a toolstack would, and count it.
        other(e);
        r.scanRepeats++;
        if (i >= 200) throw e;
      }
    }
  };

  const watch = watchBufferPages(xc);
  try {
    // Learn the buffer pages: alloc_unbound, status and close all use one cached one-page buffer.
    const { port } = xc.sync.event_channel_op.alloc_unbound({ dom, remote_dom: remote });
    xc.sync.event_channel_op.status({ dom, port });
    closePort(port);
    const stray = await scan(true);
    if (stray.length > 0) throw new Error(`dom0 already holds unbound ports to domain ${remote} before the study: ${stray.join(', ')}`);
    watch.aim();
    const pages = [...watch.pages];
    r.targetPages = pages.length;
    xc.resetStats();

    const stressor = platform.stressor(pages, 'event_channel_op.alloc_unbound', opts);
    await stressor.start();
    const t0 = performance.now();
    const end = t0 + opts.unsafeSeconds * 1000;
    try {
      while (performance.now() < end) {
        r.calls++;
        if (stressor.active()) r.callsUnderStress++;
        let port: number;
        try {
          port = xc.sync.event_channel_op.alloc_unbound({ dom, remote_dom: remote }).port;
        } catch (e) {
          if (e instanceof HypercallError && e.code === ErrorCodes.RETRY_REFUSED && e.errnoName === 'EFAULT') {
            r.refused++;
            if (e.attempts === 1 && e.recovery) r.refusedTyped++;
            r.recoveryText ??= e.recovery;
            // The recovery the error names: find the port Xen allocated but could not report.
            const leaked = await scan();
            if (leaked.length === 0) r.refusedBeforeAllocation++;
            else if (leaked.length === 1) r.refusedAfterAllocation++;
            else r.refusedWithSeveralLeaks++;
            for (const p of leaked) {
              r.leakedRecovered++;
              closePort(p);
            }
          } else {
            other(e);
          }
          continue;
        }
        r.allocated++;
        known.add(port);
        closePort(port);
      }
    } finally {
      r.seconds = (performance.now() - t0) / 1000;
      r.stressor = await stressor.stop();
    }
    r.offTargetAttempts = watch.offTarget;
    // With the stressor stopped: anything unbound to the remote domain that is not ours leaked unseen.
    const left = await scan(true);
    r.unaccountedAtEnd = left.length;
    for (const p of left) closePort(p);
    for (const p of [...known]) closePort(p);
    const all = xc.stats();
    const s = all['event_channel_op.alloc_unbound'];
    r.stats = { alloc_unbound: s, status: all['event_channel_op.status'], close: all['event_channel_op.close'] };
    r.efaults = s?.efaults ?? 0;
  } finally {
    watch.stop();
    xc.close();
  }
  opts.log(
    `unsafe (alloc_unbound): ${r.calls} calls, ${r.allocated} allocated, ${r.efaults} EFAULTs, ${r.refused} refused ` +
      `(${r.refusedAfterAllocation} after the allocation, ${r.refusedBeforeAllocation} before), ${r.leakedRecovered} leaked ports recovered, ` +
      `${r.unaccountedAtEnd} unaccounted; ${r.scans} recovery scans (${r.scanStatusCalls} status calls, ${r.scanSeconds.toFixed(1)} s), full scan ${r.fullScanPorts} ports; ` +
      `stressor: ${r.stressor.offlined} offlined`,
  );
  return r;
}

// ---- the study ----------------------------------------------------------------------------------

export async function runStudy(partial: Partial<StudyOptions> = {}): Promise<StudyResult> {
  const opts: StudyOptions = { ...DEFAULT_OPTIONS, ...partial };
  if (!(opts.batch >= 32 && opts.batch <= 1024)) throw new Error(`batch must be 32..1024, got ${opts.batch}`);
  const platform = opts.platform === 'mock' ? mockPlatform() : xenPlatform();
  const startedAt = new Date().toISOString();
  const envNum = (k: string) => (process.env[k] ? Number(process.env[k]) : null);

  // The admin handle sets up, asks the reference and tears down, with no stressor aimed at it.
  const admin = opts.platform === 'mock' ? await platform.open('locked', {}) : await open();
  const prepared = await platform.prepare(admin, opts);
  const result: StudyResult = {
    meta: {
      platform: opts.platform,
      startedAt,
      finishedAt: '',
      node: process.version,
      cpus: os.cpus().length,
      xenVersion: process.env.XENCALL_VM_XEN_VERSION ?? null,
      kernel: process.env.XENCALL_VM_KERNEL ?? (opts.platform === 'xen' ? os.release() : null),
      dom0MemMb: envNum('XENCALL_VM_DOM0_MEM_MB'),
      vcpus: envNum('XENCALL_VM_VCPUS'),
      qemuSmp: envNum('XENCALL_VM_QEMU_SMP'),
      options: (({ log: _l, ...o }) => o)(opts),
    },
    domain: { domid: prepared.domid, pages: prepared.pages, batch: opts.batch, invalidEntries: prepared.invalid, referenceTypes: {}, referenceStable: true, reinterpretedDiffers: 0 },
    ways: [],
    unsafe: null,
    invariants: [],
  };
  try {
    const ask = (gfns: bigint[]) => admin.sync.domctl.getpageframeinfo3({ domain: prepared.domid, gfns }).types;
    const reference = ask(prepared.gfns);
    if (countWrong(ask(prepared.gfns), reference) !== 0) result.domain.referenceStable = false;
    for (const t of reference) result.domain.referenceTypes[typeName(t)] = (result.domain.referenceTypes[typeName(t)] ?? 0) + 1;
    // What a re-issue over a fully overwritten array would ask: the types, read as frame numbers.
    result.domain.reinterpretedDiffers = countWrong(ask(Array.from(reference, (t) => BigInt(t))), reference);
    opts.log(
      `domain ${prepared.domid}: ${prepared.pages} pages, batch of ${opts.batch} (${prepared.invalid} invalid), reference ${JSON.stringify(result.domain.referenceTypes)}, ` +
        `${result.domain.reinterpretedDiffers} entries change when their type is read back as a frame number`,
    );
    const target: Target = { domid: prepared.domid, gfns: prepared.gfns, reference };

    for (const way of opts.ways) {
      if (platform.kind === 'mock' && way === 1) continue;
      result.ways.push(await runWay(platform, way, target, opts));
      if (countWrong(ask(prepared.gfns), reference) !== 0) result.domain.referenceStable = false;
    }
    if (opts.unsafeSeconds > 0) result.unsafe = await runUnsafe(platform, target, opts);
  } finally {
    await prepared.destroy().catch((e) => opts.log(`destroying domain ${prepared.domid} failed: ${(e as Error).message}`));
    admin.close();
  }
  result.meta.finishedAt = new Date().toISOString();
  result.invariants = invariants(result);
  for (const i of result.invariants) opts.log(`${i.ok ? 'ok  ' : 'FAIL'} ${i.name}: ${i.detail}`);
  return result;
}

/** What must hold whatever the fault count: checked by the real-Xen test and printed by the study. */
export function invariants(r: StudyResult): { name: string; ok: boolean; detail: string }[] {
  const out: { name: string; ok: boolean; detail: string }[] = [];
  const add = (name: string, ok: boolean, detail: string) => out.push({ name, ok, detail });
  add('the reference is stable', r.domain.referenceStable, 'the fault-free answer was the same before and after every way');
  for (const w of r.ways) {
    add(`way ${w.way}: the stressor aimed only at pages the calls use`, w.offTargetAttempts === 0, `${w.offTargetAttempts} attempts used other pages; ${w.targetPages} pages aimed at`);
    if (w.retry !== 'naive') add(`way ${w.way}: no wrong types`, w.wrongCalls === 0, `${w.wrongCalls} of ${w.checked} checked calls had wrong types`);
    if (w.retry === 'xencall') add(`way ${w.way}: no surfaced errors`, w.surfaced === 0, JSON.stringify(w.surfacedBy));
    if (w.retry === 'off') add(`way ${w.way}: every surfaced error is a typed EFAULT`, w.surfacedTypedEfault === w.surfaced, JSON.stringify(w.surfacedBy));
    if (w.buffers === 'hypercall-dev') add(`way ${w.way}: no EFAULT with /dev/xen/hypercall buffers`, w.efaults === 0, `${w.efaults} EFAULTs; the kernel refused ${w.stressor.eio} soft-offlines with EIO`);
  }
  const u = r.unsafe;
  if (u) {
    add('unsafe op: every EFAULT was refused, typed, with a recovery', u.refused === u.efaults && u.refusedTyped === u.refused, `${u.efaults} EFAULTs, ${u.refused} refused, ${u.refusedTyped} typed with recovery`);
    add('unsafe op: each refusal leaked at most one port', u.refusedWithSeveralLeaks === 0, `${u.refusedWithSeveralLeaks} refusals left several ports`);
    add('unsafe op: leaked ports recovered = refusals after the allocation', u.leakedRecovered === u.refusedAfterAllocation, `${u.leakedRecovered} recovered, ${u.refusedAfterAllocation} refusals after the allocation`);
    add('unsafe op: no port left unaccounted', u.unaccountedAtEnd === 0, `${u.unaccountedAtEnd} unbound ports to domain ${r.domain.domid} nobody knew of`);
  }
  return out;
}

// ---- command line -------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mock: { type: 'boolean', default: false },
      ways: { type: 'string', default: '1,2,3,4' },
      'way-seconds': { type: 'string', default: String(DEFAULT_OPTIONS.waySeconds) },
      'unsafe-seconds': { type: 'string', default: String(DEFAULT_OPTIONS.unsafeSeconds) },
      batch: { type: 'string', default: String(DEFAULT_OPTIONS.batch) },
      'interval-ms': { type: 'string', default: String(DEFAULT_OPTIONS.intervalMs) },
      cap: { type: 'string', default: String(DEFAULT_OPTIONS.capPerPhase) },
      'max-attempts': { type: 'string', default: String(DEFAULT_OPTIONS.maxAttempts) },
      'retry-delay-ms': { type: 'string', default: String(DEFAULT_OPTIONS.retryDelayMs) },
      'mock-fault-rate': { type: 'string', default: String(DEFAULT_OPTIONS.mockFaultRate) },
      out: { type: 'string' },
    },
  });
  const num = (k: keyof typeof values) => {
    const n = Number(values[k]);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${k} must be a non-negative number, got ${values[k]}`);
    return n;
  };
  const ways = String(values.ways)
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((n): n is WayNumber => n === 1 || n === 2 || n === 3 || n === 4);
  const result = await runStudy({
    platform: values.mock ? 'mock' : 'xen',
    ways,
    waySeconds: num('way-seconds'),
    unsafeSeconds: num('unsafe-seconds'),
    batch: num('batch'),
    intervalMs: num('interval-ms'),
    capPerPhase: num('cap'),
    maxAttempts: num('max-attempts'),
    retryDelayMs: num('retry-delay-ms'),
    mockFaultRate: num('mock-fault-rate'),
  });
  const json = `${JSON.stringify(result, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`;
  if (values.out) fs.writeFileSync(values.out, json);
  else process.stdout.write(json);
  process.exitCode = result.invariants.every((i) => i.ok) ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    process.stderr.write(`efault study failed: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 2;
  });
}
