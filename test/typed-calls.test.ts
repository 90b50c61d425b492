// The typed calls for scheduler, cpu, numa, vcpu, HVM-context and HVM-parameter sub-ops, on the
// mock: results, Xen's size handshakes, paging, the errors Xen gives, and the one place Xen
// loses an EFAULT (vcpu_affinity_domctl with both cpumaps). The constants they use are checked
// against the installed headers here too, and DomainInfo's direct read against the layout.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCodes, HVM_PARAM, HypercallError, ValidationError } from '../src/index.js';
import { VALUE_FAMILIES, XEN_SCHEDULER } from '../src/hypercalls/values.js';
import { GETDOMAININFOLIST_PAGE } from '../src/ops/sysctl.js';
import { hvmContextBlob } from '../src/testing/index.js';
import { UUID_A, UUID_B, mockHandle } from './helpers.js';
import fc from 'fast-check';
import type { PageViews } from '../src/buffers.js';
import { XEN_DOMINF } from '../src/hypercalls/numbers.js';
import { bytesToUuid, uuidToBytes } from '../src/hypercalls/schemas.js';
import { xen_domctl_getdomaininfo } from '../src/hypercalls/structs.js';
import { decode, type Decoded } from '../src/layout.js';
import { domainInfoAt } from '../src/ops/domctl.js';

const errno = (name: string) => (e: unknown) => e instanceof HypercallError && e.errnoName === name;

