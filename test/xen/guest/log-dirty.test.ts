// Log-dirty on a real running guest (npm run test:xen, the guest boots): Xen's CLEAN rounds
// report exactly the pages the test guest writes — its write set and its own counter page, no
// page missing, nothing else — before and after dom0 moves the write set through a writable
// foreign mapping; and the live-migration loop, run on locked hypercall buffers while a worker
// soft-offlines their pages (the seed's EFAULT, forced), keeps going through CLEANs that fault and
// loses nothing the guest wrote: after the final round the copy equals the paused guest.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { liveMigrate, open, type Xencall } from '../../../src/index.js';
import { openPrivcmd } from '../../../src/backends/privcmd.js';
import { TEST_GUEST_HOUSEKEEPING_GFNS, TEST_GUEST_LAYOUT as L, bootTestGuest, type TestGuest } from '../../../src/testing/index.js';
import { BufferStressor } from '../../../study/buffer-stressor.js';
import { vm } from '../vm-env.js';

const PAGES = 1024;
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

function imagePath(): string {
  const p = process.env.XENCALL_TEST_GUEST_IMAGE;
  if (!p || !fs.existsSync(p)) throw new Error('XENCALL_TEST_GUEST_IMAGE is not set or missing: run `npm run test:xen`, which builds the test guest on the host');
  return p;
}

function bitsOf(bitmap: Uint8Array): number[] {
  const out: number[] = [];
  bitmap.forEach((b, i) => {
    for (let j = 0; j < 8; j++) if (b & (1 << j)) out.push(i * 8 + j);
  });
  return out;
}

/** Asserts that a round's dirty pages are the write set plus (some of) the guest's housekeeping pages. */
function assertRound(what: string, dirty: number[], writeSet: readonly number[]): void {
  const set = new Set(dirty);
  const missing = writeSet.filter((g) => !set.has(g));
  const extra = dirty.filter((g) => !writeSet.includes(g) && !TEST_GUEST_HOUSEKEEPING_GFNS.includes(g));
  assert.deepEqual(missing, [], `${what}: pages the guest wrote are missing from the bitmap`);
  assert.deepEqual(extra, [], `${what}: pages the guest does not write are in the bitmap`);
  assert.ok(set.has(L.counterGfn), `${what}: the counter page, written every iteration, is dirty`);
}

