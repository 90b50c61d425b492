// Log-dirty on the mock as Xen 4.17 does it (xen/arch/x86/mm/paging.c, hap/hap.c, hvm/hvm.c at
// RELEASE-4.17.7): one test per fact. Each fails against the old model, which logged every
// write, re-armed nothing, reset the counters on ENABLE, counted faults under HAP and preempted
// only between leaves when told to.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, HypercallError, encode, decode, numbers, structs, type HypercallBuffer, type Xencall } from '../src/index.js';
import { MockGuestWorkload, type MockHypervisor, type PreemptSite } from '../src/testing/index.js';
import { assertNoPagingLeftovers, mockHandle } from './helpers.js';

const { DOMCTL, HYPERCALL, SHADOW_OP, XEN_DOMCTL_SHADOW } = numbers;
const PAGES = 70_000; // three leaves: [0, 32768), [32768, 65536), [65536, 70000)

/** Set bits of a bitmap, as page numbers. */
function setBits(bitmap: Uint8Array): number[] {
  const out: number[] = [];
  bitmap.forEach((b, i) => {
    for (let j = 0; j < 8; j++) if (b & (1 << j)) out.push(i * 8 + j);
  });
  return out;
}

interface Raw {
  errno: string | null;
  out: ReturnType<typeof decode<typeof structs.xen_domctl_shadow_op.fields>>;
}

/** One raw shadow_op (hypercall: 'domctl') or paging_domctl_cont ('cont'), no retries. */
async function raw(
  xc: Xencall,
  domain: number,
  op: number,
  o: { bitmap?: HypercallBuffer | bigint; pages?: number; mode?: number; mb?: number; via?: 'domctl' | 'cont'; struct?: HypercallBuffer } = {},
): Promise<Raw> {
  const buf = o.struct ?? xc.allocBuffer(structs.xen_domctl.size);
  buf.bytes.fill(0);
  encode(structs.xen_domctl, buf.view(), 0, { cmd: DOMCTL.shadow_op, interface_version: numbers.XEN_DOMCTL_INTERFACE_VERSION, domain });
  const dirty_bitmap = typeof o.bitmap === 'bigint' ? o.bitmap : (o.bitmap?.address ?? 0n);
  encode(structs.xen_domctl_shadow_op, buf.view(), structs.DOMCTL_PAYLOAD_OFFSET, { op, mode: o.mode ?? 0, dirty_bitmap, pages: BigInt(o.pages ?? 0), mb: o.mb ?? 0 });
  let errno: string | null = null;
  try {
    await xc.hypercall(o.via === 'cont' ? HYPERCALL.arch_1 : HYPERCALL.domctl, [buf.address]);
  } catch (e) {
    if (!(e instanceof HypercallError)) throw e;
    errno = e.errnoName;
  }
  return { errno, out: decode(structs.xen_domctl_shadow_op, buf.view(), structs.DOMCTL_PAYLOAD_OFFSET) };
}

/** An HVM (HAP) guest of PAGES pages with log-dirty on and the given pages written once. */
async function trackedGuest(hv: MockHypervisor, xc: Xencall, dirty: number[], domid = 3) {
  const d = hv.addDomain({ domid, totPages: PAGES, hvm: true });
  await xc.domctl.shadow_op.enable_logdirty({ domain: domid });
  for (const g of dirty) d.writePage(g);
  return d;
}

const noRetry = { retry: { maxAttempts: 1 } };

