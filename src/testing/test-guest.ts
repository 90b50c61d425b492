// bootTestGuest: builds and starts the test guest as a PVH domain with typed calls only, on a
// real Xen or on the mock (which runs its model of the same program, test-guest-model.ts), and
// hands back a TestGuest to watch it, steer it and check its pages through foreign mappings.
//
// The sequence is libxl's and libxenguest's for a PVH guest, cut to what this guest needs:
// createdomain (hvm | hap, emulation_flags = LAPIC), max_vcpus, max_mem, populate_physmap of
// every gfn, the ELF's segments and the control page written through a writable foreign
// mapping, then the two sethvmcontext calls of vcpu_hvm() (HEADER + MTRR + END, then HEADER +
// CPU + END) and unpausedomain. Any failure destroys the half-built domain and throws a
// TestGuestError naming the step.

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes, ValidationError, XencallError, describeValue } from '../errors.js';
import { pvhStartContexts } from '../hvm-context.js';
import { XEN_DOMCTL_CDF } from '../hypercalls/numbers.js';
import { bytesToUuid, schemas } from '../hypercalls/schemas.js';
import { XEN_X86_EMU } from '../hypercalls/values.js';
import { createDomainAdopting } from '../recovery.js';
import { Xencall } from '../xencall.js';
import { integerIn, iterableArg, optionBag, signalOf } from '../input.js';
import { TestGuestError, buildTestGuestImage, loadTestGuestImage, type BuildTestGuestOptions, type TestGuestImage, type TestGuestStep } from './test-guest-image.js';
import {
  TEST_GUEST_DEFAULT_WRITE_SET,
  TEST_GUEST_LAYOUT,
  checkWriteSet,
  isWritableTestGuestGfn,
  readTestGuestCounter,
  verifyTestGuestPage,
  writeTestGuestControl,
  type TestGuestCounter,
} from './test-guest-layout.js';

const L = TEST_GUEST_LAYOUT;

export interface BootTestGuestOptions {
  /** Guest size in pages (gfns 0..pages-1 are populated). Default 1024 (4 MiB). */
  pages?: number;
  /** The gfns the guest writes. Default: 64 pages from gfn 0x200 (fewer on a small guest). */
  writeSet?: Iterable<number>;
  /**
   * A built image (its path, its bytes, or one loadTestGuestImage read), e.g. built on a host
   * before booting a dom0 without a compiler. Default: build it now (buildTestGuestImage).
   */
  image?: string | Uint8Array | TestGuestImage;
  /** How to build when no image is given. */
  build?: BuildTestGuestOptions;
  /** The domain id to create. Default: Xen picks one. */
  domid?: number;
  /** The domain handle (a UUID string or 16 bytes); a lost createdomain reply is recovered by it. Default: a random UUID. */
  handle?: string | Uint8Array;
  /** Stops the boot between steps (the half-built domain is destroyed). */
  signal?: AbortSignal;
}

export interface WaitOptions {
  /** Give up after this long (a TestGuestError, step "wait"). Default 60000 (TCG is slow). */
  timeoutMs?: number;
  /** Time between reads of the counter. Default 10. */
  pollMs?: number;
  signal?: AbortSignal;
}

export interface TestGuestPageReport {
  /** The COUNTER page read before the pages. */
  counter: TestGuestCounter;
  /** Each page that holds one whole image, and the iteration that wrote it. */
  iterations: Map<number, number>;
  /** The page the guest was writing (a prefix of the current iteration's image), if any. */
  inProgress: number | null;
  /** Pages that are neither (never written, or damaged). */
  broken: number[];
}

/** A running test guest. */
export class TestGuest implements AsyncDisposable {
  readonly layout = L;
  private set: readonly number[];
  private gen: number;
  private destroyed = false;

  constructor(
    private readonly xc: Xencall,
    readonly domid: number,
    readonly pages: number,
    readonly handle: string,
    readonly image: TestGuestImage,
    writeSet: readonly number[],
    generation: number,
  ) {
    this.set = writeSet;
    this.gen = generation;
  }

  /**
   * The same guest in another domain, after a migrate or a restore moved it there: a TestGuest
   * for `domid` with this one's image, size and write set (the memory, control page included,
   * came with it). This handle stays bound to the old domain.
   */
  movedTo(domid: number): TestGuest {
    if (!Number.isInteger(domid) || domid < 1 || domid >= 0x7ff0) throw new ValidationError('domid', `must be a guest domain id (1 to 32751), got ${describeValue(domid)}`);
    return new TestGuest(this.xc, domid, this.pages, this.handle, this.image, this.set, this.gen);
  }