describe(`log-dirty on the running test guest, real Xen ${vm.xenVersion} (${vm.noHypercallDev ? 'locked buffers' : '/dev/xen/hypercall buffers'})`, () => {
  let xc: Xencall;
  before(async () => {
    xc = await open();
  });
  after(() => xc.close());

  it('each CLEAN reports exactly the write set and the counter page, before and after the set moves', async () => {
    const setA = range(0x200, 24);
    const setB = range(0x280, 16).concat(range(0x3c0, 8));
    const guest: TestGuest = await bootTestGuest(xc, { pages: PAGES, writeSet: setA, image: imagePath() });
    try {
      await guest.waitForWriteSet();
      await xc.domctl.shadow_op.enable_logdirty({ domain: guest.domid });
      // The first CLEAN also reports what was written while ENABLE ran: start counting after it.
      await xc.domctl.shadow_op.clean({ domain: guest.domid, pages: BigInt(PAGES) });
      for (let round = 1; round <= 3; round++) {
        // Two whole iterations: every page of the set is written at least once after the CLEAN.
        await guest.waitForProgress((await guest.counter()) + 2);
        const r = await xc.domctl.shadow_op.clean({ domain: guest.domid, pages: BigInt(PAGES) });
        assertRound(`round ${round}`, bitsOf(r.bitmap), setA);
        console.log(`# log-dirty round ${round}: ${bitsOf(r.bitmap).length} dirty pages, dirty_count ${r.dirty_count}`);
      }
      // A PEEK right after a CLEAN: the guest ran on, but its pages are read-only again, and
      // only the first write to each was logged: the set again, nothing more.
      await guest.setWriteSet(setB);
      await guest.waitForWriteSet();
      await xc.domctl.shadow_op.clean({ domain: guest.domid, pages: BigInt(PAGES) });
      await guest.waitForProgress((await guest.counter()) + 2);
      const moved = await xc.domctl.shadow_op.clean({ domain: guest.domid, pages: BigInt(PAGES) });
      assertRound('after the write set moved', bitsOf(moved.bitmap), setB);
      assert.ok(
        bitsOf(moved.bitmap).every((g) => !setA.includes(g)),
        'the old set is no longer written, so no longer dirty',
      );
      await xc.domctl.shadow_op.off({ domain: guest.domid });
    } finally {
      await guest.destroy();
    }
  });

  it('the live loop on locked buffers under the soft-offline stressor: CLEANs fault, nothing the guest wrote is lost', async () => {
    // Each soft-offlined page is lost to dom0 (1 GiB here) until reboot; a spent stressor stresses
    // nothing, so the cap is set for the whole budget below (one boot hit 12,000 within it).
    const stressor = new BufferStressor({ intervalMs: 0.2, cap: 30000 });
    // The worker loads koffi before the guest takes a CPU of its own.
    const t = performance.now();
    await stressor.start();
    console.log(`# the soft-offline worker started in ${Math.round(performance.now() - t)} ms`);
    const guest = await bootTestGuest(xc, { pages: PAGES, writeSet: range(0x200, 48), image: imagePath() });
    // Locked anonymous buffers (as before Linux 4.18) in both boots: the stressor can migrate them.
    const locked = await open({ backend: stressor.aimAt(openPrivcmd({ hypercallBufPath: null })) });
    let runs = 0;
    let cleanFaults = 0;
    const all = range(0, PAGES);
    try {
      const t0 = performance.now();
      // Until a CLEAN has faulted at least twice (about one CLEAN in twenty faults here), within
      // a budget far above what that takes; every run must end with an exact copy.
      while (cleanFaults < 2 && stressor.active() && performance.now() - t0 < 240_000) {
        const copy = new Map<number, Uint8Array>();
        const report = await liveMigrate(locked, {
          domain: guest.domid,
          pages: PAGES,
          maxRounds: 4,
          dirtyThreshold: 0,
          sendPages: async (gfns) => {
            if (gfns.length === 0) return;
            const m = xc.foreignMemory.map(guest.domid, gfns);
            try {
              gfns.forEach((g, i) => copy.set(g, m.page(i).slice()));
            } finally {
              m.unmap();
            }
          },
        });
        runs++;
        cleanFaults += report.cleanFaults;
        // The guest is paused: its memory now must equal the copy, page for page.
        const m = xc.foreignMemory.map(guest.domid, all);
        const differing: number[] = [];
        try {
          for (const g of all) if (Buffer.compare(m.page(g), copy.get(g)!) !== 0) differing.push(g);
        } finally {
          m.unmap();
        }
        assert.deepEqual(differing, [], `run ${runs} (${report.cleanFaults} CLEAN faults, ${report.continued} continuations, ${report.allDirtyRounds} all-dirty rounds): pages lost`);
        assert.equal((await xc.domctl.getdomaininfo({ domain: guest.domid })).paused, true);
        await xc.domctl.unpausedomain({ domain: guest.domid });
        await guest.waitForProgress((await guest.counter()) + 1);
      }
    } finally {
      const s = await stressor.stop();
      console.log(`# ${runs} live-loop runs, ${cleanFaults} CLEAN faults; stressor: ${s.offlined} pages soft-offlined over ${s.pagesAimedAt} buffer pages in ${s.stressedSeconds.toFixed(0)} s${s.capReached ? " (cap reached)" : ""}`);
      locked.close();
      await guest.destroy();
    }
    assert.ok(cleanFaults >= 2, `only ${cleanFaults} CLEAN faults in ${runs} runs${stressor.active() ? '' : ' (the stressor reached its cap)'}: the forced EFAULT did not happen`);
  });
});
