// The control experiment: a naive policy that re-issues every EFAULT (as a toolstack without the
// table might) does real harm, and the mock sees it. The same faults under xencall's table-driven
// retry do none. Proof that the mock can detect what the table prevents.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, HypercallError, encode, numbers, structs, type Xencall } from '../src/index.js';
import { mockHandle, UUID_A } from './helpers.js';
import { uuidToBytes } from '../src/hypercalls/schemas.js';

const { DOMCTL, HYPERCALL, SHADOW_OP, XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_PFINFO } = numbers;

/** Re-issues the same raw hypercall on every EFAULT, up to 3 times, inputs as Xen left them. */
async function naive(xc: Xencall, op: number, args: bigint[]): Promise<bigint> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await xc.hypercall(op, args);
    } catch (e) {
      if (!(e instanceof HypercallError) || e.errnoName !== 'EFAULT' || attempt === 3) throw e;
    }
  }
}

function domctlBuffer(xc: Xencall, cmd: number, domain: number) {
  const buf = xc.allocBuffer(structs.xen_domctl.size);
  encode(structs.xen_domctl, buf.view(), 0, { cmd, interface_version: XEN_DOMCTL_INTERFACE_VERSION, domain });
  return buf;
}

describe('naive retry-every-EFAULT control', () => {
  it('createdomain: the naive policy makes a second domain; xencall refuses and leaves one', async () => {
    for (const policy of ['naive', 'xencall'] as const) {
      const { hv, xc } = await mockHandle({}, { retry: { maxAttempts: policy === 'naive' ? 1 : 3 } });
      hv.faults.inject({ op: 'domctl.createdomain', direction: 'out' });
      const buf = domctlBuffer(xc, DOMCTL.createdomain, 0);
      encode(structs.xen_domctl_createdomain, buf.view(), structs.DOMCTL_PAYLOAD_OFFSET, { handle: uuidToBytes(UUID_A), max_vcpus: 1, max_evtchn_port: 1023, grant_opts: 1, max_grant_frames: -1, max_maptrack_frames: -1 });
      const withHandle = () => hv.sortedDomains().filter((d) => Buffer.from(d.handle).equals(Buffer.from(uuidToBytes(UUID_A)))).length;
      if (policy === 'naive') {
        await naive(xc, HYPERCALL.domctl, [buf.address]);
        assert.equal(withHandle(), 2, 'the mock sees the harm: two domains with one handle');
      } else {
        await assert.rejects(xc.hypercall(HYPERCALL.domctl, [buf.address]), (e: unknown) => e instanceof HypercallError && e.code === ErrorCodes.RETRY_REFUSED);
        assert.equal(withHandle(), 1, 'exactly one domain, findable by its handle');
      }
      xc.close();
    }
  });

  it('shadow_op CLEAN: the naive policy loses dirty pages; xencall refuses', async () => {
    const dirty = [3, 40_000, 70_000, 99_999];
    for (const policy of ['naive', 'xencall'] as const) {
      // Not preempted: the fifth copy-out is then the CLEAN's own copy-back, after every leaf.
      const { hv, xc } = await mockHandle({ preempt: 'never' }, { retry: { maxAttempts: policy === 'naive' ? 1 : 3 } });
      const d = hv.addDomain({ domid: 5, totPages: 100_000 });
      d.logDirty.enabled = true;
      d.logDirty.bitmap = new Uint8Array(12_500);
      for (const g of dirty) d.writePage(g);
      // Fault the final copy-back: every chunk was copied and cleared before it.
      hv.faults.inject({ op: 'domctl.shadow_op.clean', direction: 'out', nth: 5 });
      const bitmap = xc.allocBuffer(12_500);
      const buf = domctlBuffer(xc, DOMCTL.shadow_op, 5);
      encode(structs.xen_domctl_shadow_op, buf.view(), structs.DOMCTL_PAYLOAD_OFFSET, { op: SHADOW_OP.CLEAN, dirty_bitmap: bitmap.address, pages: 100_000n });
      if (policy === 'naive') {
        await naive(xc, HYPERCALL.domctl, [buf.address]);
        const bits = bitmap.bytes;
        const reported = dirty.filter((g) => bits[g >> 3]! & (1 << (g & 7)));
        assert.deepEqual(reported, [], 'the mock sees the harm: the "successful" retry reports none of the dirty pages');
        assert.equal(d.logDirty.dirtyCount, 0, 'and Xen has forgotten them');
      } else {
        await assert.rejects(xc.hypercall(HYPERCALL.domctl, [buf.address]), (e: unknown) => e instanceof HypercallError && e.code === ErrorCodes.RETRY_REFUSED);
        // The caller still holds the bitmap the failed CLEAN wrote: nothing is lost.
        const bits = bitmap.bytes;
        assert.deepEqual(dirty.filter((g) => bits[g >> 3]! & (1 << (g & 7))), dirty);
      }
      xc.close();
    }
  });

  it('getpageframeinfo3: the naive policy returns wrong types from the overwritten array; xencall restores it', async () => {
    const gfns = [0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n];
    const { hv: refHv, xc: refXc } = await mockHandle();
    refHv.addDomain({ domid: 5, totPages: 1000 });
    const expected = [...(await refXc.domctl.getpageframeinfo3({ domain: 5, gfns })).types];
    assert.ok(expected.some((t) => t !== XEN_DOMCTL_PFINFO.NOTAB), 'the reference has page-table pages to get wrong');

    for (const policy of ['naive', 'xencall'] as const) {
      const { hv, xc } = await mockHandle({}, { retry: { maxAttempts: policy === 'naive' ? 1 : 3 } });
      hv.addDomain({ domid: 5, totPages: 1000 });
      // Copy-out of element 6: elements 0..5 already hold types, not gfns.
      hv.faults.inject({ op: 'domctl.getpageframeinfo3', direction: 'out', nth: 7 });
      const arr = xc.allocBuffer(gfns.length * 8);
      gfns.forEach((g, i) => arr.view().setBigUint64(i * 8, g, true));
      const buf = domctlBuffer(xc, DOMCTL.getpageframeinfo3, 5);
      encode(structs.xen_domctl_getpageframeinfo3, buf.view(), structs.DOMCTL_PAYLOAD_OFFSET, { num: BigInt(gfns.length), array: arr.address });
      const call = policy === 'naive' ? naive(xc, HYPERCALL.domctl, [buf.address]) : xc.hypercall(HYPERCALL.domctl, [buf.address]);
      await call;
      const types = gfns.map((_, i) => Number(arr.view().getBigUint64(i * 8, true)));
      if (policy === 'naive') assert.notDeepEqual(types, expected, 'the mock sees the harm: types of types');
      else assert.deepEqual(types, expected, 'xencall re-issued from the pristine gfns');
      xc.close();
    }
  });
});
