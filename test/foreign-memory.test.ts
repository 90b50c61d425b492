// Foreign memory and populate_physmap on the mock: what the shared contract (test/contract.ts)
// cannot see from outside — that a map aliases the mock world's pages both ways, that dom0's
// writes are not guest writes, that populate_physmap follows Xen's order of copies and effects
// (a short count, a continuation, a PV target's leaked extent) — and the gfn list's validation.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, HypercallError, ShortCountError, ValidationError, XencallError, numbers, structs, encode } from '../src/index.js';
import { GFN_LIMIT, toGfnArray } from '../src/foreign-memory.js';
import { mockHandle } from './helpers.js';

const { XENMEM, HYPERCALL } = numbers;
const PAGE = 4096;

describe('foreign memory on the mock: one copy of each page', () => {
  it('a guest write shows through a live map, and a write through the map is the guest\'s page', async () => {
    const { hv, xc } = await mockHandle();
    const d = hv.addDomain({ domid: 4, hvm: true, maxPages: 16 });
    await xc.memory_op.populate_physmap({ domid: 4, gfns: [2, 3, 10] });
    const m = xc.foreignMemory.map(4, [10, 2], { writable: true });
    // Guest -> map: the mock world writes the page; the map sees it with no call in between.
    d.writePage(2, (p) => p.fill(0x11, 0, 8));
    assert.deepEqual([...m.page(1).subarray(0, 9)], [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0]);
    // Map -> guest: page(gfn) is the very same memory.
    m.page(0)[5] = 0x77;
    assert.equal(d.page(10)[5], 0x77);
    assert.equal(d.page(10).buffer, m.bytes.buffer, 'the guest page lives in the map while it is mapped');
    const mapped = m.bytes;
    m.unmap();
    // After the unmap the page is the domain's again, with everything written to it.
    assert.equal(d.page(10)[5], 0x77);
    assert.notEqual(d.page(10).buffer, mapped.buffer);
    d.writePage(10, (p) => (p[6] = 0x66));
    const again = xc.foreignMemory.map(4, [10]);
    assert.deepEqual([again.page(0)[5], again.page(0)[6]], [0x77, 0x66]);
    xc.close();
  });

  it('maps pages of a domain set up with withMemory (the legacy block) and writes them back there', async () => {
    const { hv, xc } = await mockHandle();
    const d = hv.addDomain({ domid: 6, totPages: 8, maxPages: 8, withMemory: true });
    d.writePage(3, (p) => p.fill(9));
    const m = xc.foreignMemory.map(6, [3], { writable: true });
    assert.equal(m.page(0)[4095], 9);
    m.page(0)[0] = 1;
    m.unmap();
    assert.equal(d.memory![3 * PAGE], 1, 'copied back into the domain\'s memory block');
    xc.close();
  });

  it("dom0's writes through a map are not logged as dirty; the guest's own writes are", async () => {
    const { hv, xc } = await mockHandle();
    const d = hv.addDomain({ domid: 4, hvm: true, maxPages: 16 });
    await xc.memory_op.populate_physmap({ domid: 4, gfns: [0, 1, 2, 3, 4, 5, 6, 7] });
    await xc.domctl.shadow_op.enable_logdirty({ domain: 4 });
    const m = xc.foreignMemory.map(4, [1, 2], { writable: true });
    m.bytes.fill(0xee);
    d.writePage(5, (p) => (p[0] = 1));
    m.unmap();
    assert.equal(d.logDirty.bitmap[0]! & 0b0000_0110, 0, 'gfns 1 and 2 written only by dom0');
    assert.equal(d.logDirty.bitmap[0]! & 0b0010_0000, 0b0010_0000, 'gfn 5 written by the guest');
    xc.close();
  });

  it('refuses to alias one gfn in two live maps (or twice in one), naming the gfn and the way out', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 4, hvm: true, maxPages: 16 });
    await xc.memory_op.populate_physmap({ domid: 4, gfns: [0, 1] });
    const a = xc.foreignMemory.map(4, [0]);
    const strict = (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.MOCK_STRICT && /gfn 0 of domain 4/.test(e.message) && /Unmap the other map/.test(e.message);
    assert.throws(() => xc.foreignMemory.map(4, [1, 0]), strict);
    assert.throws(() => xc.foreignMemory.map(4, [1, 1]), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.MOCK_STRICT && /this list/.test(e.message));
    a.unmap();
    xc.foreignMemory.map(4, [1, 0]).unmap();
    xc.close();
  });

  it('a re-populated gfn gets a fresh page; a map of the old one keeps it, detached', async () => {
    const { hv, xc } = await mockHandle();
    const d = hv.addDomain({ domid: 4, hvm: true, maxPages: 16 });
    await xc.memory_op.populate_physmap({ domid: 4, gfns: [0] });
    const m = xc.foreignMemory.map(4, [0], { writable: true });
    m.page(0)[0] = 5;
    await xc.memory_op.populate_physmap({ domid: 4, gfns: [0] });
    assert.equal(d.totPages, 2, 'the old page stays allocated to the domain (p2m_add_page)');
    assert.equal(d.page(0)[0], 0, 'the guest sees the new page');
    assert.equal(m.page(0)[0], 5, 'the map still has the old one');
    m.unmap();
    assert.equal(d.page(0)[0], 0, 'unmapping the old page does not overwrite the new one');
    xc.close();
  });

  it('works with `using`: the map is gone at the end of the block', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 4, hvm: true, maxPages: 16 });
    await xc.memory_op.populate_physmap({ domid: 4, gfns: [0] });
    let kept;
    {
      using m = xc.foreignMemory.map(4, [0]);
      kept = m;
      assert.equal(m.unmapped, false);
    }
    assert.equal(kept.unmapped, true);
    assert.equal(xc.foreignMemory.mappings.length, 0);
    xc.close();
  });

  it('a handle restricted to another domain cannot map (EPERM), as privcmd refuses', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 4, hvm: true, maxPages: 16 });
    hv.addDomain({ domid: 5, hvm: true, maxPages: 16 });
    xc.restrict(5);
    assert.throws(() => xc.foreignMemory.map(4, [0]), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EPERM');
    xc.close();
  });

  it('mapResource: grant frames past max_grant_frames and the v1 status frames are EINVAL', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 4, hvm: true });
    const einval = (e: unknown) => e instanceof HypercallError && e.errnoName === 'EINVAL';
    assert.throws(() => xc.foreignMemory.mapResource(4, { type: 1, id: 0, frame: 63, nrFrames: 2 }), einval);
    assert.throws(() => xc.foreignMemory.mapResource(4, { type: 1, id: 1, nrFrames: 1 }), einval);
    const m = xc.foreignMemory.mapResource(4, { type: 1, id: 0, frame: 62, nrFrames: 2 });
    assert.equal(hv.domain(4)!.nrGrantFrames, 64, 'the table grew to the last frame mapped');
    m.unmap();
    xc.close();
  });
});

