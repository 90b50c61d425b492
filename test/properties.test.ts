// Property tests (fast-check): the retry decision never re-issues what the table forbids and is
// always bounded; bad input to typed and raw calls is always a typed error, and never reaches the
// backend.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_RETRY_POLICY, TABLE, ValidationError, XencallError, decideRetry, open, verdictFor } from '../src/index.js';
import { MockHypervisor } from '../src/testing/index.js';
import { TYPED_OPS } from '../src/ops/index.js';
import { counting } from './helpers.js';

const errnos = fc.constantFrom(1, 3, 11, 12, 13, 14, 16, 22, 38);
const policies = fc.record({
  maxAttempts: fc.integer({ min: 1, max: 8 }),
  retryOn: fc.subarray(['EFAULT', 'EAGAIN', 'EBUSY']),
  initialDelayMs: fc.double({ min: 0, max: 50, noNaN: true }),
  backoffFactor: fc.double({ min: 0, max: 4, noNaN: true }),
  maxDelayMs: fc.double({ min: 0, max: 100, noNaN: true }),
});
const rows = fc.option(fc.constantFrom(...TABLE), { nil: undefined });
const decodedArgs = fc.option(fc.record({ clear: fc.integer({ min: 0, max: 1 }), domain: fc.integer({ min: 0, max: 10 }) }), { nil: undefined });

describe('decideRetry properties', () => {
  it('retries only a retryable errno, on a row safe for these arguments, with faulting buffers, within the budget', () => {
    fc.assert(
      fc.property(errnos, fc.integer({ min: 1, max: 10 }), rows, decodedArgs, fc.boolean(), policies, (errno, attempt, row, args, canFault, policy) => {
        const d = decideRetry({ errno, attempt, row, args, buffersCanFault: canFault, policy });
        if (d.action === 'retry') {
          const name = { 1: 'EPERM', 3: 'ESRCH', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT', 16: 'EBUSY', 22: 'EINVAL', 38: 'ENOSYS' }[errno]!;
          assert.ok(policy.retryOn.includes(name));
          assert.ok(row, 'never retries a call without a row');
          assert.equal(verdictFor(row, args), 'safe');
          assert.ok(canFault);
          assert.ok(attempt < policy.maxAttempts, 'bounded by maxAttempts');
          assert.ok(d.delayMs >= 0 && d.delayMs <= policy.maxDelayMs);
        } else {
          assert.ok(d.reason.length > 0, 'a refusal always says why');
          if (row && row.verdict !== 'safe') assert.equal(d.recovery, row.recovery ?? null);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('is pure: the same input gives the same decision', () => {
    fc.assert(
      fc.property(errnos, fc.integer({ min: 1, max: 5 }), rows, decodedArgs, fc.boolean(), (errno, attempt, row, args, canFault) => {
        const input = { errno, attempt, row, args, buffersCanFault: canFault, policy: DEFAULT_RETRY_POLICY };
        assert.deepEqual(decideRetry(input), decideRetry(input));
      }),
    );
  });

  it('a sequence of attempts on any row ends within maxAttempts', () => {
    fc.assert(
      fc.property(rows, policies, (row, policy) => {
        let attempt = 1;
        while (decideRetry({ errno: 14, attempt, row, args: { clear: 0 }, buffersCanFault: true, policy }).action === 'retry') attempt++;
        assert.ok(attempt <= policy.maxAttempts);
      }),
    );
  });
});

const junk = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.string(),
  fc.double(),
  fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.boolean(),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.object({ maxDepth: 1 }),
);

function leaves(node: object, path: string[] = []): { path: string; fn: string[] }[] {
  return Object.entries(node).flatMap(([k, v]) => ('run' in v && 'row' in v ? [{ path: [...path, k].join('.'), fn: [...path, k] }] : leaves(v as object, [...path, k])));
}

describe('bad input never reaches the backend', () => {
  const ops = leaves(TYPED_OPS);

  it('every typed call answers junk arguments with a ValidationError naming a field, before touching a buffer', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ops), fc.dictionary(fc.constantFrom('domain', 'domid', 'port', 'max_memkb', 'pages', 'gfns', 'handle', 'max', 'mb', 'size', 'dom', 'remote_dom', 'clear', 'bogus'), junk, { minKeys: 1 }), async (op, args) => {
        const backend = counting(new MockHypervisor().backend());
        const xc = await open({ backend });
        let target: unknown = xc;
        for (const k of op.fn) target = (target as Record<string, unknown>)[k];
        try {
          await (target as (a: unknown) => Promise<unknown>)(args);
        } catch (e) {
          assert.ok(e instanceof XencallError, `${op.path}: not a typed error: ${String(e)}`);
          if (e instanceof ValidationError) {
            assert.ok(e.field.startsWith(op.path.replace(/^(\w+)\.(\w+)$/, '$1.$2')) || e.field.length > 0, 'names a field');
            assert.equal(backend.hypercalls, 0, `${op.path}: a rejected call reached the backend`);
            assert.equal(backend.allocs, 0, `${op.path}: a rejected call allocated a buffer`);
          }
        } finally {
          xc.close();
        }
      }),
      { numRuns: 400 },
    );
  });

  it('raw calls answer junk with a ValidationError and issue nothing', async () => {
    await fc.assert(
      fc.asyncProperty(junk, fc.array(junk, { maxLength: 7 }), async (op, args) => {
        const backend = counting(new MockHypervisor().backend());
        const xc = await open({ backend });
        const valid = (v: unknown) => (typeof v === 'bigint' && v >= -(2n ** 63n) && v < 2n ** 64n) || (typeof v === 'number' && Number.isSafeInteger(v));
        const okOp = valid(op) && BigInt(op as number) >= 0n && BigInt(op as number) <= 0xffffffffn;
        const okArgs = args.length <= 5 && args.every(valid);
        try {
          await xc.hypercall(op as never, args as never);
        } catch (e) {
          assert.ok(e instanceof XencallError, `not a typed error: ${String(e)}`);
          if (!okOp || !okArgs) {
            assert.ok(e instanceof ValidationError, `invalid input must be a ValidationError, got ${(e as XencallError).code}`);
            assert.equal(backend.hypercalls, 0);
          }
        } finally {
          xc.close();
        }
        if (!okOp || !okArgs) assert.equal(backend.hypercalls, 0);
      }),
      { numRuns: 500 },
    );
  });
});
