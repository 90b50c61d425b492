// Calls that cannot be re-issued (buffers that never fault, as with /dev/xen/hypercall) take the
// runner's single-attempt path; calls that can take its loop. Both must count, publish and fail
// alike: the same calls are made on two handles, one of each kind, and compared.

import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { CHANNELS, numbers, openSync, type Xencall } from '../src/index.js';
import { MockHypervisor } from '../src/testing/index.js';

const { HYPERCALL, XENVER, DOMCTL, XEN_DOMCTL_INTERFACE_VERSION } = numbers;

/** What one handle's calls showed: results or error codes, messages on every channel, stats. */
function observe(neverFault: boolean, calls: (xc: Xencall) => unknown[]): unknown {
  const hv = new MockHypervisor({ strict: false, buffersNeverFault: neverFault });
  const xc = openSync({ backend: hv.backend() });
  const messages: unknown[] = [];
  const on = (name: string) => (m: unknown) => {
    const { error, ...rest } = m as { error?: unknown };
    messages.push({ channel: name, ...rest, error: error === undefined ? undefined : error === null ? null : (error as { code?: string }).code });
  };
  const subs = Object.values(CHANNELS).map((name) => [name, on(name)] as const);
  for (const [name, fn] of subs) diagnostics_channel.subscribe(name, fn);
  try {
    const outcomes = calls(xc);
    return { outcomes, messages, stats: xc.stats() };
  } finally {
    for (const [name, fn] of subs) diagnostics_channel.unsubscribe(name, fn);
    xc.close();
  }
}

const outcome = (f: () => unknown): unknown => {
  try {
    return { result: f() };
  } catch (e) {
    return { code: (e as { code?: string }).code, errno: (e as { errnoName?: string }).errnoName };
  }
};

function domctlCalls(xc: Xencall): unknown[] {
  const buf = xc.allocBuffer(numbers.XEN_PAGE_SIZE);
  const v = buf.view();
  const write = (version: number) => {
    v.setUint32(0, DOMCTL.getdomaininfo, true);
    v.setUint32(4, version, true);
    v.setUint16(8, 0, true);
  };
  const out = [
    outcome(() => (write(XEN_DOMCTL_INTERFACE_VERSION), xc.hypercallSync(HYPERCALL.domctl, [buf.address]))),
    // A wrong interface version: Xen's -EACCES, not re-issued on either path.
    outcome(() => (write(XEN_DOMCTL_INTERFACE_VERSION + 1), xc.hypercallSync(HYPERCALL.domctl, [buf.address]))),
    outcome(() => xc.sync.domctl.getdomaininfo({ domain: 0 }).domid),
    outcome(() => xc.sync.domctl.getdomaininfo({ domain: 7 })),
  ];
  xc.freeBuffer(buf);
  // The freed buffer is no longer found: the call is not classified as a domctl sub-op.
  out.push(outcome(() => xc.hypercallSync(HYPERCALL.domctl, [buf.address])));
  return out;
}

describe('single-attempt calls (buffers that never fault)', () => {
  it('count, publish and fail as the retry loop does, raw and typed', () => {
    const calls = (xc: Xencall) => [
      outcome(() => xc.hypercallSync(HYPERCALL.xen_version, [XENVER.version, 0])),
      outcome(() => xc.hypercallSync(HYPERCALL.xen_version, [0x7fff])),
      outcome(() => xc.sync.xen_version.version()),
      ...domctlCalls(xc),
    ];
    const once = observe(true, calls);
    const loop = observe(false, calls);
    assert.deepEqual(once, loop);
    const stats = (once as { stats: Record<string, { calls: number; attempts: number; failed: number }> }).stats;
    assert.equal(stats['domctl.getdomaininfo']!.calls, 4);
    // The wrong interface version and the domain that does not exist; the freed buffer's call is
    // not one of them (its sub-op cannot be read).
    assert.equal(stats['domctl.getdomaininfo']!.failed, 2);
    assert.equal(stats['hypercall 36']?.calls, 1);
  });

  it('read a sub-op passed as a number as its register would: the low 32 bits, as for a bigint', () => {
    const hv = new MockHypervisor({ strict: false, buffersNeverFault: true });
    const xc = openSync({ backend: hv.backend() });
    const asNumber = outcome(() => xc.hypercallSync(HYPERCALL.xen_version, [2 ** 32 + XENVER.version]));
    const asBigint = outcome(() => xc.hypercallSync(HYPERCALL.xen_version, [2n ** 32n + BigInt(XENVER.version)]));
    assert.deepEqual(asNumber, asBigint);
    assert.equal(xc.stats()['xen_version.version']?.calls, 2);
    xc.close();
  });
});