describe('populate_physmap on the mock, in Xen\'s order', () => {
  it('checks max_pages before each extent: a short count, then XEN_ERR_SHORT_COUNT saying how far it got', async () => {
    const { hv, xc } = await mockHandle();
    const d = hv.addDomain({ domid: 4, hvm: true, maxPages: 3 });
    await assert.rejects(xc.memory_op.populate_physmap({ domid: 4, gfns: [0, 1, 2, 3, 4] }), (e: unknown) => {
      assert.ok(e instanceof ShortCountError);
      assert.equal(e.code, ErrorCodes.SHORT_COUNT);
      assert.deepEqual([e.done, e.requested], [3, 5]);
      assert.ok(e.attempts >= 2, 'the rest was re-issued before giving up');
      return true;
    });
    assert.equal(d.totPages, 3);
    assert.deepEqual([0, 1, 2, 3].map((g) => d.isPopulated(g)), [true, true, true, false]);
    xc.close();
  });

  it('with buffers that cannot fault, a call that does nothing is not re-issued', async () => {
    const { hv, xc } = await mockHandle({ buffersNeverFault: true });
    hv.addDomain({ domid: 4, hvm: true, maxPages: 0 });
    await assert.rejects(xc.memory_op.populate_physmap({ domid: 4, gfns: [0] }), (e: unknown) => e instanceof ShortCountError && e.attempts === 1);
    xc.close();
  });

  it('a fault on the k-th gfn copy stops Xen there; the rest is re-issued from extent_start + k', async () => {
    const { hv, xc } = await mockHandle();
    const d = hv.addDomain({ domid: 4, hvm: true, maxPages: 16 });
    // Copies of one call: the struct, then one per gfn. The 4th is gfn[2].
    hv.faults.inject({ op: 'memory_op.populate_physmap', direction: 'in', nth: 4 });
    assert.equal(await xc.memory_op.populate_physmap({ domid: 4, gfns: [7, 8, 9, 10, 11] }), 5);
    const calls = hv.history.calls('memory_op.populate_physmap');
    assert.equal(calls.length, 2);
    const returns = hv.history.all().filter((e) => e.kind === 'return' && e.name === 'memory_op.populate_physmap').map((e) => (e as { result: bigint }).result);
    assert.deepEqual(returns, [2n, 3n], 'two extents, then the other three');
    assert.deepEqual([7, 8, 9, 10, 11].map((g) => d.isPopulated(g)), [true, true, true, true, true]);
    assert.equal(d.totPages, 5, 'no extent twice');
    hv.faults.assertAllFired();
    xc.close();
  });

  it('the raw API hands back Xen\'s short count as the result, issued once (no EFAULT, so no retry)', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 4, hvm: true, maxPages: 16 });
    hv.faults.inject({ op: 'memory_op.populate_physmap', direction: 'in', nth: 3 });
    const list = xc.allocBuffer(24);
    [5n, 6n, 7n].forEach((g, i) => list.view().setBigUint64(i * 8, g, true));
    const res = xc.allocBuffer(structs.xen_memory_reservation.size);
    encode(structs.xen_memory_reservation, res.view(), 0, { extent_start: list.address, nr_extents: 3n, extent_order: 0, mem_flags: 0, domid: 4 });
    assert.equal(await xc.hypercall(HYPERCALL.memory_op, [XENMEM.populate_physmap, res.address]), 1n);
    assert.equal(hv.history.calls('memory_op.populate_physmap').length, 1);
    xc.close();
  });

  it('a continuation re-reads the struct; a fault there returns the progress, and the caller resumes', async () => {
    const { hv, xc } = await mockHandle({ memopExtentsPerSlice: 2 });
    const d = hv.addDomain({ domid: 4, hvm: true, maxPages: 16 });
    // Copy 1 = the struct, 2-3 = gfns 0-1, 4 = the struct again on the continuation.
    hv.faults.inject({ op: 'memory_op.populate_physmap', direction: 'in', nth: 4 });
    assert.equal(await xc.memory_op.populate_physmap({ domid: 4, gfns: [0, 1, 2, 3, 4] }), 5);
    assert.equal(hv.history.effects('memory_op.continuation').length >= 2, true);
    assert.equal(d.totPages, 5);
    xc.close();
  });

  it('a PV target gets MFNs written back; a fault on that write leaves the extent allocated and counted out (the row\'s caveat)', async () => {
    const { hv, xc } = await mockHandle();
    const d = hv.addDomain({ domid: 4, hvm: false, maxPages: 16 });
    hv.faults.inject({ op: 'memory_op.populate_physmap', direction: 'out', nth: 2 });
    assert.equal(await xc.memory_op.populate_physmap({ domid: 4, gfns: [0, 1, 2] }), 3);
    assert.equal(d.totPages, 4, 'gfn 1 was allocated twice: one extent leaked until the domain dies');
    // Raw: the list holds MFNs afterwards.
    const list = xc.allocBuffer(16);
    list.view().setBigUint64(0, 9n, true);
    const res = xc.allocBuffer(structs.xen_memory_reservation.size);
    encode(structs.xen_memory_reservation, res.view(), 0, { extent_start: list.address, nr_extents: 1n, extent_order: 0, mem_flags: 0, domid: 4 });
    assert.equal(await xc.hypercall(HYPERCALL.memory_op, [XENMEM.populate_physmap, res.address]), 1n);
    assert.notEqual(list.view().getBigUint64(0, true), 9n);
    xc.close();
  });

  it('an extent_order above what dom0 may ask (18) populates nothing', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 4, hvm: true, maxPages: 1 << 20 });
    await assert.rejects(xc.memory_op.populate_physmap({ domid: 4, gfns: [0], extent_order: 19 }), (e: unknown) => e instanceof ShortCountError && e.done === 0);
    assert.equal(await xc.memory_op.populate_physmap({ domid: 4, gfns: [0, 4], extent_order: 2 }), 2);
    assert.equal(hv.domain(4)!.totPages, 8);
    xc.close();
  });

  it('validates the list before anything reaches the backend, naming the bad index', async () => {
    const { hv, xc } = await mockHandle();
    const bad = (field: string) => (e: unknown) => e instanceof ValidationError && e.field === field;
    await assert.rejects(xc.memory_op.populate_physmap({ domid: 4, gfns: [] }), bad('memory_op.populate_physmap.gfns'));
    await assert.rejects(xc.memory_op.populate_physmap({ domid: 4, gfns: [1, 2, -3] }), bad('memory_op.populate_physmap.gfns.2'));
    await assert.rejects(xc.memory_op.populate_physmap({ domid: 4, gfns: 'x' as never }), bad('memory_op.populate_physmap.gfns'));
    assert.equal(hv.calls, 0);
    xc.close();
  });
});

