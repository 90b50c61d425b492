// The recovery helpers, each after its dangerous op failed on the mock with the fault injected
// after the op's effect: the refusal happens, and the helper finds what Xen did.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, HypercallError, findDomainByHandle, findLeakedPorts, recoverConsole } from '../src/index.js';
import { mockHandle, UUID_A, UUID_B } from './helpers.js';

const refused = (e: unknown): e is HypercallError => e instanceof HypercallError && e.code === ErrorCodes.RETRY_REFUSED && e.errnoName === 'EFAULT';

async function failing<T>(p: Promise<T>): Promise<HypercallError> {
  try {
    await p;
  } catch (e) {
    assert.ok(refused(e), `expected a refused EFAULT, got ${String(e)}`);
    return e;
  }
  assert.fail('the call was expected to fail');
}

describe('findDomainByHandle after createdomain lost its reply', () => {
  it('finds the one domain the failed call created', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 1, handle: Buffer.from(UUID_B.replace(/-/g, ''), 'hex') });
    hv.faults.inject({ op: 'domctl.createdomain', direction: 'out' }); // the copy-back carrying the id
    await failing(xc.domctl.createdomain({ handle: UUID_A, max_vcpus: 1 }));
    const created = hv.history.effects('domain.created');
    assert.equal(created.length, 1, 'the domain exists although the call failed');

    const found = await findDomainByHandle(xc, UUID_A);
    assert.deepEqual(found.map((d) => d.domid), [created[0]!.detail.domid]);
    assert.equal(found[0]!.handle, UUID_A);
    // Adopt it: here, destroy it, and nothing is left behind.
    await xc.domctl.destroydomain({ domain: found[0]!.domid });
    assert.deepEqual(await findDomainByHandle(xc, UUID_A), []);
    xc.close();
  });

  it('pages through many domains and accepts the handle as bytes', async () => {
    const { hv, xc } = await mockHandle();
    for (let d = 1; d <= 600; d++) hv.addDomain({ domid: d });
    const handle = Buffer.from(UUID_A.replace(/-/g, ''), 'hex');
    hv.addDomain({ domid: 4000, handle });
    assert.deepEqual((await findDomainByHandle(xc, new Uint8Array(handle))).map((d) => d.domid), [4000]);
    await assert.rejects(findDomainByHandle(xc, 'not-a-uuid'), { code: ErrorCodes.VALIDATION });
    xc.close();
  });
});

describe('findLeakedPorts after alloc_unbound lost its reply', () => {
  it('reports the allocated port the caller never learned, and only that one', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 5 });
    hv.addDomain({ domid: 6 });
    const { port: mine } = await xc.event_channel_op.alloc_unbound({ dom: 0, remote_dom: 5 });
    await xc.event_channel_op.alloc_unbound({ dom: 0, remote_dom: 6 }); // to another domain: not ours to find
    hv.domain(0)!.evtchns.set(40, { state: { state: 'interdomain', remoteDom: 5, remotePort: 3 }, vcpu: 0, pending: 0 });

    hv.faults.inject({ op: 'event_channel_op.alloc_unbound', direction: 'out' });
    await failing(xc.event_channel_op.alloc_unbound({ dom: 0, remote_dom: 5 }));
    const allocated = hv.history.effects('evtchn.allocated').at(-1)!.detail.port as number;

    assert.deepEqual(await findLeakedPorts(xc, { dom: 0, remote_dom: 5, known: [mine] }), [allocated]);
    // Without knowing our own port, both show up.
    assert.deepEqual(await findLeakedPorts(xc, { dom: 0, remote_dom: 5 }), [mine, allocated].sort((a, b) => a - b));
    // Close the leak: nothing is left.
    await xc.event_channel_op.close({ port: allocated });
    assert.deepEqual(await findLeakedPorts(xc, { dom: 0, remote_dom: 5, known: [mine] }), []);
    xc.close();
  });

  it('stops at the first port Xen calls invalid, or at maxPort', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 5 });
    hv.domain(0)!.maxEvtchnPort = 63;
    hv.domain(0)!.evtchns.set(60, { state: { state: 'unbound', remoteDom: 5 }, vcpu: 0, pending: 0 });
    hv.history.clear();
    assert.deepEqual(await findLeakedPorts(xc, { dom: 0, remote_dom: 5 }), [60]);
    assert.equal(hv.history.calls('event_channel_op.status').length, 64, 'ports 1..63, then the invalid 64');
    assert.deepEqual(await findLeakedPorts(xc, { dom: 0, remote_dom: 5, maxPort: 59 }), []);
    await assert.rejects(findLeakedPorts(xc, { dom: 9, remote_dom: 5 }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'ESRCH');
    xc.close();
  });
});

