// The retry runner and the decision function: bounded, observable, cancellable, from pristine
// inputs, and only where the table allows.

import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { CHANNELS, DEFAULT_RETRY_POLICY, ErrorCodes, HypercallError, XencallError, decideRetry, rowByName } from '../src/index.js';
import { resolvePolicy } from '../src/retry/decide.js';
import { mockHandle } from './helpers.js';

function capture(name: string) {
  const seen: Record<string, unknown>[] = [];
  const fn = (m: unknown) => seen.push(m as Record<string, unknown>);
  diagnostics_channel.subscribe(name, fn);
  return { seen, stop: () => diagnostics_channel.unsubscribe(name, fn) };
}

describe('retry runner', () => {
  it('publishes every attempt, retry and refusal on diagnostics_channel and counts them', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 5 });
    const attempts = capture(CHANNELS.attempt);
    const retries = capture(CHANNELS.retry);
    const refusals = capture(CHANNELS.refuse);
    try {
      hv.faults.inject({ op: 'domctl.getdomaininfo', direction: 'out' });
      await xc.domctl.getdomaininfo({ domain: 5 });
      hv.faults.inject({ op: 'event_channel_op.alloc_unbound', direction: 'out' });
      await assert.rejects(xc.event_channel_op.alloc_unbound({ dom: 0, remote_dom: 5 }));
    } finally {
      attempts.stop();
      retries.stop();
      refusals.stop();
    }
    assert.deepEqual(attempts.seen.map((e) => [e.name, e.attempt]), [
      ['domctl.getdomaininfo', 1],
      ['domctl.getdomaininfo', 2],
      ['event_channel_op.alloc_unbound', 1],
    ]);
    assert.deepEqual(retries.seen.map((e) => [e.name, e.errnoName, e.attempt]), [['domctl.getdomaininfo', 'EFAULT', 1]]);
    assert.equal(refusals.seen.length, 1);
    assert.equal(refusals.seen[0]!.name, 'event_channel_op.alloc_unbound');
    assert.equal(refusals.seen[0]!.kind, 'unsafe');
    assert.match(String(refusals.seen[0]!.recovery), /status/);
    const st = xc.stats();
    assert.equal(st['event_channel_op.alloc_unbound']!.refused, 1);
    assert.equal(st['domctl.getdomaininfo']!.recovered, 1);
    xc.resetStats();
    assert.deepEqual(xc.stats(), {});
    xc.close();
  });

  it('is bounded: a persistent EFAULT on a safe op ends in XEN_ERR_RETRY_EXHAUSTED after maxAttempts', async () => {
    const { hv, xc } = await mockHandle({}, { retry: { maxAttempts: 4 } });
    hv.faults.inject({ op: 'sysctl.physinfo', direction: 'out', times: Infinity });
    await assert.rejects(xc.sysctl.physinfo(), (e: unknown) => e instanceof HypercallError && e.code === ErrorCodes.RETRY_EXHAUSTED && e.attempts === 4 && e.retry === 'exhausted');
    assert.equal(hv.history.calls('sysctl.physinfo').length, 4);
    xc.close();
  });

  it('waits with the injected sleep, with the configured backoff', async () => {
    const delays: number[] = [];
    const { hv, xc } = await mockHandle({}, {
      retry: { maxAttempts: 4, initialDelayMs: 2, backoffFactor: 3, maxDelayMs: 5 },
      sleep: { async: async (ms) => void delays.push(ms), sync: (ms) => void delays.push(-ms) },
    });
    hv.faults.inject({ op: 'sysctl.physinfo', direction: 'out', times: 3 });
    await xc.sysctl.physinfo();
    assert.deepEqual(delays, [2, 5, 5]);
    hv.faults.inject({ op: 'sysctl.physinfo', direction: 'out', times: 1 });
    xc.sync.sysctl.physinfo();
    assert.deepEqual(delays, [2, 5, 5, -2]);
    xc.close();
  });

  it('an AbortSignal cancels between attempts', async () => {
    const ac = new AbortController();
    const { hv, xc } = await mockHandle({}, {
      retry: { initialDelayMs: 1 },
      sleep: { async: async () => ac.abort() },
    });
    hv.faults.inject({ op: 'sysctl.physinfo', direction: 'out', times: Infinity });
    await assert.rejects(xc.sysctl.physinfo({}, { signal: ac.signal }), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.ABORTED);
    assert.equal(hv.history.calls('sysctl.physinfo').length, 1, 'no re-issue after the abort');
    xc.close();
  });

  it('does not retry an EFAULT when buffers cannot fault (/dev/xen/hypercall)', async () => {
    const { hv, xc } = await mockHandle({ buffersNeverFault: true });
    hv.faults.inject({ op: 'sysctl.physinfo', direction: 'out' });
    await assert.rejects(xc.sysctl.physinfo(), (e: unknown) => e instanceof HypercallError && e.code === ErrorCodes.RETRY_REFUSED && /cannot fault/.test(e.reason ?? ''));
    xc.close();
  });

  it('maxAttempts 1 turns retry off; errnos outside retryOn pass through as XEN_ERR_HYPERCALL', async () => {
    const { hv, xc } = await mockHandle({}, { retry: { maxAttempts: 1 } });
    hv.faults.inject({ op: 'sysctl.physinfo', direction: 'out' });
    await assert.rejects(xc.sysctl.physinfo(), (e: unknown) => e instanceof HypercallError && e.code === ErrorCodes.RETRY_EXHAUSTED && e.attempts === 1);
    await assert.rejects(xc.domctl.pausedomain({ domain: 42 }), (e: unknown) => e instanceof HypercallError && e.code === ErrorCodes.HYPERCALL && e.errnoName === 'ESRCH' && e.retry === 'none');
    xc.close();
  });

  it('rejects a bad policy with a validation error', () => {
    assert.throws(() => resolvePolicy({ maxAttempts: 0 }), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.VALIDATION);
    assert.throws(() => resolvePolicy({ maxDelayMs: -1 }), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.VALIDATION);
  });

  it('restores pristine inputs before every re-issue (getdomaininfo rewrites its domain field)', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 3 });
    hv.addDomain({ domid: 9 });
    // Ask for 4 (absent): Xen answers for 9 and rewrites op->domain = 9 before the copy-back
    // faults. A re-issue from the dirty struct would ask for 9 and "succeed"; from the pristine
    // one it asks for 4 again, gets 9 again, and the typed call reports 4 as absent.
    hv.faults.inject({ op: 'domctl.getdomaininfo', direction: 'out' });
    await assert.rejects(xc.domctl.getdomaininfo({ domain: 4 }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'ESRCH');
    const asked = hv.history.calls('domctl.getdomaininfo');
    assert.equal(asked.length, 2);
    assert.ok(hv.history.copies().filter((c) => c.name === 'domctl.getdomaininfo' && c.direction === 'out').length === 2);
    xc.close();
  });
});

describe('decideRetry', () => {
  const safe = rowByName('domctl.getdomaininfo')!;
  const unsafe = rowByName('domctl.createdomain')!;
  const cond = rowByName('sysctl.readconsole')!;
  const base = { errno: 14, attempt: 1, args: undefined, buffersCanFault: true, policy: DEFAULT_RETRY_POLICY };

  it('retries a safe row after EFAULT, refuses an unsafe one with its recovery', () => {
    assert.equal(decideRetry({ ...base, row: safe }).action, 'retry');
    const d = decideRetry({ ...base, row: unsafe });
    assert.equal(d.action, 'fail');
    assert.ok(d.action === 'fail' && d.kind === 'unsafe' && d.recovery === unsafe.recovery);
  });

  it('resolves a conditional row from the decoded arguments', () => {
    assert.equal(decideRetry({ ...base, row: cond, args: { clear: 0 } }).action, 'retry');
    const d = decideRetry({ ...base, row: cond, args: { clear: 1 } });
    assert.ok(d.action === 'fail' && d.kind === 'unsafe' && /clear/.test(d.reason));
    // Without arguments a conditional row cannot be proved safe.
    assert.equal(decideRetry({ ...base, row: cond }).action, 'fail');
  });
});
