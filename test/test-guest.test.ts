// The test guest booted from Node on the mock: the scenario the real suite runs on Xen
// (test/scenarios/test-guest.ts), then what only the mock can show: a failing step destroys the
// half-built domain and says which step it was; a lost createdomain reply is recovered by handle.

import assert from 'node:assert/strict';
import { describe, it, before } from 'node:test';
import { ErrorCodes } from '../src/index.js';
import { bootTestGuest, buildTestGuestImage, TestGuestError, TEST_GUEST_LAYOUT as L, verifyTestGuestPage } from '../src/testing/index.js';
import { mockHandle, UUID_A, UUID_B } from './helpers.js';
import { testGuestScenario } from './scenarios/test-guest.js';

let image: string;
before(async () => {
  image = (await buildTestGuestImage()).path;
});

describe('test guest on the mock', () => {
  it('boots, counts, moves its write set, and is destroyed leaving nothing (the real suite runs the same)', async () => {
    const { xc } = await mockHandle();
    await testGuestScenario(xc, { image });
    xc.close();
  });

  it('takes an explicit domid and handle, and is destroyed by asyncDispose', async () => {
    const { hv, xc } = await mockHandle();
    const guest = await bootTestGuest(xc, { image, domid: 42, handle: UUID_B, pages: 0x110, writeSet: [0x10a] });
    assert.equal(guest.domid, 42);
    assert.equal((await xc.domctl.getdomaininfo({ domain: 42 })).handle, UUID_B);
    assert.equal((await xc.domctl.getdomaininfo({ domain: 42 })).tot_pages, 0x110n);
    await guest.waitForWriteSet();
    assert.notEqual(verifyTestGuestPage(hv.domain(42)!.page(0x10a), 0x10a), null);
    await guest[Symbol.asyncDispose]();
    assert.equal(hv.domain(42), undefined);
    await assert.rejects(guest.counter(), (e: unknown) => (e as { code?: string }).code === ErrorCodes.CLOSED);
    await assert.rejects(bootTestGuest(xc, { image, pages: 0x10f }), (e: unknown) => (e as { code?: string }).code === ErrorCodes.VALIDATION);
    await assert.rejects(bootTestGuest(xc, { image, writeSet: [L.counterGfn] }), (e: unknown) => (e as { code?: string }).code === ErrorCodes.VALIDATION);
    xc.close();
  });

  it('waiting on a guest that cannot move gives up with its state, or stops on abort', async () => {
    const { xc } = await mockHandle();
    const guest = await bootTestGuest(xc, { image });
    await xc.domctl.pausedomain({ domain: guest.domid });
    const now = await guest.counter();
    await assert.rejects(guest.waitForProgress(now + 1, { timeoutMs: 30 }), (e: unknown) => e instanceof TestGuestError && e.step === 'wait' && /\(paused\)/.test(e.message));
    const ac = new AbortController();
    const waiting = guest.waitForProgress(now + 1, { signal: ac.signal });
    ac.abort();
    await assert.rejects(waiting, (e: unknown) => (e as { code?: string }).code === ErrorCodes.ABORTED);
    assert.equal(await guest.counter(), now, 'a paused guest does not run');
    await guest.destroy();
    xc.close();
  });

  it('a step that fails destroys the half-built domain and names the step', async () => {
    const { hv, xc } = await mockHandle();
    hv.faults.inject({ op: 'domctl.sethvmcontext', direction: 'in', times: Infinity });
    await assert.rejects(bootTestGuest(xc, { image, handle: UUID_A }), (e: unknown) => e instanceof TestGuestError && e.step === 'sethvmcontext' && e.code === ErrorCodes.TEST_GUEST && /was destroyed/.test(e.message));
    assert.equal(hv.history.effects('domain.created').length, 1);
    assert.equal(hv.history.effects('domain.destroyed').length, 1);
    assert.deepEqual((await xc.sysctl.getdomaininfolist()).map((d) => d.domid), [0]);
    xc.close();
  });

  it('a createdomain whose reply was lost (refused retry) is found by its handle and adopted', async () => {
    const { hv, xc } = await mockHandle();
    hv.faults.inject({ op: 'domctl.createdomain', direction: 'out' });
    const guest = await bootTestGuest(xc, { image, handle: UUID_A });
    assert.equal(hv.history.effects('domain.created').length, 1, 'created once, not twice');
    assert.equal((await xc.domctl.getdomaininfo({ domain: guest.domid })).handle, UUID_A);
    await guest.waitForProgress(2);
    await guest.destroy();
    xc.close();
  });

  it('a boot aborted between steps destroys the domain it made', async () => {
    const { hv, xc } = await mockHandle();
    // A signal that turns aborted at its third look: before max_mem, after createdomain.
    let looks = 0;
    const signal = new AbortController().signal;
    Object.defineProperty(signal, 'aborted', { get: () => ++looks >= 3 });
    await assert.rejects(bootTestGuest(xc, { image, signal }), (e: unknown) => (e as { code?: string }).code === ErrorCodes.ABORTED && /before max_mem/.test((e as Error).message));
    assert.equal(hv.history.effects('domain.created').length, 1);
    assert.deepEqual((await xc.sysctl.getdomaininfolist()).map((d) => d.domid), [0]);
    xc.close();
  });
});
