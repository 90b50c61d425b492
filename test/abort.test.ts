// An AbortSignal that has already fired stops a call before anything is issued: the call
// rejects with XEN_ERR_ABORTED at once and the hypervisor sees nothing (a pausedomain does not
// pause). Typed calls, raw calls and the live-migration loop alike.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, XencallError, liveMigrate, numbers } from '../src/index.js';
import { mockHandle } from './helpers.js';

const aborted = (e: unknown) => {
  assert.ok(e instanceof XencallError, String(e));
  assert.equal(e.code, ErrorCodes.ABORTED);
  return true;
};

function firedSignal(): AbortSignal {
  const c = new AbortController();
  c.abort(new Error('the caller gave up'));
  return c.signal;
}

describe('an already-aborted signal issues nothing', () => {
  it('typed calls: pausedomain rejects with XEN_ERR_ABORTED and the domain is not paused', async () => {
    const { hv, xc } = await mockHandle();
    const dom = hv.addDomain({ domid: 5, totPages: 16 });
    const calls = hv.calls;
    await assert.rejects(xc.domctl.pausedomain({ domain: 5 }, { signal: firedSignal() }), aborted);
    await assert.rejects(xc.sysctl.getdomaininfolist({}, { signal: firedSignal() }), aborted);
    // A long-running op (issued through hypercallAsync) too.
    await assert.rejects(xc.domctl.destroydomain({ domain: 5 }, { signal: firedSignal() }), aborted);
    assert.equal(dom.controllerPauseCount, 0);
    assert.equal(dom.dying, false);
    assert.equal(hv.calls, calls, 'no hypercall reached the mock');
    assert.equal([...xc.pool.liveBuffers()].length, 0, 'no buffer was left behind');
    xc.close();
  });

  it('raw calls reject with XEN_ERR_ABORTED without reaching the backend', async () => {
    const { hv, xc } = await mockHandle();
    const calls = hv.calls;
    await assert.rejects(xc.hypercall(numbers.HYPERCALL.xen_version, [0], { signal: firedSignal() }), aborted);
    assert.equal(hv.calls, calls);
    xc.close();
  });

  it('liveMigrate rejects with XEN_ERR_ABORTED before enabling log-dirty mode', async () => {
    const { hv, xc } = await mockHandle();
    const dom = hv.addDomain({ domid: 7, totPages: 64, withMemory: true });
    let sent = 0;
    await assert.rejects(
      liveMigrate(xc, { domain: 7, pages: 64, sendPages: (g) => void (sent += g.length), signal: firedSignal() }),
      aborted,
    );
    assert.equal(dom.logDirty.enabled, false);
    assert.equal(sent, 0);
    assert.equal(hv.history.calls().length, 0);
    xc.close();
  });

  it('the cause is the signal\'s reason', async () => {
    const { xc } = await mockHandle();
    const c = new AbortController();
    const reason = new Error('shutting down');
    c.abort(reason);
    await assert.rejects(xc.xen_version.version(undefined, { signal: c.signal }), (e: unknown) => aborted(e) && (e as Error).cause === reason);
    xc.close();
  });
});
