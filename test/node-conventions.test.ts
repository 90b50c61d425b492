// Node conventions on the handle and what it hands out: `using` disposes handles, buffers and
// mappings; diagnostics_channel reports each hypercall's end next to its attempts, retries and
// refusals, with exported message types. (An already-aborted signal is test/abort.test.ts.)

import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { CHANNELS, ErrorCodes, HypercallError, XencallError, numbers, open, openSync, type AttemptMessage, type CompleteMessage, type RefuseMessage, type RetryMessage } from '../src/index.js';
import { MockHypervisor } from '../src/testing/index.js';
import { UUID_A } from './helpers.js';

/** Collects what a channel publishes while `body` runs. */
async function capture<T>(channel: string, body: () => Promise<unknown> | unknown): Promise<T[]> {
  const seen: T[] = [];
  const on = (m: unknown) => void seen.push(m as T);
  diagnostics_channel.subscribe(channel, on);
  try {
    await body();
  } finally {
    diagnostics_channel.unsubscribe(channel, on);
  }
  return seen;
}

describe('Symbol.dispose and Symbol.asyncDispose', () => {
  it('`using` closes a handle at the end of its block, and frees a buffer', () => {
    const hv = new MockHypervisor();
    let outer;
    let buffer;
    {
      using xc = openSync({ backend: hv.backend() });
      outer = xc;
      using buf = xc.allocBuffer(64);
      buffer = buf;
      assert.equal(xc.call2Sync(numbers.HYPERCALL.xen_version, numbers.XENVER.extraversion, buf.address), 0n);
    }
    assert.equal(buffer.freed, true);
    assert.equal(outer.isClosed, true);
    assert.throws(() => outer.call0Sync(17), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.CLOSED);
  });

  it('disposing a buffer that was freed, or whose handle closed, does nothing', () => {
    const xc = openSync({ backend: new MockHypervisor().backend() });
    const a = xc.allocBuffer(16);
    xc.freeBuffer(a);
    a[Symbol.dispose]();
    const b = xc.allocBuffer(16);
    xc.close();
    assert.equal(b.freed, true);
    b[Symbol.dispose]();
  });

  it('`using` unmaps a foreign mapping', () => {
    const hv = new MockHypervisor();
    hv.addDomain({ domid: 3, totPages: 4, withMemory: true });
    const xc = openSync({ backend: hv.backend() });
    let kept;
    {
      using m = xc.foreignMemory.map(3, [0, 1]);
      kept = m;
      assert.equal(xc.foreignMemory.mappings.length, 1);
    }
    assert.equal(kept.unmapped, true);
    assert.equal(xc.foreignMemory.mappings.length, 0);
    xc.close();
  });

  it('`await using` waits until the calls in flight have settled and the backend is released', async () => {
    const hv = new MockHypervisor();
    hv.addDomain({ domid: 4, totPages: 16 });
    const backend = hv.backend();
    let closed = 0;
    const close = backend.close.bind(backend);
    backend.close = () => {
      closed++;
      close();
    };
    let inFlight: Promise<void> | undefined;
    {
      await using xc = await open({ backend });
      // destroydomain is long-running: issued through hypercallAsync, its completion a turn later.
      inFlight = xc.domctl.destroydomain({ domain: 4 });
    }
    assert.equal(closed, 1, 'released by the time the block ended');
    await inFlight;
    assert.equal(hv.domain(4)?.dying ?? true, true);
  });
});

describe('diagnostics_channel', () => {
  it('publishes one completion per hypercall with its result, next to attempt, retry and refuse', async () => {
    const hv = new MockHypervisor();
    const xc = await open({ backend: hv.backend() });
    hv.faults.inject({ op: 'sysctl.physinfo', direction: 'out' });
    const attempts = await capture<AttemptMessage>(CHANNELS.attempt, async () => {
      const retries = await capture<RetryMessage>(CHANNELS.retry, async () => {
        const done = await capture<CompleteMessage>(CHANNELS.complete, () => xc.sysctl.physinfo());
        assert.deepEqual(done, [{ name: 'sysctl.physinfo', op: numbers.HYPERCALL.sysctl, subop: numbers.SYSCTL.physinfo, attempts: 2, result: 0n, error: null }]);
      });
      assert.equal(retries.length, 1);
      assert.equal(retries[0]!.errnoName, 'EFAULT');
    });
    assert.deepEqual(attempts.map((a) => a.attempt), [1, 2]);
    xc.close();
  });

  it('a refused call completes with its error, after the refusal', async () => {
    const hv = new MockHypervisor();
    const xc = await open({ backend: hv.backend() });
    hv.faults.inject({ op: 'domctl.createdomain', direction: 'out' });
    const order: string[] = [];
    const onRefuse = (m: unknown) => void order.push(`refuse ${(m as RefuseMessage).kind}`);
    const onComplete = (m: unknown) => void order.push(`complete ${((m as CompleteMessage).error as XencallError).code}`);
    diagnostics_channel.subscribe(CHANNELS.refuse, onRefuse);
    diagnostics_channel.subscribe(CHANNELS.complete, onComplete);
    try {
      await assert.rejects(xc.domctl.createdomain({ handle: UUID_A }), (e: unknown) => e instanceof HypercallError && e.code === ErrorCodes.RETRY_REFUSED);
      // An ordinary errno: no refusal, a completion.
      assert.throws(() => xc.sync.domctl.getvcpuinfo({ domain: 999, vcpu: 0 }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'ESRCH');
    } finally {
      diagnostics_channel.unsubscribe(CHANNELS.refuse, onRefuse);
      diagnostics_channel.unsubscribe(CHANNELS.complete, onComplete);
    }
    assert.deepEqual(order, ['refuse unsafe', 'complete XEN_ERR_RETRY_REFUSED', 'complete XEN_ERR_HYPERCALL']);
    xc.close();
  });

  it('a call aborted between attempts, or closed under, completes with that error', async () => {
    const hv = new MockHypervisor();
    const xc = await open({ backend: hv.backend(), retry: { initialDelayMs: 5 } });
    hv.faults.inject({ op: 'sysctl.physinfo', direction: 'out', times: Infinity });
    const ac = new AbortController();
    const done = await capture<CompleteMessage>(CHANNELS.complete, async () => {
      const call = xc.sysctl.physinfo(undefined, { signal: ac.signal });
      await new Promise((r) => setImmediate(r));
      ac.abort();
      await assert.rejects(call, (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.ABORTED);
      const closing = xc.sysctl.physinfo();
      await new Promise((r) => setImmediate(r));
      xc.close();
      await assert.rejects(closing, (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.CLOSED);
    });
    assert.deepEqual(done.map((d) => [(d.error as XencallError).code, d.attempts, d.result]), [
      [ErrorCodes.ABORTED, 1, null],
      [ErrorCodes.CLOSED, 1, null],
    ]);
  });

  it('raw calls complete too, with the row the table found', async () => {
    const xc = openSync({ backend: new MockHypervisor().backend() });
    const done = await capture<CompleteMessage>(CHANNELS.complete, () => xc.call2Sync(numbers.HYPERCALL.xen_version, 0, 0));
    assert.deepEqual(done, [{ name: 'xen_version.version', op: numbers.HYPERCALL.xen_version, subop: 0, attempts: 1, result: 0x40011n, error: null }]);
    xc.close();
  });
});