describe('constants of the typed calls', () => {
  const cc = process.env.CC || 'cc';
  const skip = (() => {
    if (!fs.existsSync('/usr/include/xen/hvm/params.h')) return 'no Xen headers: install libxen-dev';
    try {
      execFileSync(cc, ['--version'], { stdio: 'pipe' });
    } catch {
      return `no C compiler (${cc})`;
    }
    return false;
  })();

  it('match Xen 4.17 headers and the x86 uapi headers (XEN_SCHEDULER_*, XEN_VCPUAFFINITY_*, XEN_INVALID_*, HVM_PARAM_*, HVM_FILE_*, XEN_X86_EMU_*, XEN_ELFNOTE_*, X86_CR0_*, X86_CR4_*, MTRR_TYPE_*)', { skip }, () => {
    const headers = ['stdint.h', 'stdio.h', 'xen/xen.h', ...new Set(VALUE_FAMILIES.map((f) => f.header))];
    const lines = headers.map((h) => `#include <${h}>`);
    lines.push('int main(void) {');
    const expected = new Map<string, number>();
    for (const f of VALUE_FAMILIES) {
      for (const [k, v] of Object.entries(f.values)) {
        const name = f.cnames?.[k] ?? f.prefix + k;
        expected.set(name, v);
        lines.push(`#ifdef ${name}`, `  printf("${name} %llu\\n", (unsigned long long)(${name}));`, '#else', `  printf("${name} undefined\\n");`, '#endif');
      }
    }
    lines.push('  return 0;', '}');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-values-'));
    try {
      fs.writeFileSync(path.join(dir, 'p.c'), lines.join('\n'));
      execFileSync(cc, ['-D__XEN_TOOLS__', '-o', path.join(dir, 'p'), path.join(dir, 'p.c')], { stdio: 'pipe' });
      const out = execFileSync(path.join(dir, 'p'), { encoding: 'utf8' });
      const wrong: string[] = [];
      for (const line of out.trim().split('\n')) {
        const [name, value] = line.split(' ') as [string, string];
        if (value === 'undefined' || Number(value) !== expected.get(name)) wrong.push(`${name}: src says ${expected.get(name)}, headers say ${value}`);
      }
      assert.deepEqual(wrong, []);
      assert.equal(out.trim().split('\n').length, expected.size);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sysctl: scheduler, cpus, numa, domain list', () => {
  it('sched_id names the scheduler (credit2 by default)', async () => {
    const { hv, xc } = await mockHandle();
    assert.deepEqual(await xc.sysctl.sched_id(), { sched_id: XEN_SCHEDULER.CREDIT2, name: 'credit2' });
    hv.host.schedulerId = XEN_SCHEDULER.RTDS;
    assert.deepEqual(xc.sync.sysctl.sched_id(), { sched_id: 8, name: 'rtds' });
    hv.host.schedulerId = 42;
    assert.deepEqual(await xc.sysctl.sched_id(), { sched_id: 42, name: null });
    xc.close();
  });

  it('cputopoinfo asks for the count with a NULL handle, then fills that many entries', async () => {
    const { hv, xc } = await mockHandle({ nrCpus: 6 });
    const topo = await xc.sysctl.cputopoinfo();
    assert.equal(topo.length, 6);
    assert.deepEqual(topo[5], { cpu: 5, present: true, core: 5, socket: 0, node: 0 });
    const calls = hv.history.calls('sysctl.cputopoinfo');
    assert.equal(calls.length, 2);
    // The first call wrote only num_cpus back (field copy, then the whole struct).
    const outs = hv.history.copies().filter((c) => c.name === 'sysctl.cputopoinfo' && c.direction === 'out');
    assert.equal(outs[0]!.what, 'arg0 u.cputopoinfo.num_cpus');
    assert.equal(outs.filter((c) => c.what.startsWith('cputopo[')).length, 6);
    xc.close();
  });

  it('numainfo: one node with all memory, local distance 10, after the same handshake', async () => {
    const { hv, xc } = await mockHandle({ totalPages: 1 << 20 });
    hv.addDomain({ domid: 1, totPages: 1 << 18 });
    const numa = await xc.sysctl.numainfo();
    const dom0Pages = hv.domain(0)!.totPages;
    assert.deepEqual(numa, {
      nodes: [{ node: 0, online: true, memsize: 4n << 30n, memfree: BigInt((1 << 20) - (1 << 18) - dom0Pages) << 12n }],
      distances: [[10]],
    });
    assert.equal(hv.history.calls('sysctl.numainfo').length, 2);
    xc.close();
  });

  it('getcpuinfo sizes its array from physinfo unless max_cpus is given', async () => {
    const { hv, xc } = await mockHandle({ nrCpus: 3 });
    hv.host.cpuIdleTime[1] = 123n;
    assert.deepEqual(await xc.sysctl.getcpuinfo(), [
      { cpu: 0, idletime: 1_000_000_000n },
      { cpu: 1, idletime: 123n },
      { cpu: 2, idletime: 3_000_000_000n },
    ]);
    assert.equal(hv.history.calls('sysctl.physinfo').length, 1);
    assert.equal((await xc.sysctl.getcpuinfo({ max_cpus: 2 })).length, 2);
    // More than there are: Xen answers for min(max_cpus, nr_cpu_ids).
    assert.equal((await xc.sysctl.getcpuinfo({ max_cpus: 64 })).length, 3);
    xc.close();
  });

  it('getdomaininfolist pages through every domain when max_domains is not given', async () => {
    const { hv, xc } = await mockHandle();
    const ids = [0];
    for (let i = 0; i < 2 * GETDOMAININFOLIST_PAGE + 40; i++) {
      const domid = 1 + i * 3; // gaps, so the next page must start past the last id, not at a count
      hv.addDomain({ domid });
      ids.push(domid);
    }
    const all = await xc.sysctl.getdomaininfolist();
    assert.deepEqual(all.map((d) => d.domid), ids);
    assert.equal(hv.history.calls('sysctl.getdomaininfolist').length, 3);

    const from = await xc.sysctl.getdomaininfolist({ first_domain: 700 });
    assert.deepEqual(from.map((d) => d.domid), ids.filter((d) => d >= 700));
    xc.close();
  });

  it('getdomaininfolist with max_domains is one call', async () => {
    const { hv, xc } = await mockHandle();
    for (let d = 1; d <= 10; d++) hv.addDomain({ domid: d });
    hv.history.clear();
    const some = await xc.sysctl.getdomaininfolist({ first_domain: 2, max_domains: 4 });
    assert.deepEqual(some.map((d) => d.domid), [2, 3, 4, 5]);
    assert.equal(hv.history.calls('sysctl.getdomaininfolist').length, 1);
    xc.close();
  });

  it("getdomaininfolist paging stops when a page ends at the last domain id", async () => {
    const { hv, xc } = await mockHandle();
    for (let i = 1; i < GETDOMAININFOLIST_PAGE; i++) hv.addDomain({ domid: 0x7fef - GETDOMAININFOLIST_PAGE + 1 + i });
    const all = await xc.sysctl.getdomaininfolist();
    assert.equal(all.length, GETDOMAININFOLIST_PAGE);
    assert.equal(all.at(-1)!.domid, 0x7fef);
    assert.equal(hv.history.calls('sysctl.getdomaininfolist').length, 1);
    xc.close();
  });
});

describe('domctl: vcpus and their affinity', () => {
  it('getvcpuinfo reports the vcpu; past max_vcpus is -EINVAL', async () => {
    const { hv, xc } = await mockHandle();
    const d = hv.addDomain({ domid: 2, maxVcpus: 2, onlineVcpus: 1 });
    d.vcpus[0]!.cpu_time = 5_000n;
    d.vcpus[0]!.cpu = 3;
    assert.deepEqual(await xc.domctl.getvcpuinfo({ domain: 2, vcpu: 0 }), { vcpu: 0, online: true, blocked: true, running: false, cpu_time: 5_000n, cpu: 3 });
    assert.equal((await xc.domctl.getvcpuinfo({ domain: 2, vcpu: 1 })).online, false);
    await assert.rejects(xc.domctl.getvcpuinfo({ domain: 2, vcpu: 2 }), errno('EINVAL'));
    await assert.rejects(xc.domctl.getvcpuinfo({ domain: 9, vcpu: 0 }), errno('ESRCH'));
    xc.close();
  });

  it('setvcpuaffinity returns the effective maps Xen wrote back: soft is cut to hard', async () => {
    const { hv, xc } = await mockHandle({ nrCpus: 12 });
    hv.addDomain({ domid: 2, maxVcpus: 2 });
    const r = await xc.domctl.setvcpuaffinity({ domain: 2, vcpu: 1, hard: [1, 2, 3, 9], soft: [3, 4, 9, 11] });
    assert.deepEqual(r, { hard: [1, 2, 3, 9], soft: [3, 9] });
    const v = hv.domain(2)!.vcpus[1]!;
    assert.equal(v.hardAffinity, (1n << 1n) | (1n << 2n) | (1n << 3n) | (1n << 9n));
    assert.equal(v.softAffinity, (1n << 3n) | (1n << 4n) | (1n << 9n) | (1n << 11n), 'Xen stores the soft map as given');
    // getvcpuaffinity reports the plain masks, not the effective ones.
    assert.deepEqual(await xc.domctl.getvcpuaffinity({ domain: 2, vcpu: 1 }), { hard: [1, 2, 3, 9], soft: [3, 4, 9, 11] });
    assert.deepEqual(await xc.domctl.setvcpuaffinity({ domain: 2, vcpu: 0, soft: [5] }), { soft: [5] });
    xc.close();
  });

  it("a new vcpu's affinity is every cpu", async () => {
    const { hv, xc } = await mockHandle({ nrCpus: 4 });
    hv.addDomain({ domid: 2 });
    assert.deepEqual(await xc.domctl.getvcpuaffinity({ domain: 2, vcpu: 0 }), { hard: [0, 1, 2, 3], soft: [0, 1, 2, 3] });
    xc.close();
  });

  it('setvcpuaffinity validates: a map is needed, and cpus must exist', async () => {
    const { hv, xc } = await mockHandle({ nrCpus: 4 });
    hv.addDomain({ domid: 2 });
    await assert.rejects(xc.domctl.setvcpuaffinity({ domain: 2, vcpu: 0 }), (e: unknown) => e instanceof ValidationError && /hard, soft or both/.test(e.message));
    await assert.rejects(xc.domctl.setvcpuaffinity({ domain: 2, vcpu: 0, hard: [4] }), (e: unknown) => e instanceof ValidationError && e.field === 'domctl.setvcpuaffinity.hard');
    assert.equal(hv.history.calls('domctl.setvcpuaffinity').length, 0);
    xc.close();
  });

  it("an EFAULT Xen loses (hard map's copy-back, with SOFT set) is caught and the call re-issued", async () => {
    const { hv, xc } = await mockHandle({ nrCpus: 4 });
    hv.addDomain({ domid: 2, maxVcpus: 1 });
    // The first copy-out of setvcpuaffinity is the hard map's effective mask.
    hv.faults.inject({ op: 'domctl.setvcpuaffinity', direction: 'out', nth: 1 });
    const r = await xc.domctl.setvcpuaffinity({ domain: 2, vcpu: 0, hard: [0, 1], soft: [1, 2] });
    assert.deepEqual(r, { hard: [0, 1], soft: [1] });
    const returns = hv.history.all().filter((e) => e.kind === 'return' && e.name === 'domctl.setvcpuaffinity');
    assert.deepEqual(
      returns.map((e) => (e as { result: bigint }).result),
      [0n, 0n],
      'Xen returned 0 despite the fault; the typed call re-issued on its own evidence',
    );
    const s = xc.stats()['domctl.setvcpuaffinity']!;
    assert.equal(s.efaults, 1);
    assert.equal(s.retries, 1);
    xc.close();
  });

  it('the lost EFAULT counts against the attempt budget like a reported one', async () => {
    const { hv, xc } = await mockHandle({ nrCpus: 4 }, { retry: { maxAttempts: 1 } });
    hv.addDomain({ domid: 2 });
    hv.faults.inject({ op: 'domctl.getvcpuaffinity', direction: 'out', nth: 1 });
    await assert.rejects(
      xc.domctl.getvcpuaffinity({ domain: 2, vcpu: 0 }),
      (e: unknown) => e instanceof HypercallError && e.code === ErrorCodes.RETRY_EXHAUSTED && /not written back/.test(e.message),
    );
    xc.close();
  });

  it('a fault on the soft map copy-in rolls the hard map back, then the retry applies both', async () => {
    const { hv, xc } = await mockHandle({ nrCpus: 4 });
    hv.addDomain({ domid: 2 });
    hv.faults.inject({ op: 'domctl.setvcpuaffinity', direction: 'in', nth: 3 }); // struct, hard map, soft map
    await xc.domctl.setvcpuaffinity({ domain: 2, vcpu: 0, hard: [2], soft: [2, 3] });
    const hard = hv.history.effects('vcpu.affinity').map((e) => e.detail.hard).filter((h) => h !== undefined);
    assert.deepEqual(hard, [4n, -1n, 4n], 'set, rolled back to cpumask_all, set again');
    assert.equal(hv.domain(2)!.vcpus[0]!.hardAffinity, 4n);
    xc.close();
  });
});

describe('domctl: time offset, HVM context, vcpu context', () => {
  it('settimeoffset sets the absolute offset', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 2 });
    await xc.domctl.settimeoffset({ domain: 2, time_offset_seconds: -3600 });
    assert.equal(hv.domain(2)!.timeOffsetSeconds, -3600n);
    xc.sync.domctl.settimeoffset({ domain: 2, time_offset_seconds: 1n << 40n });
    assert.equal(hv.domain(2)!.timeOffsetSeconds, 1n << 40n);
    xc.close();
  });

  it('gethvmcontext asks for the size with a NULL buffer, then returns the bytes hvm_save used', async () => {
    const { hv, xc } = await mockHandle();
    const d = hv.addDomain({ domid: 2, hvm: true, maxVcpus: 2 });
    const { bytes } = await xc.domctl.gethvmcontext({ domain: 2 });
    assert.deepEqual(bytes, d.hvmContext);
    const calls = hv.history.calls('domctl.gethvmcontext');
    assert.equal(calls.length, 2);
    const outs = hv.history.copies().filter((c) => c.name === 'domctl.gethvmcontext' && c.direction === 'out');
    // Two vcpus, both down (no CPU record): HEADER 32, LAPIC 2x32, LAPIC_REGS 2x1032, PCI_IRQ 24,
    // ISA_IRQ 16, PCI_LINK 16, MTRR 2x248, VMCE_VCPU 2x40, TSC_ADJUST 2x16, END 8.
    assert.deepEqual(outs.map((c) => c.what.split(' ')[0]), ['arg0', 'buffer[0..2832)', 'arg0']);
    xc.close();
  });

  it('HVM context round-trips through sethvmcontext; hvm_load checks header and end', async () => {
    const { hv, xc } = await mockHandle();
    const d = hv.addDomain({ domid: 2, hvm: true, maxVcpus: 3 });
    const blob = hvmContextBlob(3, 9);
    await xc.domctl.sethvmcontext({ domain: 2, context: blob });
    assert.deepEqual((await xc.domctl.gethvmcontext({ domain: 2 })).bytes, blob);
    assert.deepEqual(d.vcpus.map((v) => v.online), [true, true, true], 'each CPU record brought its vcpu up');
    const badMagic = blob.slice();
    badMagic[8] = badMagic[8]! ^ 1;
    await assert.rejects(xc.domctl.sethvmcontext({ domain: 2, context: badMagic }), errno('EINVAL'));
    await assert.rejects(xc.domctl.sethvmcontext({ domain: 2, context: blob.subarray(0, blob.length - 8) }), errno('ENODATA'));
    assert.equal(hv.history.effects('hvm.context_loaded').length, 1);
    xc.close();
  });

  it('HVM context ops on a PV domain get -EINVAL, as arch_do_domctl gives', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 2 });
    await assert.rejects(xc.domctl.gethvmcontext({ domain: 2 }), errno('EINVAL'));
    await assert.rejects(xc.domctl.sethvmcontext({ domain: 2, context: hvmContextBlob(1, 1) }), errno('EINVAL'));
    xc.close();
  });

  it('getvcpucontext returns the 5168-byte context and decodes the x86_64 fields', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 7, maxVcpus: 2, onlineVcpus: 2 });
    const { bytes, context } = await xc.domctl.getvcpucontext({ domain: 7, vcpu: 1 });
    assert.equal(bytes.length, 5168);
    assert.equal(context.flags & (1n << 5n), 1n << 5n, 'VGCF_online');
    assert.equal(context.user_regs.rip, 0xffffffff87001010n);
    assert.equal(context.user_regs.cs, 0xe033);
    assert.equal(context.ctrlreg[3], BigInt(0x100007) << 12n, 'cr3');
    assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(520 + 128, true), context.user_regs.rip);
    xc.close();
  });

  it('getvcpucontext: an uninitialised vcpu is -ENODATA, the caller itself -EINVAL', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 7, maxVcpus: 2, onlineVcpus: 1 });
    await assert.rejects(xc.domctl.getvcpucontext({ domain: 7, vcpu: 1 }), errno('ENODATA'));
    await assert.rejects(xc.domctl.getvcpucontext({ domain: 7, vcpu: 2 }), errno('EINVAL'));
    await assert.rejects(xc.domctl.getvcpucontext({ domain: 0, vcpu: 0 }), errno('EINVAL'));
    assert.equal((await xc.domctl.getvcpucontext({ domain: 0, vcpu: 1 })).bytes.length, 5168);
    xc.close();
  });
});