  /** The write set last published (the guest adopts it at its next iteration). */
  get writeSet(): readonly number[] {
    return this.set;
  }

  /** The generation of the write set last published. */
  get generation(): number {
    return this.gen;
  }

  /** The iterations the guest has completed, read through a read-only foreign mapping. */
  async counter(): Promise<number> {
    return (await this.progress()).iterations;
  }

  /** The whole COUNTER page: iterations, the generation in use, the page being written. */
  async progress(): Promise<TestGuestCounter> {
    this.check();
    const m = this.xc.foreignMemory.map(this.domid, [L.counterGfn], { writable: false });
    try {
      mapped(m.errors, [L.counterGfn]);
      return readTestGuestCounter(m.page(0));
    } finally {
      m.unmap();
    }
  }

  /**
   * Publishes a new write set in the CONTROL page through a writable foreign mapping, bumping
   * the generation; returns the new generation. The guest adopts it at the start of its next
   * iteration (waitForWriteSet waits for that).
   */
  async setWriteSet(gfns: Iterable<number>): Promise<number> {
    this.check();
    const set = checkWriteSet(gfns, this.pages);
    const generation = this.gen + 2;
    const m = this.xc.foreignMemory.map(this.domid, [L.controlGfn], { writable: true });
    try {
      mapped(m.errors, [L.controlGfn]);
      writeTestGuestControl(m.page(0), { pages: this.pages, generation, gfns: set });
    } finally {
      m.unmap();
    }
    this.set = set;
    this.gen = generation;
    return generation;
  }

  /** Waits until the counter reaches `iterations`; returns the counter. */
  async waitForProgress(iterations: number, options?: WaitOptions): Promise<number> {
    integerIn('iterations', iterations, 0, Number.MAX_SAFE_INTEGER);
    const c = await this.waitFor((k) => k.iterations >= iterations, `the counter to reach ${iterations}`, waitOptions(options));
    return c.iterations;
  }

  /**
   * Waits until the guest runs with the write set last published and has completed one whole
   * iteration with it; returns the first iteration that used it. After this, every page of the
   * set holds an image of that iteration or a later one.
   */
  async waitForWriteSet(options?: WaitOptions): Promise<number> {
    options = waitOptions(options);
    const adopted = await this.waitFor((k) => k.generation === this.gen, `the guest to adopt write-set generation ${this.gen}`, options);
    // The guest adopts a set at the start of an iteration and notes it before writing pages:
    // the iteration under way when the adoption was seen used the new set.
    await this.waitFor((k) => k.iterations > adopted.iterations, `iteration ${adopted.iterations} to complete`, options);
    return adopted.iterations;
  }

  /**
   * Reads pages (default: the write set) through one read-only foreign mapping and checks each
   * against the pattern. Pause the domain first for an exact answer: while it runs, the page
   * being written shows as `inProgress`.
   */
  async verifyPages(gfns: Iterable<number> = this.set): Promise<TestGuestPageReport> {
    this.check();
    const list = iterableArg('gfns', gfns, this.pages) as number[];
    list.forEach((g, i) => integerIn(`gfns[${i}]`, g, 0, this.pages - 1));
    const counter = await this.progress();
    const report: TestGuestPageReport = { counter, iterations: new Map(), inProgress: null, broken: [] };
    if (list.length === 0) return report;
    const m = this.xc.foreignMemory.map(this.domid, list, { writable: false });
    try {
      mapped(m.errors, list);
      list.forEach((gfn, i) => {
        const page = m.page(i);
        const it = verifyTestGuestPage(page, gfn);
        if (it !== null) report.iterations.set(gfn, it);
        // The page being written: a prefix of the current iteration's image over older content.
        else if (gfn === counter.writing) report.inProgress = gfn;
        else report.broken.push(gfn);
      });
    } finally {
      m.unmap();
    }
    return report;
  }

