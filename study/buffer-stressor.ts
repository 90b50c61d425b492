// A soft-offline stressor aimed at every hypercall buffer a handle uses, as it uses them: the
// backend's allocPages/freePages are wrapped so the live set of buffer pages is shared with the
// worker (study/soft-offline-worker.mjs, `targets` mode), which keeps forcing Linux to migrate
// random pages of it. Used by the save/restore study and the real-Xen log-dirty checks: the loop
// under test allocates its buffers as it goes, and each one is a target from its first use.
//
// Only locked (anonymous) buffers can be migrated; /dev/xen/hypercall pages are refused with EIO,
// which the counts show. Every soft-offlined page is lost to dom0 until reboot: `cap` bounds it.

import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type { Backend, BackendPages } from '../src/backend.js';
import { XEN_PAGE_SIZE } from '../src/hypercalls/numbers.js';

const CAPACITY = 8192;

export interface BufferStressorCounts {
  attempts: number;
  offlined: number;
  eio: number;
  ebusy: number;
  otherErrors: number;
  lastOtherErrno: number;
  capReached: boolean;
  stressedSeconds: number;
  /** Distinct buffer pages that were ever a target. */
  pagesAimedAt: number;
}

export class BufferStressor {
  private readonly control = new SharedArrayBuffer(10 * 4);
  private readonly c = new Int32Array(this.control);
  private readonly targets = new SharedArrayBuffer((CAPACITY + 1) * 8);
  private readonly t = new BigInt64Array(this.targets);
  private readonly live = new Map<bigint, number>();
  private readonly ever = new Set<bigint>();
  private worker: Worker | null = null;
  private exited: Promise<void> | null = null;

  constructor(private readonly opts: { intervalMs: number; cap: number }) {}

  /** Wraps the backend so every page it hands out is a target until it is freed. */
  aimAt(backend: Backend): Backend {
    const alloc = backend.allocPages.bind(backend);
    const free = backend.freePages.bind(backend);
    backend.allocPages = (pages: number): BackendPages => {
      const mem = alloc(pages);
      for (let i = 0; i < mem.pages; i++) this.add(mem.address + BigInt(i * XEN_PAGE_SIZE));
      return mem;
    };
    backend.freePages = (mem: BackendPages): void => {
      for (let i = 0; i < mem.pages; i++) this.remove(mem.address + BigInt(i * XEN_PAGE_SIZE));
      free(mem);
    };
    return backend;
  }

  /** Aims at fixed pages (page addresses) as well. */
  aimAtPages(pages: readonly bigint[]): void {
    for (const p of pages) this.add(p);
  }

  /** False once the cap was reached: what runs after that runs unstressed. */
  active(): boolean {
    return Atomics.load(this.c, 7) === 0;
  }

  private add(addr: bigint): void {
    if (this.live.has(addr) || this.live.size >= CAPACITY) return;
    const slot = this.live.size + 1;
    Atomics.store(this.t, slot, BigInt.asIntN(64, addr));
    this.live.set(addr, slot);
    this.ever.add(addr);
    Atomics.store(this.t, 0, BigInt(this.live.size));
  }

  private remove(addr: bigint): void {
    const slot = this.live.get(addr);
    if (slot === undefined) return;
    // Move the last target into the freed slot, then shrink: the worker never reads past the count.
    const lastSlot = this.live.size;
    const lastAddr = BigInt.asUintN(64, Atomics.load(this.t, lastSlot));
    Atomics.store(this.t, 0, BigInt(lastSlot - 1));
    if (slot !== lastSlot) {
      Atomics.store(this.t, slot, BigInt.asIntN(64, lastAddr));
      this.live.set(lastAddr, slot);
    }
    this.live.delete(addr);
  }

  async start(): Promise<void> {
    const w = new Worker(new URL('./soft-offline-worker.mjs', import.meta.url), {
      workerData: { targets: this.targets, intervalMs: this.opts.intervalMs, cap: this.opts.cap, control: this.control },
    });
    this.worker = w;
    this.exited = new Promise((resolve, reject) => {
      w.once('error', reject);
      w.once('exit', () => resolve());
    });
    const t0 = performance.now();
    while (Atomics.load(this.c, 8) === 0) {
      if (performance.now() - t0 > 60_000) throw new Error('the soft-offline worker did not start within 60 s');
      await Promise.race([new Promise((r) => setTimeout(r, 20)), this.exited]);
    }
  }

  /** Pages soft-offlined so far. */
  get offlined(): number {
    return Atomics.load(this.c, 2);
  }

  async stop(): Promise<BufferStressorCounts> {
    Atomics.store(this.c, 0, 1);
    Atomics.notify(this.c, 0);
    const timer = setTimeout(() => void this.worker?.terminate(), 30_000);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
    const c = this.c;
    return {
      attempts: c[1]!,
      offlined: c[2]!,
      eio: c[3]!,
      ebusy: c[4]!,
      otherErrors: c[5]!,
      lastOtherErrno: c[6]!,
      capReached: c[7] === 1,
      stressedSeconds: c[9]! / 1000,
      pagesAimedAt: this.ever.size,
    };
  }
}
