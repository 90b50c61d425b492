// The typed CLEAN, PEEK and OFF under Xen's continuations: whatever copy faults, none leaves the
// domain paused or an op pending for hypercall 49, and each reports what happened (a complete
// result, or a typed error saying what the follow-up found).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, HypercallError, XencallError, numbers, type Xencall } from '../src/index.js';
import type { PreemptPolicy } from '../src/testing/index.js';
import { assertNoPagingLeftovers, mockHandle } from './helpers.js';

const { SHADOW_OP } = numbers;
const PAGES = 70_000;
const DIRTY = [5, 33_000, 69_000];

function setBits(bitmap: Uint8Array): number[] {
  const out: number[] = [];
  bitmap.forEach((b, i) => {
    for (let j = 0; j < 8; j++) if (b & (1 << j)) out.push(i * 8 + j);
  });
  return out;
}

async function setup(preempt: PreemptPolicy) {
  const { hv, xc } = await mockHandle({ preempt });
  const d = hv.addDomain({ domid: 3, totPages: PAGES, hvm: true });
  await xc.domctl.shadow_op.enable_logdirty({ domain: 3 });
  for (const g of DIRTY) d.writePage(g);
  hv.history.clear();
  return { hv, xc, d };
}

type Typed = 'clean' | 'peek' | 'off';
const call = (xc: Xencall, op: Typed, signal?: AbortSignal) =>
  op === 'off' ? xc.domctl.shadow_op.off({ domain: 3 }, { signal }) : xc.domctl.shadow_op[op]({ domain: 3, pages: BigInt(PAGES) }, { signal });

