// The test guest's pieces on the host: the page pattern and its checker, the image built from
// the package's source and its checks, the HVM records that start a PVH vcpu, and the mock's
// model of the guest, run on a domain set up by hand (no foreign memory): the same control-page
// protocol, writes through the mock's guest-write path, and a vcpu that runs only while it is
// up and its domain unpaused.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, before } from 'node:test';
import { ErrorCodes, HypercallError, parseHvmContext, pvhStartContexts, structs, decode, XEN_X86_EMU } from '../src/index.js';
import { XEN_DOMCTL_CDF } from '../src/hypercalls/numbers.js';
import { MTRR_TYPE, X86_CR0, X86_DR_DEFAULT, X86_PINNED } from '../src/hypercalls/values.js';
import { MockTestGuest } from '../src/testing/test-guest-model.js';
import { checkWriteSet } from '../src/testing/test-guest-layout.js';
import {
  TEST_GUEST_LAYOUT as L,
  TestGuestError,
  buildTestGuestImage,
  fillTestGuestPage,
  loadTestGuestImage,
  readTestGuestCounter,
  testGuestPageWord,
  verifyTestGuestPage,
  writeTestGuestControl,
  type MockDomain,
  type MockHypervisor,
  type TestGuestImage,
} from '../src/testing/index.js';
import type { Xencall } from '../src/index.js';
import { mockHandle, UUID_A } from './helpers.js';

const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-test-guest-cache-'));
let image: TestGuestImage;
let imagePath: string;

before(async () => {
  const r = await buildTestGuestImage({ cacheDir });
  imagePath = r.path;
  image = loadTestGuestImage(r.path);
});

const errno = (name: string) => (e: unknown) => e instanceof HypercallError && e.errnoName === name;

describe('test guest: the page pattern', () => {
  it('verifyTestGuestPage returns the iteration of a whole image, and null for anything else', () => {
    const page = new Uint8Array(4096);
    for (const [gfn, it] of [
      [0x200, 0],
      [0x3ff, 7],
      [0x1234, 2 ** 32 + 5],
    ] as const) {
      fillTestGuestPage(page, gfn, it);
      assert.equal(verifyTestGuestPage(page, gfn), it);
      assert.equal(verifyTestGuestPage(page, gfn + 1), null, 'another gfn');
      for (const i of [0, 1, 4, 1023]) assert.equal(new DataView(page.buffer).getUint32(i * 4, true), testGuestPageWord(gfn, it, i));
    }
    // Torn: the first half of iteration 8 over iteration 7.
    const older = new Uint8Array(4096);
    fillTestGuestPage(older, 0x200, 7);
    fillTestGuestPage(page, 0x200, 8);
    older.set(page.subarray(0, 2048));
    assert.equal(verifyTestGuestPage(older, 0x200), null);
    // One flipped bit anywhere in the body.
    fillTestGuestPage(page, 0x200, 9);
    page[3000]! ^= 4;
    assert.equal(verifyTestGuestPage(page, 0x200), null);
    assert.equal(verifyTestGuestPage(new Uint8Array(4096), 0), null, 'a zero page');
  });

  it('checkWriteSet refuses reserved, out-of-range and repeated gfns with a typed error', () => {
    assert.deepEqual(checkWriteSet([0, 0xff, 0x108, 1023], 1024), [0, 0xff, 0x108, 1023]);
    for (const bad of [[L.controlGfn], [L.codeGfn], [1024], [-1], [1.5], [0x200, 0x200]]) {
      assert.throws(() => checkWriteSet(bad, 1024), (e: unknown) => e instanceof Error && (e as { code?: string }).code === ErrorCodes.VALIDATION);
    }
    assert.throws(() => checkWriteSet(Array.from({ length: L.maxWriteSet + 1 }, (_, i) => 0x200 + i), 1 << 20), /at most 1019/);
  });
});

