// One scenario for the test guest, run on the mock (test/test-guest.test.ts) and on a real Xen
// (test/xen/test-guest.test.ts): boot it from Node, see its counter move through a read-only
// foreign mapping, move its write set through a writable one and see the new pages written with
// the pattern while pages outside the set stay as they were, destroy it, and find nothing left.

import assert from 'node:assert/strict';
import { decode, findHvmRecord, parseHvmContext, type Xencall } from '../../src/index.js';
import { HVM_SAVE_TYPES, hvm_hw_cpu, hvm_hw_mtrr } from '../../src/hypercalls/structs.js';
import { MTRR_TYPE, X86_CR0, X86_PINNED } from '../../src/hypercalls/values.js';
import { bootTestGuest, TEST_GUEST_LAYOUT as L, verifyTestGuestPage, type TestGuest } from '../../src/testing/index.js';

export interface TestGuestScenarioOptions {
  /** A prebuilt image (real Xen: dom0 has no assembler). Default: built now. */
  image?: string;
  /** Progress notes (the real suite prints them). */
  log?: (line: string) => void;
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

/** Reads pages through a read-only mapping and returns copies of their bytes. */
function snapshot(xc: Xencall, domid: number, gfns: readonly number[]): Uint8Array[] {
  const m = xc.foreignMemory.map(domid, gfns, { writable: false });
  try {
    assert.deepEqual([...m.errors], gfns.map(() => 0), 'every page maps');
    return gfns.map((_, i) => m.page(i).slice());
  } finally {
    m.unmap();
  }
}

export async function testGuestScenario(xc: Xencall, options: TestGuestScenarioOptions = {}): Promise<void> {
  const log = options.log ?? (() => {});
  const setA = range(0x200, 16);
  const setB = range(0x300, 16);
  const untouched = range(0x380, 8);
  const guest: TestGuest = await bootTestGuest(xc, { pages: 1024, writeSet: setA, image: options.image });
  const domid = guest.domid;
  log(`booted domain ${domid} (${guest.pages} pages, entry 0x${guest.image.entry.toString(16)})`);
  try {
    const info = await xc.domctl.getdomaininfo({ domain: domid });
    assert.equal(info.hvm_guest, true);
    assert.equal(info.hap, true);
    assert.equal(info.paused, false);
    assert.equal(info.tot_pages >= BigInt(guest.pages), true, 'every gfn was populated');
    assert.equal((await xc.domctl.getvcpuinfo({ domain: domid, vcpu: 0 })).online, true, 'the CPU record brought vcpu 0 up');

    // Its saved state: vcpu 0 in 32-bit protected mode, paging off, executing inside the image;
    // the MTRRs as the first sethvmcontext left them.
    const saved = (await xc.domctl.gethvmcontext({ domain: domid })).bytes;
    const ctx = parseHvmContext(saved);
    log(`context records: ${ctx.records.map((r) => `${r.typecode}/${r.instance}`).join(' ')} (${saved.length} bytes)`);
    // What Xen 4.17.7 saves for this guest (measured; the mock saves the same): CPU, LAPIC,
    // LAPIC_REGS, PCI_IRQ, ISA_IRQ, PCI_LINK, MTRR, VMCE_VCPU, TSC_ADJUST. No CPU_XSAVE or CPU_MSR
    // record: the guest never enables XSAVE nor writes an MSR.
    const T = HVM_SAVE_TYPES;
    assert.deepEqual(
      ctx.records.map((r) => r.typecode),
      [T.CPU, T.LAPIC, T.LAPIC_REGS, T.PCI_IRQ, T.ISA_IRQ, T.PCI_LINK, T.MTRR, T.VMCE_VCPU, T.TSC_ADJUST].map((t) => t.code),
    );
    assert.equal(saved.length, 2504);
    const cpuRec = findHvmRecord(ctx, HVM_SAVE_TYPES.CPU.code, 0);
    assert.ok(cpuRec, 'a running vcpu has a CPU record');
    const cpu = decode(hvm_hw_cpu, new DataView(cpuRec.data.buffer, cpuRec.data.byteOffset, cpuRec.data.byteLength));
    assert.equal(cpu.cr0 & BigInt(X86_CR0.PE | X86_CR0.PG), BigInt(X86_CR0.PE));
    const imageEnd = Math.max(...guest.image.segments.map((sg) => sg.paddr + sg.memsz));
    assert.ok(cpu.rip >= BigInt(L.codeGfn * L.pageSize) && cpu.rip < BigInt(imageEnd), `rip 0x${cpu.rip.toString(16)} is inside the image`);
    const mtrrRec = findHvmRecord(ctx, HVM_SAVE_TYPES.MTRR.code, 0);
    assert.ok(mtrrRec);
    assert.equal(decode(hvm_hw_mtrr, new DataView(mtrrRec.data.buffer, mtrrRec.data.byteOffset, mtrrRec.data.byteLength)).msr_mtrr_def_type, BigInt(MTRR_TYPE.WRBACK | X86_PINNED.MTRR_DEF_TYPE_ENABLE));

    // The counter moves, seen through a read-only foreign mapping.
    const c0 = await guest.counter();
    const c1 = await guest.waitForProgress(c0 + 3);
    log(`counter ${c0} -> ${c1}`);
    assert.ok(c1 >= c0 + 3);

    // Set A is written with the pattern.
    const firstA = await guest.waitForWriteSet();
    await xc.domctl.pausedomain({ domain: domid });
    let report = await guest.verifyPages(setA);
    await xc.domctl.unpausedomain({ domain: domid });
    assert.deepEqual(report.broken, [], 'no page of set A is damaged');
    for (const [gfn, it] of report.iterations) assert.ok(it >= firstA, `gfn 0x${gfn.toString(16)} holds iteration ${it}, before ${firstA}`);
    assert.equal(report.iterations.size + (report.inProgress === null ? 0 : 1), setA.length);

    // Move the write set through a writable mapping of the control page.
    const gen = await guest.setWriteSet(setB);
    assert.equal(gen, guest.generation);
    const firstB = await guest.waitForWriteSet();
    log(`write set moved to 0x300-0x30f at iteration ${firstB} (generation ${gen})`);
    await xc.domctl.pausedomain({ domain: domid });
    report = await guest.verifyPages(setB);
    const frozenA = await guest.verifyPages(setA);
    const bytesA = snapshot(xc, domid, setA);
    await xc.domctl.unpausedomain({ domain: domid });
    assert.deepEqual(report.broken, [], 'every page of set B holds an image');
    for (const [gfn, it] of report.iterations) assert.ok(it >= firstB, `gfn 0x${gfn.toString(16)} holds iteration ${it}, before ${firstB}`);
    assert.equal(report.iterations.size + (report.inProgress === null ? 0 : 1), setB.length);
    assert.deepEqual(frozenA.broken, [], 'set A was left whole');
    for (const [gfn, it] of frozenA.iterations) assert.ok(it < firstB, `gfn 0x${gfn.toString(16)} of the old set was written in iteration ${it}, after the switch`);

    // The guest goes on; set A and pages never in a set stay as they were.
    const c2 = await guest.counter();
    await guest.waitForProgress(c2 + 3);
    await xc.domctl.pausedomain({ domain: domid });
    const laterA = snapshot(xc, domid, setA);
    const never = snapshot(xc, domid, untouched);
    const laterB = await guest.verifyPages(setB);
    await xc.domctl.unpausedomain({ domain: domid });
    setA.forEach((g, i) => assert.deepEqual(laterA[i], bytesA[i], `gfn 0x${g.toString(16)} changed after it left the write set`));
    untouched.forEach((g, i) => assert.ok(never[i]!.every((b) => b === 0), `gfn 0x${g.toString(16)} was never in a set but is not zero`));
    for (const [gfn, it] of laterB.iterations) assert.ok(it > firstB, `gfn 0x${gfn.toString(16)} stopped at iteration ${it}`);
    assert.equal(verifyTestGuestPage(snapshot(xc, domid, [L.controlGfn])[0]!, L.controlGfn), null, 'the control page is not a pattern page');
  } finally {
    await guest.destroy();
  }
  // Nothing left: no domain with that id or handle.
  const left = (await xc.sysctl.getdomaininfolist()).filter((d) => d.domid === domid || d.handle === guest.handle);
  assert.deepEqual(left, [], 'the destroyed guest is gone');
  log(`domain ${domid} destroyed; none left`);
}
