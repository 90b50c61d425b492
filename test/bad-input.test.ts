// Bad input at every public entry point is a XencallError with a stable code and a field, never
// a raw TypeError and never silently taken as something else. The property suite
// (entry-points.properties.test.ts) throws random junk at the same entry points; these are the
// cases found by hand, each pinned.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, HypercallBuffer, ValidationError, XencallError, findDomainByHandle, findLeakedPorts, open, openSync, recoverConsole } from '../src/index.js';
import { MockHypervisor } from '../src/testing/index.js';
import { counting, mockHandle } from './helpers.js';

/** A matcher for assert.throws/rejects: a ValidationError naming `field`. */
const invalid = (field: string | RegExp) => (e: unknown) => {
  assert.ok(e instanceof ValidationError, `expected a ValidationError, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  assert.equal(e.code, ErrorCodes.VALIDATION);
  if (typeof field === 'string') assert.equal(e.field, field);
  else assert.match(e.field, field);
  return true;
};

describe('bad input is a typed error', () => {
  it('typed calls: options that are not an object, or a signal that is not an AbortSignal', async () => {
    const { hv, xc } = await mockHandle();
    const before = hv.calls;
    await assert.rejects(xc.domctl.getdomaininfo({ domain: 0 }, null as never), invalid('options'));
    await assert.rejects(xc.domctl.getdomaininfo({ domain: 0 }, 5 as never), invalid('options'));
    await assert.rejects(xc.domctl.getdomaininfo({ domain: 0 }, { signal: {} as never }), invalid('options.signal'));
    await assert.rejects(xc.domctl.getdomaininfo({ domain: 0 }, { signal: 'abort' as never }), invalid('options.signal'));
    await assert.rejects(xc.hypercall(17, [0], null as never), invalid('options'));
    await assert.rejects(xc.hypercall(17, [0], { signal: { aborted: true } as never }), invalid('options.signal'));
    assert.equal(hv.calls, before, 'nothing was issued');
    xc.close();
  });

  it('open(null), open(5) and a backend that is not a Backend are refused before anything opens', async () => {
    await assert.rejects(open(null as never), invalid('options'));
    await assert.rejects(open(5 as never), invalid('options'));
    await assert.rejects(open({ backend: {} as never }), invalid('backend'));
    assert.throws(() => openSync(null as never), invalid('options'));
    assert.throws(() => openSync({ backend: 'mock' as never }), invalid('backend'));
  });

  it('openSync({}) opens the privcmd backend, as open({}) does, instead of a handle without a backend', async () => {
    // Either the privcmd backend opens (in a dom0) or it fails typed; never a backend-less handle.
    for (const attempt of [() => openSync({}), () => openSync()]) {
      try {
        const xc = attempt();
        assert.equal(xc.backend.kind, 'privcmd');
        xc.close();
      } catch (e) {
        assert.ok(e instanceof XencallError && e.code === ErrorCodes.BACKEND_UNAVAILABLE, String(e));
      }
    }
  });

  it('open flags of 2^32 and above are refused (they used to wrap to 0 in a 32-bit mask)', async () => {
    const backend = () => new MockHypervisor().backend();
    await assert.rejects(open({ backend: backend(), flags: 2 ** 32 }), invalid('flags'));
    await assert.rejects(open({ backend: backend(), flags: 2 ** 32 + 1 }), invalid('flags'));
    await assert.rejects(open({ backend: backend(), flags: 2 ** 53 }), invalid('flags'));
    const ok = await open({ backend: backend(), flags: 1 });
    ok.close();
  });

  it("retry.retryOn must be a list of errno names: 'EFAULT' is not split into letters", async () => {
    const backend = () => new MockHypervisor().backend();
    await assert.rejects(open({ backend: backend(), retry: { retryOn: 'EFAULT' as never } }), invalid('retry.retryOn'));
    await assert.rejects(open({ backend: backend(), retry: { retryOn: ['EFAULT', 'ENOTANERRNO'] } }), invalid('retry.retryOn'));
    await assert.rejects(open({ backend: backend(), retry: null as never }), invalid('retry'));
    await assert.rejects(open({ backend: backend(), retry: { maxAttempts: '3' as never } }), invalid('retry.maxAttempts'));
    await assert.rejects(open({ backend: backend(), sleep: { async: 5 as never } }), invalid('sleep.async'));
    const xc = await open({ backend: backend(), retry: { retryOn: ['EFAULT', 'EAGAIN'] } });
    assert.deepEqual(xc.policy.retryOn, ['EFAULT', 'EAGAIN']);
    xc.close();
  });

  it('freeBuffer of something that is not a buffer of this handle is a typed error', async () => {
    const { xc } = await mockHandle();
    assert.throws(() => xc.freeBuffer(123 as never), invalid('buffer'));
    assert.throws(() => xc.freeBuffer(null as never), invalid('buffer'));
    assert.throws(() => xc.freeBuffer({ address: 1n } as never), invalid('buffer'));
    assert.throws(() => xc.freeBufferPages('x' as never), invalid('buffer'));
    // A buffer of another handle is not this handle's to free.
    const { xc: other } = await mockHandle();
    const foreign = other.allocBuffer(8);
    assert.throws(() => xc.freeBuffer(foreign), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.BUFFER_FREED);
    assert.equal(foreign.freed, false);
    other.close();
    xc.close();
  });

  it('buffer write/read take bytes and integer offsets only: a string is not coerced', async () => {
    const { xc } = await mockHandle();
    const b = xc.allocBuffer(16);
    assert.throws(() => b.write('7a9' as never), invalid('data'));
    assert.throws(() => b.write([7, 9] as never), invalid('data'));
    assert.throws(() => b.write(new Uint8Array(2), 1.5), invalid('offset'));
    assert.throws(() => b.write(new Uint8Array(2), '1' as never), invalid('offset'));
    assert.throws(() => b.read(0.5), invalid('offset'));
    assert.throws(() => b.read(Symbol('x') as never), invalid('offset'));
    assert.throws(() => b.read(0, NaN), invalid('length'));
    assert.throws(() => b.read(0, 17), invalid('length'));
    assert.ok(b.bytes.every((x) => x === 0), 'nothing was written');
    // Any byte view is bytes: a Buffer and a DataView's bytes both go in.
    b.write(Buffer.from([1, 2]), 0);
    b.write(new Uint8Array([3]), 2);
    assert.deepEqual([...b.read(0, 3)], [1, 2, 3]);
    assert.throws(() => new HypercallBuffer(null as never, 1), (e: unknown) => e instanceof XencallError);
    xc.close();
  });

  it('allocBuffer and allocBufferPages name their field for junk sizes', async () => {
    const { xc } = await mockHandle();
    assert.throws(() => xc.allocBuffer('8' as never), invalid('size'));
    assert.throws(() => xc.allocBufferPages(2 ** 40), invalid('pages'));
    xc.close();
  });

  it('recovery helpers: a non-iterable `known`, junk options and junk handles are typed errors', async () => {
    const { xc } = await mockHandle();
    await assert.rejects(findLeakedPorts(xc, { dom: 0, remote_dom: 1, known: 5 as never }), invalid('known'));
    await assert.rejects(findLeakedPorts(xc, null as never), invalid('options'));
    await assert.rejects(findLeakedPorts(xc, { dom: -1, remote_dom: 1 }), invalid('dom'));
    await assert.rejects(findLeakedPorts(xc, { dom: 0, remote_dom: 1, maxPort: 'x' as never }), invalid('maxPort'));
    await assert.rejects(findLeakedPorts(null as never, { dom: 0, remote_dom: 1 }), invalid('xc'));
    await assert.rejects(findDomainByHandle(xc, 5 as never), invalid('handle'));
    await assert.rejects(findDomainByHandle({} as never, '7e57c0de-0000-4000-8000-000000000001'), invalid('xc'));
    await assert.rejects(recoverConsole(xc, new Error('x'), null as never), invalid('options'));
    assert.deepEqual(await findLeakedPorts(xc, { dom: 0, remote_dom: 1, known: [1, 2], maxPort: 3 }), []);
    xc.close();
  });

  it("the mock's fault rules, options and addDomain answer junk with ValidationError naming the field", () => {
    const hv = new MockHypervisor();
    assert.throws(() => hv.faults.inject({ nth: 0 }), invalid('fault.nth'));
    assert.throws(() => hv.faults.inject({ times: 1.5 }), invalid('fault.times'));
    assert.throws(() => hv.faults.inject({ page: 1 }), invalid('fault.page'));
    assert.throws(() => hv.faults.inject({ direction: 'sideways' as never }), invalid('fault.direction'));
    assert.throws(() => hv.faults.inject(null as never), invalid('fault'));
    assert.throws(() => hv.faults.random({ rate: 2, seed: 1 }), invalid('fault.rate'));
    assert.throws(() => hv.faults.random({ rate: 0.1, seed: 1.5 }), invalid('fault.seed'));
    assert.throws(() => hv.faults.random(undefined as never), invalid('fault'));
    assert.throws(() => new MockHypervisor({ preempt: { rate: 2, seed: 1 } }), invalid('preempt'));
    assert.throws(() => new MockHypervisor({ preempt: 'sometimes' as never }), invalid('preempt'));
    assert.throws(() => new MockHypervisor({ historyLimit: -1 }), invalid('historyLimit'));
    assert.throws(() => new MockHypervisor(null as never), invalid('options'));
    assert.throws(() => hv.addDomain({ domid: 0 }), invalid('domid'));
    assert.throws(() => hv.addDomain({ domid: 0x7ff0 }), invalid('domid'));
    assert.throws(() => hv.addDomain({ domid: 3, totPages: -1 }), invalid('totPages'));
    assert.throws(() => hv.addDomain(null as never), invalid('spec'));
    assert.equal(hv.domains.size, 1, 'nothing was added');
  });

  it('setvcpuaffinity: a cpu no Xen can have is refused before anything is issued; one this host lacks, before the affinity is set, with physinfo read at most once per handle', async () => {
    const { hv, xc } = await mockHandle({ nrCpus: 4 });
    const dom = hv.addDomain({ domid: 5, totPages: 16, maxVcpus: 2, onlineVcpus: 2 });
    const names = () => hv.history.calls().map((c) => c.name);
    // Xen's NR_CPUS is at most 4095 (xen/arch/Kconfig), so cpu ids stop at 4094 on any host.
    await assert.rejects(xc.domctl.setvcpuaffinity({ domain: 5, vcpu: 0, hard: [4095] }), invalid(/^domctl\.setvcpuaffinity\.hard/));
    assert.deepEqual(names(), []);
    // This host has cpus 0..3: learning that takes one physinfo, and nothing else is issued but
    // the handle's one Xen version check (its first typed call that got past its arguments).
    await assert.rejects(xc.domctl.setvcpuaffinity({ domain: 5, vcpu: 0, hard: [7] }), invalid('domctl.setvcpuaffinity.hard'));
    assert.deepEqual(names(), ['xen_version.version', 'sysctl.physinfo']);
    await assert.rejects(xc.domctl.setvcpuaffinity({ domain: 5, vcpu: 0, soft: [0, 9] }), invalid('domctl.setvcpuaffinity.soft'));
    assert.deepEqual(names(), ['xen_version.version', 'sysctl.physinfo'], 'the cpu count is known now: nothing more is issued');
    assert.equal(dom.vcpus[0]!.hardAffinity, -1n, 'the affinity is unchanged');
    assert.deepEqual(await xc.domctl.setvcpuaffinity({ domain: 5, vcpu: 0, hard: [1, 2] }), { hard: [1, 2] });
    assert.deepEqual(names(), ['xen_version.version', 'sysctl.physinfo', 'domctl.setvcpuaffinity']);
    xc.close();
  });

  it('shadow_op clean/peek: pages beyond a 16 TiB guest are refused under their own name, before a bitmap is allocated', async () => {
    const hv = new MockHypervisor({ strict: true });
    hv.addDomain({ domid: 5, totPages: 4096 });
    const backend = counting(hv.backend());
    const xc = await open({ backend });
    for (const op of ['clean', 'peek'] as const) {
      for (const pages of [2n ** 32n + 1n, 2n ** 33n, 2n ** 34n, 2n ** 64n - 1n]) {
        await assert.rejects(xc.domctl.shadow_op[op]({ domain: 5, pages }), invalid(`domctl.shadow_op.${op}.pages`));
      }
    }
    assert.equal(backend.allocs, 0, 'no bitmap was allocated');
    assert.equal(backend.hypercalls, 0);
    xc.close();
  });
});
