// The long-run comparison (scripts/long-run.ts, `npm run longrun`, 10^6 calls) in a short form:
// a seeded mix of reads, safe writes and unsafe ops with their recovery, on a fault-free mock and
// on one that faults guest copies, must agree on every result and end in the same world. The
// control, a toolstack that re-issues refused ops blindly, must be caught.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { longRun } from '../scripts/long-run.js';

describe('long run, short form', { timeout: 300_000 }, () => {
  for (const seed of [3, 4]) {
    it(`seed ${seed}: 5,000 faulted calls agree with the fault-free run: no wrong result, no double effect`, async () => {
      const r = await longRun({ calls: 5000, seed, rate: 0.05, checkEvery: 500 });
      assert.deepEqual(r.problems, []);
      assert.equal(r.wrongResults, 0);
      assert.equal(r.doubleEffects, 0);
      assert.equal(r.worldMismatches, 0);
      // The run exercised what it is meant to: faults, retries, refusals and both recoveries.
      assert.ok(r.injectedFaults > 500, `${r.injectedFaults} faults`);
      assert.ok(r.retries > 500, `${r.retries} retries`);
      assert.ok(r.refused > 10 && r.adopted > 0 && r.reissued > 0, `refused ${r.refused}, adopted ${r.adopted}, reissued ${r.reissued}`);
    });
  }

  it('the control: re-issuing refused ops blindly is caught as different results and a different world', async () => {
    const r = await longRun({ calls: 5000, seed: 3, rate: 0.05, checkEvery: 500, afterRefusal: 'reissue' });
    assert.ok(r.wrongResults > 0, 'a re-issued createdomain or alloc_unbound answers differently');
    assert.ok(r.worldMismatches > 0, 'and leaves an extra domain or port behind');
  });
});
