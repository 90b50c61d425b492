// The test guest's memory layout, its control-page protocol and the pattern it writes: one
// definition shared by the guest's assembly (the constants are handed to the assembler with
// --defsym, test-guest-image.ts), by the mock's model of the same program (test-guest-model.ts),
// by bootTestGuest, and by the checker a migration test runs over every page.
//
// Memory (gfns, 4 KiB pages; the guest runs with paging off, so gfn * 4096 is its address):
//   0x100-0x103  code (the ELF image, loaded at 1 MiB; an image header at its first byte)
//   0x104        CONTROL: written by dom0 (magic, version, generation, pages, write set)
//   0x105        COUNTER: written by the guest (iterations done, generation in use, page in progress)
//   0x106        WORK:    the guest's private copy of the write set
//   0x107        STACK:   %esp's page (the loop itself never pushes)
// Every other gfn below `pages` may be in the write set.
//
// The loop: (1) if CONTROL's generation is even and differs from the one in use, copy the set
// into WORK and re-read the generation (a seqlock: dom0 makes it odd while it rewrites the set;
// a copy that raced dom0 leaves WORK empty until the next iteration); (2) for each gfn of the
// set, skipping any outside [0, pages) or in 0x100-0x107, write the page pattern for
// (gfn, iteration), noting the gfn in COUNTER while it does; (3) add 1 to the 64-bit iteration
// counter. Page pattern, 32-bit little-endian words: w0 = iteration low, w1 = iteration high,
// w2 = gfn, w3 = PAGE_MAGIC, then w[i] = seed ^ (i * MIX_WORD) for i = 4..1023, with
// seed = lo * MIX_ITER_LO ^ hi * MIX_ITER_HI ^ gfn * MIX_GFN (all mod 2^32).

import { ValidationError, describeValue } from '../errors.js';
import { bytesArg, integerIn, iterableArg, requiredBag } from '../input.js';

const PAGE = 4096;

/** Where everything is, in guest frame numbers. */
export const TEST_GUEST_LAYOUT = Object.freeze({
  /** The image, layout, protocol and pattern version; the image header carries it. */
  version: 1,
  pageSize: PAGE,
  /** The image is linked and loaded at 1 MiB. */
  codeGfn: 0x100,
  /** Pages reserved for the image (it is a few hundred bytes). */
  codePages: 4,
  controlGfn: 0x104,
  counterGfn: 0x105,
  workGfn: 0x106,
  stackGfn: 0x107,
  /** [reservedFirstGfn, reservedEndGfn): never in a write set (the guest skips them). */
  reservedFirstGfn: 0x100,
  reservedEndGfn: 0x108,
  /** 4 MiB: the size bootTestGuest gives a guest unless told otherwise. */
  defaultPages: 1024,
  /** The smallest guest: the reserved pages and a few more to write. */
  minPages: 0x110,
  /** The largest: the guest's 32-bit flat addressing stops at 4 GiB. */
  maxPages: 1 << 20,
  /** Write-set entries the control page holds. */
  maxWriteSet: (PAGE - 20) / 4,
});

/** The pages the guest writes besides its write set: the counter every iteration, WORK when the set changes. */
export const TEST_GUEST_HOUSEKEEPING_GFNS: readonly number[] = Object.freeze([TEST_GUEST_LAYOUT.counterGfn, TEST_GUEST_LAYOUT.workGfn]);

/** The write set a guest starts with unless told otherwise: 64 pages from gfn 0x200. */
export const TEST_GUEST_DEFAULT_WRITE_SET: readonly number[] = Object.freeze(Array.from({ length: 64 }, (_, i) => 0x200 + i));

/** CONTROL page: byte offsets of its fields (all u32). */
export const TEST_GUEST_CONTROL = Object.freeze({
  /** "XTGC" */
  magic: 0x43475458,
  magicOffset: 0,
  versionOffset: 4,
  /** Even: the set is stable. Odd: dom0 is rewriting it. */
  generationOffset: 8,
  pagesOffset: 12,
  countOffset: 16,
  gfnsOffset: 20,
});

/** COUNTER page: byte offsets. */
export const TEST_GUEST_COUNTER = Object.freeze({
  /** u64: iterations completed (the iteration being written is this value). */
  iterationsOffset: 0,
  /** u32: the generation of the set the guest runs with. */
  generationOffset: 8,
  /** u32: the gfn being written, or NONE between pages. */
  writingOffset: 12,
  none: 0xffffffff,
});

/** WORK page (the guest's own): byte offsets. */
export const TEST_GUEST_WORK = Object.freeze({ pagesOffset: 0, countOffset: 4, gfnsOffset: 8 });

