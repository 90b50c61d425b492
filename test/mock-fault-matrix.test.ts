// Table-driven: for every row the mock models, inject an EFAULT at each copy point its handler
// makes, one at a time. Safe rows must recover with the same result and world state as a
// fault-free run; unsafe rows must never be re-issued and must leave the world as Xen would
// (the effect happened once or not at all, never twice).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, HypercallError, TABLE, verdictFor, type Xencall } from '../src/index.js';
import { hvmContextBlob, type MockHypervisor } from '../src/testing/index.js';
import { mockHandle, worldState, UUID_A } from './helpers.js';
import type { RowName } from '../src/hypercalls/table.js';

interface Scenario {
  /** The table row exercised. */
  row: RowName;
  /** A label when one row has several scenarios (a conditional row's two sides). */
  variant?: string;
  setup?: (hv: MockHypervisor) => void;
  call: (xc: Xencall) => Promise<unknown>;
}

const guest = (hv: MockHypervisor, extra: Partial<Parameters<MockHypervisor['addDomain']>[0]> = {}) =>
  hv.addDomain({ domid: 5, totPages: 100_000, maxPages: 100_000, maxVcpus: 2, handle: new Uint8Array(16).fill(5), ...extra });

const logDirtyGuest = (hv: MockHypervisor) => {
  const d = guest(hv);
  d.logDirty.enabled = true;
  d.logDirty.bitmap = new Uint8Array(Math.ceil(d.totPages / 8));
  // Dirty pages in every 32768-page chunk, so CLEAN's chunk loop has work in each.
  for (const g of [3, 40_000, 70_000, 99_999]) d.writePage(g);
  return d;
};

