// The mock hypervisor itself: Xen's quirks and limits, strict mode, the fault plan's rules and
// determinism, and the call history.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, HypercallError, XencallError, encode, numbers, structs } from '../src/index.js';
import { MockHypervisor } from '../src/testing/index.js';
import { MAX_CONTROLLER_PAUSE_COUNT } from '../src/testing/world.js';
import { mockHandle, UUID_A } from './helpers.js';

const { HYPERCALL, DOMCTL, SYSCTL, XEN_DOMCTL_INTERFACE_VERSION } = numbers;

describe('mock hypervisor: Xen behaviour', () => {
  it("getdomaininfo answers for the next domain at or above the id (Xen's quirk); the typed call refuses that", async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 7 });
    const buf = xc.allocBuffer(structs.xen_domctl.size);
    encode(structs.xen_domctl, buf.view(), 0, { cmd: DOMCTL.getdomaininfo, interface_version: XEN_DOMCTL_INTERFACE_VERSION, domain: 3 });
    await xc.hypercall(HYPERCALL.domctl, [buf.address]);
    assert.equal(buf.view().getUint16(8, true), 7, 'raw: op->domain rewritten to the next domain');
    await assert.rejects(xc.domctl.getdomaininfo({ domain: 3 }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'ESRCH' && /next one/.test(e.message));
    await assert.rejects(xc.domctl.getdomaininfo({ domain: 8 }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'ESRCH');
    xc.close();
  });

  it('checks the domctl and sysctl interface versions (-EACCES)', async () => {
    const { xc } = await mockHandle();
    for (const [op, cmd, layout] of [
      [HYPERCALL.domctl, DOMCTL.getdomaininfo, structs.xen_domctl],
      [HYPERCALL.sysctl, SYSCTL.physinfo, structs.xen_sysctl],
    ] as const) {
      const buf = xc.allocBuffer(layout.size);
      buf.view().setUint32(0, cmd, true);
      buf.view().setUint32(4, 0x14, true);
      await assert.rejects(xc.hypercall(op, [buf.address]), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EACCES');
    }
    xc.close();
  });

  it('caps the controller pause count at 255 (-EOVERFLOW) and refuses to unpause below 0 (-EINVAL)', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 2 });
    for (let i = 0; i < MAX_CONTROLLER_PAUSE_COUNT; i++) xc.sync.domctl.pausedomain({ domain: 2 });
    assert.throws(() => xc.sync.domctl.pausedomain({ domain: 2 }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EOVERFLOW');
    for (let i = 0; i < MAX_CONTROLLER_PAUSE_COUNT; i++) xc.sync.domctl.unpausedomain({ domain: 2 });
    assert.throws(() => xc.sync.domctl.unpausedomain({ domain: 2 }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EINVAL');
    xc.close();
  });

  it('createdomain leaves the new domain paused, with the handle asked for; an explicit id in use is -EEXIST', async () => {
    const { hv, xc } = await mockHandle();
    const { domid } = await xc.domctl.createdomain({ handle: UUID_A, max_vcpus: 3 });
    const info = await xc.domctl.getdomaininfo({ domain: domid });
    assert.equal(info.handle, UUID_A);
    assert.equal(info.paused, true);
    // As on Xen: createdomain records max_vcpus, XEN_DOMCTL_max_vcpus creates the vcpus.
    assert.equal(info.max_vcpu_id, 0xffffffff);
    assert.equal(info.nr_online_vcpus, 0);
    await xc.domctl.max_vcpus({ domain: domid, max: 3 });
    const after = await xc.domctl.getdomaininfo({ domain: domid });
    assert.equal(after.max_vcpu_id, 2);
    assert.equal(after.nr_online_vcpus, 0, 'new vcpus are down');
    assert.equal(after.shutdown, false);
    assert.equal(after.flags >>> 16, 0xffff, 'SHUTDOWN_CODE_INVALID shifted in, as Xen does');
    assert.equal(hv.domain(domid)!.controllerPauseCount, 1);
    await assert.rejects(xc.domctl.createdomain({ domain: domid, handle: UUID_A }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EEXIST');
    xc.close();
  });

  it('readconsole: incremental reads from an index, clear moves the consumer', async () => {
    const { hv, xc } = await mockHandle({ consoleText: 'abc' });
    const first = await xc.sysctl.readconsole({});
    assert.equal(first.text, 'abc');
    hv.console.write('def');
    const inc = await xc.sysctl.readconsole({ incremental: true, index: first.index });
    assert.equal(inc.text, 'def');
    await xc.sysctl.readconsole({ clear: true });
    assert.equal(hv.console.unread(), '');
    assert.equal((await xc.sysctl.readconsole({})).text, '');
    xc.close();
  });

  it('shadow_op CLEAN returns and clears the dirty bitmap; PEEK leaves it', async () => {
    const { hv, xc } = await mockHandle();
    const d = hv.addDomain({ domid: 4, totPages: 64 });
    await xc.domctl.shadow_op.enable_logdirty({ domain: 4 });
    d.writePage(1);
    d.writePage(63);
    const peek = await xc.domctl.shadow_op.peek({ domain: 4, pages: 64n });
    assert.deepEqual([peek.bitmap[0], peek.bitmap[7], peek.dirty_count], [0b10, 0x80, 2]);
    const clean = await xc.domctl.shadow_op.clean({ domain: 4, pages: 64n });
    assert.deepEqual([clean.bitmap[0], clean.bitmap[7]], [0b10, 0x80]);
    const after = await xc.domctl.shadow_op.peek({ domain: 4, pages: 64n });
    assert.ok(after.bitmap.every((x) => x === 0));
    xc.close();
  });

  it('event channels: alloc_unbound hands out the lowest free port; status reports it; close frees it', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 6 });
    const a = await xc.event_channel_op.alloc_unbound({ dom: 0, remote_dom: 6 });
    const b = await xc.event_channel_op.alloc_unbound({ dom: 0, remote_dom: 6 });
    assert.deepEqual([a.port, b.port], [1, 2]);
    assert.deepEqual(await xc.event_channel_op.status({ dom: 0, port: 2 }), { port: 2, status: 'unbound', vcpu: 0, remote_dom: 6 });
    await xc.event_channel_op.close({ port: 1 });
    assert.equal((await xc.event_channel_op.status({ dom: 0, port: 1 })).status, 'closed');
    await assert.rejects(xc.event_channel_op.close({ port: 1 }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EINVAL');
    xc.close();
  });
});

describe('mock hypervisor: strict mode fails closed', () => {
  it('names the argument that points outside the hypercall buffers', async () => {
    const { xc } = await mockHandle({ strict: true });
    await assert.rejects(xc.call2(HYPERCALL.xen_version, 1, 0xdead000n), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.MOCK_STRICT && /arg1 \(xen_extraversion_t\) = 0xdead000/.test(e.message));
    xc.close();
  });

  it('names an op it does not model; without strict it is -ENOSYS like an unknown op', async () => {
    const strict = await mockHandle({ strict: true });
    await assert.rejects(strict.xc.call1(HYPERCALL.kexec_op, 0), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.MOCK_STRICT && /kexec_op/.test(e.message));
    strict.xc.close();
    const lax = await mockHandle({ strict: false });
    await assert.rejects(lax.xc.call1(HYPERCALL.kexec_op, 0), (e: unknown) => e instanceof HypercallError && e.errnoName === 'ENOSYS');
    await assert.rejects(lax.xc.call2(HYPERCALL.xen_version, 1, 0xdead000n), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EFAULT');
    lax.xc.close();
  });
});

describe('mock hypervisor: fault plan and history', () => {
  it('faults the nth matching copy, by direction and op, and a buffer page rule only on that page', async () => {
    const { hv, xc } = await mockHandle();
    const r = hv.faults.inject({ op: 'sysctl.physinfo', direction: 'out', nth: 2 });
    await xc.sysctl.physinfo();
    assert.equal(r.fired, 0, 'the first copy-out passes');
    await xc.sysctl.physinfo();
    assert.equal(r.fired, 1);
    const big = xc.allocBufferPages(3);
    const pageRule = hv.faults.inject({ buffer: big, page: 2, times: Infinity });
    await xc.call2(HYPERCALL.xen_version, 1, big.address); // page 0: fine
    assert.equal(pageRule.fired, 0);
    await assert.rejects(xc.call2(HYPERCALL.xen_version, 1, big.address + 2n * 4096n));
    assert.ok(pageRule.fired >= 1);
    xc.close();
  });

  it('a copy-out that faults on a later page leaves the earlier pages written, as copy_to_user does', async () => {
    const hv = new MockHypervisor();
    const b = hv.backend();
    const mem = b.allocPages(2);
    hv.faults.inject({ buffer: mem.address, page: 1 });
    const ok = hv.copyToGuest('test', mem.address + 4000n, new Uint8Array(200).fill(7), 'span');
    assert.equal(ok, false);
    assert.equal(mem.bytes[4095], 7, 'bytes before the faulting page were written');
    assert.equal(mem.bytes[4096], 0, 'bytes on the faulting page were not');
  });

  it('random faults are deterministic for a seed', async () => {
    const run = async (seed: number) => {
      const { hv, xc } = await mockHandle({}, { retry: { maxAttempts: 1 } });
      hv.faults.random({ rate: 0.3, seed });
      const outcomes: string[] = [];
      for (let i = 0; i < 40; i++) outcomes.push(await xc.sysctl.physinfo().then(() => 'ok', (e: HypercallError) => e.errnoName));
      xc.close();
      return outcomes.join(',');
    };
    assert.equal(await run(42), await run(42));
    assert.notEqual(await run(42), await run(43));
    assert.match(await run(42), /EFAULT/);
  });

  it('assertAllFired catches a scripted fault the scenario never reached', async () => {
    const { hv, xc } = await mockHandle();
    hv.faults.inject({ op: 'domctl.createdomain', label: 'never reached' });
    await xc.sysctl.physinfo();
    assert.throws(() => hv.faults.assertAllFired(), /never reached/);
    xc.close();
  });

  it('records calls, copies, faults, effects and returns in order', async () => {
    const { hv, xc } = await mockHandle();
    hv.faults.inject({ op: 'domctl.createdomain', direction: 'out' });
    await assert.rejects(xc.domctl.createdomain({ handle: UUID_A }));
    const kinds = hv.history.all().map((e) => `${e.kind}${e.kind === 'copy' ? `:${e.direction}:${e.ok}` : e.kind === 'effect' ? `:${e.effect}` : ''}`);
    // First the handle's Xen version check: XENVER_version copies nothing.
    assert.deepEqual(kinds, ['call', 'return', 'call', 'copy:in:true', 'effect:domain.created', 'fault', 'copy:out:false', 'return']);
    xc.close();
  });
});

describe('mock hypervisor: at scale', () => {
  it('page-frame types come back as Xen writes them: unsigned 32-bit flags in a 64-bit slot (a pinned L4 table is 0xc0000000)', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 5, totPages: 4096 });
    const { XEN_DOMCTL_PFINFO: P } = numbers;
    const { types } = await xc.domctl.getpageframeinfo3({ domain: 5, gfns: [1n, 2n, 9000n] });
    assert.deepEqual(types, Uint32Array.of(0xc0000000, P.L3TAB, 0xf0000000));
    assert.equal(types[0], (P.L4TAB | P.LPINTAB) >>> 0);
    // The raw array: the upper half of each 64-bit slot is zero, not a sign extension.
    const arr = xc.allocBuffer(8);
    arr.view().setBigUint64(0, 1n, true);
    const dc = xc.allocBuffer(structs.xen_domctl.size);
    encode(structs.xen_domctl, dc.view(), 0, { cmd: DOMCTL.getpageframeinfo3, interface_version: XEN_DOMCTL_INTERFACE_VERSION, domain: 5 });
    encode(structs.xen_domctl_getpageframeinfo3, dc.view(), structs.DOMCTL_PAYLOAD_OFFSET, { num: 1n, array: arr.address });
    await xc.hypercall(HYPERCALL.domctl, [dc.address]);
    assert.equal(arr.view().getBigUint64(0, true), 0xc0000000n);
    xc.close();
  });

  it('a guest copy finds its buffer without scanning the others: the same work with 10,000 buffers live as with one', async () => {
    const { hv, xc } = await mockHandle();
    const stepsOfOneCopy = () => {
      const before = hv.lookupSteps;
      void xc.xen_version.extraversion();
      return hv.lookupSteps - before;
    };
    const alone = stepsOfOneCopy();
    const held = Array.from({ length: 10_000 }, () => xc.allocBuffer(64));
    const crowded = stepsOfOneCopy();
    assert.ok(alone >= 1);
    assert.equal(crowded, alone, `one copy examined ${crowded} mappings with 10,000 live, ${alone} with none`);
    // Large buffers (beyond the page index) are found too, and overruns still fault.
    const big = xc.allocBufferPages(300);
    assert.equal(await xc.call2(HYPERCALL.xen_version, numbers.XENVER.extraversion, big.address + 299n * 4096n), 0n);
    await assert.rejects(xc.call2(HYPERCALL.xen_version, numbers.XENVER.extraversion, big.address + 300n * 4096n - 8n));
    for (const b of held) xc.freeBuffer(b);
    xc.close();
  });

  it('the history records every event by default, past 20,000; a limit, when set, keeps the newest and counts what it let go', async () => {
    const { hv, xc } = await mockHandle();
    // Raw calls: a typed call's first would add the handle's version check.
    for (let i = 0; i < 12_000; i++) xc.call2Sync(HYPERCALL.xen_version, 0, 0);
    assert.equal(hv.history.calls('xen_version.version').length, 12_000);
    assert.equal(hv.history.all().length, 24_000, 'a call and a return each');
    assert.equal(hv.history.dropped, 0);
    xc.close();
    const limited = await mockHandle({ historyLimit: 1000 });
    for (let i = 0; i < 3000; i++) limited.xc.call2Sync(HYPERCALL.xen_version, 0, 0);
    const kept = limited.hv.history.all();
    assert.ok(kept.length <= 1000);
    assert.equal(limited.hv.history.dropped + kept.length, 6000);
    assert.equal(kept.at(-1)!.seq, 6000, 'the newest events are the ones kept');
    limited.xc.close();
  });
});

