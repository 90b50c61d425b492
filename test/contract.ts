// The Backend contract suite: one set of tests every backend must pass. It runs against the mock
// here (test/contract-mock.test.ts) and against the privcmd backend inside a real Xen dom0
// (test/xen/). Only behaviour the interface promises is checked; nothing mock-specific.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Backend } from '../src/backend.js';
import { ErrorCodes, HypercallError, XencallError, errnoNumber } from '../src/errors.js';
import { HYPERCALL, XENMEM_RESOURCE, XENMEM_RESOURCE_GRANT_TABLE_ID, XENVER, XEN_DOMCTL_CDF, XEN_PAGE_SIZE } from '../src/hypercalls/numbers.js';
import { openSync, type Xencall } from '../src/xencall.js';

export interface ContractTarget {
  /** Opens a fresh backend. */
  open(): Backend;
  /** The Xen version the hypervisor under test runs, as (major << 16) | minor. */
  expectedVersion: number;
}

const zeros = [0n, 0n, 0n, 0n, 0n];

export function backendContract(name: string, target: ContractTarget): void {
  describe(`Backend contract: ${name}`, () => {
    it('issues a pointer-less hypercall and returns its raw result (xen_version)', () => {
      const b = target.open();
      try {
        assert.equal(b.hypercall(HYPERCALL.xen_version, [BigInt(XENVER.version), 0n, 0n, 0n, 0n]), BigInt(target.expectedVersion));
      } finally {
        b.close();
      }
    });

    it('returns -errno, never throws, for a hypercall the hypervisor rejects', () => {
      const b = target.open();
      try {
        // xen_version with a sub-op no Xen defines: Xen answers -ENOSYS (or -EINVAL); either is negative.
        const r = b.hypercall(HYPERCALL.xen_version, [0x7fffn, 0n, 0n, 0n, 0n]);
        assert.ok(r < 0n && r >= -4095n, `expected a negated errno, got ${r}`);
      } finally {
        b.close();
      }
    });

    it('returns -EFAULT when a pointer argument points outside any buffer', () => {
      const b = target.open();
      try {
        // XENVER_extraversion copies 16 bytes out to arg1; page 1 is never mapped in a process.
        const r = b.hypercall(HYPERCALL.xen_version, [BigInt(XENVER.extraversion), 0x1000n, 0n, 0n, 0n]);
        assert.equal(r, -14n);
      } finally {
        b.close();
      }
    });

    it('hands out page-aligned, zeroed, writable buffers Xen can write into', () => {
      const b = target.open();
      try {
        const mem = b.allocPages(2);
        assert.equal(mem.pages, 2);
        assert.equal(mem.address % BigInt(XEN_PAGE_SIZE), 0n);
        assert.equal(mem.bytes.length, 2 * XEN_PAGE_SIZE);
        assert.ok(mem.bytes.every((x) => x === 0));
        mem.bytes.fill(0xaa);
        const r = b.hypercall(HYPERCALL.xen_version, [BigInt(XENVER.extraversion), mem.address, 0n, 0n, 0n]);
        assert.equal(r, 0n);
        const nul = mem.bytes.indexOf(0);
        assert.ok(nul >= 0 && nul < 16, 'extraversion is a NUL-terminated string of at most 16 bytes');
        b.freePages(mem);
      } finally {
        b.close();
      }
    });

    it('refuses a second free of the same pages with XEN_ERR_BUFFER_FREED', () => {
      const b = target.open();
      try {
        const mem = b.allocPages(1);
        b.freePages(mem);
        assert.throws(() => b.freePages(mem), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.BUFFER_FREED);
      } finally {
        b.close();
      }
    });

    it('touchPages keeps the contents', () => {
      const b = target.open();
      try {
        const mem = b.allocPages(3);
        mem.bytes[0] = 1;
        mem.bytes[XEN_PAGE_SIZE] = 2;
        mem.bytes[2 * XEN_PAGE_SIZE + 7] = 3;
        b.touchPages(mem);
        assert.deepEqual([mem.bytes[0], mem.bytes[XEN_PAGE_SIZE], mem.bytes[2 * XEN_PAGE_SIZE + 7]], [1, 2, 3]);
        b.freePages(mem);
      } finally {
        b.close();
      }
    });

    it('reports whether buffers can fault as a boolean', () => {
      const b = target.open();
      try {
        assert.equal(typeof b.buffersNeverFault(), 'boolean');
      } finally {
        b.close();
      }
    });

    it('is unusable after close (XEN_ERR_CLOSED), and close is idempotent', () => {
      const b = target.open();
      b.close();
      b.close();
      const closed = (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.CLOSED;
      assert.throws(() => b.hypercall(HYPERCALL.xen_version, zeros), closed);
      assert.throws(() => b.allocPages(1), closed);
      assert.throws(() => b.buffersNeverFault(), closed);
    });

    it('runs hypercalls off the calling thread when it offers hypercallAsync, with the same result', async () => {
      const b = target.open();
      try {
        if (!b.hypercallAsync) return assert.fail('both backends offer hypercallAsync');
        const [a, c] = await Promise.all([
          b.hypercallAsync(HYPERCALL.xen_version, [BigInt(XENVER.version), 0n, 0n, 0n, 0n]),
          b.hypercallAsync(HYPERCALL.xen_version, [BigInt(XENVER.extraversion), 0x1000n, 0n, 0n, 0n]),
        ]);
        assert.equal(a, BigInt(target.expectedVersion));
        assert.equal(c, -14n, 'errno survives the trip through the worker thread');
      } finally {
        b.close();
      }
    });

    it('rejects a wrong argument count at the backend with a typed error', () => {
      const b = target.open();
      try {
        assert.throws(() => b.hypercall(HYPERCALL.xen_version, [0n]), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.VALIDATION);
      } finally {
        b.close();
      }
    });
  });
}

// ---- foreign memory ------------------------------------------------------------------------

/** arch-x86/xen.h: what libxl gives a PVH guest (the only emulated device is the local APIC). */
const XEN_X86_EMU_LAPIC = 1;

export interface ForeignContractTarget {
  open(): Backend;
  /** Gfns in the big round trip (10^4 on the mock: its pages are JavaScript memory). */
  bigMapPages: number;
}

/**
 * The foreign-memory contract: xc.foreignMemory and memory_op.populate_physmap over a backend,
 * with a fresh HVM|HAP domain built from scratch by typed calls, as libxenguest builds a PVH
 * guest. The same cases run on the mock and, inside dom0, on privcmd against Xen itself; every
 * errno asserted here is Xen's (the mock must agree).
 */
export function foreignMemoryContract(name: string, target: ForeignContractTarget): void {
  describe(`Foreign memory contract: ${name}`, () => {
    /** Runs `body` with a handle and a new paused HVM|HAP domain of `maxPages`, destroyed after. */
    async function withDomain(maxPages: number, body: (xc: Xencall, domid: number) => Promise<void> | void): Promise<void> {
      const xc = openSync({ backend: target.open() });
      let domid = -1;
      try {
        ({ domid } = await xc.domctl.createdomain({
          handle: randomUUID(),
          flags: XEN_DOMCTL_CDF.hvm | XEN_DOMCTL_CDF.hap,
          max_vcpus: 1,
          arch: { emulation_flags: XEN_X86_EMU_LAPIC, misc_flags: 0 },
        }));
        await xc.domctl.max_vcpus({ domain: domid, max: 1 });
        await xc.domctl.max_mem({ domain: domid, max_memkb: BigInt(maxPages * 4 + 1024) });
        await body(xc, domid);
      } finally {
        if (domid > 0 && !xc.isClosed) await xc.domctl.destroydomain({ domain: domid });
        else if (domid > 0) {
          const again = openSync({ backend: target.open() });
          try {
            await again.domctl.destroydomain({ domain: domid });
          } finally {
            again.close();
          }
        }
        xc.close();
      }
    }

    const pattern = (gfn: number, i: number) => (gfn * 7 + i * 13 + 1) & 0xff;

    it('populate_physmap adds pages (tot_pages grows) and reports the count', async () => {
      await withDomain(64, async (xc, domid) => {
        const before = (await xc.domctl.getdomaininfo({ domain: domid })).tot_pages;
        assert.equal(await xc.memory_op.populate_physmap({ domid, gfns: new Uint32Array([0, 1, 2, 3, 0x100]) }), 5);
        assert.equal(xc.sync.memory_op.populate_physmap({ domid, gfns: [4n, 5] }), 2);
        const after = (await xc.domctl.getdomaininfo({ domain: domid })).tot_pages;
        assert.equal(after - before, 7n);
      });
    });

    it('writes through a writable map come back through a later read-only map', async () => {
      await withDomain(64, async (xc, domid) => {
        const gfns = [0, 1, 2, 7, 9, 0x20];
        await xc.memory_op.populate_physmap({ domid, gfns });
        const w = xc.foreignMemory.map(domid, gfns, { writable: true });
        assert.deepEqual([w.domid, w.pages, w.writable], [domid, gfns.length, true]);
        assert.deepEqual([...w.errors], gfns.map(() => 0));
        assert.equal(w.bytes.length, gfns.length * XEN_PAGE_SIZE);
        gfns.forEach((g, p) => w.page(p).forEach((_, i, page) => (page[i] = pattern(g, i))));
        w.unmap();
        // In another order, read-only: page k of the map is gfn k of the list.
        const order = [0x20, 2, 0, 9, 7, 1];
        const r = xc.foreignMemory.map(domid, new BigUint64Array(order.map(BigInt)));
        assert.equal(r.writable, false);
        order.forEach((g, p) => {
          const page = r.page(p);
          for (let i = 0; i < XEN_PAGE_SIZE; i += 509) assert.equal(page[i], pattern(g, i), `gfn ${g} byte ${i}`);
        });
        r.unmap();
      });
    });

    it('the gfn list is read during map() only: changing it, or mapping another list, leaves a map as made', async () => {
      await withDomain(16, async (xc, domid) => {
        const gfns = [0, 1, 2, 3, 4, 5];
        await xc.memory_op.populate_physmap({ domid, gfns });
        const w = xc.foreignMemory.map(domid, gfns, { writable: true });
        gfns.forEach((g, p) => (w.page(p)[0] = pattern(g, 0)));
        w.unmap();
        const firstOf = (m: { page(i: number): Uint8Array }, n: number) => Array.from({ length: n }, (_, p) => m.page(p)[0]);
        // The caller's own BigUint64Array, changed after the call.
        const list = new BigUint64Array([0n, 1n]);
        const a = xc.foreignMemory.map(domid, list);
        list.set([5n, 4n]);
        // Lists converted from other forms, one after the other (the conversion's memory is reused).
        const b = xc.foreignMemory.map(domid, new Uint32Array([2, 3]));
        const c = xc.foreignMemory.map(domid, new Uint32Array([5, 4]));
        try {
          assert.deepEqual(firstOf(a, 2), [pattern(0, 0), pattern(1, 0)]);
          assert.deepEqual(firstOf(b, 2), [pattern(2, 0), pattern(3, 0)]);
          assert.deepEqual(firstOf(c, 2), [pattern(5, 0), pattern(4, 0)]);
        } finally {
          a.unmap();
          b.unmap();
          c.unmap();
        }
      });
    });

    it('a gfn without RAM fails alone with -EINVAL and reads as zeros; the others map', async () => {
      await withDomain(16, async (xc, domid) => {
        await xc.memory_op.populate_physmap({ domid, gfns: [0, 1] });
        const m = xc.foreignMemory.map(domid, [0, 5, 1], { writable: true });
        try {
          assert.deepEqual([...m.errors], [0, -errnoNumber('EINVAL'), 0]);
          m.page(0)[0] = 0xa5;
          assert.ok(m.page(1).every((b) => b === 0), 'the failed page reads as zeros (it does not fault)');
        } finally {
          m.unmap();
        }
        const again = xc.foreignMemory.map(domid, [0]);
        assert.equal(again.page(0)[0], 0xa5);
        again.unmap();
      });
    });

    it('every page of a domain that does not exist fails with -ESRCH (the map itself succeeds)', async () => {
      await withDomain(16, async (xc, domid) => {
        const missing = domid + 1000;
        const m = xc.foreignMemory.map(missing, [0, 1]);
        assert.deepEqual([...m.errors], [-errnoNumber('ESRCH'), -errnoNumber('ESRCH')]);
        m.unmap();
      });
    });

    it('after unmap: a stale view reads zeros, the mapping throws XEN_ERR_UNMAPPED, unmap is idempotent', async () => {
      await withDomain(16, async (xc, domid) => {
        await xc.memory_op.populate_physmap({ domid, gfns: [3] });
        const m = xc.foreignMemory.map(domid, [3], { writable: true });
        const stale = m.bytes;
        stale.fill(0x5a);
        m.unmap();
        assert.equal(m.unmapped, true);
        assert.ok(stale.every((b) => b === 0), 'a view kept past unmap reads zeros');
        stale[0] = 1; // writing it is harmless too
        const unmapped = (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.UNMAPPED;
        assert.throws(() => m.bytes, unmapped);
        assert.throws(() => m.page(0), unmapped);
        m.unmap();
        // The guest kept what was written before the unmap.
        const r = xc.foreignMemory.map(domid, [3]);
        assert.equal(r.page(0)[100], 0x5a);
        r.unmap();
      });
    });

    it('the backend refuses a second unmap of the same map with XEN_ERR_UNMAPPED', async () => {
      await withDomain(16, async (xc, domid) => {
        await xc.memory_op.populate_physmap({ domid, gfns: [0] });
        const b = xc.backend;
        const m = b.mapForeign!(domid, new BigUint64Array([0n]), false);
        b.unmapForeign!(m);
        assert.throws(() => b.unmapForeign!(m), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.UNMAPPED);
      });
    });

    it('close() unmaps every open mapping; mapping on a closed handle is XEN_ERR_CLOSED', async () => {
      await withDomain(16, async (xc, domid) => {
        await xc.memory_op.populate_physmap({ domid, gfns: [0, 1] });
        const a = xc.foreignMemory.map(domid, [0], { writable: true });
        const b = xc.foreignMemory.map(domid, [1]);
        const view = a.bytes;
        a.page(0)[0] = 9;
        assert.equal(xc.foreignMemory.mappings.length, 2);
        xc.close();
        assert.equal(a.unmapped && b.unmapped, true);
        assert.ok(view.every((x) => x === 0));
        assert.throws(() => xc.foreignMemory.map(domid, [0]), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.CLOSED);
      });
    });

    it('maps a grant table frame with mapResource; an unknown resource type is EOPNOTSUPP', async () => {
      await withDomain(16, async (xc, domid) => {
        const g = xc.foreignMemory.mapResource(domid, { type: XENMEM_RESOURCE.grant_table, id: XENMEM_RESOURCE_GRANT_TABLE_ID.shared, frame: 0, nrFrames: 1, writable: true });
        assert.deepEqual([g.pages, [...g.errors]], [1, [0]]);
        g.page(0).set([1, 2, 3, 4], 64);
        g.unmap();
        const again = xc.foreignMemory.mapResource(domid, { type: XENMEM_RESOURCE.grant_table, id: 0, nrFrames: 1 });
        assert.deepEqual([...again.page(0).subarray(64, 68)], [1, 2, 3, 4], 'the frame is the domain\'s, not a copy');
        again.unmap();
        assert.throws(
          () => xc.foreignMemory.mapResource(domid, { type: 77, id: 0, nrFrames: 1 }),
          (e: unknown) => e instanceof HypercallError && e.errnoName === 'EOPNOTSUPP',
        );
      });
    });

    it(`round-trips a ${target.bigMapPages}-gfn map given as typed arrays`, async () => {
      const n = target.bigMapPages;
      await withDomain(n, async (xc, domid) => {
        const gfns = new Uint32Array(n).map((_, i) => i);
        assert.equal(await xc.memory_op.populate_physmap({ domid, gfns }), n);
        const w = xc.foreignMemory.map(domid, gfns, { writable: true });
        assert.equal(w.errors.every((e) => e === 0), true);
        const words = new Uint32Array(w.bytes.buffer, w.bytes.byteOffset, w.bytes.length / 4);
        for (let p = 0; p < n; p++) words[p * 1024 + (p % 1024)] = p ^ 0x5a5a5a5a;
        w.unmap();
        // Reversed, as a Float64Array: page k is gfn n-1-k.
        const r = xc.foreignMemory.map(domid, new Float64Array(n).map((_, i) => n - 1 - i));
        const rw = new Uint32Array(r.bytes.buffer, r.bytes.byteOffset, r.bytes.length / 4);
        let wrong = 0;
        for (let k = 0; k < n; k++) {
          const p = n - 1 - k;
          if (rw[k * 1024 + (p % 1024)] !== (p ^ 0x5a5a5a5a) >>> 0) wrong++;
        }
        r.unmap();
        assert.equal(wrong, 0);
      });
    });
  });
}