describe('hvm_op: parameters', () => {
  it('set_param then get_param, by number or by name', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 3, hvm: true });
    await xc.hvm_op.set_param({ domid: 3, index: HVM_PARAM.STORE_EVTCHN, value: 5 });
    assert.deepEqual(await xc.hvm_op.get_param({ domid: 3, index: HVM_PARAM.STORE_EVTCHN }), { index: 2, value: 5n });
    assert.deepEqual(await xc.hvm_op.get_param({ domid: 3, index: 'STORE_EVTCHN' as unknown as number }), { index: 2, value: 5n });
    assert.equal(hv.domain(3)!.hvmParams[HVM_PARAM.STORE_EVTCHN], 5n);
    xc.close();
  });

  it('a PV target gets -EINVAL (is_hvm_domain is checked first), also through DOMID_SELF', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 3 });
    await assert.rejects(xc.hvm_op.get_param({ domid: 3, index: 1 }), errno('EINVAL'));
    await assert.rejects(xc.hvm_op.set_param({ domid: 3, index: 1, value: 1n }), errno('EINVAL'));
    await assert.rejects(xc.hvm_op.get_param({ domid: 0x7ff0, index: 1 }), errno('EINVAL'));
    await assert.rejects(xc.hvm_op.get_param({ domid: 9, index: 1 }), errno('ESRCH'));
    xc.close();
  });

  it("Xen's parameter rules: range (-EINVAL), deprecated (-EINVAL), set once (-EEXIST)", async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 3, hvm: true });
    await assert.rejects(xc.hvm_op.get_param({ domid: 3, index: 39 }), errno('EINVAL'));
    await assert.rejects(xc.hvm_op.get_param({ domid: 3, index: HVM_PARAM.NESTEDHVM }), errno('EINVAL'));
    await xc.hvm_op.set_param({ domid: 3, index: HVM_PARAM.IOREQ_SERVER_PFN, value: 0xff000 });
    await xc.hvm_op.set_param({ domid: 3, index: HVM_PARAM.IOREQ_SERVER_PFN, value: 0xff000 }); // the same value again is fine
    await assert.rejects(xc.hvm_op.set_param({ domid: 3, index: HVM_PARAM.IOREQ_SERVER_PFN, value: 0xfe000 }), errno('EEXIST'));
    await assert.rejects(xc.hvm_op.set_param({ domid: 3, index: HVM_PARAM.TIMER_MODE, value: 4 }), errno('EINVAL'));
    await assert.rejects(xc.hvm_op.get_param({ domid: 3, index: 'NO_SUCH' as unknown as number }), ValidationError);
    xc.close();
  });
});