describe('log-dirty as Xen 4.17 tracks it', () => {
  it('only the first write after arming is logged: it makes the page writable, and later writes go unseen', async () => {
    const { hv, xc } = await mockHandle({ preempt: 'never' });
    const d = hv.addDomain({ domid: 3, totPages: 64, hvm: true, withMemory: true });
    await xc.domctl.shadow_op.enable_logdirty({ domain: 3 });
    assert.equal(d.logDirty.isWritable(5), false, 'ENABLE made every page p2m_ram_logdirty');
    assert.deepEqual([1, 2, 3].map(() => d.logDirty.guestWrite(5)), [true, false, false], 'the first write faults and is logged; the retried and later ones are not');
    d.writePage(5, (p) => p.fill(1));
    assert.equal(d.logDirty.isWritable(5), true, 'p2m_ram_rw after the fault (p2m_change_type_one)');
    // dom0 changing the page (a foreign mapping) is no guest write: nothing is logged.
    d.page(9).fill(7);
    const peek = await xc.domctl.shadow_op.peek({ domain: 3, pages: 64n });
    assert.deepEqual(setBits(peek.bitmap), [5]);
    assert.deepEqual([peek.fault_count, peek.dirty_count], [0, 1], 'HAP never counts faults; one bit was newly set');
    assertNoPagingLeftovers(hv, 3);
    xc.close();
  });

  it('only a completed CLEAN re-arms: a PEEK does not, and writes to a page left writable stay unseen until one does', async () => {
    const { hv, xc } = await mockHandle({ preempt: 'never' });
    const d = await trackedGuest(hv, xc, [5, 40_000]);
    // A CLEAN faulting on leaf 1's copy: leaf 0 was copied and cleared, nothing re-armed.
    hv.faults.inject({ op: 'domctl.shadow_op.clean', direction: 'out', nth: 2 });
    await assert.rejects(xc.domctl.shadow_op.clean({ domain: 3, pages: BigInt(PAGES) }), (e: unknown) => e instanceof HypercallError && e.code === ErrorCodes.RETRY_REFUSED);
    d.writePage(5);
    assert.deepEqual(setBits((await xc.domctl.shadow_op.peek({ domain: 3, pages: BigInt(PAGES) })).bitmap), [40_000], 'page 5 is writable: its write was not seen');
    d.writePage(5);
    assert.deepEqual(setBits((await xc.domctl.shadow_op.peek({ domain: 3, pages: BigInt(PAGES) })).bitmap), [40_000], 'a completed PEEK re-armed nothing');
    assert.deepEqual(setBits((await xc.domctl.shadow_op.clean({ domain: 3, pages: BigInt(PAGES) })).bitmap), [40_000], 'the unseen writes are lost to this CLEAN');
    d.writePage(5);
    d.writePage(40_000);
    assert.deepEqual(setBits((await xc.domctl.shadow_op.clean({ domain: 3, pages: BigInt(PAGES) })).bitmap), [5, 40_000], 'the completed CLEAN re-armed every page');
    assertNoPagingLeftovers(hv, 3);
    xc.close();
  });

  it('a CLEAN that faults part-way keeps the leaves before the fault copied and cleared, the faulting leaf part-written and uncleared, and skips the re-arm', async () => {
    const { hv, xc } = await mockHandle({ preempt: 'never' }, noRetry);
    const d = await trackedGuest(hv, xc, [5, 33_000, 60_000, 69_000]);
    // The bitmap starts half-way into a buffer page, so leaf 1's copy spans buffer pages 1 and 2;
    // page 2 is "under migration": x86's copy_to_user writes leaf 1 up to that page, then stops.
    const buf = xc.allocBuffer(4 * 4096);
    hv.faults.inject({ buffer: buf, page: 2, direction: 'out' });
    const r = await raw(xc, 3, SHADOW_OP.CLEAN, { bitmap: buf.address + 2048n, pages: PAGES });
    assert.equal(r.errno, 'EFAULT');
    const delivered = setBits(buf.bytes.subarray(2048, 2048 + PAGES / 8));
    assert.deepEqual(delivered, [5, 33_000], 'leaf 0 whole, leaf 1 up to the faulting page (33000 is in its first 2048 bytes, 60000 is not)');
    assert.deepEqual(setBits(d.logDirty.bitmap), [33_000, 60_000, 69_000], 'leaf 0 was cleared; leaf 1 (faulted) and leaf 2 (never reached) were not');
    assert.equal(d.logDirty.isWritable(5), true, 'no re-arm');
    assert.equal(d.logDirty.dirtyCount, 4, 'counters are reset only by a completed CLEAN');
    assert.deepEqual([r.out.stats.fault_count, r.out.stats.dirty_count], [0, 4], 'goto out still copies the struct back with the stats');
    assertNoPagingLeftovers(hv, 3, 0, 'goto out drops the preempt state and unpauses: ');
    xc.close();
  });

  it('preempts after each 512-leaf node while i3 < 511, so also after the last, and after each l4 entry; the continuation of a small CLEAN only finishes it', async () => {
    const sites: PreemptSite[] = [];
    const { hv, xc } = await mockHandle({ preempt: (s) => (sites.push(s), s.level === 'l3') });
    const d = await trackedGuest(hv, xc, [5, 69_000]);
    hv.history.clear();
    const r = await xc.domctl.shadow_op.clean({ domain: 3, pages: BigInt(PAGES) });
    assert.deepEqual(setBits(r.bitmap), [5, 69_000]);
    assert.deepEqual(sites.map((s) => [s.op, s.level, s.i4, s.i3, s.done]), [['clean', 'l3', 0, 0, BigInt(PAGES)]], 'one check, after the only node, with every page already done');
    assert.deepEqual(hv.history.calls().map((c) => [c.name, c.continuation ?? false]), [['domctl.shadow_op.clean', false], ['arch_1', true]], 'Xen continued through hypercall 49');
    const effects = hv.history.effects().map((e) => `${e.name} ${e.effect}`);
    assert.deepEqual(effects, ['domctl.shadow_op.clean logdirty.leaf_cleared', 'domctl.shadow_op.clean logdirty.leaf_cleared', 'domctl.shadow_op.clean paging.preempted', 'arch_1 logdirty.rearmed'], 'everything was copied and cleared before the preemption; the continuation re-armed');
    assert.deepEqual([r.fault_count, r.dirty_count], [0, 2], 'stats as the continuation read them, before the reset');
    assert.equal(d.logDirty.dirtyCount, 0);

    // No at every l3 check, yes at the l4 one: the same, one check later.
    sites.length = 0;
    const { hv: hv2, xc: xc2 } = await mockHandle({ preempt: (s) => (sites.push(s), s.level === 'l4') });
    await trackedGuest(hv2, xc2, [5]);
    assert.deepEqual(setBits((await xc2.domctl.shadow_op.peek({ domain: 3, pages: BigInt(PAGES) })).bitmap), [5]);
    assert.deepEqual(sites.map((s) => [s.op, s.level, s.i4, s.i3]), [['peek', 'l3', 0, 0], ['peek', 'l4', 0, 0]]);
    assert.equal(hv2.history.calls('arch_1').length, 1);
    assertNoPagingLeftovers(hv, 3);
    assertNoPagingLeftovers(hv2, 3);
    xc.close();
    xc2.close();
  });

  it('a guest bigger than one node is preempted between nodes, resuming at the next l3 entry', async () => {
    const sites: PreemptSite[] = [];
    const nodePages = 512 * 32_768;
    const pages = nodePages + 3 * 32_768;
    const { hv, xc } = await mockHandle({ preempt: (s) => (sites.push(s), true) });
    const d = hv.addDomain({ domid: 4, totPages: pages, hvm: true });
    await xc.domctl.shadow_op.enable_logdirty({ domain: 4 });
    d.writePage(7);
    d.writePage(nodePages + 40_000);
    const r = await xc.domctl.shadow_op.clean({ domain: 4, pages: BigInt(pages) });
    assert.deepEqual(setBits(r.bitmap), [7, nodePages + 40_000]);
    assert.deepEqual(sites.map((s) => [s.level, s.i4, s.i3, s.done]), [['l3', 0, 0, BigInt(nodePages)], ['l3', 0, 1, BigInt(pages)]]);
    assert.equal(hv.history.calls('arch_1').length, 2);
    assert.ok(hv.history.copies().some((c) => c.what.includes('clear_guest_offset')), 'absent leaves are cleared in the caller\'s bitmap, not copied');
    assertNoPagingLeftovers(hv, 4);
    xc.close();
  });

  it('a continuation whose re-entry faults leaves the op pending and the domain paused; every new shadow_op but GET_ALLOCATION is -EBUSY until hypercall 49 finishes it', async () => {
    const { hv, xc } = await mockHandle({ preempt: 'always' }, noRetry);
    const d = await trackedGuest(hv, xc, [5, 40_000, 69_000]);
    const workload = new MockGuestWorkload(d, 1);
    hv.faults.inject({ op: 'arch_1', direction: 'in', nth: 1 });
    const first = xc.allocBuffer(PAGES / 8);
    assert.equal((await raw(xc, 3, SHADOW_OP.CLEAN, { bitmap: first, pages: PAGES })).errno, 'EFAULT');
    assert.deepEqual(setBits(first.bytes), [5, 40_000, 69_000], 'the first slice copied everything out');
    assert.deepEqual(setBits(d.logDirty.bitmap), [], '...and cleared it');
    assert.deepEqual({ pending: d.pagingPreempt?.op, paused: d.paused, rearmed: !d.logDirty.isWritable(5), counts: d.logDirty.dirtyCount }, { pending: SHADOW_OP.CLEAN, paused: true, rearmed: false, counts: 3 });
    workload.step(50);
    assert.equal(workload.writes, 0, 'a paused guest writes nothing');

    const busy: [string, number, { mode?: number; mb?: number }][] = [
      ['CLEAN', SHADOW_OP.CLEAN, {}],
      ['PEEK', SHADOW_OP.PEEK, {}],
      ['OFF', SHADOW_OP.OFF, {}],
      ['ENABLE_LOGDIRTY', SHADOW_OP.ENABLE_LOGDIRTY, {}],
      ['ENABLE with LOG_DIRTY', SHADOW_OP.ENABLE, { mode: XEN_DOMCTL_SHADOW.ENABLE_LOG_DIRTY }],
      ['SET_ALLOCATION', SHADOW_OP.SET_ALLOCATION, { mb: 8 }],
      ['CLEAN with a bad mode (EBUSY comes before the mode check)', SHADOW_OP.CLEAN, { mode: 2 }],
    ];
    for (const [label, op, o] of busy) assert.equal((await raw(xc, 3, op, { pages: PAGES, ...o })).errno, 'EBUSY', label);
    assert.equal((await raw(xc, 3, SHADOW_OP.GET_ALLOCATION)).errno, null, 'GET_ALLOCATION is let through');
    assert.equal((await raw(xc, 0, SHADOW_OP.CLEAN, { pages: PAGES })).errno, 'EINVAL', 'a paging op on dom0 itself is refused before the pending check');
    assert.equal((await raw(xc, 3, SHADOW_OP.PEEK, { pages: PAGES, via: 'cont' })).errno, 'EBUSY', 'hypercall 49 for another op');
    assert.equal(d.pagingPreempt?.op, SHADOW_OP.CLEAN, 'still pending');

    const rest = xc.allocBuffer(PAGES / 8);
    const fin = await raw(xc, 3, SHADOW_OP.CLEAN, { bitmap: rest, pages: PAGES, via: 'cont' });
    assert.equal(fin.errno, null);
    assert.deepEqual(setBits(rest.bytes), [], 'nothing was left to copy: the continuation only finished the op');
    assert.deepEqual([fin.out.stats.fault_count, fin.out.stats.dirty_count], [0, 3], 'u.shadow_op copied back with the stats read before the reset');
    assert.deepEqual({ rearmed: !d.logDirty.isWritable(5), counts: d.logDirty.dirtyCount }, { rearmed: true, counts: 0 });
    assertNoPagingLeftovers(hv, 3);
    xc.close();
  });

  it('a domain with a CLEAN pending cannot be torn down, and once dying its paging ops are ignored, so the CLEAN must be finished first', async () => {
    const { hv, xc } = await mockHandle({ preempt: 'always' }, noRetry);
    const d = await trackedGuest(hv, xc, [5]);
    hv.faults.inject({ op: 'arch_1', direction: 'in', nth: 1 });
    assert.equal((await raw(xc, 3, SHADOW_OP.CLEAN, { pages: PAGES })).errno, 'EFAULT');
    await assert.rejects(xc.domctl.destroydomain({ domain: 3 }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EBUSY');
    assert.equal(d.dying, true);
    assert.equal((await raw(xc, 3, SHADOW_OP.CLEAN, { pages: PAGES, via: 'cont' })).errno, null, 'hypercall 49 returns 0 on a dying domain...');
    assert.equal(d.pagingPreempt?.op, SHADOW_OP.CLEAN, '...without finishing anything');
    await assert.rejects(xc.domctl.destroydomain({ domain: 3 }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EBUSY');
    assert.ok(hv.domain(3), 'stuck dying');
    xc.close();
  });

  it('OFF frees the bitmap preemptibly too: a faulted re-entry leaves it pending with the domain paused, and the typed call finishes it', async () => {
    for (const typed of [false, true]) {
      const { hv, xc } = await mockHandle({ preempt: 'always' }, typed ? {} : noRetry);
      const d = await trackedGuest(hv, xc, [5, 40_000]);
      hv.faults.inject({ op: 'arch_1', direction: 'in', nth: 1 });
      if (typed) {
        await xc.domctl.shadow_op.off({ domain: 3 });
        assert.ok(hv.history.calls('arch_1').length >= 2, 'the typed call issued hypercall 49 itself');
      } else {
        assert.equal((await raw(xc, 3, SHADOW_OP.OFF)).errno, 'EFAULT');
        assert.deepEqual({ pending: d.pagingPreempt?.op, paused: d.paused, enabled: d.logDirty.enabled }, { pending: SHADOW_OP.OFF, paused: true, enabled: false });
        assert.equal((await raw(xc, 3, SHADOW_OP.CLEAN, { pages: PAGES })).errno, 'EBUSY');
        assert.equal((await raw(xc, 3, SHADOW_OP.OFF, { via: 'cont' })).errno, null);
      }
      assert.equal(d.logDirty.enabled, false);
      assert.equal(d.logDirty.allocated, false, 'the bitmap is freed');
      assertNoPagingLeftovers(hv, 3);
      xc.close();
    }
  });

  it('counters: dirty_count counts new bits and survives OFF and ENABLE; only a completed CLEAN zeroes it', async () => {
    const { hv, xc } = await mockHandle({ preempt: 'never' });
    const d = await trackedGuest(hv, xc, [1, 2, 2]);
    await xc.domctl.shadow_op.off({ domain: 3 });
    await xc.domctl.shadow_op.enable_logdirty({ domain: 3 });
    const peek = await xc.domctl.shadow_op.peek({ domain: 3, pages: BigInt(PAGES) });
    assert.deepEqual({ bits: setBits(peek.bitmap), fault: peek.fault_count, dirty: peek.dirty_count }, { bits: [], fault: 0, dirty: 2 }, 'OFF freed the bitmap, not the counters');
    d.writePage(3);
    const clean = await xc.domctl.shadow_op.clean({ domain: 3, pages: BigInt(PAGES) });
    assert.equal(clean.dirty_count, 3);
    assert.equal((await xc.domctl.shadow_op.peek({ domain: 3, pages: BigInt(PAGES) })).dirty_count, 0);
    xc.close();
  });

  it('LOGDIRTY_FINAL marks the frames Xen keeps mapped writable (HVM only); any other CLEAN/PEEK mode bit is -EINVAL', async () => {
    const { hv, xc } = await mockHandle({ preempt: 'never' }, noRetry);
    const d = await trackedGuest(hv, xc, [5]);
    d.logDirty.mappedFrames.add(9); // Xen writes page 9 through its own mapping: no fault, no log
    assert.deepEqual(setBits((await xc.domctl.shadow_op.clean({ domain: 3, pages: BigInt(PAGES) })).bitmap), [5]);
    assert.deepEqual(setBits((await xc.domctl.shadow_op.clean({ domain: 3, pages: BigInt(PAGES), final: true })).bitmap), [9]);
    assert.equal((await raw(xc, 3, SHADOW_OP.PEEK, { pages: PAGES, mode: 1 << 1 })).errno, 'EINVAL');
    const pv = hv.addDomain({ domid: 4, totPages: 64 });
    pv.logDirty.enabled = true;
    pv.logDirty.mappedFrames.add(9);
    assert.deepEqual(setBits((await xc.domctl.shadow_op.peek({ domain: 4, pages: 64n, final: true })).bitmap), [], 'is_hvm_domain(d) guards it');
    xc.close();
  });
});
