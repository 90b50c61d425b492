// Save/restore on the mock: a guest keeps writing its memory while the live-migration loop runs;
// after the final round the destination must equal the source byte for byte, under copy faults
// at every point of CLEAN and its continuations, over many seeds. The same harness with a naive
// re-issue of CLEAN must detect corruption (so the check can fail).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { open } from '../src/index.js';
import { liveMigrate, type CleanStrategy } from '../src/saverestore.js';
import { MockGuestWorkload, MockHypervisor } from '../src/testing/index.js';

const PAGES = 70_000; // three log-dirty chunks (32768 pages each), the last one partial
const PAGE_BYTES = 8;

interface Run {
  equal: boolean;
  mismatched: number;
  faults: number;
  report: Awaited<ReturnType<typeof liveMigrate>>;
}

async function migrate(seed: number, strategy: CleanStrategy, faults: (hv: MockHypervisor) => void): Promise<Run> {
  // One chunk per slice: every CLEAN continues twice through paging_domctl_cont.
  const hv = new MockHypervisor({ strict: true, preempt: { rate: 0.5, seed } });
  const dom = hv.addDomain({ domid: 7, totPages: PAGES, withMemory: true, memoryPageBytes: PAGE_BYTES });
  const guest = new MockGuestWorkload(dom, seed);
  for (let g = 0; g < PAGES; g++) dom.writePage(g, (p) => p.fill(g & 0xff));
  faults(hv);
  const xc = await open({ backend: hv.backend(), sleep: { async: async () => {}, sync: () => {} } });
  const dest = new Uint8Array(PAGES * PAGE_BYTES);
  const report = await liveMigrate(xc, {
    domain: 7,
    pages: PAGES,
    maxRounds: 4,
    dirtyThreshold: 5,
    onCleanFault: strategy,
    onTick: () => guest.step(40),
    sendPages: (gfns) => {
      guest.step(20); // the guest runs while pages are copied, before...
      for (const g of gfns) dest.set(dom.page(g), g * PAGE_BYTES);
      guest.step(20); // ...and after
    },
  });
  xc.close();
  let mismatched = 0;
  for (let g = 0; g < PAGES; g++) if (!Buffer.from(dom.page(g)).equals(Buffer.from(dest.subarray(g * PAGE_BYTES, (g + 1) * PAGE_BYTES)))) mismatched++;
  assert.ok(dom.paused, 'the source is left paused');
  assert.equal(dom.logDirty.enabled, false, 'log-dirty mode is off at the end');
  return { equal: mismatched === 0, mismatched, faults: hv.history.faults().length, report };
}

const cleanOps = ['domctl.shadow_op.clean', 'arch_1'] as const;

describe('live migration on the mock', () => {
  it('copies the guest exactly with no faults', async () => {
    const r = await migrate(1, 'merge', () => {});
    assert.ok(r.equal, `${r.mismatched} pages differ`);
    assert.equal(r.report.cleanFaults, 0);
    assert.ok(r.report.rounds.length >= 3);
    assert.ok(r.report.rounds.at(-1)!.final);
  });

  it('survives a fault at every copy point of CLEAN and its continuations, in every round', async () => {
    // A fault-free run makes (rounds x (entry + 3 chunks + 2 re-entries + copy-back)) copies; walk
    // a fault across all of them, one run each, in both CLEAN and the continuation hypercall.
    let points = 0;
    for (const op of cleanOps) {
      for (let k = 1; k <= 40; k++) {
        const r = await migrate(100 + k, 'merge', (hv) => void hv.faults.inject({ op, nth: k }));
        assert.ok(r.equal, `fault at ${op} copy ${k}: ${r.mismatched} pages differ`);
        if (r.faults) points++;
      }
    }
    assert.ok(points >= 30, `only ${points} runs hit a fault`);
  });

  it('survives seeded random faults at a high rate over many seeds, resuming continuations', async () => {
    let faults = 0;
    let continued = 0;
    for (let seed = 1; seed <= 25; seed++) {
      const r = await migrate(seed, 'merge', (hv) => {
        for (const op of cleanOps) hv.faults.random({ op, rate: 0.2, seed: seed * 7 + op.length });
      });
      assert.ok(r.equal, `seed ${seed}: ${r.mismatched} pages differ`);
      faults += r.faults;
      continued += r.report.continued;
    }
    assert.ok(faults > 50, `the campaign injected only ${faults} faults`);
    assert.ok(continued > 0, 'some rounds finished a pending op through paging_domctl_cont');
  });

  it('all-dirty also stays correct, at the price of resending everything', async () => {
    const r = await migrate(5, 'all-dirty', (hv) => void hv.faults.inject({ op: 'domctl.shadow_op.clean', nth: 9 }));
    assert.ok(r.equal);
    assert.equal(r.report.allDirtyRounds, 1);
  });

  it('the naive re-issue is caught: the same campaign finds corrupted pages', async () => {
    let corrupted = 0;
    for (let seed = 1; seed <= 25; seed++) {
      const r = await migrate(seed, 'naive', (hv) => {
        for (const op of cleanOps) hv.faults.random({ op, rate: 0.2, seed: seed * 7 + op.length });
      });
      if (!r.equal) corrupted++;
    }
    assert.ok(corrupted > 0, 'a naive retry must lose dirty pages in at least one seeded run');
  });
});
