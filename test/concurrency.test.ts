// The standing reliability suite, part two: 10,000 calls in flight on one handle, on the mock
// and on the privcmd backend (on /dev/null, whose ioctl answers ENOTTY: harmless, and the calls
// still go through koffi's worker threads and its slot limit). Every call settles with the right
// result or a XencallError; close() in the middle of them loses nothing (each call either
// finished correctly or says XEN_ERR_CLOSED) and leaks no buffer and no fd.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { ErrorCodes, HypercallError, XencallError, encode, numbers, open, structs, type Xencall } from '../src/index.js';
import { PrivcmdBackend } from '../src/backends/privcmd.js';
import { MockHypervisor } from '../src/testing/index.js';
import { counting } from './helpers.js';

const N = 10_000;
const openFds = () => fs.readdirSync('/proc/self/fd').length;
const turn = () => new Promise((r) => setImmediate(r));

/** Ten thousand getpageframeinfo3 calls (long-running: each goes through hypercallAsync), each for its own gfns. */
function gfnsOf(i: number): bigint[] {
  return [BigInt(i % 4096), BigInt((i * 7 + 1) % 4096), BigInt(4096 + (i % 3))];
}

async function mockWorld(faultRate: number, seed: number) {
  const hv = new MockHypervisor({ strict: true, historyLimit: 0 });
  const dom = hv.addDomain({ domid: 5, totPages: 4096 });
  if (faultRate > 0) hv.faults.random({ op: 'domctl.getpageframeinfo3', rate: faultRate, seed });
  const backend = counting(hv.backend());
  const xc = await open({ backend, sleep: { sync: () => {}, async: async () => {} } });
  // What Xen would answer: the mock's own page types, zero-extended as Xen writes them.
  const expected = (i: number) => gfnsOf(i).map((g) => dom.pageType(g) >>> 0);
  return { hv, xc, backend, expected };
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };
const settle = (ps: Promise<unknown>[]) => Promise.all(ps.map((p) => p.then((value): Outcome => ({ ok: true, value }), (error): Outcome => ({ ok: false, error }))));

/** Checks every result against the fault-free answer and counts the failures by code (all typed). */
function tally(outcomes: Outcome[], expected: (i: number) => number[]): { ok: number; codes: Map<string, number> } {
  const codes = new Map<string, number>();
  let ok = 0;
  for (const [i, o] of outcomes.entries()) {
    if (o.ok) {
      assert.deepEqual([...(o.value as { types: Uint32Array }).types], expected(i), `call ${i} resolved with wrong types`);
      ok++;
    } else {
      assert.ok(o.error instanceof XencallError, String(o.error));
      codes.set(o.error.code, (codes.get(o.error.code) ?? 0) + 1);
    }
  }
  return { ok, codes };
}

function assertNoLeak(xc: Xencall, backend: { allocs: number; frees: number }): void {
  assert.equal([...xc.pool.liveBuffers()].length, 0, 'no buffer left in the handle');
  assert.equal(backend.frees, backend.allocs, `pages allocated ${backend.allocs}, freed ${backend.frees}`);
}