/** The page pattern's constants. */
export const TEST_GUEST_PATTERN = Object.freeze({
  /** "XTGP" */
  pageMagic: 0x50475458,
  mixIterLo: 0x9e3779b1,
  mixIterHi: 0x7feb352d,
  mixGfn: 0x85ebca77,
  mixWord: 0x01000193,
  /** Words before the mixed body: iteration low, iteration high, gfn, magic. */
  headerWords: 4,
});

/** The image header at the image's first byte (gfn 0x100): how the mock recognises the guest. */
export const TEST_GUEST_IMAGE_HEADER = Object.freeze({
  /** 16 bytes at offset 0. */
  magic: 'xencall testgst\0',
  versionOffset: 16,
  entryOffset: 20,
  imageEndOffset: 24,
  size: 32,
});

const WORDS = PAGE / 4;
const TWO32 = 0x1_0000_0000;

function split(iteration: number): [number, number] {
  return [iteration % TWO32 >>> 0, Math.floor(iteration / TWO32) >>> 0];
}

function seedOf(gfn: number, lo: number, hi: number): number {
  const p = TEST_GUEST_PATTERN;
  return (Math.imul(lo, p.mixIterLo) ^ Math.imul(hi, p.mixIterHi) ^ Math.imul(gfn, p.mixGfn)) >>> 0;
}

const gfnArg = (field: string, v: unknown) => integerIn(field, v, 0, 0xffffffff);
const iterationArg = (field: string, v: unknown) => integerIn(field, v, 0, Number.MAX_SAFE_INTEGER);
const pageArg = (field: string, v: unknown) => bytesArg(field, v, PAGE);

/** Word `index` of the page the guest writes to `gfn` in iteration `iteration`. */
export function testGuestPageWord(gfn: number, iteration: number, index: number): number {
  gfnArg('gfn', gfn);
  iterationArg('iteration', iteration);
  integerIn('index', index, 0, WORDS - 1);
  const [lo, hi] = split(iteration);
  switch (index) {
    case 0:
      return lo;
    case 1:
      return hi;
    case 2:
      return gfn >>> 0;
    case 3:
      return TEST_GUEST_PATTERN.pageMagic;
    default:
      return (seedOf(gfn, lo, hi) ^ Math.imul(index, TEST_GUEST_PATTERN.mixWord)) >>> 0;
  }
}

/** Writes the whole page image of (gfn, iteration) into `page` (4096 bytes). */
export function fillTestGuestPage(page: Uint8Array, gfn: number, iteration: number): void {
  pageArg('page', page);
  gfnArg('gfn', gfn);
  iterationArg('iteration', iteration);
  const v = new DataView(page.buffer, page.byteOffset, PAGE);
  const [lo, hi] = split(iteration);
  v.setUint32(0, lo, true);
  v.setUint32(4, hi, true);
  v.setUint32(8, gfn >>> 0, true);
  v.setUint32(12, TEST_GUEST_PATTERN.pageMagic, true);
  const seed = seedOf(gfn, lo, hi);
  for (let i = TEST_GUEST_PATTERN.headerWords; i < WORDS; i++) v.setUint32(i * 4, (seed ^ Math.imul(i, TEST_GUEST_PATTERN.mixWord)) >>> 0, true);
}

/**
 * The iteration that wrote this page of `gfn`, or null when the page is not one whole image the
 * guest writes (never written, written for another gfn, or torn: part of one iteration's image
 * and part of another's).
 */
export function verifyTestGuestPage(bytes: Uint8Array, gfn: number): number | null {
  bytesArg('bytes', bytes);
  gfnArg('gfn', gfn);
  if (bytes.length < PAGE) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, PAGE);
  if (v.getUint32(8, true) !== gfn >>> 0 || v.getUint32(12, true) !== TEST_GUEST_PATTERN.pageMagic) return null;
  const lo = v.getUint32(0, true);
  const hi = v.getUint32(4, true);
  const seed = seedOf(gfn, lo, hi);
  for (let i = TEST_GUEST_PATTERN.headerWords; i < WORDS; i++) {
    if (v.getUint32(i * 4, true) !== (seed ^ Math.imul(i, TEST_GUEST_PATTERN.mixWord)) >>> 0) return null;
  }
  return hi * TWO32 + lo;
}

/** Whether the guest writes `gfn` when it is in the write set of a guest of `pages` pages. */
export function isWritableTestGuestGfn(gfn: number, pages: number): boolean {
  return typeof gfn === 'number' && Number.isInteger(gfn) && gfn >= 0 && gfn < pages && !(gfn >= TEST_GUEST_LAYOUT.reservedFirstGfn && gfn < TEST_GUEST_LAYOUT.reservedEndGfn);
}