const SCENARIOS: Scenario[] = [
  { row: 'xen_version.version', call: (xc) => xc.xen_version.version() },
  { row: 'xen_version.extraversion', call: (xc) => xc.xen_version.extraversion() },
  { row: 'xen_version.compile_info', call: (xc) => xc.xen_version.compile_info() },
  { row: 'xen_version.capabilities', call: (xc) => xc.xen_version.capabilities() },
  { row: 'xen_version.changeset', call: (xc) => xc.xen_version.changeset() },
  { row: 'xen_version.platform_parameters', call: (xc) => xc.xen_version.platform_parameters() },
  { row: 'xen_version.get_features', call: (xc) => xc.xen_version.get_features({ submap_idx: 0 }) },
  { row: 'xen_version.pagesize', call: (xc) => xc.xen_version.pagesize() },
  { row: 'domctl.getdomaininfo', setup: guest, call: (xc) => xc.domctl.getdomaininfo({ domain: 5 }) },
  { row: 'domctl.createdomain', call: (xc) => xc.domctl.createdomain({ handle: UUID_A, max_vcpus: 2 }) },
  { row: 'domctl.destroydomain', setup: guest, call: (xc) => xc.domctl.destroydomain({ domain: 5 }) },
  { row: 'domctl.pausedomain', setup: guest, call: (xc) => xc.domctl.pausedomain({ domain: 5 }) },
  { row: 'domctl.unpausedomain', setup: (hv) => guest(hv, { paused: true }), call: (xc) => xc.domctl.unpausedomain({ domain: 5 }) },
  { row: 'domctl.max_mem', setup: guest, call: (xc) => xc.domctl.max_mem({ domain: 5, max_memkb: 1n << 20n }) },
  { row: 'domctl.max_vcpus', setup: guest, call: (xc) => xc.domctl.max_vcpus({ domain: 5, max: 2 }) },
  { row: 'domctl.shadow_op.off', setup: logDirtyGuest, call: (xc) => xc.domctl.shadow_op.off({ domain: 5 }) },
  { row: 'domctl.shadow_op.enable_logdirty', setup: guest, call: (xc) => xc.domctl.shadow_op.enable_logdirty({ domain: 5 }) },
  { row: 'domctl.shadow_op.clean', setup: logDirtyGuest, call: (xc) => xc.domctl.shadow_op.clean({ domain: 5, pages: 100_000n }) },
  { row: 'domctl.shadow_op.peek', setup: logDirtyGuest, call: (xc) => xc.domctl.shadow_op.peek({ domain: 5, pages: 100_000n }) },
  { row: 'domctl.shadow_op.get_allocation', setup: guest, call: (xc) => xc.domctl.shadow_op.get_allocation({ domain: 5 }) },
  { row: 'domctl.shadow_op.set_allocation', setup: guest, call: (xc) => xc.domctl.shadow_op.set_allocation({ domain: 5, mb: 64 }) },
  {
    row: 'domctl.getpageframeinfo3',
    setup: guest,
    call: (xc) => xc.domctl.getpageframeinfo3({ domain: 5, gfns: [0n, 1n, 2n, 3n, 4n, 9n, 200_000n, 4097n] }),
  },
  { row: 'sysctl.physinfo', setup: guest, call: (xc) => xc.sysctl.physinfo() },
  { row: 'sysctl.getdomaininfolist', setup: guest, call: (xc) => xc.sysctl.getdomaininfolist({}) },
  {
    row: 'sysctl.readconsole',
    variant: 'clear=0',
    setup: (hv) => hv.console.write('x'.repeat(20_000)), // wraps the 16 KiB ring: two copy chunks
    call: (xc) => xc.sysctl.readconsole({ size: 32_768 }),
  },
  {
    row: 'sysctl.readconsole',
    variant: 'clear=1',
    setup: (hv) => hv.console.write('x'.repeat(20_000)),
    call: (xc) => xc.sysctl.readconsole({ clear: true, size: 32_768 }),
  },
  { row: 'memory_op.maximum_ram_page', call: (xc) => xc.memory_op.maximum_ram_page() },
  {
    // A short count, never -EFAULT: the typed call re-issues the rest (an HVM target: nothing is
    // copied back, so nothing leaks).
    row: 'memory_op.populate_physmap',
    setup: (hv) => hv.addDomain({ domid: 5, hvm: true, maxPages: 64 }),
    call: (xc) => xc.memory_op.populate_physmap({ domid: 5, gfns: new Uint32Array([0, 1, 2, 3, 8, 9, 0x40, 0x41]) }),
  },
  { row: 'memory_op.current_reservation', setup: guest, call: (xc) => xc.memory_op.current_reservation({ domid: 5 }) },
  { row: 'memory_op.maximum_reservation', setup: guest, call: (xc) => xc.memory_op.maximum_reservation({ domid: 5 }) },
  { row: 'memory_op.maximum_gpfn', setup: (hv) => guest(hv, { hvm: true }), call: (xc) => xc.memory_op.maximum_gpfn({ domid: 5 }) },
  { row: 'event_channel_op.alloc_unbound', setup: guest, call: (xc) => xc.event_channel_op.alloc_unbound({ dom: 0, remote_dom: 5 }) },
  {
    row: 'event_channel_op.close',
    setup: (hv) => hv.domain(0)!.evtchns.set(7, { state: { state: 'unbound', remoteDom: 5 }, vcpu: 0, pending: 0 }),
    call: (xc) => xc.event_channel_op.close({ port: 7 }),
  },
  {
    row: 'event_channel_op.status',
    setup: (hv) => hv.domain(0)!.evtchns.set(7, { state: { state: 'unbound', remoteDom: 5 }, vcpu: 0, pending: 0 }),
    call: (xc) => xc.event_channel_op.status({ dom: 0, port: 7 }),
  },
  { row: 'sysctl.sched_id', call: (xc) => xc.sysctl.sched_id() },
  { row: 'sysctl.getcpuinfo', call: (xc) => xc.sysctl.getcpuinfo() },
  { row: 'sysctl.cputopoinfo', call: (xc) => xc.sysctl.cputopoinfo() },
  { row: 'sysctl.numainfo', setup: guest, call: (xc) => xc.sysctl.numainfo() },
  { row: 'domctl.getvcpuinfo', setup: (hv) => guest(hv, { onlineVcpus: 2 }), call: (xc) => xc.domctl.getvcpuinfo({ domain: 5, vcpu: 1 }) },
  {
    row: 'domctl.setvcpuaffinity',
    variant: 'hard and soft',
    setup: guest,
    call: (xc) => xc.domctl.setvcpuaffinity({ domain: 5, vcpu: 1, hard: [1, 2, 3], soft: [2, 3] }),
  },
  { row: 'domctl.setvcpuaffinity', variant: 'hard only', setup: guest, call: (xc) => xc.domctl.setvcpuaffinity({ domain: 5, vcpu: 0, hard: [0, 2] }) },
  {
    row: 'domctl.getvcpuaffinity',
    setup: (hv) => {
      const d = guest(hv);
      d.vcpus[1]!.hardAffinity = 0b0110n;
      d.vcpus[1]!.softAffinity = 0b0100n;
    },
    call: (xc) => xc.domctl.getvcpuaffinity({ domain: 5, vcpu: 1 }),
  },
  { row: 'domctl.setdomainhandle', setup: guest, call: (xc) => xc.domctl.setdomainhandle({ domain: 5, handle: '0badcafe-0000-4000-8000-000000000005' }) },
  { row: 'domctl.settimeoffset', setup: guest, call: (xc) => xc.domctl.settimeoffset({ domain: 5, time_offset_seconds: -7200n }) },
  { row: 'domctl.gethvmcontext', setup: (hv) => guest(hv, { hvm: true }), call: (xc) => xc.domctl.gethvmcontext({ domain: 5 }) },
  {
    row: 'domctl.sethvmcontext',
    setup: (hv) => guest(hv, { hvm: true }),
    call: (xc) => xc.domctl.sethvmcontext({ domain: 5, context: hvmContextBlob(2, 77) }),
  },
  { row: 'domctl.getvcpucontext', setup: (hv) => guest(hv, { onlineVcpus: 2 }), call: (xc) => xc.domctl.getvcpucontext({ domain: 5, vcpu: 1 }) },
  { row: 'hvm_op.get_param', setup: (hv) => (guest(hv, { hvm: true }).hvmParams[1] = 0xfeffen), call: (xc) => xc.hvm_op.get_param({ domid: 5, index: 1 }) },
  { row: 'hvm_op.set_param', setup: (hv) => guest(hv, { hvm: true }), call: (xc) => xc.hvm_op.set_param({ domid: 5, index: 2, value: 3n }) },
  {
    row: 'event_channel_op.send',
    setup: (hv) => hv.domain(0)!.evtchns.set(7, { state: { state: 'interdomain', remoteDom: 5, remotePort: 1 }, vcpu: 0, pending: 0 }),
    call: (xc) => xc.event_channel_op.send({ port: 7 }),
  },
];