describe('test guest: the image', () => {
  it('is built from the package source once and then taken from the cache', async () => {
    assert.equal(image.entry > L.codeGfn * 4096 && image.entry < (L.codeGfn + L.codePages) * 4096, true);
    assert.equal(image.version, L.version);
    const again = await buildTestGuestImage({ cacheDir });
    assert.deepEqual(again, { path: imagePath, built: false });
    const forced = await buildTestGuestImage({ cacheDir, force: true });
    assert.equal(forced.built, true);
    assert.deepEqual(fs.readFileSync(forced.path), fs.readFileSync(imagePath), 'the build is reproducible');
  });

  it('refuses what is not the test guest, naming the step', () => {
    const bytes = new Uint8Array(fs.readFileSync(imagePath));
    const step = (s: string) => (e: unknown) => e instanceof TestGuestError && e.step === s && e.code === ErrorCodes.TEST_GUEST;
    assert.throws(() => loadTestGuestImage(new Uint8Array(100)), step('image'));
    assert.throws(() => loadTestGuestImage(path.join(cacheDir, 'missing.elf')), step('image'));
    // The image header's magic, at the start of the first segment.
    const noHeader = bytes.slice();
    const at = Buffer.from(noHeader).indexOf('xencall testgst');
    noHeader[at] = 0x58;
    assert.throws(() => loadTestGuestImage(noHeader), /image header is missing/);
    // The PHYS32_ENTRY note's type (18) changed.
    const noNote = bytes.slice();
    const note = Buffer.from(noNote).indexOf(Buffer.from([4, 0, 0, 0, 4, 0, 0, 0, 18, 0, 0, 0, 0x58, 0x65, 0x6e, 0]));
    assert.ok(note > 0);
    noNote[note + 8] = 17;
    assert.throws(() => loadTestGuestImage(noNote), /PHYS32_ENTRY/);
  });

  it('a missing assembler is a build error that says what to do', async () => {
    await assert.rejects(
      buildTestGuestImage({ cacheDir: fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-tg-noas-')), as: '/nonexistent/as' }),
      (e: unknown) => e instanceof TestGuestError && e.step === 'build' && /not installed/.test(e.message),
    );
  });
});

describe('test guest: the contexts that start a PVH vcpu (libxenguest vcpu_hvm)', () => {
  it('MTRR from the domain, write-back default and enabled; flat 32-bit segments, CR0 = PE|ET, rip = entry', async () => {
    const { hv, xc } = await mockHandle();
    hv.addDomain({ domid: 3, hvm: true, maxVcpus: 1 });
    const saved = (await xc.domctl.gethvmcontext({ domain: 3 })).bytes;
    const [mtrr, cpu] = pvhStartContexts(saved, 0x100020);
    const m = parseHvmContext(mtrr);
    const c = parseHvmContext(cpu);
    assert.deepEqual(m.header, parseHvmContext(saved).header);
    assert.deepEqual(m.records.map((r) => [r.typecode, r.instance]), [[14, 0]]);
    const mr = decode(structs.hvm_hw_mtrr, new DataView(m.records[0]!.data.buffer));
    assert.equal(mr.msr_mtrr_def_type, BigInt(MTRR_TYPE.WRBACK | X86_PINNED.MTRR_DEF_TYPE_ENABLE));
    assert.equal(mr.msr_pat_cr, 0x0007040600070406n, "the domain's own PAT is kept");
    assert.deepEqual(c.records.map((r) => [r.typecode, r.instance, r.data.length]), [[2, 0, 1032]]);
    const r = decode(structs.hvm_hw_cpu, new DataView(c.records[0]!.data.buffer));
    assert.equal(r.rip, 0x100020n);
    assert.equal(r.cr0, BigInt(X86_CR0.PE | X86_CR0.ET));
    assert.equal(r.cs_arbytes, 0xc9b);
    assert.equal(r.ds_arbytes, 0xc93);
    assert.equal(r.cs_limit, 0xffffffff);
    assert.equal(r.dr6, BigInt(X86_DR_DEFAULT.DR6));
    xc.close();
  });

  it('golden values no installed header defines (Xen spells them in .c files and private headers)', () => {
    // xg_dom_x86.c:59 MTRR_DEF_TYPE_ENABLE (1u << 11); asm/x86-defns.h:110 X86_DR7_DEFAULT 0x400;
    // msr-index.h:176-181; xg_dom_x86.c:1063-1067 the segment attributes.
    assert.equal(X86_PINNED.MTRR_DEF_TYPE_ENABLE, 0x800);
    assert.equal(X86_DR_DEFAULT.DR7, 0x400);
    assert.deepEqual([X86_PINNED.EFER_SCE, X86_PINNED.EFER_LME, X86_PINNED.EFER_LMA, X86_PINNED.EFER_NXE, X86_PINNED.EFER_SVME, X86_PINNED.EFER_FFXSE], [0x1, 0x100, 0x400, 0x800, 0x1000, 0x4000]);
    assert.deepEqual([X86_PINNED.FLAT_CODE32_ARBYTES, X86_PINNED.FLAT_DATA32_ARBYTES, X86_PINNED.TSS32_BUSY_ARBYTES], [0xc9b, 0xc93, 0x8b]);
  });
});

describe('mock: createdomain and hvm_load as Xen 4.17 does them', () => {
  it('PVH takes the LAPIC alone, HVM everything but vPCI; anything else is -EOPNOTSUPP; HAP without HVM is -EINVAL', async () => {
    const { hv, xc } = await mockHandle();
    const hvm = XEN_DOMCTL_CDF.hvm | XEN_DOMCTL_CDF.hap;
    const handle = UUID_A;
    const pvh = await xc.domctl.createdomain({ handle, flags: hvm, arch: { emulation_flags: XEN_X86_EMU.LAPIC, misc_flags: 0 } });
    const info = await xc.domctl.getdomaininfo({ domain: pvh.domid });
    assert.equal(info.hvm_guest && info.hap, true);
    assert.equal(hv.domain(pvh.domid)!.emulationFlags, XEN_X86_EMU.LAPIC);
    await xc.domctl.createdomain({ handle, flags: hvm, arch: { emulation_flags: XEN_X86_EMU.ALL & ~XEN_X86_EMU.VPCI, misc_flags: 0 } });
    await assert.rejects(xc.domctl.createdomain({ handle, flags: hvm, arch: { emulation_flags: XEN_X86_EMU.LAPIC | XEN_X86_EMU.IOAPIC, misc_flags: 0 } }), errno('EOPNOTSUPP'));
    await assert.rejects(xc.domctl.createdomain({ handle, flags: hvm, arch: { emulation_flags: 0, misc_flags: 0 } }), errno('EOPNOTSUPP'));
    await assert.rejects(xc.domctl.createdomain({ handle, flags: 0, arch: { emulation_flags: XEN_X86_EMU.LAPIC, misc_flags: 0 } }), errno('EOPNOTSUPP'));
    await assert.rejects(xc.domctl.createdomain({ handle, flags: hvm, arch: { emulation_flags: 1 << 11, misc_flags: 0 } }), errno('EINVAL'));
    await assert.rejects(xc.domctl.createdomain({ handle, flags: XEN_DOMCTL_CDF.hap }), errno('EINVAL'));
    await assert.rejects(xc.domctl.createdomain({ handle, grant_opts: 0x10 }), errno('EINVAL'));
    assert.equal(hv.history.effects('domain.created').length, 2, 'refused configurations create nothing');
    xc.close();
  });

  it('every load puts the vcpus down first: MTRR after CPU leaves vcpu 0 down, CPU after MTRR brings it up', async () => {
    const { hv, xc } = await mockHandle();
    const d = hv.addDomain({ domid: 4, hvm: true, maxVcpus: 1 });
    const saved = (await xc.domctl.gethvmcontext({ domain: 4 })).bytes;
    assert.equal(saved.length, 1464, "a new PVH domain's context with its vcpu down, as measured on Xen 4.17.7");
    const [mtrr, cpu] = pvhStartContexts(saved, image.entry);
    await xc.domctl.sethvmcontext({ domain: 4, context: cpu });
    assert.equal(d.vcpus[0]!.online, true);
    assert.equal((await xc.domctl.gethvmcontext({ domain: 4 })).bytes.length, 2504, 'with the CPU record, as measured');
    await xc.domctl.sethvmcontext({ domain: 4, context: mtrr });
    assert.equal(d.vcpus[0]!.online, false, 'the MTRR load downed it again');
    assert.equal((await xc.domctl.getvcpuinfo({ domain: 4, vcpu: 0 })).online, false);
    await xc.domctl.sethvmcontext({ domain: 4, context: cpu });
    assert.equal((await xc.domctl.getvcpuinfo({ domain: 4, vcpu: 0 })).online, true);
    xc.close();
  });

  it('CPU records are checked as hvm_load_cpu_ctxt does; a failing record leaves the earlier ones loaded', async () => {
    const { hv, xc } = await mockHandle();
    const d = hv.addDomain({ domid: 4, hvm: true, maxVcpus: 1 });
    const saved = (await xc.domctl.gethvmcontext({ domain: 4 })).bytes;
    const [, cpu] = pvhStartContexts(saved, image.entry);
    const cpuAt = 8 + 24 + 8; // HEADER descriptor and record, CPU descriptor
    const withField = (field: keyof typeof structs.hvm_hw_cpu.fields, value: bigint | number) => {
      const b = cpu.slice();
      const f = structs.hvm_hw_cpu.fields[field];
      const v = new DataView(b.buffer);
      if (f.type.kind === 'u64') v.setBigUint64(cpuAt + f.offset, BigInt(value), true);
      else v.setUint32(cpuAt + f.offset, Number(value), true);
      return b;
    };
    await assert.rejects(xc.domctl.sethvmcontext({ domain: 4, context: withField('cr0', X86_CR0.PE) }), errno('EINVAL'), 'no ET');
    await assert.rejects(xc.domctl.sethvmcontext({ domain: 4, context: withField('cr0', X86_CR0.ET | X86_CR0.PG) }), errno('EINVAL'), 'PG without PE');
    await assert.rejects(xc.domctl.sethvmcontext({ domain: 4, context: withField('pad0', 1) }), errno('EINVAL'));
    await assert.rejects(xc.domctl.sethvmcontext({ domain: 4, context: withField('msr_efer', X86_PINNED.EFER_LMA) }), errno('EINVAL'), 'LMA without LME');
    // A CPU record for a vcpu the domain does not have.
    const other = cpu.slice();
    new DataView(other.buffer).setUint16(8 + 24 + 2, 1, true);
    await assert.rejects(xc.domctl.sethvmcontext({ domain: 4, context: other }), errno('EINVAL'));
    assert.equal(d.vcpus[0]!.online, false);
    assert.equal(hv.history.effects('hvm.context_load_failed').length, 5);
    xc.close();
  });
});

/**
 * Sets a mock domain up as bootTestGuest would, without foreign memory: the image and the
 * control page written into its memory directly, then the same two sethvmcontext calls.
 */
async function handBoot(hv: MockHypervisor, xc: Xencall, domid: number, pages: number, writeSet: number[]): Promise<MockDomain> {
  const d = hv.addDomain({ domid, hvm: true, totPages: pages, withMemory: true, paused: true, maxVcpus: 1 });
  for (const s of image.segments) {
    const off = s.paddr - L.codeGfn * 4096;
    for (let i = 0; i < s.data.length; i++) d.page(L.codeGfn + ((off + i) >> 12))[(off + i) & 4095] = s.data[i]!;
  }
  writeTestGuestControl(d.page(L.controlGfn), { pages, generation: 2, gfns: writeSet });
  const [mtrr, cpu] = pvhStartContexts((await xc.domctl.gethvmcontext({ domain: domid })).bytes, image.entry);
  await xc.domctl.sethvmcontext({ domain: domid, context: mtrr });
  await xc.domctl.sethvmcontext({ domain: domid, context: cpu });
  await xc.domctl.unpausedomain({ domain: domid });
  return d;
}

const quiet = { guestIterationsPerHypercall: 0, guestTickMs: 0 };
const counterOf = (d: MockDomain) => readTestGuestCounter(d.page(L.counterGfn));

describe("mock: the test guest's model", () => {
  it('recognises the image, prints its line, and writes the set with the pattern, a whole iteration at a time', async () => {
    const { hv, xc } = await mockHandle(quiet);
    const d = await handBoot(hv, xc, 6, 1024, [0x200, 0x201, 0x3ff]);
    assert.equal(hv.runGuests(3), 1);
    assert.ok(d.guestProgram instanceof MockTestGuest);
    assert.match(hv.console.unread(), /\(d6\) xencall test guest running\n/);
    assert.deepEqual(counterOf(d), { iterations: 3, generation: 2, writing: null });
    for (const g of [0x200, 0x201, 0x3ff]) assert.equal(verifyTestGuestPage(d.page(g), g), 2);
    assert.equal(verifyTestGuestPage(d.page(0x202), 0x202), null, 'not in the set: never written');
    assert.ok(d.page(0x202).every((b) => b === 0));
    xc.close();
  });

  it('adopts a new write set by generation; a set published with an odd generation (being written) is not adopted', async () => {
    const { hv, xc } = await mockHandle(quiet);
    const d = await handBoot(hv, xc, 6, 1024, [0x200]);
    hv.runGuests(1);
    writeTestGuestControl(d.page(L.controlGfn), { pages: 1024, generation: 4, gfns: [0x300, 0x301] });
    new DataView(d.page(L.controlGfn).buffer, d.page(L.controlGfn).byteOffset).setUint32(8, 5, true); // dom0 mid-update
    hv.runGuests(1);
    assert.equal(counterOf(d).generation, 2);
    assert.equal(verifyTestGuestPage(d.page(0x200), 0x200), 1);
    assert.equal(verifyTestGuestPage(d.page(0x300), 0x300), null);
    new DataView(d.page(L.controlGfn).buffer, d.page(L.controlGfn).byteOffset).setUint32(8, 4, true);
    hv.runGuests(1);
    assert.deepEqual(counterOf(d), { iterations: 3, generation: 4, writing: null });
    assert.equal(verifyTestGuestPage(d.page(0x300), 0x300), 2);
    assert.equal(verifyTestGuestPage(d.page(0x301), 0x301), 2);
    assert.equal(verifyTestGuestPage(d.page(0x200), 0x200), 1, 'out of the set now: left as it was');
    xc.close();
  });

  it('skips reserved and out-of-range gfns as the guest does', async () => {
    const { hv, xc } = await mockHandle(quiet);
    const d = await handBoot(hv, xc, 6, 1024, [0x200]);
    // Written raw (checkWriteSet would refuse them): the guest's own checks must hold.
    const v = new DataView(d.page(L.controlGfn).buffer, d.page(L.controlGfn).byteOffset);
    v.setUint32(8, 4, true);
    v.setUint32(16, 3, true);
    v.setUint32(20, L.codeGfn, true);
    v.setUint32(24, 5000, true);
    v.setUint32(28, 0x201, true);
    const code = d.page(L.codeGfn).slice();
    hv.runGuests(1);
    assert.deepEqual(d.page(L.codeGfn), code, 'its code is not overwritten');
    assert.equal(verifyTestGuestPage(d.page(0x201), 0x201), 0);
    xc.close();
  });

  it('writes through the guest-write path: log-dirty sees the set, the counter and (on a change) the work page', async () => {
    const { hv, xc } = await mockHandle(quiet);
    const d = await handBoot(hv, xc, 6, 1024, [0x200, 0x210]);
    hv.runGuests(1);
    await xc.domctl.shadow_op.enable_logdirty({ domain: 6 });
    hv.runGuests(2);
    const dirty = (b: Uint8Array) => [...Array(1024).keys()].filter((g) => b[g >> 3]! & (1 << (g & 7)));
    let r = await xc.domctl.shadow_op.clean({ domain: 6, pages: 1024n });
    assert.deepEqual(dirty(r.bitmap), [L.counterGfn, 0x200, 0x210]);
    writeTestGuestControl(d.page(L.controlGfn), { pages: 1024, generation: 4, gfns: [0x220] });
    hv.runGuests(1);
    r = await xc.domctl.shadow_op.clean({ domain: 6, pages: 1024n });
    assert.deepEqual(dirty(r.bitmap), [0x220, L.counterGfn, L.workGfn].sort((a, b) => a - b), "dom0's own write of the control page is not the guest's");
    xc.close();
  });

  it('runs only while the domain is unpaused and its vcpu up; unknown code runs doing nothing', async () => {
    const { hv, xc } = await mockHandle(quiet);
    const d = await handBoot(hv, xc, 6, 1024, [0x200]);
    hv.runGuests(2);
    await xc.domctl.pausedomain({ domain: 6 });
    assert.equal(hv.runGuests(5), 0);
    assert.equal(counterOf(d).iterations, 2);
    assert.equal((await xc.domctl.getvcpuinfo({ domain: 6, vcpu: 0 })).running, false);
    await xc.domctl.unpausedomain({ domain: 6 });
    assert.equal((await xc.domctl.getvcpuinfo({ domain: 6, vcpu: 0 })).running, true);
    hv.runGuests(1);
    assert.equal(counterOf(d).iterations, 3);

    // The same boot with the image header damaged: the vcpu runs, nothing is written.
    const e = hv.addDomain({ domid: 8, hvm: true, totPages: 1024, withMemory: true, paused: true, maxVcpus: 1 });
    d.page(L.codeGfn).forEach((b, i) => (e.page(L.codeGfn)[i] = b));
    e.page(L.codeGfn)[0] = 0;
    writeTestGuestControl(e.page(L.controlGfn), { pages: 1024, generation: 2, gfns: [0x200] });
    const [mtrr, cpu] = pvhStartContexts((await xc.domctl.gethvmcontext({ domain: 8 })).bytes, image.entry);
    await xc.domctl.sethvmcontext({ domain: 8, context: mtrr });
    await xc.domctl.sethvmcontext({ domain: 8, context: cpu });
    await xc.domctl.unpausedomain({ domain: 8 });
    hv.runGuests(3);
    assert.equal(e.guestProgram, 'idle');
    assert.ok(e.page(0x200).every((b) => b === 0));
    assert.equal(readTestGuestCounter(e.page(L.counterGfn)).iterations, 0);
    xc.close();
  });

  it('moves on its own: an iteration before each hypercall, and on a timer while nothing else happens', async () => {
    const { hv, xc } = await mockHandle({ guestIterationsPerHypercall: 1, guestTickMs: 1 });
    const d = await handBoot(hv, xc, 6, 1024, [0x200]);
    const before = counterOf(d).iterations;
    await xc.xen_version.version();
    assert.equal(counterOf(d).iterations, before + 1);
    // Waiting on the timer: poll until it moved (bounded by the test runner's timeout, not timed).
    while (counterOf(d).iterations < before + 5) await new Promise((r) => setTimeout(r, 2));
    await xc.domctl.destroydomain({ domain: 6 });
    xc.close();
  });
});