describe('mock hypervisor: any op answers any errno (faults.reply)', () => {
  it('answers for the op before its handler runs: nothing copied, nothing changed, the errno typed', async () => {
    const { hv, xc } = await mockHandle();
    const rule = hv.faults.reply({ op: 'domctl.createdomain', errno: 'ENOMEM' });
    await assert.rejects(xc.domctl.createdomain({ handle: UUID_A }), (e: unknown) => e instanceof HypercallError && e.code === ErrorCodes.HYPERCALL && e.errnoName === 'ENOMEM' && e.attempts === 1);
    assert.equal(rule.fired, 1);
    assert.equal(hv.history.effects('domain.created').length, 0);
    assert.deepEqual(hv.history.replies().map((r) => [r.name, r.errno]), [['domctl.createdomain', 12]]);
    assert.equal(hv.history.copies().length, 0, 'domctl names its call from a peek, before its first copy');
    // Once spent, the op runs again.
    assert.ok((await xc.domctl.createdomain({ handle: UUID_A })).domid > 0);
    hv.faults.assertAllFired();
    xc.close();
  });

  it('matches a hypercall family and counts nth and times', async () => {
    const { hv, xc } = await mockHandle();
    hv.faults.reply({ op: 'sysctl', errno: 13, nth: 2, times: 2 });
    await xc.sysctl.physinfo();
    for (let i = 0; i < 2; i++) await assert.rejects(xc.sysctl.sched_id(), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EACCES');
    await xc.sysctl.physinfo();
    xc.close();
  });

  it('an EFAULT answer meets the table: retried where safe, refused where not', async () => {
    const { hv, xc } = await mockHandle();
    hv.faults.reply({ op: 'sysctl.physinfo', errno: 'EFAULT', times: 2 });
    await xc.sysctl.physinfo();
    assert.equal(xc.stats()['sysctl.physinfo']!.retries, 2);
    hv.faults.reply({ op: 'domctl.createdomain', errno: 'EFAULT' });
    await assert.rejects(xc.domctl.createdomain({ handle: UUID_A }), (e: unknown) => e instanceof HypercallError && e.code === ErrorCodes.RETRY_REFUSED);
    xc.close();
  });

  it('answers for an op the strict mock does not model, instead of failing the test', async () => {
    const { hv, xc } = await mockHandle({ strict: true });
    await assert.rejects(xc.call1(HYPERCALL.mmu_update, 0), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.MOCK_STRICT);
    hv.faults.reply({ op: 'mmu_update', errno: 'EPERM' });
    await assert.rejects(xc.call1(HYPERCALL.mmu_update, 0), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EPERM');
    xc.close();
  });

  it('does not match the continuations Xen makes of a call', async () => {
    const { hv, xc } = await mockHandle({ preempt: 'always' });
    hv.addDomain({ domid: 4, totPages: 2048, hvm: true });
    await xc.domctl.shadow_op.enable_logdirty({ domain: 4 });
    const rule = hv.faults.reply({ op: 'arch_1', errno: 'EINVAL' });
    await xc.domctl.shadow_op.clean({ domain: 4, pages: 2048 });
    assert.ok(hv.history.calls('arch_1').length > 0, 'CLEAN continued through hypercall 49');
    assert.equal(rule.fired, 0);
    assert.deepEqual(hv.faults.pending(), [rule]);
    assert.throws(() => hv.faults.assertAllFired(), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.MOCK_STRICT && /reply #1 arch_1 EINVAL/.test(e.message));
    xc.close();
  });
});

describe('mock hypervisor: fault rules name ops that exist', () => {
  it('refuses a rule naming an op that is neither a row nor a hypercall, whatever the kind of rule', () => {
    const hv = new MockHypervisor();
    const refused = (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.VALIDATION && (e as { field?: string }).field === 'fault.op' && /domctl\.getdomaininf"/.test(e.message);
    // @ts-expect-error the op names are typed: a misspelt one does not compile either
    assert.throws(() => hv.faults.inject({ op: 'domctl.getdomaininf' }), refused);
    assert.throws(() => hv.faults.random({ op: 'domctl.getdomaininf' as never, rate: 0.5, seed: 1 }), refused);
    assert.throws(() => hv.faults.reply({ op: 'domctl.getdomaininf' as never, errno: 'EIO' }), refused);
    assert.throws(() => hv.faults.reply({ op: 'domctl.getdomaininfo', errno: 'EWHAT' as never }), (e: unknown) => e instanceof XencallError && /errno/.test(e.message));
    assert.throws(() => hv.faults.reply({ errno: 'EIO' } as never), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.VALIDATION);
    // Rows, families of per-mode rows and hypercalls are all names.
    for (const op of ['domctl.getdomaininfo', 'domctl.shadow_op.clean', 'sysctl.cpupool_op', 'domctl', 'arch_1'] as const) hv.faults.inject({ op });
    assert.equal(hv.faults.pending().length, 5);
  });

  it('every name the mock gives a call is one a rule may use', async () => {
    const { hv, xc } = await mockHandle();
    const probe = new MockHypervisor();
    hv.addDomain({ domid: 2, totPages: 64, hvm: true });
    await xc.sysctl.getdomaininfolist();
    await xc.domctl.shadow_op.enable_logdirty({ domain: 2 });
    await xc.domctl.shadow_op.peek({ domain: 2, pages: 64 });
    await xc.memory_op.maximum_ram_page();
    await xc.event_channel_op.alloc_unbound({ dom: 0, remote_dom: 2 });
    await xc.hvm_op.get_param({ domid: 2, index: 1 });
    await xc.xen_version.compile_info();
    const names = new Set(hv.history.calls().map((c) => c.name));
    assert.ok(names.size >= 7);
    for (const op of names) probe.faults.inject({ op: op as never });
    xc.close();
  });
});