describe('gfn lists', () => {
  it('converts every accepted form to the same BigUint64Array', () => {
    const n = 100_000;
    const want = new BigUint64Array(n);
    for (let i = 0; i < n; i++) want[i] = BigInt(i * 3 + (i % 7) * 2 ** 33);
    const asNumbers = Array.from(want, Number);
    for (const input of [want, new Float64Array(asNumbers), asNumbers, Array.from(want)]) {
      assert.deepEqual(toGfnArray('gfns', input, n), want);
    }
    assert.deepEqual(toGfnArray('gfns', new Uint32Array([0, 0xffffffff]), 2), new BigUint64Array([0n, 0xffffffffn]));
  });

  it('refuses entries at or above 2^40, fractions, negatives and non-numbers, naming the index', () => {
    const field = (f: string) => (e: unknown) => e instanceof ValidationError && e.field === f;
    assert.throws(() => toGfnArray('gfns', new BigUint64Array([1n, BigInt(GFN_LIMIT)]), 10), field('gfns[1]'));
    assert.throws(() => toGfnArray('gfns', new Float64Array([1.5]), 10), field('gfns[0]'));
    assert.throws(() => toGfnArray('gfns', [0, 1, 2, GFN_LIMIT], 10), field('gfns[3]'));
    assert.throws(() => toGfnArray('gfns', [0n, -1n], 10), field('gfns[1]'));
    assert.throws(() => toGfnArray('gfns', [0, '1'], 10), field('gfns[1]'));
    assert.throws(() => toGfnArray('gfns', [1, 2, 3], 2), field('gfns'));
    assert.deepEqual(toGfnArray('gfns', [GFN_LIMIT - 1], 1), new BigUint64Array([BigInt(GFN_LIMIT - 1)]));
  });

  it('xc.foreignMemory.map validates domid, options and the list before the backend sees them', async () => {
    const { hv, xc } = await mockHandle();
    const v = (f: string) => (e: unknown) => e instanceof ValidationError && e.field === f;
    assert.throws(() => xc.foreignMemory.map(0x7ff0, [0]), v('domid'));
    assert.throws(() => xc.foreignMemory.map(1, []), v('gfns'));
    assert.throws(() => xc.foreignMemory.map(1, [0], { writable: 1 as never }), v('writable'));
    assert.throws(() => xc.foreignMemory.mapResource(1, { type: 1, id: 0, nrFrames: 0 }), v('nrFrames'));
    assert.throws(() => xc.foreignMemory.mapResource(1, { type: 1, id: 0, frame: 2n ** 32n, nrFrames: 1 }), v('frame'));
    assert.equal(hv.history.effects('foreign.mapped').length, 0);
    xc.close();
  });
});