/** Checks a write set for a guest of `pages` pages; returns it as a plain array. */
export function checkWriteSet(gfns: Iterable<number>, pages: number, field = 'writeSet'): number[] {
  integerIn('pages', pages, 0, TEST_GUEST_LAYOUT.maxPages);
  const max = TEST_GUEST_LAYOUT.maxWriteSet;
  let out: number[];
  try {
    out = iterableArg(field, gfns, max) as number[];
  } catch (e) {
    if (e instanceof ValidationError && /more than/.test(e.message)) throw new ValidationError(field, `at most ${max} gfns fit in the control page`);
    throw e;
  }
  const seen = new Set<number>();
  for (const g of out) {
    if (!isWritableTestGuestGfn(g, pages)) {
      throw new ValidationError(
        field,
        `gfn ${describeValue(g)} cannot be written: gfns are integers below the guest's ${pages} pages, outside the reserved ${hex(TEST_GUEST_LAYOUT.reservedFirstGfn)}-${hex(TEST_GUEST_LAYOUT.reservedEndGfn - 1)} (code, control, counter, work, stack)`,
      );
    }
    if (seen.has(g)) throw new ValidationError(field, `gfn ${hex(g)} is listed twice`);
    seen.add(g);
  }
  return out;
}

export interface TestGuestControl {
  magic: number;
  version: number;
  generation: number;
  pages: number;
  gfns: number[];
}

/** Reads the CONTROL page. */
export function readTestGuestControl(page: Uint8Array): TestGuestControl {
  pageArg('page', page);
  const c = TEST_GUEST_CONTROL;
  const v = new DataView(page.buffer, page.byteOffset, PAGE);
  const count = Math.min(v.getUint32(c.countOffset, true), TEST_GUEST_LAYOUT.maxWriteSet);
  return {
    magic: v.getUint32(c.magicOffset, true),
    version: v.getUint32(c.versionOffset, true),
    generation: v.getUint32(c.generationOffset, true),
    pages: v.getUint32(c.pagesOffset, true),
    gfns: Array.from({ length: count }, (_, i) => v.getUint32(c.gfnsOffset + i * 4, true)),
  };
}

/**
 * Writes a new write set into the CONTROL page as a seqlock writer: the generation goes odd, the
 * set is written, the generation goes even (to `generation`, which must be even). The
 * generation's stores are Atomics stores, so neither the compiler nor the CPU moves the set's
 * stores across them; x86 keeps stores in order for the guest's loads.
 */
export function writeTestGuestControl(page: Uint8Array, control: { pages: number; generation: number; gfns: readonly number[] }): void {
  pageArg('page', page);
  const ctl = requiredBag('control', control);
  const pages = integerIn('control.pages', ctl.pages, TEST_GUEST_LAYOUT.minPages, TEST_GUEST_LAYOUT.maxPages);
  // The generation goes odd while the set is written: a published one is even.
  if (integerIn('control.generation', ctl.generation, 2, 0xfffffffe) % 2 !== 0) throw new ValidationError('control.generation', `must be even, got ${ctl.generation}`);
  const gfns = checkWriteSet(ctl.gfns, pages, 'control.gfns');
  control = { pages, generation: ctl.generation, gfns };
  const c = TEST_GUEST_CONTROL;
  const words = new Uint32Array(page.buffer, page.byteOffset, WORDS);
  const gen = c.generationOffset / 4;
  Atomics.store(words, gen, (control.generation - 1) >>> 0);
  words[c.magicOffset / 4] = TEST_GUEST_CONTROL.magic;
  words[c.versionOffset / 4] = TEST_GUEST_LAYOUT.version;
  words[c.pagesOffset / 4] = control.pages;
  words[c.countOffset / 4] = control.gfns.length;
  control.gfns.forEach((g, i) => (words[c.gfnsOffset / 4 + i] = g));
  Atomics.store(words, gen, control.generation >>> 0);
}

export interface TestGuestCounter {
  /** Iterations completed; also the number of the iteration in progress. */
  iterations: number;
  /** The generation of the write set in use. */
  generation: number;
  /** The gfn being written, or null between pages. */
  writing: number | null;
}

/** Reads the COUNTER page (the 64-bit counter re-read until its two halves agree). */
export function readTestGuestCounter(page: Uint8Array): TestGuestCounter {
  pageArg('page', page);
  const k = TEST_GUEST_COUNTER;
  const v = new DataView(page.buffer, page.byteOffset, PAGE);
  let hi: number;
  let lo: number;
  do {
    hi = v.getUint32(k.iterationsOffset + 4, true);
    lo = v.getUint32(k.iterationsOffset, true);
  } while (hi !== v.getUint32(k.iterationsOffset + 4, true));
  const writing = v.getUint32(k.writingOffset, true);
  return { iterations: hi * TWO32 + lo, generation: v.getUint32(k.generationOffset, true), writing: writing === k.none ? null : writing };
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
