// Save/restore on the mock: a guest keeps writing its memory while the live-migration loop runs;
// after the final round the destination must equal the source byte for byte, under copy faults
// at every point of CLEAN and its continuations, seeded random faults and seeded preemption.
// The guest that matters is one that rewrites the SAME pages: under Xen's tracking only the
// first write after a completed CLEAN is logged, so a round that lets a CLEAN clear leaves
// without re-arming loses those pages' later writes. The same harness with a naive re-issue of
// CLEAN must detect corruption (so the check can fail). After every run, Xen holds nothing:
// no op pending for hypercall 49, no pause of its own.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, XencallError, open } from '../src/index.js';
import { liveMigrate, type CleanStrategy, type LiveMigrationOptions } from '../src/saverestore.js';
import { MockGuestWorkload, MockHypervisor, type MockDomain, type PreemptPolicy } from '../src/testing/index.js';
import { assertNoPagingLeftovers } from './helpers.js';

const PAGES = 70_000; // three log-dirty leaves (32768 pages each), the last one partial
const PAGE_BYTES = 8;
/** Pages the hot guest rewrites: some in each leaf, so a fault at any leaf copy meets them. */
const HOT = Array.from({ length: 48 }, (_, i) => (i * 1459 + 3) % PAGES);

interface Scenario {
  strategy?: CleanStrategy;
  preempt?: PreemptPolicy;
  /** The guest rewrites only HOT pages (default) or random ones. */
  guest?: 'hot' | 'random';
  faults?: (hv: MockHypervisor) => void;
  /** Replaces the workload: writes made at each point of each round, for exact scenarios. */
  script?: (dom: MockDomain, round: number, at: 'tick' | 'before-copy' | 'after-copy') => void;
  options?: Partial<LiveMigrationOptions>;
}

interface Run {
  equal: boolean;
  mismatched: number;
  faults: number;
  hv: MockHypervisor;
  report: Awaited<ReturnType<typeof liveMigrate>>;
}

async function migrate(seed: number, s: Scenario = {}): Promise<Run> {
  const hv = new MockHypervisor({ strict: true, preempt: s.preempt ?? { rate: 0.5, seed } });
  const dom = hv.addDomain({ domid: 7, totPages: PAGES, hvm: true, withMemory: true, memoryPageBytes: PAGE_BYTES });
  const guest = new MockGuestWorkload(dom, seed, s.guest === 'random' ? undefined : HOT);
  for (let g = 0; g < PAGES; g++) dom.writePage(g, (p) => p.fill(g & 0xff));
  s.faults?.(hv);
  const xc = await open({ backend: hv.backend(), sleep: { async: async () => {}, sync: () => {} } });
  const dest = new Uint8Array(PAGES * PAGE_BYTES);
  let round = 0;
  const run = (at: 'tick' | 'before-copy' | 'after-copy', pages: number) => (s.script ? s.script(dom, round, at) : guest.step(pages));
  const report = await liveMigrate(xc, {
    domain: 7,
    pages: PAGES,
    maxRounds: 4,
    dirtyThreshold: 5,
    onCleanFault: s.strategy ?? 'merge',
    onTick: () => run('tick', 40),
    sendPages: (gfns, info) => {
      round = info.round;
      run('before-copy', 20); // the guest runs while pages are copied, before...
      for (const g of gfns) dest.set(dom.page(g), g * PAGE_BYTES);
      run('after-copy', 20); // ...and after
    },
    ...s.options,
  });
  xc.close();
  let mismatched = 0;
  for (let g = 0; g < PAGES; g++) if (!Buffer.from(dom.page(g)).equals(Buffer.from(dest.subarray(g * PAGE_BYTES, (g + 1) * PAGE_BYTES)))) mismatched++;
  assert.ok(dom.paused, 'the source is left paused');
  assert.equal(dom.logDirty.enabled, false, 'log-dirty mode is off at the end');
  assertNoPagingLeftovers(hv, 7, 1, `seed ${seed}: `);
  return { equal: mismatched === 0, mismatched, faults: hv.history.faults().length, hv, report };
}

const cleanOps = ['domctl.shadow_op.clean', 'arch_1'] as const;