describe('typed log-dirty calls leave nothing pending', () => {
  it('CLEAN whose continuation re-entry faults: hypercall 49 finishes it, and the result is complete', async () => {
    const { hv, xc, d } = await setup('always');
    hv.faults.inject({ op: 'arch_1', direction: 'in', nth: 1 });
    const r = await xc.domctl.shadow_op.clean({ domain: 3, pages: BigInt(PAGES) });
    assert.deepEqual(setBits(r.bitmap), DIRTY, 'the first slice\'s leaves plus the rest');
    assert.equal(r.dirty_count, DIRTY.length);
    assert.deepEqual(hv.history.calls().map((c) => c.name), ['domctl.shadow_op.clean', 'arch_1', 'arch_1']);
    // The first hypercall 49 is Xen's own continuation, whose entry copy faulted; the second is
    // the typed call's, which finished it.
    assert.equal(r.continuations, 1);
    assert.equal(d.logDirty.isWritable(5), false, 're-armed by the finished CLEAN');
    assertNoPagingLeftovers(hv, 3);
    xc.close();
  });

  it('PEEK whose re-entry faults: the runner\'s re-issue meets -EBUSY; the pending PEEK is finished and read again', async () => {
    const { hv, xc } = await setup('always');
    hv.faults.inject({ op: 'arch_1', direction: 'in', nth: 1 });
    const r = await xc.domctl.shadow_op.peek({ domain: 3, pages: BigInt(PAGES) });
    assert.deepEqual(setBits(r.bitmap), DIRTY);
    assert.deepEqual(
      hv.history.calls().map((c) => c.name),
      ['domctl.shadow_op.peek', 'arch_1', 'domctl.shadow_op.peek', 'arch_1', 'domctl.shadow_op.peek', 'arch_1'],
      'PEEK (re-entry faults), its re-issue (EBUSY), 49 (finishes), a fresh PEEK and its continuation',
    );
    assertNoPagingLeftovers(hv, 3);
    xc.close();
  });

  it('a PEEK aborted between attempts still finishes the op its first attempt left pending', async () => {
    const { hv, xc } = await setup('always');
    hv.faults.inject({ op: 'arch_1', direction: 'in', nth: 1 });
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(call(xc, 'peek', ac.signal), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.ABORTED);
    assertNoPagingLeftovers(hv, 3);
    xc.close();
  });

  it('a CLEAN that cannot be finished says so, naming the paused domain', async () => {
    const { hv, xc } = await setup('always');
    hv.faults.inject({ op: 'arch_1', direction: 'in', times: Infinity });
    await assert.rejects(call(xc, 'clean'), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.RETRY_EXHAUSTED && /domain 3.*paused/.test(e.message));
    assert.equal(hv.domain(3)!.pagingPreempt?.op, SHADOW_OP.CLEAN, 'it is still pending: the error is the truth');
    hv.faults.clear();
    // OFF meets -EBUSY, finishes the pending CLEAN through hypercall 49, and switches off.
    await xc.domctl.shadow_op.off({ domain: 3 });
    assert.equal(hv.domain(3)!.logDirty.enabled, false);
    assertNoPagingLeftovers(hv, 3);
    const calls = hv.history.calls().map((c) => [c.name, c.continuation ?? false] as const);
    const fromOff = calls.slice(calls.findIndex(([n]) => n === 'domctl.shadow_op.off'));
    assert.deepEqual(fromOff.slice(0, 3), [['domctl.shadow_op.off', false], ['arch_1', false], ['domctl.shadow_op.off', false]]);
    assert.ok(fromOff.slice(3).every(([n, continued]) => n === 'arch_1' && continued), "then only Xen's own continuations of that OFF");
    xc.close();
  });

  it('OFF with nothing pending but -EBUSY anyway rethrows it, saying hypercall 49 found nothing', async () => {
    const { hv, xc } = await setup('never');
    hv.faults.reply({ op: 'domctl.shadow_op.off', errno: 'EBUSY', times: 1 });
    await assert.rejects(xc.domctl.shadow_op.off({ domain: 3 }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EBUSY' && /found no CLEAN, PEEK or OFF pending/.test(e.message));
    assert.deepEqual(hv.history.calls().map((c) => c.name), ['domctl.shadow_op.off', 'arch_1', 'arch_1', 'arch_1']);
    xc.close();
  });

  it('a CLEAN failing on a leaf copy is refused with what was found: nothing pending', async () => {
    const { hv, xc } = await setup('never');
    hv.faults.inject({ op: 'domctl.shadow_op.clean', direction: 'out', nth: 2 });
    await assert.rejects(call(xc, 'clean'), (e: unknown) => e instanceof HypercallError && e.code === ErrorCodes.RETRY_REFUSED && /found no CLEAN pending/.test(e.message));
    assertNoPagingLeftovers(hv, 3);
    xc.close();
  });

  for (const preempt of ['always', { rate: 0.5, seed: 11 }] as const) {
    it(`a fault at every copy point of CLEAN, PEEK, OFF and their continuations (preempt ${JSON.stringify(preempt)}) leaves no domain paused or op pending`, async () => {
      let runs = 0;
      let fired = 0;
      for (const op of ['clean', 'peek', 'off'] as const) {
        const ref = await setup(preempt);
        await call(ref.xc, op);
        const copies = (name: string) => ref.hv.history.copies().filter((c) => c.name === name).length;
        const points = [
          ...Array.from({ length: copies(`domctl.shadow_op.${op}`) }, (_, i) => ({ op: `domctl.shadow_op.${op}` as const, nth: i + 1 })),
          ...Array.from({ length: copies('arch_1') }, (_, i) => ({ op: 'arch_1' as const, nth: i + 1 })),
        ];
        ref.xc.close();
        assert.ok(points.length >= 2, `${op}: too few copy points`);
        for (const p of points) {
          const { hv, xc } = await setup(preempt);
          hv.faults.inject(p);
          let result: unknown;
          try {
            result = await call(xc, op);
          } catch (e) {
            assert.ok(e instanceof HypercallError && ['EFAULT', 'EBUSY'].includes(e.errnoName), `${op} ${JSON.stringify(p)}: unexpected ${String(e)}`);
          }
          if (hv.history.faults().length) fired++;
          runs++;
          assertNoPagingLeftovers(hv, 3, 0, `${op}, fault at ${p.op} copy ${p.nth}: `);
          if (result && op !== 'off') assert.deepEqual(setBits((result as { bitmap: Uint8Array }).bitmap), DIRTY, `${op} ${JSON.stringify(p)}: a returned result is complete`);
          xc.close();
        }
      }
      assert.ok(fired >= runs - 3, `only ${fired} of ${runs} runs hit their fault`);
    });
  }
});

describe('CLEAN and PEEK into the caller\'s bitmap, or none', () => {
  it('reads into the caller\'s buffer (zeroed first) and returns a view of it', async () => {
    const { xc } = await setup('never');
    const buf = xc.allocBuffer(PAGES / 8 + 100);
    buf.bytes.fill(0xff);
    const r = xc.sync.domctl.shadow_op.peek({ domain: 3, pages: BigInt(PAGES), bitmap: buf });
    assert.equal(r.bitmap.buffer, buf.bytes.buffer, 'a view, not a copy');
    assert.equal(r.bitmap.length, PAGES / 8);
    assert.deepEqual(setBits(buf.bytes.subarray(0, PAGES / 8)), DIRTY);
    assert.equal(r.continuations, 0);
    assert.throws(
      () => xc.sync.domctl.shadow_op.clean({ domain: 3, pages: BigInt(PAGES), bitmap: xc.allocBuffer(16) }),
      (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.VALIDATION && /^domctl\.shadow_op\.clean\.bitmap: holds 16 bytes; 70000 pages need 8750/.test(e.message),
    );
    xc.close();
  });

  it('a CLEAN failing on a leaf copy leaves what Xen copied out in the caller\'s buffer, as the recovery asks', async () => {
    const { hv, xc } = await setup('never');
    const buf = xc.allocBuffer(PAGES / 8);
    // Leaf 0 (pages 0-32767) is copied and cleared; the copy of leaf 1 faults.
    hv.faults.inject({ op: 'domctl.shadow_op.clean', direction: 'out', nth: 2 });
    assert.throws(() => xc.sync.domctl.shadow_op.clean({ domain: 3, pages: BigInt(PAGES), bitmap: buf }), (e: unknown) => e instanceof HypercallError && e.code === ErrorCodes.RETRY_REFUSED);
    assert.deepEqual(setBits(buf.bytes), [5], 'page 5 was in leaf 0: cleared in Xen, kept here');
    const again = xc.sync.domctl.shadow_op.clean({ domain: 3, pages: BigInt(PAGES), bitmap: buf });
    assert.deepEqual(setBits(again.bitmap), [33_000, 69_000], 'the rest: only the two together are complete');
    xc.close();
  });

  it('bitmap: null copies nothing; a CLEAN then only clears and re-arms', async () => {
    const { hv, xc, d } = await setup('never');
    d.writePage(5);
    assert.equal(d.logDirty.isWritable(5), true, 'logged once, then writable');
    const r = xc.sync.domctl.shadow_op.clean({ domain: 3, pages: BigInt(PAGES), bitmap: null });
    assert.equal(r.bitmap.length, 0);
    assert.deepEqual(hv.history.copies().filter((c) => c.what.startsWith('dirty_bitmap')), [], 'no bitmap copied out');
    assert.equal(d.logDirty.isWritable(5), false, 're-armed');
    assert.deepEqual(setBits(xc.sync.domctl.shadow_op.peek({ domain: 3, pages: BigInt(PAGES) }).bitmap), [], 'and cleared');
    xc.close();
  });
});
