// The standing reliability suite, part one: fast-check throws junk at every public entry point —
// open/openSync, typed calls with their options (promise and sync), raw calls, buffers, foreign
// memory, the recovery helpers, liveMigrate, the mock's constructor, domains and fault rules, the
// test guest's helpers and handle, the HVM context codec, and the CLI's argv. Whatever happens, a failure is a XencallError with one of the stable codes (the CLI: an
// exit status with a one-line message, 2 for bad usage), never a raw TypeError, a hang or a
// stack trace. Other suites pin behaviour; this one pins that nothing escapes untyped.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  ErrorCodes,
  HypercallBuffer,
  XencallError,
  findDomainByHandle,
  findLeakedPorts,
  liveMigrate,
  save,
  restore,
  migrate,
  open,
  openSync,
  recoverConsole,
  parseHvmContext,
  buildHvmContext,
  findHvmRecord,
  decodeHvmHeader,
  pvhStartContexts,
  type Xencall,
} from '../src/index.js';
import { main } from '../src/cli/main.js';
import { COMMANDS, EXIT, isCommand } from '../src/cli/spec.js';
import { TYPED_OPS } from '../src/ops/index.js';
import {
  MockHypervisor,
  bootTestGuest,
  buildTestGuestImage,
  fillTestGuestPage,
  loadTestGuestImage,
  readTestGuestControl,
  readTestGuestCounter,
  testGuestPageWord,
  verifyTestGuestPage,
  writeTestGuestControl,
} from '../src/testing/index.js';
import { checkWriteSet } from '../src/testing/test-guest-layout.js';

const CODES = new Set<string>(Object.values(ErrorCodes));

