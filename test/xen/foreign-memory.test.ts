// Foreign memory and populate_physmap against Xen itself, inside dom0 (npm run test:xen): the
// same contract the mock passes (test/contract.ts), on the privcmd backend, and a 10^5-entry gfn
// list that only real page tables can alias (the same frame at several places of one map).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { PrivcmdBackend } from '../../src/backends/privcmd.js';
import { XEN_DOMCTL_CDF } from '../../src/hypercalls/numbers.js';
import { open } from '../../src/index.js';
import { foreignMemoryContract } from '../contract.js';
import { vm } from './vm-env.js';

foreignMemoryContract(`privcmd (${vm.noHypercallDev ? 'locked buffers' : '/dev/xen/hypercall buffers'})`, {
  open: () => new PrivcmdBackend(),
  bigMapPages: 10_000,
});

describe(`foreign memory on real Xen ${vm.xenVersion}: a 10^5-entry gfn list`, () => {
  it('maps 100,000 entries naming 25,000 frames four times each; every alias is the same frame', async () => {
    const frames = 25_000;
    const entries = 100_000;
    const xc = await open();
    let domid = -1;
    try {
      ({ domid } = await xc.domctl.createdomain({ handle: randomUUID(), flags: XEN_DOMCTL_CDF.hvm | XEN_DOMCTL_CDF.hap, max_vcpus: 1, arch: { emulation_flags: 1, misc_flags: 0 } }));
      await xc.domctl.max_vcpus({ domain: domid, max: 1 });
      await xc.domctl.max_mem({ domain: domid, max_memkb: BigInt(frames * 4 + 1024) });
      assert.equal(await xc.memory_op.populate_physmap({ domid, gfns: new Uint32Array(frames).map((_, i) => i) }), frames);
      const m = xc.foreignMemory.map(domid, new Uint32Array(entries).map((_, i) => i % frames), { writable: true });
      try {
        assert.equal(m.errors.every((e) => e === 0), true);
        const words = new Uint32Array(m.bytes.buffer, m.bytes.byteOffset, m.bytes.length / 4);
        // Written through the first alias of each frame, read through the fourth.
        for (let f = 0; f < frames; f++) words[f * 1024 + (f % 1024)] = f + 1;
        let wrong = 0;
        for (let f = 0; f < frames; f++) if (words[(f + 3 * frames) * 1024 + (f % 1024)] !== f + 1) wrong++;
        assert.equal(wrong, 0);
      } finally {
        m.unmap();
      }
    } finally {
      if (domid > 0) await xc.domctl.destroydomain({ domain: domid });
      xc.close();
    }
  });
});
