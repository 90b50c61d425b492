// The save/restore/migrate scenario of test/scenarios/saverestore.ts on the mock, with the mock
// running its model of the test guest; test/xen/guest/saverestore.test.ts runs it on real Xen.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { open } from '../src/index.js';
import { MockHypervisor } from '../src/testing/index.js';
import { saveRestoreScenario } from './scenarios/saverestore.js';

it('the test guest is migrated, saved and restored on the mock: identical at every switch-over, and it carries on', async () => {
  const hv = new MockHypervisor({ strict: true, preempt: { rate: 0.3, seed: 11 } });
  const xc = await open({ backend: hv.backend() });
  try {
    const r = await saveRestoreScenario(xc, { cycles: 2 });
    assert.deepEqual([r.migrations, r.restores, r.pagesDiffering], [2, 2, 0]);
  } finally {
    xc.close();
  }
});

it('the same under seeded copy faults on every op the operations make', async () => {
  const hv = new MockHypervisor({ strict: true, preempt: { rate: 0.3, seed: 12 } });
  const admin = await open({ backend: hv.backend() });
  const ops = await open({ backend: hv.backend(), sleep: { async: async () => {}, sync: () => {} } });
  try {
    // Faults fire on any copy while the ops handle works (admin's own calls fault too: the
    // rates are low enough for its retries).
    hv.faults.random({ rate: 0.0002, seed: 5 });
    for (const [i, op] of (['domctl.shadow_op', 'domctl.createdomain', 'domctl.gethvmcontext', 'domctl.sethvmcontext', 'hvm_op', 'memory_op.populate_physmap'] as const).entries()) {
      hv.faults.random({ rate: 0.03, seed: 50 + i, op });
    }
    const r = await saveRestoreScenario(admin, { ops, cycles: 2 });
    assert.equal(r.pagesDiffering, 0);
    assert.ok(hv.history.faults().length > 0, 'faults fired');
  } finally {
    ops.close();
    admin.close();
  }
});