describe('live migration on the mock', () => {
  it('copies the guest exactly with no faults, whatever the preemption', async () => {
    for (const preempt of ['never', 'always', { rate: 0.5, seed: 3 }] as const) {
      for (const guest of ['hot', 'random'] as const) {
        const r = await migrate(1, { preempt, guest });
        assert.ok(r.equal, `${JSON.stringify(preempt)} ${guest}: ${r.mismatched} pages differ`);
        assert.equal(r.report.cleanFaults, 0);
        assert.ok(r.report.rounds.length >= 3);
        assert.ok(r.report.rounds.at(-1)!.final);
      }
    }
  });

  it('the final round asks for LOGDIRTY_FINAL, so frames Xen writes through its own mappings are sent', async () => {
    // Xen's own write (a vcpu_info page it maps, say) never faults, so no CLEAN sees it; only
    // the final round's LOGDIRTY_FINAL marks the frame.
    const r = await migrate(2, {
      preempt: 'never',
      faults: (hv) => void hv.domain(7)!.logDirty.mappedFrames.add(123),
      script: (dom, _round, at) => {
        if (at === 'tick' && !dom.paused) dom.page(123).fill(dom.page(123)[0]! + 1);
      },
    });
    assert.ok(r.equal, `${r.mismatched} pages differ`);
  });

  it('survives a fault at every copy point of CLEAN and its continuations, in every round, with a guest rewriting the same pages', async () => {
    let points = 0;
    for (const preempt of ['always', { rate: 0.5, seed: 9 }] as const) {
      const ref = await migrate(100, { preempt });
      for (const op of cleanOps) {
        const copies = ref.hv.history.copies().filter((c) => c.name === op).length;
        assert.ok(copies > 4, `${op}: only ${copies} copies in a fault-free run`);
        for (let k = 1; k <= copies; k++) {
          const r = await migrate(100, { preempt, faults: (hv) => void hv.faults.inject({ op, nth: k }) });
          assert.ok(r.equal, `${JSON.stringify(preempt)}: fault at ${op} copy ${k}: ${r.mismatched} pages differ`);
          if (r.faults) points++;
        }
      }
    }
    assert.ok(points >= 40, `only ${points} runs hit a fault`);
  });

  it('survives seeded random faults at a high rate with seeded preemption over many seeds, finishing continuations', async () => {
    let faults = 0;
    let continued = 0;
    for (const guest of ['hot', 'random'] as const) {
      for (let seed = 1; seed <= 25; seed++) {
        const r = await migrate(seed, {
          guest,
          faults: (hv) => {
            for (const op of cleanOps) hv.faults.random({ op, rate: 0.2, seed: seed * 7 + op.length });
          },
        });
        assert.ok(r.equal, `${guest} seed ${seed}: ${r.mismatched} pages differ`);
        faults += r.faults;
        continued += r.report.continued;
      }
    }
    assert.ok(faults > 100, `the campaign injected only ${faults} faults`);
    assert.ok(continued > 0, 'some rounds finished a pending op through paging_domctl_cont');
  });

  it('all-dirty re-arms before it resends everything: the pages a failed CLEAN left writable are not lost', async () => {
    // Page 5 is written before round 1's CLEAN (logged, now writable); that CLEAN copies and
    // clears leaf 0, then faults on leaf 1. Page 5 is written once more after round 1's copy
    // and never again: only a re-arm before that copy lets the write be seen.
    const r = await migrate(5, {
      strategy: 'all-dirty',
      preempt: 'never',
      faults: (hv) => void hv.faults.inject({ op: 'domctl.shadow_op.clean', direction: 'out', nth: 2 }),
      script: (dom, round, at) => {
        if (round === 0 && at === 'after-copy') dom.writePage(5, (p) => p.fill(1));
        if (round === 1 && at === 'after-copy') dom.writePage(5, (p) => p.fill(2));
      },
    });
    assert.ok(r.equal, `${r.mismatched} pages differ`);
    assert.equal(r.report.allDirtyRounds, 1);
    assert.equal(r.report.rounds[1]!.allDirty, true);
  });

  it('when not even a bitmap-less CLEAN completes, the guest is paused and the round becomes the final one', async () => {
    // From round 2 on every CLEAN faults on its entry copy: none can complete or re-arm.
    const r = await migrate(6, { preempt: 'never', faults: (hv) => void hv.faults.inject({ op: 'domctl.shadow_op.clean', direction: 'in', nth: 2, times: Infinity }) });
    assert.ok(r.equal, `${r.mismatched} pages differ`);
    const early = r.report.rounds.find((x) => x.pausedEarly);
    assert.ok(early && early.final && early.allDirty, 'a paused, final, all-pages round');
  });

  it('an abort between rounds leaves the source as it found it: nothing pending, log-dirty off, running', async () => {
    const hv = new MockHypervisor({ strict: true, preempt: 'always' });
    const dom = hv.addDomain({ domid: 7, totPages: PAGES, hvm: true });
    const ac = new AbortController();
    const xc = await open({ backend: hv.backend(), sleep: { async: async () => {}, sync: () => {} } });
    let ticks = 0;
    await assert.rejects(
      liveMigrate(xc, { domain: 7, pages: PAGES, signal: ac.signal, sendPages: () => {}, onTick: () => void (++ticks === 1 && ac.abort()) }),
      (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.ABORTED,
    );
    assert.equal(dom.logDirty.enabled, false);
    assertNoPagingLeftovers(hv, 7, 0);
    xc.close();
  });

  it('a failure in the final round undoes the loop\'s pause and log-dirty mode', async () => {
    const hv = new MockHypervisor({ strict: true });
    const dom = hv.addDomain({ domid: 7, totPages: PAGES, hvm: true });
    const xc = await open({ backend: hv.backend(), sleep: { async: async () => {}, sync: () => {} } });
    await assert.rejects(
      liveMigrate(xc, {
        domain: 7,
        pages: PAGES,
        maxRounds: 1,
        sendPages: (_g, { final }) => {
          if (final) throw new Error('destination went away');
        },
      }),
      /destination went away/,
    );
    assert.equal(dom.logDirty.enabled, false);
    assertNoPagingLeftovers(hv, 7, 0);
    xc.close();
  });

  it('the naive re-issue is caught: the same campaign finds corrupted pages', async () => {
    let corrupted = 0;
    for (let seed = 1; seed <= 25; seed++) {
      const r = await migrate(seed, {
        strategy: 'naive',
        faults: (hv) => {
          for (const op of cleanOps) hv.faults.random({ op, rate: 0.2, seed: seed * 7 + op.length });
        },
      });
      if (!r.equal) corrupted++;
    }
    assert.ok(corrupted > 0, 'a naive retry must lose dirty pages in at least one seeded run');
  });
});