async function runOnce(s: Scenario, fault?: number) {
  const { hv, xc } = await mockHandle();
  s.setup?.(hv);
  const before = worldState(hv);
  if (fault !== undefined) hv.faults.inject({ op: s.row, nth: fault, label: `copy ${fault}` });
  let result: unknown;
  let error: unknown;
  try {
    result = await s.call(xc);
  } catch (e) {
    error = e;
  }
  const copies = hv.history.copies().filter((c) => c.name === s.row).length;
  const calls = hv.history.calls(s.row).length;
  xc.close();
  return { hv, before, after: worldState(hv), result, error, copies, calls };
}

describe('every mock-modelled row under a fault at each copy point', () => {
  const modelled = TABLE.filter((r) => SCENARIOS.some((s) => s.row === r.name));

  it('covers every row that has a typed call', () => {
    const typed = TABLE.filter((r) => r.args);
    const missing = typed.filter((r) => !modelled.includes(r)).map((r) => r.name);
    assert.deepEqual(missing, [], `rows with typed calls but no fault scenario: ${missing.join(', ')}`);
  });

  for (const s of SCENARIOS) {
    const row = TABLE.find((r) => r.name === s.row)!;
    it(`${s.row}${s.variant ? ` (${s.variant})` : ''}`, async () => {
      assert.ok(row, `no table row ${s.row}`);
      const ref = await runOnce(s);
      assert.equal(ref.error, undefined, `fault-free run failed: ${String(ref.error)}`);
      if (row.faults === 'no-pointer') {
        assert.equal(ref.copies, 0, 'a no-pointer row must make no guest copy');
        return;
      }
      assert.ok(ref.copies > 0, 'the handler must copy at least once');

      for (let k = 1; k <= ref.copies; k++) {
        const run = await runOnce(s, k);
        const where = `fault at copy ${k} of ${ref.copies}`;
        assert.equal(run.hv.history.faults().length >= 1, true, `${where}: the fault did not fire`);
        // The call's decoded arguments decide a conditional row's side.
        const verdict = row.verdict === 'conditional' ? (s.variant === 'clear=1' ? 'unsafe' : 'safe') : verdictFor(row, undefined);
        if (verdict === 'safe') {
          assert.equal(run.error, undefined, `${where}: a safe row must recover, got ${String(run.error)}`);
          assert.deepEqual(run.result, ref.result, `${where}: result differs from the fault-free run`);
          assert.deepEqual(run.after, ref.after, `${where}: world state differs from the fault-free run`);
          // A typed call may make several calls of its row (a size query, then the read; pages).
          assert.equal(run.calls, ref.calls + 1, `${where}: expected exactly one re-issue`);
        } else {
          assert.ok(run.error instanceof HypercallError, `${where}: an unsafe row must fail`);
          assert.equal(run.error.code, ErrorCodes.RETRY_REFUSED, `${where}: expected a refusal`);
          assert.equal(run.error.errnoName, 'EFAULT');
          assert.ok(run.error.recovery, `${where}: the refusal must carry the recovery hint`);
          assert.equal(run.calls, 1, `${where}: an unsafe row must never be re-issued`);
          // Xen's effects happened at most once, in order, up to the fault: the faulted call's
          // effects are a prefix of the fault-free call's (CLEAN clears chunk by chunk).
          const eff = (h: MockHypervisor) => h.history.effects().map((e) => `${e.effect} ${JSON.stringify(e.detail, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
          const got = eff(run.hv);
          const full = eff(ref.hv);
          assert.deepEqual(got, full.slice(0, got.length), `${where}: effects are not a prefix of one fault-free call's`);
          if (got.length === 0) assert.deepEqual(run.after, run.before, `${where}: no effect recorded, yet the world changed`);
          if (got.length === full.length) assert.deepEqual(run.after, ref.after, `${where}: all effects recorded, yet the world differs from one call`);
        }
      }
    });
  }
});
