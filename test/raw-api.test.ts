// The drop-in raw API: libxencall's surface, classification of raw calls, 64-bit results,
// buffers, use after close and bad input.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, HypercallError, ValidationError, XencallError, encode, numbers, open, openSync, structs } from '../src/index.js';
import { MockHypervisor } from '../src/testing/index.js';
import { mockHandle } from './helpers.js';

const { HYPERCALL, XENVER, XENMEM, DOMCTL, XEN_DOMCTL_INTERFACE_VERSION } = numbers;
const code = (c: string) => (e: unknown) => e instanceof XencallError && e.code === c;

describe('raw API', () => {
  it('call0..call5 and hypercall pass their arguments in order, sync and async', async () => {
    const { hv, xc } = await mockHandle({ strict: false });
    assert.equal(await xc.call1(HYPERCALL.xen_version, XENVER.version), 0x40011n);
    assert.equal(xc.call2Sync(HYPERCALL.xen_version, XENVER.pagesize, 0), 4096n);
    await xc.call5(HYPERCALL.xen_version, 1, 2, 3, 4, 5).catch(() => undefined);
    await xc.call0(HYPERCALL.xen_version).catch(() => undefined);
    assert.throws(() => xc.call3Sync(HYPERCALL.xen_version, 9, 8, 7), code(ErrorCodes.HYPERCALL));
    const calls = hv.history.calls();
    assert.deepEqual(calls.at(-3)!.args, [1n, 2n, 3n, 4n, 5n]);
    assert.deepEqual(calls.at(-2)!.args, [0n, 0n, 0n, 0n, 0n]);
    assert.deepEqual(calls.at(-1)!.args, [9n, 8n, 7n, 0n, 0n]);
    xc.close();
  });

  it('keeps all 64 bits of a result (XENMEM_maximum_ram_page above 2^31)', async () => {
    const { xc } = await mockHandle({ maxRamPage: 0xfedc_ba98_7654n });
    assert.equal(await xc.call2(HYPERCALL.memory_op, XENMEM.maximum_ram_page, 0), 0xfedc_ba98_7654n);
    assert.equal(await xc.memory_op.maximum_ram_page(), 0xfedc_ba98_7654n);
    xc.close();
  });

  it('turns a negative result into HypercallError with the errno name', async () => {
    const { xc } = await mockHandle({ strict: false });
    await assert.rejects(xc.call1(HYPERCALL.xen_version, 0x7fff), (e: unknown) => e instanceof HypercallError && e.errnoName === 'ENOSYS' && e.errno === 38 && e.code === ErrorCodes.HYPERCALL);
    assert.throws(() => xc.hypercallSync(HYPERCALL.xen_version, [0x7fff]), code(ErrorCodes.HYPERCALL));
    xc.close();
  });

  it('classifies a raw domctl by the cmd in its buffer and retries it after EFAULT when the table allows', async () => {
    const { hv, xc } = await mockHandle();
    const buf = xc.allocBuffer(structs.xen_domctl.size);
    encode(structs.xen_domctl, buf.view(), 0, { cmd: DOMCTL.getdomaininfo, interface_version: XEN_DOMCTL_INTERFACE_VERSION, domain: 0 });
    hv.faults.inject({ op: 'domctl.getdomaininfo', direction: 'out' });
    assert.equal(await xc.hypercall(HYPERCALL.domctl, [buf.address]), 0n);
    const s = xc.stats()['domctl.getdomaininfo']!;
    assert.deepEqual([s.calls, s.attempts, s.efaults, s.retries, s.recovered], [1, 2, 1, 1, 1]);
    xc.close();
  });

  it('never retries a call it cannot classify (no table row)', async () => {
    const { hv, xc } = await mockHandle({ strict: false });
    // A domctl whose struct is not in a hypercall buffer cannot be read, so it has no row.
    await assert.rejects(xc.call1(HYPERCALL.domctl, 0x5000), (e: unknown) => e instanceof HypercallError && e.code === ErrorCodes.RETRY_REFUSED && e.opName === null && /no row/.test(e.reason ?? ''));
    assert.equal(hv.history.calls().length, 1);
    xc.close();
  });

  it('validates raw arguments before anything reaches the backend', async () => {
    const { hv, xc } = await mockHandle();
    assert.throws(() => xc.hypercallSync(1.5, []), (e: unknown) => e instanceof ValidationError && e.field === 'op');
    assert.throws(() => xc.hypercallSync(HYPERCALL.domctl, [1, 2, 3, 4, 5, 6]), (e: unknown) => e instanceof ValidationError && e.field === 'args');
    assert.throws(() => xc.hypercallSync(HYPERCALL.domctl, [1n << 64n]), (e: unknown) => e instanceof ValidationError && e.field === 'args[0]');
    assert.throws(() => xc.hypercallSync(HYPERCALL.domctl, ['1' as never]), (e: unknown) => e instanceof ValidationError && e.field === 'args[0]');
    await assert.rejects(xc.hypercall(-1n << 64n), code(ErrorCodes.VALIDATION));
    assert.equal(hv.history.calls().length, 0);
    // C's habit of passing -1 for "all ones" works, as the cast would.
    await xc.call2(HYPERCALL.xen_version, XENVER.pagesize, 0);
    xc.close();
  });

  it('allocates page-granular buffers, reuses freed small ones, and refuses a freed buffer with a typed error', async () => {
    const { xc } = await mockHandle();
    const a = xc.allocBuffer(100);
    assert.equal(a.pages, 1);
    assert.equal(a.size, 100);
    a.write(new Uint8Array([1, 2, 3]));
    assert.deepEqual([...a.read(0, 3)], [1, 2, 3]);
    xc.freeBuffer(a);
    assert.throws(() => a.bytes, code(ErrorCodes.BUFFER_FREED));
    assert.throws(() => a.read(), code(ErrorCodes.BUFFER_FREED));
    assert.throws(() => xc.freeBuffer(a), code(ErrorCodes.BUFFER_FREED));
    const b = xc.allocBuffer(10);
    assert.equal(b.address, a.address, 'a freed one-page buffer comes back from the cache');
    assert.ok(b.bytes.every((x) => x === 0), 'and zeroed');
    const p = xc.allocBufferPages(3);
    assert.equal(p.size, 3 * 4096);
    xc.freeBufferPages(p);
    assert.throws(() => xc.allocBuffer(0), code(ErrorCodes.VALIDATION));
    assert.throws(() => xc.allocBufferPages(1.5), code(ErrorCodes.VALIDATION));
    assert.throws(() => b.write(new Uint8Array(11)), code(ErrorCodes.VALIDATION));
    xc.close();
  });

  it('is unusable after close; close is idempotent and frees every buffer', async () => {
    const hv = new MockHypervisor();
    const xc = openSync({ backend: hv.backend() });
    const buf = xc.allocBuffer(64);
    xc.close();
    xc.close();
    assert.ok(buf.freed);
    assert.throws(() => xc.call0Sync(HYPERCALL.xen_version), code(ErrorCodes.CLOSED));
    await assert.rejects(xc.call0(HYPERCALL.xen_version), code(ErrorCodes.CLOSED));
    await assert.rejects(xc.xen_version.version(), code(ErrorCodes.CLOSED));
    assert.throws(() => xc.sync.xen_version.version(), code(ErrorCodes.CLOSED));
    assert.throws(() => xc.allocBuffer(1), code(ErrorCodes.CLOSED));
    assert.throws(() => xc.fd, code(ErrorCodes.CLOSED));
  });

  it('exposes fd and buffersNeverFault like libxencall', async () => {
    const xc = await open({ backend: new MockHypervisor({ buffersNeverFault: true }).backend() });
    assert.equal(xc.fd, -1);
    assert.equal(xc.buffersNeverFault(), true);
    xc.close();
    assert.throws(() => openSync({ backend: new MockHypervisor().backend(), flags: 2 }), (e: unknown) => e instanceof ValidationError && e.field === 'flags');
  });
});

describe('restrict', () => {
  it('after restrict(domid) raw hypercalls fail with EPERM, as privcmd says; a second domid is refused', async () => {
    const { hv, xc } = await mockHandle();
    assert.equal(xc.restricted, null);
    xc.restrict(5);
    assert.equal(xc.restricted, 5);
    await assert.rejects(xc.call2(HYPERCALL.xen_version, 0, 0), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EPERM');
    assert.equal(hv.history.calls().length, 0, 'the kernel refused it before Xen saw it');
    assert.throws(() => xc.restrict(6), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EINVAL');
    assert.throws(() => xc.restrict(-1), (e: unknown) => e instanceof ValidationError && e.field === 'domid');
    // Another handle on the same hypervisor is not restricted.
    const other = openSync({ backend: hv.backend() });
    assert.equal(other.call2Sync(HYPERCALL.xen_version, 0, 0), 0x40011n);
    other.close();
    xc.close();
  });
});
