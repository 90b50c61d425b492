// The test guest on a real Xen, inside dom0 (npm run test:xen): the scenario the mock runs in
// test/test-guest.test.ts, here against Xen 4.17 under qemu. dom0 has no assembler, so the image
// is built on the host by scripts/test-xen.sh and named by XENCALL_TEST_GUEST_IMAGE. Tests that
// run a guest live in test/xen/guest/ and boot with one dom0 vcpu: with two, a running guest
// corrupts multi-threaded dom0 processes (xen-vm/README.md, "Pitfalls").

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { open, type Xencall } from '../../../src/index.js';
import { TEST_GUEST_LAYOUT, loadTestGuestImage } from '../../../src/testing/index.js';
import { testGuestScenario } from '../../scenarios/test-guest.js';
import { vm } from '../vm-env.js';

function imagePath(): string {
  const p = process.env.XENCALL_TEST_GUEST_IMAGE;
  if (!p) throw new Error('XENCALL_TEST_GUEST_IMAGE is not set: scripts/test-xen.sh builds the test guest on the host and passes its path (run `npm run test:xen`)');
  if (!fs.existsSync(p)) throw new Error(`XENCALL_TEST_GUEST_IMAGE=${p} does not exist in dom0 (it must be under the project directory, which is shared at the same path)`);
  return p;
}

describe(`test guest on real Xen ${vm.xenVersion} (${vm.noHypercallDev ? 'locked buffers' : '/dev/xen/hypercall buffers'}, ${vm.vcpus} dom0 vcpu)`, () => {
  it('runs with one dom0 vcpu, as guests must here', () => assert.equal(vm.vcpus, 1));

  let xc: Xencall;
  before(async () => {
    xc = await open();
  });
  after(() => xc.close());

  it('the image built on the host is the test guest of this package', () => {
    const img = loadTestGuestImage(imagePath());
    assert.equal(img.version, TEST_GUEST_LAYOUT.version);
  });

  it('boots from Node, counts, moves its write set through a writable mapping, and is destroyed leaving nothing', async () => {
    await testGuestScenario(xc, { image: imagePath(), log: (line) => console.log(`# test guest: ${line}`) });
  });
});
