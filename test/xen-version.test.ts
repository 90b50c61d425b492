// Typed calls and the table are Xen 4.17's: on another Xen, typed calls are refused at once with
// XEN_ERR_XEN_VERSION_UNSUPPORTED naming both versions, and raw calls keep working. The check is
// one XENVER_version per handle, asked by its first typed call and kept.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, HypercallError, XEN_SUPPORTED_VERSION, XenVersionUnsupportedError, XencallError, findDomainByHandle, numbers, open, save } from '../src/index.js';
import { XEN_SOURCE } from '../src/hypercalls/row.js';
import { MockHypervisor } from '../src/testing/index.js';
import { UUID_A, counting, mockHandle } from './helpers.js';

const { HYPERCALL, XENVER } = numbers;

function refused(running: { major: number; minor: number }) {
  return (e: unknown) => {
    assert.ok(e instanceof XenVersionUnsupportedError, String(e));
    assert.equal(e.code, ErrorCodes.XEN_VERSION_UNSUPPORTED);
    assert.deepEqual(e.running, running);
    assert.deepEqual(e.supported, { major: 4, minor: 17 });
    assert.match(e.message, new RegExp(`^this is Xen ${running.major}\\.${running.minor}; xencall's typed calls and table are Xen 4\\.17's`));
    return true;
  };
}

describe('the Xen version typed calls follow', () => {
  it("is the release the table's citations were read at", () => {
    assert.deepEqual(XEN_SUPPORTED_VERSION, { major: 4, minor: 17 });
    assert.ok(XEN_SOURCE.tag.startsWith(`RELEASE-${XEN_SUPPORTED_VERSION.major}.${XEN_SUPPORTED_VERSION.minor}.`), XEN_SOURCE.tag);
  });

  it('on Xen 4.18 typed calls are refused, sync and async, having asked XENVER_version once; raw calls work', async () => {
    const { hv, xc } = await mockHandle({ version: { major: 4, minor: 18 } });
    hv.addDomain({ domid: 5, totPages: 16 });
    await assert.rejects(xc.domctl.pausedomain({ domain: 5 }), refused({ major: 4, minor: 18 }));
    assert.throws(() => xc.sync.sysctl.physinfo(), refused({ major: 4, minor: 18 }));
    await assert.rejects(xc.xen_version.version(), refused({ major: 4, minor: 18 }));
    // What is built on typed calls is refused with them.
    await assert.rejects(findDomainByHandle(xc, UUID_A), refused({ major: 4, minor: 18 }));
    await assert.rejects(save(xc, 5, () => undefined), refused({ major: 4, minor: 18 }));
    assert.deepEqual(hv.history.calls().map((c) => c.name), ['xen_version.version'], 'one question, and nothing else issued');
    assert.equal(hv.domain(5)!.controllerPauseCount, 0);

    assert.equal(xc.call2Sync(HYPERCALL.xen_version, XENVER.version, 0), (4n << 16n) | 18n);
    assert.equal(await xc.hypercall(HYPERCALL.xen_version, [XENVER.version, 0]), (4n << 16n) | 18n);
    const buf = xc.allocBuffer(16);
    assert.equal(xc.call2Sync(HYPERCALL.xen_version, XENVER.extraversion, buf.address), 0n);
    xc.close();
  });

  it('names a new major version too', async () => {
    const { xc } = await mockHandle({ version: { major: 5, minor: 0 } });
    assert.throws(() => xc.sync.xen_version.pagesize(), refused({ major: 5, minor: 0 }));
    xc.close();
  });

  it('on Xen 4.17 the first typed call asks once, raw calls never ask', async () => {
    const { hv, xc } = await mockHandle();
    const names = () => hv.history.calls().map((c) => c.name);
    xc.call2Sync(HYPERCALL.xen_version, XENVER.version, 0);
    assert.deepEqual(names(), ['xen_version.version'], 'a raw call: no check');
    await xc.sysctl.physinfo();
    xc.sync.sysctl.physinfo();
    await xc.sysctl.sched_id();
    assert.deepEqual(names(), ['xen_version.version', 'xen_version.version', 'sysctl.physinfo', 'sysctl.physinfo', 'sysctl.sched_id']);
    // Each handle asks for itself.
    const other = await open({ backend: hv.backend() });
    other.sync.sysctl.sched_id();
    assert.deepEqual(names().slice(5), ['xen_version.version', 'sysctl.sched_id']);
    other.close();
    xc.close();
  });

  it('bad arguments and an already-aborted signal are reported first, and ask nothing', async () => {
    const { hv, xc } = await mockHandle({ version: { major: 4, minor: 18 } });
    assert.throws(() => xc.sync.domctl.pausedomain({ domain: -1 }), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.VALIDATION);
    await assert.rejects(xc.domctl.pausedomain({ domain: 1 }, { signal: AbortSignal.abort() }), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.ABORTED);
    assert.equal(hv.calls, 0);
    xc.close();
  });

  it('when XENVER_version itself fails (a restricted fd), typed calls meet their own error, and it is not asked again', async () => {
    const hv = new MockHypervisor({ version: { major: 4, minor: 18 } });
    const inner = hv.backend();
    inner.restrict(5);
    const backend = counting(inner);
    const xc = await open({ backend });
    const eperm = (e: unknown) => e instanceof HypercallError && e.errnoName === 'EPERM' && e.opName === 'sysctl.physinfo';
    assert.throws(() => xc.sync.sysctl.physinfo(), eperm);
    assert.equal(backend.hypercalls, 2, 'XENVER_version, then the call');
    assert.throws(() => xc.sync.sysctl.physinfo(), eperm);
    assert.equal(backend.hypercalls, 3);
    xc.close();
  });
});
