// Calls in flight: more async hypercalls than koffi can run at once, and close() while calls are
// running or waiting. Every call settles with Xen's result or a XencallError; a call already
// issued finishes and decodes what Xen wrote, never freed memory; nothing stays open after.
// The privcmd backend runs on /dev/null (its ioctl answers ENOTTY), as in privcmd-host.test.ts.

import assert from 'node:assert/strict';
import { setMaxListeners } from 'node:events';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { ErrorCodes, XencallError, numbers } from '../src/index.js';
import { PrivcmdBackend, type PrivcmdOptions } from '../src/backends/privcmd.js';
import { mockHandle, vmFlagsAt } from './helpers.js';

const ENOTTY = 25n;
const onNull: PrivcmdOptions = { privcmdPaths: ['/dev/null'], hypercallBufPath: null };
const zeros = [0n, 0n, 0n, 0n, 0n];
const { XEN_DOMCTL_PFINFO } = numbers;


const fdOpen = (fd: number) => {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
};

/** Settles every promise and sorts the outcomes into results and error codes (or raw errors). */
async function outcomes<T>(ps: Promise<T>[]): Promise<{ values: T[]; codes: Map<string, number>; untyped: unknown[] }> {
  const settled = await Promise.allSettled(ps);
  const values: T[] = [];
  const codes = new Map<string, number>();
  const untyped: unknown[] = [];
  for (const s of settled) {
    if (s.status === 'fulfilled') values.push(s.value);
    else if (s.reason instanceof XencallError) codes.set(s.reason.code, (codes.get(s.reason.code) ?? 0) + 1);
    else untyped.push(s.reason);
  }
  return { values, codes, untyped };
}

describe('more async hypercalls than koffi runs at once (privcmd on /dev/null)', () => {
  it('10,000 at once all settle with the ioctl errno, and close() then closes the fd', async () => {
    const b = new PrivcmdBackend(onNull);
    const fd = b.fd;
    const r = await outcomes(Array.from({ length: 10_000 }, () => b.hypercallAsync(17, zeros)));
    assert.deepEqual(r.untyped.map(String).slice(0, 3), [], 'no call failed with a plain Error');
    assert.equal(r.values.length, 10_000);
    assert.ok(r.values.every((v) => v === -ENOTTY));
    b.close();
    assert.equal(fdOpen(fd), false, 'the fd is closed once nothing is in flight');
  });

  it('close() in the middle: calls already issued finish, calls still waiting reject XEN_ERR_CLOSED, the fd closes after the last', async () => {
    const b = new PrivcmdBackend(onNull);
    const fd = b.fd;
    const ps = Array.from({ length: 10_000 }, () => b.hypercallAsync(17, zeros));
    b.close();
    assert.equal(fdOpen(fd), true, 'issued calls still hold the fd');
    const r = await outcomes(ps);
    assert.deepEqual(r.untyped, []);
    const closed = r.codes.get(ErrorCodes.CLOSED) ?? 0;
    assert.equal(r.values.length + closed, 10_000);
    assert.ok(r.values.every((v) => v === -ENOTTY));
    assert.ok(closed > 0, 'calls past the slot limit were still waiting at close()');
    assert.ok(r.values.length > 0, 'calls within the limit had been issued');
    assert.equal(fdOpen(fd), false);
    assert.throws(() => b.hypercallAsync(17, zeros), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.CLOSED);
  });

  it('a waiting call whose cancel signal fires rejects XEN_ERR_ABORTED and is never issued', async () => {
    const b = new PrivcmdBackend(onNull);
    try {
      const c = new AbortController();
      // One signal for 2000 calls: each waiting call listens to it.
      setMaxListeners(0, c.signal);
      const ps = Array.from({ length: 2000 }, () => b.hypercallAsync(17, zeros, c.signal));
      c.abort(new Error('enough'));
      const r = await outcomes(ps);
      assert.deepEqual(r.untyped, []);
      assert.ok((r.codes.get(ErrorCodes.ABORTED) ?? 0) > 0);
      assert.equal(r.values.length + (r.codes.get(ErrorCodes.ABORTED) ?? 0), 2000);
      // The queue drained: a new call runs.
      assert.equal(await b.hypercallAsync(17, zeros), -ENOTTY);
    } finally {
      b.close();
    }
  });
});

describe('close() with calls in flight', () => {
  it('privcmd: the buffers of an issued call stay mapped and locked until it completes, then go', async () => {
    const b = new PrivcmdBackend(onNull);
    const mem = b.allocPages(2);
    mem.bytes.fill(0x5a);
    const p = b.hypercallAsync(17, [0n, mem.address, 0n, 0n, 0n]);
    b.close();
    assert.ok(vmFlagsAt(mem.address).includes('lo'), 'the pages were released under a running hypercall');
    assert.ok(mem.bytes.every((x) => x === 0x5a), 'the contents were wiped under a running hypercall');
    assert.equal(await p, -ENOTTY);
    assert.ok(!vmFlagsAt(mem.address).includes('lo'), 'released once the call ended');
    assert.ok(mem.bytes.every((x) => x === 0));
  });

  it('a typed call in flight at close() resolves with what Xen wrote, not with freed memory', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 5, totPages: 4096 });
    // getpageframeinfo3 is long-running: it goes through hypercallAsync and is in flight here.
    const p = xc.domctl.getpageframeinfo3({ domain: 5, gfns: [2n, 3n, 4n, 100n] });
    xc.close();
    const { types } = await p;
    assert.deepEqual(types, Uint32Array.of(XEN_DOMCTL_PFINFO.L3TAB, XEN_DOMCTL_PFINFO.L2TAB, XEN_DOMCTL_PFINFO.L1TAB, XEN_DOMCTL_PFINFO.NOTAB));
    assert.equal([...xc.pool.liveBuffers()].length, 0, 'its buffers were freed after it ended');
    await assert.rejects(xc.domctl.getpageframeinfo3({ domain: 5, gfns: [2n] }), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.CLOSED);
  });

  it('a call waiting to re-issue at close() rejects XEN_ERR_CLOSED and is not re-issued', async () => {
    // A backoff wait that only ends when it is cancelled: close() must be what ends it.
    const waitForever = (_ms: number, signal?: AbortSignal) =>
      new Promise<void>((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true }));
    const { hv, xc } = await mockHandle({}, { retry: { initialDelayMs: 5 }, sleep: { async: waitForever } });
    hv.faults.inject({ op: 'sysctl.physinfo', direction: 'out' });
    const p = xc.sysctl.physinfo();
    await new Promise((r) => setImmediate(r));
    assert.equal(hv.history.calls('sysctl.physinfo').length, 1);
    xc.close();
    await assert.rejects(p, (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.CLOSED);
    assert.equal(hv.history.calls('sysctl.physinfo').length, 1, 'never re-issued after close()');
  });
});