  /** Destroys the domain. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await this.xc.domctl.destroydomain({ domain: this.domid });
    this.destroyed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }

  private async waitFor(done: (k: TestGuestCounter) => boolean, what: string, options: WaitOptions): Promise<TestGuestCounter> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const pollMs = options.pollMs ?? 10;
    this.check();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (options.signal?.aborted) throw new XencallError(ErrorCodes.ABORTED, `test guest ${this.domid}: aborted while waiting for ${what}`, { cause: options.signal.reason });
      const k = await this.progress();
      if (done(k)) return k;
      if (Date.now() >= deadline) {
        const info = await this.xc.domctl.getdomaininfo({ domain: this.domid }).catch(() => null);
        const state = info ? (info.shutdown ? `shut down (reason ${info.shutdown_reason})` : info.paused ? 'paused' : 'running') : 'gone';
        throw new TestGuestError('wait', `domain ${this.domid} (${state}) did not get ${what} in ${timeoutMs} ms; counter ${k.iterations}, generation in use ${k.generation}`);
      }
      try {
        await sleep(pollMs, undefined, { signal: options.signal });
      } catch {
        // Aborted: reported at the top of the loop.
      }
    }
  }

  private check(): void {
    if (this.destroyed) throw new XencallError(ErrorCodes.CLOSED, `test guest ${this.domid} was destroyed; boot a new one`);
  }
}

/** A wait's options, checked: bounded integers and a real AbortSignal. */
function waitOptions(options: WaitOptions | undefined): WaitOptions {
  const o = optionBag('options', options);
  if (o.timeoutMs !== undefined) integerIn('options.timeoutMs', o.timeoutMs, 0, 0x7fffffff);
  if (o.pollMs !== undefined) integerIn('options.pollMs', o.pollMs, 1, 0x7fffffff);
  signalOf('options.signal', o.signal);
  return o;
}

/** Throws when a foreign mapping could not map some page (its per-page error). */
function mapped(errors: Int32Array, gfns: readonly number[], step: TestGuestStep = 'map'): void {
  const i = errors.findIndex((e) => e !== 0);
  if (i >= 0) throw new TestGuestError(step, `gfn 0x${gfns[i]!.toString(16)} could not be mapped (errno ${-errors[i]!})`);
}

/** The default write set of a guest of `pages` pages: up to 64 writable gfns from 0x200 (from 0x108 on a small guest). */
export function defaultTestGuestWriteSet(pages: number): number[] {
  const fromDefault = TEST_GUEST_DEFAULT_WRITE_SET.filter((g) => g < pages);
  if (fromDefault.length === TEST_GUEST_DEFAULT_WRITE_SET.length) return [...fromDefault];
  const out: number[] = [];
  for (let g = L.reservedEndGfn; g < pages && out.length < TEST_GUEST_DEFAULT_WRITE_SET.length; g++) if (isWritableTestGuestGfn(g, pages)) out.push(g);
  return out;
}

/** max_mem slack over the guest's pages, as libxl's LIBXL_MAXMEM_CONSTANT (1 MiB). */
const MAX_MEM_SLACK_KB = 1024;

/** Builds and starts the test guest; see the module comment. */
export async function bootTestGuest(xc: Xencall, options?: BootTestGuestOptions): Promise<TestGuest> {
  if (!(xc instanceof Xencall)) throw new ValidationError('xc', `must be a handle from open(), got ${describeValue(xc)}`);
  options = optionBag('options', options);
  signalOf('options.signal', options.signal);
  if (options.build !== undefined) optionBag('options.build', options.build);
  const pages = options.pages ?? L.defaultPages;
  if (!Number.isInteger(pages) || pages < L.minPages || pages > L.maxPages) {
    throw new ValidationError('pages', `must be an integer from ${L.minPages} to ${L.maxPages}, got ${describeValue(pages)}`);
  }
  const writeSet = checkWriteSet(options.writeSet ?? defaultTestGuestWriteSet(pages), pages);
  const parsedHandle = schemas().domainHandle.safeParse(options.handle ?? randomUUID());
  if (!parsedHandle.success) throw new ValidationError('handle', 'must be a UUID string or 16 bytes');
  const handle = bytesToUuid(parsedHandle.data);
  if (options.domid !== undefined && (!Number.isInteger(options.domid) || options.domid < 1 || options.domid >= 0x7ff0)) {
    throw new ValidationError('domid', `must be an integer from 1 to 32751, got ${describeValue(options.domid)}`);
  }

  const image = await resolveImage(options);
  const signal = options.signal;
  let domid: number | null = null;
  const step = async <T>(name: TestGuestStep, fn: () => Promise<T> | T): Promise<T> => {
    if (signal?.aborted) throw new XencallError(ErrorCodes.ABORTED, `test guest: aborted before ${name}`, { cause: signal.reason });
    try {
      return await fn();
    } catch (e) {
      if (e instanceof TestGuestError) throw e;
      throw new TestGuestError(name, (e as Error).message, { cause: e });
    }
  };

  try {
    domid = await step('createdomain', () => createDomain(xc, options.domid, handle));
    const d = domid;
    await step('max_vcpus', () => xc.domctl.max_vcpus({ domain: d, max: 1 }));
    await step('max_mem', () => xc.domctl.max_mem({ domain: d, max_memkb: BigInt(pages * (L.pageSize / 1024) + MAX_MEM_SLACK_KB) }));
    await step('populate_physmap', async () => {
      const gfns = new BigUint64Array(pages);
      for (let i = 0; i < pages; i++) gfns[i] = BigInt(i);
      const n = await xc.memory_op.populate_physmap({ domid: d, gfns });
      if (n !== pages) throw new TestGuestError('populate_physmap', `Xen populated ${n} of ${pages} pages`);
    });
    await step('load', () => loadImage(xc, d, image, pages, writeSet));
    const saved = await step('gethvmcontext', async () => (await xc.domctl.gethvmcontext({ domain: d })).bytes);
    const [mtrr, cpu] = await step('gethvmcontext', () => pvhStartContexts(saved, image.entry));
    // MTRR first: every hvm_load puts all vcpus down, and only the CPU record brings vcpu 0 up.
    await step('sethvmcontext', () => xc.domctl.sethvmcontext({ domain: d, context: mtrr }));
    await step('sethvmcontext', () => xc.domctl.sethvmcontext({ domain: d, context: cpu }));
    await step('unpausedomain', () => xc.domctl.unpausedomain({ domain: d }));
    return new TestGuest(xc, d, pages, handle, image, writeSet, INITIAL_GENERATION);
  } catch (e) {
    if (domid !== null) {
      try {
        await xc.domctl.destroydomain({ domain: domid });
        if (e instanceof Error) e.message += ` (the half-built domain ${domid} was destroyed)`;
      } catch (d) {
        if (e instanceof Error) e.message += ` (destroying the half-built domain ${domid} failed too: ${(d as Error).message})`;
      }
    }
    throw e;
  }
}

/** The generation bootTestGuest publishes the first write set with (even: stable). */
const INITIAL_GENERATION = 2;

async function resolveImage(options: BootTestGuestOptions): Promise<TestGuestImage> {
  const img = options.image;
  if (img === undefined) return loadTestGuestImage((await buildTestGuestImage(options.build)).path);
  if (typeof img === 'string' || img instanceof Uint8Array) return loadTestGuestImage(img);
  if (typeof img === 'object' && img !== null && 'entry' in img && 'segments' in img) return img;
  throw new ValidationError('image', 'must be a path, the image bytes, or what loadTestGuestImage returned');
}

/**
 * createdomain for a PVH guest, as libxl configures one. createdomain may not be re-issued
 * after an EFAULT (the domain may exist): the retry layer refuses, and the domain is found by
 * its handle and adopted, as the table's recovery says.
 */
function createDomain(xc: Xencall, domid: number | undefined, handle: string): Promise<number> {
  return createDomainAdopting(xc, {
    domain: domid,
    handle,
    flags: XEN_DOMCTL_CDF.hvm | XEN_DOMCTL_CDF.hap,
    max_vcpus: 1,
    max_evtchn_port: 1023,
    max_grant_frames: -1,
    max_maptrack_frames: -1,
    grant_opts: 1,
    arch: { emulation_flags: XEN_X86_EMU.LAPIC, misc_flags: 0 },
  });
}

/** Writes the ELF's segments and the CONTROL page through one writable foreign mapping. */
function loadImage(xc: Xencall, domid: number, image: TestGuestImage, pages: number, writeSet: readonly number[]): void {
  const gfns = [...Array.from({ length: L.codePages }, (_, i) => L.codeGfn + i), L.controlGfn];
  const m = xc.foreignMemory.map(domid, gfns, { writable: true });
  try {
    mapped(m.errors, gfns, 'load');
    const code = m.bytes.subarray(0, L.codePages * L.pageSize);
    const base = L.codeGfn * L.pageSize;
    for (const s of image.segments) {
      code.set(s.data, s.paddr - base);
      code.fill(0, s.paddr - base + s.data.length, s.paddr - base + s.memsz);
    }
    writeTestGuestControl(m.page(L.codePages), { pages, generation: INITIAL_GENERATION, gfns: writeSet });
  } finally {
    m.unmap();
  }
}