/** Runs `f`; a failure must be a XencallError with a stable code. */
async function typed(what: string, f: () => unknown): Promise<void> {
  try {
    await f();
  } catch (e) {
    assert.ok(e instanceof XencallError, `${what}: not a XencallError: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    assert.ok(CODES.has(e.code), `${what}: unknown code ${e.code}`);
  }
}

const firedSignal = (() => {
  const c = new AbortController();
  c.abort(new Error('fired'));
  return c.signal;
})();

/** Anything at all, junk values a caller could pass by mistake weighted in. */
const junk = fc.oneof(
  fc.constantFrom(undefined, null, 0, -1, 1.5, NaN, Infinity, '', '0', 'EFAULT', true, [], {}, 2 ** 32, 2 ** 53, -(2 ** 63), 2n ** 64n, -1n, Symbol('s'), () => 1),
  fc.string({ maxLength: 8 }),
  fc.integer(),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.double(),
  fc.array(fc.oneof(fc.integer({ min: -5, max: 70000 }), fc.string({ maxLength: 3 })), { maxLength: 4 }),
  fc.anything({ maxDepth: 2, withBigInt: true, withNullPrototype: true, withTypedArray: true, withMap: true, withSet: true, withBoxedValues: true }),
);

/** Small valid-looking values, so some calls get past validation and reach the mock. */
const plausible = fc.oneof(fc.integer({ min: 0, max: 9 }), fc.constantFrom(0x7ff0, 4095, 2n ** 32n, 1n, true, false, [0, 1], '7e57c0de-0000-4000-8000-000000000001'));
const value = fc.oneof(junk, plausible);
const options = fc.oneof(
  junk,
  fc.constantFrom(undefined, null, 0, 'signal', {}, { signal: firedSignal }, { signal: { aborted: true } }, { signal: null }, { signal: new AbortController().signal }),
  fc.record({ signal: junk }, { requiredKeys: [] }),
);
const argBag = fc.oneof(
  junk,
  // Valid for every call without required arguments, so the options are what gets tested.
  fc.constantFrom(undefined, {}, { domain: 0 }, { domain: 5, vcpu: 0 }, { domid: 0 }),
  fc.dictionary(
    fc.constantFrom('domain', 'domid', 'vcpu', 'port', 'dom', 'remote_dom', 'pages', 'gfns', 'handle', 'max', 'mb', 'size', 'clear', 'hard', 'soft', 'index', 'value', 'max_memkb', 'context', 'buffer', 'first_domain', 'max_domains', 'time_offset_seconds', 'constructor', '__proto__'),
    value,
    { maxKeys: 4 },
  ),
);

function leaves(node: object, path: string[] = []): string[][] {
  return Object.entries(node).flatMap(([k, v]) => ('run' in v && 'row' in v ? [[...path, k]] : leaves(v as object, [...path, k])));
}
const typedOps = leaves(TYPED_OPS);

function at(root: unknown, path: readonly string[]): (...a: unknown[]) => unknown {
  let t = root;
  for (const k of path) t = (t as Record<string, unknown>)[k];
  return t as (...a: unknown[]) => unknown;
}

async function world(): Promise<{ hv: MockHypervisor; xc: Xencall }> {
  const hv = new MockHypervisor();
  hv.addDomain({ domid: 5, totPages: 64, maxVcpus: 2, onlineVcpus: 2, hvm: true });
  const xc = await open({ backend: hv.backend(), sleep: { sync: () => {}, async: async () => {} } });
  return { hv, xc };
}

describe('every public entry point fails typed', { timeout: 120_000 }, () => {
  it('open and openSync, with any options', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(junk, fc.record({ backend: fc.oneof(junk, fc.constant('mock')), flags: value, retry: fc.oneof(junk, fc.record({ maxAttempts: value, retryOn: value, initialDelayMs: value }, { requiredKeys: [] })), sleep: junk }, { requiredKeys: [] })), async (o) => {
        // 'mock' stands for a real backend, so the rest of the options get looked at.
        const opts = o !== null && typeof o === 'object' && (o as { backend?: unknown }).backend === 'mock' ? { ...(o as object), backend: new MockHypervisor().backend() } : o;
        for (const f of [() => open(opts as never), () => openSync(opts as never)]) {
          await typed('open', async () => (await f()).close());
        }
      }),
      { numRuns: 300 },
    );
  });

  it('typed calls, promise and sync, with any arguments and options', async () => {
    const { hv, xc } = await world();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...typedOps), argBag, options, async (path, args, opts) => {
        await typed(`xc.${path.join('.')}`, () => at(xc, path).call(undefined, args, opts));
        await typed(`xc.sync.${path.join('.')}`, () => at(xc.sync, path).call(undefined, args));
      }),
      { numRuns: 600 },
    );
    assert.ok(hv.calls > 0, 'some calls got through to the mock');
    xc.close();
  });

  it('raw calls: hypercall, hypercallSync and call0..call5', async () => {
    const { xc } = await world();
    await fc.assert(
      fc.asyncProperty(fc.oneof(value, fc.constantFrom(17, 36, 35, 12, 29, 0xffffffff)), fc.oneof(junk, fc.array(value, { maxLength: 7 }), fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 5 })), options, fc.array(value, { minLength: 5, maxLength: 5 }), async (op, args, opts, five) => {
        await typed('hypercall', () => xc.hypercall(op as never, args as never, opts as never));
        await typed('hypercallSync', () => xc.hypercallSync(op as never, args as never));
        const [a, b, c, d, e] = five as [never, never, never, never, never];
        await typed('call5', () => xc.call5(op as never, a, b, c, d, e));
        await typed('call2Sync', () => xc.call2Sync(op as never, a, b));
        await typed('call0', () => xc.call0(op as never));
      }),
      { numRuns: 400 },
    );
    xc.close();
  });

  it('buffers: alloc, free, write, read, view, and use after free', async () => {
    const { xc } = await world();
    await fc.assert(
      fc.asyncProperty(value, value, value, value, fc.boolean(), async (size, data, offset, length, freeFirst) => {
        // Large but valid sizes are ordinary allocations of up to a GiB: kept small here.
        const bytes = typeof size === 'number' && Number.isInteger(size) && size > 1 << 16 && size <= 1 << 30 ? 1 << 16 : size;
        const pages = typeof size === 'number' && Number.isInteger(size) && size > 16 && size <= 1 << 18 ? 16 : size;
        await typed('allocBuffer', () => xc.freeBuffer(xc.allocBuffer(bytes as never)));
        await typed('allocBufferPages', () => xc.freeBufferPages(xc.allocBufferPages(pages as never)));
        await typed('freeBuffer', () => xc.freeBuffer(data as never));
        const b = xc.allocBuffer(64);
        if (freeFirst) xc.freeBuffer(b);
        await typed('write', () => b.write(data as never, offset as never));
        await typed('read', () => b.read(offset as never, length as never));
        await typed('view', () => b.view());
        await typed('bytes', () => b.bytes);
        await typed('free again', () => xc.freeBuffer(b));
        await typed('new HypercallBuffer', () => new HypercallBuffer(data as never, size as never));
        await typed('restrict', () => openSync({ backend: new MockHypervisor().backend() }).restrict(size as never));
      }),
      { numRuns: 300 },
    );
    xc.close();
  });

  it('foreign memory: map, mapResource, and a mapping after unmap', async () => {
    const { hv, xc } = await world();
    hv.addDomain({ domid: 9, totPages: 16, withMemory: true });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(value, fc.constantFrom(9, 0, 5)),
        fc.oneof(junk, fc.array(fc.oneof(value, fc.integer({ min: 0, max: 20 })), { maxLength: 6 }), fc.constant(new Uint32Array([0, 1, 2]))),
        fc.oneof(junk, fc.record({ writable: value }, { requiredKeys: [] })),
        fc.oneof(junk, fc.record({ type: value, id: value, frame: value, nrFrames: fc.oneof(value, fc.integer({ min: 1, max: 4 })), writable: value }, { requiredKeys: [] })),
        value,
        async (domid, gfns, opts, resource, page) => {
          await typed('foreignMemory.map', () => {
            const m = xc.foreignMemory.map(domid as never, gfns as never, opts as never);
            try {
              void m.page(page as never);
            } finally {
              m.unmap();
            }
            m.unmap();
            void m.bytes;
          });
          await typed('foreignMemory.mapResource', () => xc.foreignMemory.mapResource(domid as never, resource as never).unmap());
        },
      ),
      { numRuns: 300 },
    );
    assert.equal(xc.foreignMemory.mappings.length, 0, 'every mapping made was unmapped');
    xc.close();
  });

  it('recovery helpers and liveMigrate', async () => {
    const { xc } = await world();
    const buf = xc.allocBuffer(16);
    await fc.assert(
      fc.asyncProperty(
        value,
        fc.oneof(junk, fc.record({ dom: value, remote_dom: value, known: value, maxPort: fc.oneof(value, fc.integer({ min: 0, max: 40 })) }, { requiredKeys: [] })),
        fc.oneof(junk, fc.record({ buffer: fc.oneof(junk, fc.constant(buf)), index: value }, { requiredKeys: [] })),
        fc.oneof(junk, fc.record({ domain: value, pages: fc.oneof(junk, fc.integer({ min: 1, max: 64 })), sendPages: fc.oneof(junk, fc.constant(() => {})), signal: junk, maxRounds: value }, { requiredKeys: [] })),
        async (handle, leak, consoleOpts, migrate) => {
          await typed('findDomainByHandle', () => findDomainByHandle(xc, handle as never));
          await typed('findDomainByHandle(junk xc)', () => findDomainByHandle(handle as never, '7e57c0de-0000-4000-8000-000000000001'));
          await typed('findLeakedPorts', () => findLeakedPorts(xc, leak as never));
          // recoverConsole hands back, unchanged, an error that is not the readconsole EFAULT it recovers.
          await typed('recoverConsole', () =>
            recoverConsole(xc, handle, consoleOpts as never).catch((e: unknown) => {
              if (!Object.is(e, handle)) throw e;
            }),
          );
          await typed('liveMigrate', () => liveMigrate(xc, migrate as never));
        },
      ),
      { numRuns: 300 },
    );
    xc.close();
  });

  it('save, restore and migrate', async () => {
    // No guest at all: nothing can be saved, and nothing must be created or written.
    const xc = await open({ backend: new MockHypervisor().backend() });
    await fc.assert(
      fc.asyncProperty(
        value,
        value,
        fc.oneof(junk, fc.record({ live: value, after: value, keepSource: value, paused: value, domid: value, destinationDomid: value, maxRounds: value, dirtyThreshold: value, signal: junk, onProgress: value }, { requiredKeys: [] })),
        async (domid, target, options) => {
          // Nothing here names a savable guest: every call must fail, typed, before changing anything.
          await typed('save', () => save(xc, domid as never, target as never, options as never));
          await typed('save(junk xc)', () => save(domid as never, 5, () => undefined, options as never));
          await typed('restore', () => restore(xc, target as never, options as never));
          await typed('migrate', () => migrate(xc, domid as never, options as never));
        },
      ),
      { numRuns: 200 },
    );
    assert.deepEqual((await xc.sysctl.getdomaininfolist()).map((d) => d.domid), [0], 'no domain was created from junk');
    xc.close();
  });

  it("the mock's constructor, addDomain and fault rules", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(junk, fc.record({ strict: value, nrCpus: value, preempt: fc.oneof(value, fc.constantFrom('never', 'always')), historyLimit: value, consoleSize: value, dom0: junk }, { requiredKeys: [] })),
        fc.oneof(junk, fc.record({ domid: value, totPages: value, maxVcpus: value, onlineVcpus: value, handle: junk, withMemory: value }, { requiredKeys: [] })),
        fc.oneof(junk, fc.record({ op: value, direction: fc.oneof(value, fc.constantFrom('in', 'out', 'any')), nth: value, times: value, page: value, buffer: value, label: value }, { requiredKeys: [] })),
        fc.oneof(junk, fc.record({ rate: fc.oneof(value, fc.double({ min: 0, max: 1, noNaN: true })), seed: value, op: value, direction: value }, { requiredKeys: [] })),
        async (hvOpts, spec, rule, random) => {
          await typed('new MockHypervisor', () => new MockHypervisor(hvOpts as never));
          const hv = new MockHypervisor();
          await typed('addDomain', () => hv.addDomain(spec as never));
          await typed('faults.inject', () => hv.faults.inject(rule as never));
          await typed('faults.random', () => hv.faults.random(random as never));
          // Whatever rules were accepted, calls through them still fail typed.
          const xc = await open({ backend: hv.backend() });
          await typed('a call under the rules', () => xc.sysctl.physinfo());
          await typed('assertAllFired', () => hv.faults.assertAllFired());
          xc.close();
        },
      ),
      { numRuns: 300 },
    );
  });

  it("the test guest's helpers, its handle, and the HVM context codec", async () => {
    const { xc } = await world();
    const image = (await buildTestGuestImage()).path;
    const guest = await bootTestGuest(xc, { image, pages: 0x120, writeSet: [0x110] });
    const saved = (await xc.domctl.gethvmcontext({ domain: guest.domid })).bytes;
    const page = new Uint8Array(4096);
    const bytesOrJunk = fc.oneof(junk, fc.constantFrom(page, saved, saved.subarray(0, 40), new Uint8Array(3)));
    await fc.assert(
      fc.asyncProperty(bytesOrJunk, value, value, value, options, async (bytes, a, b, c, opts) => {
        await typed('verifyTestGuestPage', () => verifyTestGuestPage(bytes as never, a as never));
        await typed('fillTestGuestPage', () => fillTestGuestPage(bytes as never, a as never, b as never));
        await typed('testGuestPageWord', () => testGuestPageWord(a as never, b as never, c as never));
        await typed('checkWriteSet', () => checkWriteSet(a as never, b as never));
        await typed('readTestGuestControl', () => readTestGuestControl(bytes as never));
        await typed('readTestGuestCounter', () => readTestGuestCounter(bytes as never));
        await typed('writeTestGuestControl', () => writeTestGuestControl(page, { pages: a, generation: b, gfns: c } as never));
        await typed('loadTestGuestImage', () => loadTestGuestImage(bytes as never));
        await typed('buildTestGuestImage', () => (opts === undefined ? undefined : buildTestGuestImage(opts as never)));
        await typed('bootTestGuest', () => (a === undefined ? undefined : bootTestGuest(a as never, opts as never)));
        await typed('bootTestGuest options', () => bootTestGuest(xc, { image: bytes, pages: a, writeSet: b, domid: c } as never).then((g) => g.destroy()));
        await typed('setWriteSet', () => guest.setWriteSet(a as never));
        await typed('waitForProgress', () => guest.waitForProgress(a as never, { ...(opts as object), timeoutMs: 0 } as never));
        await typed('waitForWriteSet', () => guest.waitForWriteSet(opts === undefined ? { timeoutMs: 0 } : (opts as never)));
        await typed('verifyPages', () => guest.verifyPages(a as never));
        await typed('parseHvmContext', () => parseHvmContext(bytes as never));
        await typed('buildHvmContext', () => buildHvmContext(bytes as never, a as never));
        await typed('findHvmRecord', () => findHvmRecord(a as never, b as never, c as never));
        await typed('decodeHvmHeader', () => decodeHvmHeader(bytes as never));
        await typed('pvhStartContexts', () => pvhStartContexts(bytes as never, a as never));
      }),
      { numRuns: 300 },
    );
    await guest.destroy();
    xc.close();
  });

  it('the CLI: any argv ends with an exit status and at most a one-line message, never a throw or a stack trace', async () => {
    const word = fc.oneof(
      fc.constantFrom('table', 'info', 'domains', 'doctor', 'call', 'nosuch', '--json', '--markdown', '--backend', 'mock', 'privcmd', '--seed', '--fault-rate', '--allow-writes', '-h', '--help', '--version', '--bogus', '--'),
      fc.constantFrom('xen_version', 'domctl', 'sched_op_compat', 'constructor', '__proto__', '17', '0', '1', '2', '0x10', '-1', 'buf:16', 'buf:0', 'buf:@/nonexistent', 'buf:@/dev/null', '1e300', ''),
      fc.string({ maxLength: 6 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(word, { maxLength: 7 }), async (argv) => {
        // Against the mock unless the argv says otherwise (no Xen here: privcmd fails typed), for
        // the commands that take --backend (to the others it is a usage error).
        const command = argv.find((w) => isCommand(w));
        const takesBackend = command !== undefined && 'backend' in COMMANDS[command].options;
        const args = argv.includes('--backend') || !takesBackend ? argv : [...argv, '--backend', 'mock'];
        let out = '';
        let err = '';
        const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
        // The documented statuses a run can end with here (4, a bug, and 141, a closed pipe, cannot).
        assert.ok(([EXIT.ok, EXIT.failed, EXIT.usage, EXIT.unavailable] as number[]).includes(code), `${args.join(' ')}: exit ${code}`);
        assert.doesNotMatch(`${out}${err}`, /\n\s+at .+:\d+:\d+/, `${args.join(' ')}: a stack trace`);
        assert.doesNotMatch(err, /internal error/, `${args.join(' ')}: ${err}`);
        if (code === 2) assert.ok(err.length > 0, `${args.join(' ')}: a usage error says what was wrong`);
      }),
      { numRuns: 400 },
    );
  });
});
