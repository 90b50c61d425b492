// The mock's model of the test guest: the program in guest/test-guest.s, step for step, over the
// mock domain's memory. It reads the same CONTROL page, keeps the same WORK copy and COUNTER,
// writes the same pattern, and writes guest memory only through MockDomain.writePage, the
// mock's guest-write path, so log-dirty tracking sees its writes as it would see the real
// guest's. One call of iteration() is one pass of the loop, done whole: the model is never seen
// half-way through a page.

import { decode } from '../layout.js';
import { hvm_hw_cpu } from '../hypercalls/structs.js';
import { SHUTDOWN, X86_CR0 } from '../hypercalls/values.js';
import {
  TEST_GUEST_CONTROL,
  TEST_GUEST_COUNTER,
  TEST_GUEST_IMAGE_HEADER,
  TEST_GUEST_LAYOUT,
  TEST_GUEST_WORK,
  fillTestGuestPage,
  isWritableTestGuestGfn,
  readTestGuestCounter,
} from './test-guest-layout.js';
import type { MockDomain } from './world.js';

const L = TEST_GUEST_LAYOUT;

/**
 * Whether vcpu 0 of `dom` is about to run the test guest: the image header (magic and this
 * package's version) sits at the first code page, the vcpu is in 32-bit protected mode with
 * paging off, and its rip is inside the image.
 */
export function recogniseTestGuest(dom: MockDomain): boolean {
  const cpu = dom.hvmState?.cpu(0);
  if (!cpu || !hasPages(dom, [L.codeGfn, L.controlGfn, L.counterGfn, L.workGfn])) return false;
  const regs = decode(hvm_hw_cpu, new DataView(cpu.buffer, cpu.byteOffset, cpu.byteLength));
  if (!(regs.cr0 & BigInt(X86_CR0.PE)) || regs.cr0 & BigInt(X86_CR0.PG)) return false;
  const code = dom.page(L.codeGfn);
  const H = TEST_GUEST_IMAGE_HEADER;
  if (Buffer.from(code.subarray(0, 16)).toString('latin1') !== H.magic) return false;
  const v = new DataView(code.buffer, code.byteOffset, H.size);
  if (v.getUint32(H.versionOffset, true) !== L.version) return false;
  const start = L.codeGfn * L.pageSize;
  const end = v.getUint32(H.imageEndOffset, true);
  return regs.rip >= BigInt(start) && regs.rip < BigInt(Math.min(end, start + L.codePages * L.pageSize));
}

/**
 * Whether each gfn is RAM in the domain's p2m with whole pages the model can read and write (a
 * test domain made with a few bytes a page, or without contents, is not).
 */
function hasPages(dom: MockDomain, gfns: readonly number[]): boolean {
  if (dom.memory !== null && dom.memoryPageBytes !== L.pageSize) return false;
  // Pages of the spec have contents only with `withMemory`; populated ones always do.
  return gfns.every((g) => dom.isPopulated(g) && (dom.memory !== null || g >= dom.specPages));
}

export class MockTestGuest {
  /** %ebp: the generation of the set in use; odd means none yet. */
  private inUse = 1;
  /** Iterations this model has run (also after a restart on a restored domain). */
  iterations = 0;

  constructor(readonly domain: MockDomain) {
    // _start: the COUNTER page's "writing" word is cleared before the loop.
    domain.writePage(L.counterGfn, (p) => new DataView(p.buffer, p.byteOffset).setUint32(TEST_GUEST_COUNTER.writingOffset, TEST_GUEST_COUNTER.none, true));
  }

  /** The line the guest writes to port 0xe9 at start. */
  static readonly banner = 'xencall test guest running';

  /** One pass of the loop: adopt a new write set if one was published, write it, count. */
  iteration(): void {
    const dom = this.domain;
    const C = TEST_GUEST_CONTROL;
    const W = TEST_GUEST_WORK;
    const control = dom.page(L.controlGfn);
    const cv = new DataView(control.buffer, control.byteOffset, L.pageSize);
    const generation = cv.getUint32(C.generationOffset, true);
    if (
      generation !== this.inUse &&
      generation % 2 === 0 &&
      cv.getUint32(C.magicOffset, true) === C.magic &&
      cv.getUint32(C.versionOffset, true) === L.version &&
      cv.getUint32(C.countOffset, true) <= L.maxWriteSet
    ) {
      // The whole copy happens between two of dom0's accesses, so it never races a writer here.
      const count = cv.getUint32(C.countOffset, true);
      dom.writePage(L.workGfn, (p) => {
        const wv = new DataView(p.buffer, p.byteOffset, L.pageSize);
        wv.setUint32(W.pagesOffset, cv.getUint32(C.pagesOffset, true), true);
        wv.setUint32(W.countOffset, count, true);
        p.set(control.subarray(C.gfnsOffset, C.gfnsOffset + count * 4), W.gfnsOffset);
      });
      this.inUse = generation;
      dom.writePage(L.counterGfn, (p) => new DataView(p.buffer, p.byteOffset).setUint32(TEST_GUEST_COUNTER.generationOffset, generation, true));
    }

    const work = new DataView(dom.page(L.workGfn).buffer, dom.page(L.workGfn).byteOffset, L.pageSize);
    const pages = work.getUint32(W.pagesOffset, true);
    const count = Math.min(work.getUint32(W.countOffset, true), L.maxWriteSet);
    const iteration = readTestGuestCounter(dom.page(L.counterGfn)).iterations;
    for (let i = 0; i < count; i++) {
      const gfn = work.getUint32(W.gfnsOffset + i * 4, true);
      if (!isWritableTestGuestGfn(gfn, pages)) continue;
      // A gfn the domain does not have: the real guest's write would fault (and Xen crash it).
      if (!hasPages(dom, [gfn])) {
        this.crash();
        return;
      }
      dom.writePage(gfn, (p) => fillTestGuestPage(p, gfn, iteration));
    }
    dom.writePage(L.counterGfn, (p) => {
      const v = new DataView(p.buffer, p.byteOffset, L.pageSize);
      const next = iteration + 1;
      v.setUint32(TEST_GUEST_COUNTER.writingOffset, TEST_GUEST_COUNTER.none, true);
      v.setUint32(TEST_GUEST_COUNTER.iterationsOffset, next % 0x1_0000_0000 >>> 0, true);
      v.setUint32(TEST_GUEST_COUNTER.iterationsOffset + 4, Math.floor(next / 0x1_0000_0000) >>> 0, true);
    });
    this.iterations++;
  }

  /** An HVM guest's fatal fault: Xen shuts the domain down with SHUTDOWN_crash. */
  private crash(): void {
    this.domain.shutdownReason = SHUTDOWN.crash;
  }
}