describe('10,000 calls in flight on one handle', { timeout: 300_000 }, () => {
  it('mock: all settle with the right page types, under seeded copy faults and retries', async () => {
    const { xc, backend, expected } = await mockWorld(0.05, 11);
    const ps = Array.from({ length: N }, (_, i) => xc.domctl.getpageframeinfo3({ domain: 5, gfns: gfnsOf(i) }));
    const { ok, codes } = tally(await settle(ps), expected);
    // A safe op whose EFAULT persisted through every attempt gives up, typed; nothing else fails.
    assert.deepEqual([...codes.keys()].filter((c) => c !== ErrorCodes.RETRY_EXHAUSTED), []);
    assert.ok(ok > N * 0.99, `${ok} of ${N} succeeded`);
    assert.ok(xc.stats()['domctl.getpageframeinfo3']!.retries > 100, 'the faults made calls retry while others were in flight');
    xc.close();
    assertNoLeak(xc, backend);
  });

  it('mock: close() in the middle: every call finished correctly or says XEN_ERR_CLOSED, and every buffer is freed', async () => {
    const { hv, xc, backend, expected } = await mockWorld(0.2, 12);
    // Outcomes are collected from the start, so no rejection goes unhandled while calls run.
    const all = settle(Array.from({ length: N }, (_, i) => xc.domctl.getpageframeinfo3({ domain: 5, gfns: gfnsOf(i) })));
    // The mock completes a call a microtask after issuing it: a few microtasks in, some calls
    // are done, some are between a faulted attempt and its re-issue.
    for (let i = 0; i < 4; i++) await null;
    const callsAtClose = hv.calls;
    xc.close();
    const { ok, codes } = tally(await all, expected);
    assert.ok(ok > 0, 'calls whose hypercall was done finished');
    assert.ok((codes.get(ErrorCodes.CLOSED) ?? 0) > 0, 'calls waiting to re-issue were stopped');
    assert.deepEqual([...codes.keys()].filter((c) => c !== ErrorCodes.CLOSED && c !== ErrorCodes.RETRY_EXHAUSTED), []);
    assert.equal(hv.calls, callsAtClose, 'nothing was issued after close()');
    assertNoLeak(xc, backend);
  });

  describe('privcmd on /dev/null', () => {
    /** A struct xen_domctl for destroydomain: long-running, so raw calls go through hypercallAsync. */
    function destroyStruct(xc: Xencall) {
      const buf = xc.allocBuffer(structs.xen_domctl.size);
      encode(structs.xen_domctl, buf.view(), 0, { cmd: numbers.DOMCTL.destroydomain, interface_version: numbers.XEN_DOMCTL_INTERFACE_VERSION, domain: 1 });
      return buf;
    }
    const enotty = (o: Outcome) => !o.ok && o.error instanceof HypercallError && o.error.errno === 25;

    it('all settle with the ioctl errno (ENOTTY), through koffi\'s slot limit, raw and typed', async () => {
      const fds = openFds();
      const backend = counting(new PrivcmdBackend({ privcmdPaths: ['/dev/null'], hypercallBufPath: null }));
      const xc = await open({ backend });
      const struct = destroyStruct(xc);
      const raw = Array.from({ length: N }, () => xc.hypercall(numbers.HYPERCALL.domctl, [struct.address]));
      // Typed long-running calls allocate their own buffers: fewer of them, each with two.
      const typed = Array.from({ length: 1000 }, (_, i) => xc.domctl.getpageframeinfo3({ domain: 1, gfns: gfnsOf(i) }));
      const outcomes = await settle([...raw, ...typed]);
      assert.equal(outcomes.filter(enotty).length, N + 1000, 'every call failed with ENOTTY, typed');
      xc.close();
      assertNoLeak(xc, backend);
      assert.equal(openFds(), fds, 'no fd left open');
    });

    it('close() in the middle: issued calls finish, the rest say XEN_ERR_CLOSED, no fd and no buffer is left', async () => {
      const fds = openFds();
      const backend = counting(new PrivcmdBackend({ privcmdPaths: ['/dev/null'], hypercallBufPath: null }));
      const xc = await open({ backend });
      const struct = destroyStruct(xc);
      const all = settle([
        ...Array.from({ length: N }, () => xc.hypercall(numbers.HYPERCALL.domctl, [struct.address])),
        ...Array.from({ length: 1000 }, (_, i) => xc.domctl.getpageframeinfo3({ domain: 1, gfns: gfnsOf(i) })),
      ]);
      await turn();
      xc.close();
      assert.throws(() => xc.allocBuffer(1), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.CLOSED);
      const outcomes = await all;
      const closed = outcomes.filter((o) => !o.ok && o.error instanceof XencallError && o.error.code === ErrorCodes.CLOSED).length;
      const finished = outcomes.filter(enotty).length;
      assert.equal(closed + finished, N + 1000, 'every call either finished or was stopped, typed');
      assert.ok(closed > 0 && finished > 0, `finished ${finished}, closed ${closed}`);
      assertNoLeak(xc, backend);
      assert.equal(openFds(), fds, 'no fd left open');
    });
  });
});