describe('recoverConsole after readconsole with clear lost its reply', () => {
  it('recovers the text the failed read consumed from the ring', async () => {
    const { hv, xc } = await mockHandle({ consoleText: '(XEN) line one\n(XEN) line two\n' });
    const buffer = xc.allocBuffer(4096);
    const start = 0; // where this reader's incremental reads begin
    // Copy-outs: the ring's text (one chunk), then do_sysctl's copy-back of count and index.
    hv.faults.inject({ op: 'sysctl.readconsole', direction: 'out', nth: 2 });
    const err = await failing(xc.sysctl.readconsole({ clear: true, incremental: true, index: start, buffer }));
    assert.equal(hv.console.unread(), '', 'Xen cleared the ring before the copy-back failed: the text is gone from Xen');

    hv.console.write('(XEN) line three\n'); // arrives after the failure: must not be mixed in
    const r = await recoverConsole(xc, err, { buffer, index: start });
    assert.equal(r.text, '(XEN) line one\n(XEN) line two\n');
    assert.equal(r.exact, true);
    // Reading on from the returned index gets exactly what came later.
    assert.equal((await xc.sysctl.readconsole({ incremental: true, index: r.index })).text, '(XEN) line three\n');
    xc.freeBuffer(buffer);
    xc.close();
  });

  it('recovers nothing when the fault came before the clear: the text is still in the ring', async () => {
    const { hv, xc } = await mockHandle({ consoleText: 'abc\n' });
    const buffer = xc.allocBuffer(64);
    hv.faults.inject({ op: 'sysctl.readconsole', direction: 'out', nth: 1 }); // the ring chunk itself
    const err = await failing(xc.sysctl.readconsole({ clear: true, buffer }));
    const r = await recoverConsole(xc, err, { buffer, index: 0 });
    assert.equal(r.text, '');
    assert.equal(hv.console.unread(), 'abc\n');
    xc.close();
  });

  it('without the start index, cuts the text at the first NUL of the zeroed buffer', async () => {
    const { hv, xc } = await mockHandle({ consoleText: 'hello\n' });
    const buffer = xc.allocBuffer(64);
    buffer.bytes.fill(0x41); // stale bytes: the typed call zeroes the buffer before reading
    hv.faults.inject({ op: 'sysctl.readconsole', direction: 'out', nth: 2 });
    const err = await failing(xc.sysctl.readconsole({ clear: true, buffer }));
    const r = await recoverConsole(xc, err, { buffer });
    assert.deepEqual([r.text, r.exact], ['hello\n', false]);
    xc.close();
  });

  it('the typed call without a buffer of yours loses the text: that is why the option exists', async () => {
    const { hv, xc } = await mockHandle({ consoleText: 'gone\n' });
    hv.faults.inject({ op: 'sysctl.readconsole', direction: 'out', nth: 2 });
    await failing(xc.sysctl.readconsole({ clear: true }));
    assert.equal(hv.console.unread(), '');
    xc.close();
  });

  it('throws any other error again, unchanged', async () => {
    const { xc } = await mockHandle();
    const buffer = xc.allocBuffer(16);
    const other = new Error('something else');
    await assert.rejects(recoverConsole(xc, other, { buffer }), (e: unknown) => e === other);
    xc.close();
  });
});
