// A short run of the EFAULT study (study/efault.ts, docs/efault-study.md) inside the real dom0:
// getpageframeinfo3 batches of a populated domain while a worker thread soft-offlines the pages
// of the very buffers the calls use. It asserts what must hold however many EFAULTs the short
// window happens to produce (possibly none): no wrong types and no surfaced errors with xencall's
// retry, typed EFAULTs only with retry off, none at all with /dev/xen/hypercall buffers, and the
// unsafe op's refusals recovered without a leak. The counts are printed, not asserted.
//
// With /dev/xen/hypercall (the first boot of npm run test:xen): ways 1 and 3. Without it
// (--no-hypercall-dev): ways 2, 3 and 4 and the unsafe op.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runStudy, type WayNumber } from '../../study/efault.js';
import { vm } from './vm-env.js';

const WAY_SECONDS = 3;
const UNSAFE_SECONDS = 4;
/** Soft-offlined pages are lost to dom0 until reboot; a short run needs few. */
const CAP = 1500;
/**
 * xencall's retry budget for ways 1 and 3, and the stressor's pace. The stressor is a forcing
 * recipe: it migrates one of the call's three pages every interval, and a 1024-entry batch takes
 * milliseconds under emulation, so an attempt can overlap dozens of migrations and faults come
 * in runs (with 8 attempts and a 0.2 ms interval, one call in ~190 still exhausted them under
 * single-threaded TCG: XEN_ERR_RETRY_EXHAUSTED, typed, never a wrong result). What this test
 * pins is that re-issuing from pristine inputs recovers every call given a budget that matches
 * the fault rate, so it paces the stressor at 1 ms and allows 20 attempts; the full study
 * (docs/efault-study.md) runs the library's default at 0.2 ms and reports what it gets.
 */
const MAX_ATTEMPTS = 20;
const INTERVAL_MS = 1;

const ways: WayNumber[] = vm.noHypercallDev ? [2, 3, 4] : [1, 3];
const mode = vm.noHypercallDev ? 'locked buffers only' : 'with /dev/xen/hypercall';

describe(`EFAULT study, short (${mode}, real Xen ${vm.xenVersion})`, () => {
  it(`ways ${ways.join(', ')}${vm.noHypercallDev ? ' and alloc_unbound' : ''} under soft-offline: the invariants hold`, { timeout: 180_000 }, async () => {
    const r = await runStudy({
      platform: 'xen',
      ways,
      waySeconds: WAY_SECONDS,
      unsafeSeconds: vm.noHypercallDev ? UNSAFE_SECONDS : 0,
      capPerPhase: CAP,
      maxAttempts: MAX_ATTEMPTS,
      intervalMs: INTERVAL_MS,
      log: (line) => console.log(`# ${line}`),
    });

    assert.equal(r.domain.referenceStable, true, 'the fault-free reference changed between ways');
    assert.ok(r.domain.reinterpretedDiffers > 0, 'the batch must contain entries whose type, read as a frame number, answers differently');
    for (const w of r.ways) {
      const tag = `way ${w.way} (${w.label})`;
      assert.equal(w.offTargetAttempts, 0, `${tag}: a hypercall used a buffer the stressor did not aim at`);
      if (w.retry !== 'naive') assert.equal(w.wrongCalls, 0, `${tag}: ${w.wrongCalls} calls returned wrong types (${w.wrongEntries} entries)`);
      if (w.retry === 'xencall') assert.equal(w.surfaced, 0, `${tag}: errors surfaced: ${JSON.stringify(w.surfacedBy)}`);
      if (w.retry === 'off') {
        assert.equal(w.surfacedTypedEfault, w.surfaced, `${tag}: an error other than a typed EFAULT surfaced: ${JSON.stringify(w.surfacedBy)}`);
        assert.equal(w.surfaced, w.efaults, `${tag}: with retry off every EFAULT surfaces, and nothing else does`);
      }
      if (w.buffers === 'hypercall-dev') {
        assert.equal(w.efaults, 0, `${tag}: EFAULT with /dev/xen/hypercall buffers`);
        assert.equal(w.stressor.offlined, 0, `${tag}: the kernel soft-offlined a /dev/xen/hypercall page`);
      }
    }
    if (r.unsafe) {
      const u = r.unsafe;
      assert.equal(u.refused, u.efaults, 'every alloc_unbound EFAULT is refused, never re-issued');
      assert.equal(u.refusedTyped, u.refused, 'every refusal is XEN_ERR_RETRY_REFUSED/EFAULT after one attempt, with a recovery');
      assert.equal(u.refusedWithSeveralLeaks, 0, 'a refusal left more than one port: something re-issued');
      assert.equal(u.leakedRecovered, u.refusedAfterAllocation, 'the recovery scan found exactly the ports the refused calls allocated');
      assert.equal(u.unaccountedAtEnd, 0, 'an unbound port to the study domain was left that nobody knew of');
    }
    // Everything the study checks itself, for the record.
    for (const i of r.invariants) assert.ok(i.ok, `${i.name}: ${i.detail}`);

    for (const w of r.ways) {
      console.log(
        `# way ${w.way}: ${w.calls} calls, ${w.hypercalls} hypercalls, ${w.efaults} EFAULTs, ${w.retries} retries, ${w.surfaced} surfaced, ` +
          `${w.wrongCalls} calls with wrong types; ${w.stressor.offlined} pages soft-offlined, ${w.stressor.eio} refused (EIO)`,
      );
    }
    if (r.ways.every((w) => w.efaults === 0) && vm.noHypercallDev) console.log('# no EFAULT happened in this short window: the invariants held vacuously for the locked ways');
  });
});