describe('readconsole into the caller\'s buffer', () => {
  it('reads into the buffer and leaves it allocated', async () => {
    const { xc } = await mockHandle({ consoleText: 'hello\n' });
    const buf = xc.allocBuffer(64);
    buf.bytes.fill(0x55);
    const r = await xc.sysctl.readconsole({ buffer: buf });
    assert.equal(r.text, 'hello\n');
    assert.equal(buf.freed, false);
    assert.equal(buf.bytes[6], 0, 'zeroed before the read');
    xc.freeBuffer(buf);
    xc.close();
  });
});

describe('DomainInfo read straight from the buffer', () => {
  /** The fields as the layout's own decoder reads them, mapped as the typed call documents. */
  const reference = (d: Decoded<typeof xen_domctl_getdomaininfo.fields>) => {
    const f = d.flags;
    const bit = (b: number) => (f & b) !== 0;
    return {
      domid: d.domain,
      flags: f,
      dying: bit(XEN_DOMINF.dying),
      shutdown: bit(XEN_DOMINF.shutdown),
      paused: bit(XEN_DOMINF.paused),
      blocked: bit(XEN_DOMINF.blocked),
      running: bit(XEN_DOMINF.running),
      hvm_guest: bit(XEN_DOMINF.hvm_guest),
      debugged: bit(XEN_DOMINF.debugged),
      xs_domain: bit(XEN_DOMINF.xs_domain),
      hap: bit(XEN_DOMINF.hap),
      shutdown_reason: (f >>> XEN_DOMINF.shutdownshift) & XEN_DOMINF.shutdownmask,
      tot_pages: d.tot_pages,
      max_pages: d.max_pages,
      outstanding_pages: d.outstanding_pages,
      shr_pages: d.shr_pages,
      paged_pages: d.paged_pages,
      shared_info_frame: d.shared_info_frame,
      cpu_time: d.cpu_time,
      nr_online_vcpus: d.nr_online_vcpus,
      max_vcpu_id: d.max_vcpu_id,
      ssidref: d.ssidref,
      handle: bytesToUuid(d.handle),
      cpupool: d.cpupool,
      gpaddr_bits: d.gpaddr_bits,
      arch_config: { ...d.arch_config },
    };
  };
  const viewsOf = (bytes: Uint8Array): PageViews => ({
    view: new DataView(bytes.buffer, bytes.byteOffset, bytes.length),
    bytes,
    u64: bytes.byteOffset % 8 === 0 ? new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 3) : null,
    u32: bytes.byteOffset % 8 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2) : null,
  });

  it('equals the layout decoder on random records, through the word view and through the DataView', () => {
    fc.assert(
      // Bytes that are mostly zero too, so small 64-bit values (the table of small bigints) come up.
      fc.property(fc.oneof(fc.uint8Array({ minLength: 240, maxLength: 240 }), fc.uint8Array({ minLength: 240, maxLength: 240, max: 3 }).map((a) => a.map((x) => (x === 3 ? 7 : 0)))), fc.constantFrom(0, 16, 112, 4), (raw, at) => {
        const mem = viewsOf(raw);
        assert.deepStrictEqual(domainInfoAt(mem, at), reference(decode(xen_domctl_getdomaininfo, mem.view, at)));
        // Memory that is not 8-aligned: no word view, the same answer.
        const odd = new Uint8Array(raw.length + 4).subarray(4);
        odd.set(raw);
        assert.deepStrictEqual(domainInfoAt(viewsOf(odd), at), reference(decode(xen_domctl_getdomaininfo, mem.view, at)));
      }),
      { numRuns: 300, seed: 13 },
    );
  });

  it("a domain's new handle is seen at once (the formatted handle is kept only while its bytes stay)", () => {
    const raw = new Uint8Array(256);
    const mem = viewsOf(raw);
    const handleAt = 16 + xen_domctl_getdomaininfo.fields.handle.offset;
    raw.set(uuidToBytes(UUID_A), handleAt);
    assert.equal(domainInfoAt(mem, 16).handle, UUID_A);
    raw.set(uuidToBytes(UUID_B), handleAt);
    assert.equal(domainInfoAt(mem, 16).handle, UUID_B);
    // Only the last byte differs: every word is compared, not just the first.
    raw[handleAt + 15] = 0x45;
    assert.equal(domainInfoAt(mem, 16).handle, `${UUID_B.slice(0, -2)}45`);
  });
});
