// An HVM domain's saved-state records in the mock, and Xen's hvm_save / hvm_load over them
// (xen/arch/x86/hvm/save.c, RELEASE-4.17.7). The records a PVH domain has are those Xen 4.17
// saves for one (measured: HEADER, CPU, LAPIC, LAPIC_REGS, PCI_IRQ, ISA_IRQ, PCI_LINK, MTRR,
// VMCE_VCPU, TSC_ADJUST, END: 2504 bytes with one vcpu up, 1464 with it down). CPU and MTRR are
// checked and applied as hvm_load_cpu_ctxt and hvm_load_mtrr_msr do; the rest are kept as given.

import { decode, encode } from '../layout.js';
import { HVM_SAVE_CODE_MAX, HVM_SAVE_TYPES, hvm_hw_cpu, hvm_hw_mtrr, hvm_save_descriptor, hvm_save_header } from '../hypercalls/structs.js';
import { HVM_FILE, X86_CR0, X86_CR4, X86_DR_DEFAULT, X86_PINNED } from '../hypercalls/values.js';
import type { MockDomain, MockVcpu } from './world.js';

const DESC = hvm_save_descriptor.size;
const T = HVM_SAVE_TYPES;

/** CPUID leaf 1 %eax of the mock's "host", which hvm_save writes into every HEADER. */
export const MOCK_HOST_CPUID = 0x000806ec;
/** The mock host's TSC frequency (physinfo's cpu_khz), a new domain's gtsc_khz. */
export const MOCK_HOST_TSC_KHZ = 2_000_000;

/** The record types the mock saves for every HVM domain, in typecode order (hvm_save's order). */
const SAVED_TYPES = Object.values(T)
  .filter((t) => t.code !== T.HEADER.code && t.code !== T.END.code)
  .sort((a, b) => a.code - b.code);
const PER_VCPU = new Map<number, boolean>(Object.values(T).map((t) => [t.code, t.perVcpu]));

/**
 * Typecodes with a load handler in Xen 4.17 (hvm_register_savevm calls): every code from CPU (2)
 * to HVM_SAVE_CODE_MAX except 1 (HEADER, which is not a record hvm_load dispatches).
 */
const hasLoadHandler = (code: number) => code >= T.CPU.code && code <= HVM_SAVE_CODE_MAX;

/** xen/arch/x86/hvm/hvm.c:934 HVM_CR0_GUEST_RESERVED_BITS: every bit but the eleven CR0 defines. */
const CR0_KNOWN = Object.values(X86_CR0).reduce((a, b) => a + b, 0);
/**
 * hvm_cr4_guest_valid_bits (hvm.c:942) for the mock's guest CPU policy: a CPU with VME, TSC,
 * DE, PSE, PAE, MCE, PGE, FXSR, SSE, FSGSBASE, XSAVE and SMEP (no PCID, UMIP, SMAP, PKU, CET,
 * nested virtualisation).
 */
const CR4_VALID = Object.values(X86_CR4).reduce((a, b) => a + b, 0);
/** xen/arch/x86/include/asm/msr-index.h:184 EFER_KNOWN_MASK. */
const EFER_KNOWN = X86_PINNED.EFER_SCE | X86_PINNED.EFER_LME | X86_PINNED.EFER_LMA | X86_PINNED.EFER_NXE | X86_PINNED.EFER_SVME | X86_PINNED.EFER_FFXSE;
/** XEN_X86_FPU_INITIALISED: the only bit hvm_hw_cpu.flags may carry. */
const XEN_X86_FPU_INITIALISED = 1;
/** MTRRcap.VCNT (bits 0-7) may not exceed MTRR_VCNT, 8 (hvm_load_mtrr_msr). */
const MTRR_VCNT = 8;

export type HvmLoadError = 'ENODATA' | 'EINVAL';

export class MockHvmState {
  /** d->arch.tsc_khz: saved as the HEADER's gtsc_khz, set from a loaded one that is not 0. */
  gtscKhz = MOCK_HOST_TSC_KHZ;
  /** Records the domain holds that are not made up from defaults, by typecode then instance. */
  private readonly records = new Map<number, Map<number, Uint8Array>>();

  constructor(private readonly dom: MockDomain) {}

  /** The record kept for `typecode`/`instance`, if one was loaded (or set by a test). */
  get(typecode: number, instance = 0): Uint8Array | undefined {
    return this.records.get(typecode)?.get(instance);
  }

  set(typecode: number, instance: number, data: Uint8Array): void {
    let m = this.records.get(typecode);
    if (!m) this.records.set(typecode, (m = new Map()));
    m.set(instance, data);
  }

  /** vcpu `id`'s CPU record as hvm_save would write it, or null while the vcpu is down. */
  cpu(id: number): Uint8Array | null {
    const vc = this.dom.vcpus[id];
    if (!vc || !vc.online) return null;
    return this.get(T.CPU.code, id) ?? defaultCpuRecord(this.dom.domid, id);
  }

  /** hvm_save: HEADER, each record type in typecode order (per vcpu where it is), END. */
  save(): Uint8Array {
    const parts: { code: number; instance: number; data: Uint8Array }[] = [];
    const header = new Uint8Array(hvm_save_header.size);
    encode(hvm_save_header, dv(header), 0, {
      magic: HVM_FILE.MAGIC,
      version: HVM_FILE.VERSION,
      // The changeset after the last ':' of xen_changeset(); the mock's has none: ~0 ("unknown").
      changeset: 0xffffffffffffffffn,
      cpuid: MOCK_HOST_CPUID,
      gtsc_khz: this.gtscKhz,
    });
    parts.push({ code: T.HEADER.code, instance: 0, data: header });
    const codes = new Set<number>([...SAVED_TYPES.map((t) => t.code), ...this.records.keys()]);
    for (const code of [...codes].sort((a, b) => a - b)) {
      const perVcpu = PER_VCPU.get(code);
      if (perVcpu === undefined) {
        // A record type the mock only stores: saved as it was loaded.
        for (const [instance, data] of [...this.records.get(code)!].sort((a, b) => a[0] - b[0])) parts.push({ code, instance, data });
      } else if (perVcpu) {
        this.dom.vcpus.forEach((vc, id) => {
          if (!vc) return;
          // hvm_save_cpu_ctxt skips a vcpu that is down (hvm.c:830).
          const data = code === T.CPU.code ? this.cpu(id) : (this.get(code, id) ?? defaultRecord(code));
          if (data) parts.push({ code, instance: id, data });
        });
      } else {
        parts.push({ code, instance: 0, data: this.get(code) ?? defaultRecord(code) });
      }
    }
    parts.push({ code: T.END.code, instance: 0, data: new Uint8Array(0) });
    const out = new Uint8Array(parts.reduce((s, p) => s + DESC + p.data.length, 0));
    let at = 0;
    for (const p of parts) {
      encode(hvm_save_descriptor, dv(out), at, { typecode: p.code, instance: p.instance, length: p.data.length });
      out.set(p.data, at + DESC);
      at += DESC + p.data.length;
    }
    return out;
  }

  /**
   * hvm_save_size: an upper bound on save()'s length that does not depend on which vcpus are up
   * (Xen sums every registered type's worst case; the mock adds 1 KiB for the types it never
   * saves).
   */
  saveSize(): number {
    const vcpus = this.dom.vcpus.filter(Boolean).length;
    let size = 2 * DESC + T.HEADER.length + 1024;
    for (const t of SAVED_TYPES) size += (t.perVcpu ? vcpus : 1) * (DESC + t.length);
    for (const [code, m] of this.records) if (!PER_VCPU.has(code)) for (const data of m.values()) size += DESC + data.length;
    return size;
  }

  /**
   * hvm_load (save.c:288-351): the HEADER first (-ENODATA without it, arch_hvm_load's -EINVAL for
   * a wrong magic or version), then every vcpu is put down, then records are loaded in order
   * until END; a record that fails stops the load with what came before it applied, and
   * running out of data before END is -ENODATA. Returns null when the load completed.
   */
  load(blob: Uint8Array): HvmLoadError | null {
    const v = dv(blob);
    let cur = 0;
    // _hvm_check_entry (save.c:382-409): the descriptor fits, the type matches, the length is
    // exactly (strict) or at most (zero-extended) the type's and fits in what is left.
    const check = (type: number, len: number, strict: boolean): boolean => {
      if (blob.length - cur < DESC) return false;
      const d = decode(hvm_save_descriptor, v, cur);
      if (d.typecode !== type || (strict ? d.length !== len : d.length > len) || d.length > blob.length - cur - DESC) return false;
      cur += DESC;
      return true;
    };
    // _hvm_read_entry: the record's bytes, zero-extended to the type's length.
    const read = (len: number): Uint8Array => {
      const d = decode(hvm_save_descriptor, v, cur - DESC);
      const out = new Uint8Array(len);
      out.set(blob.subarray(cur, cur + d.length));
      cur += d.length;
      return out;
    };

    if (!check(T.HEADER.code, T.HEADER.length, true)) return 'ENODATA';
    const hdr = decode(hvm_save_header, v, cur);
    cur += T.HEADER.length;
    // arch_hvm_load (save.c:46-81).
    if (hdr.magic !== HVM_FILE.MAGIC || hdr.version !== HVM_FILE.VERSION) return 'EINVAL';
    if (hdr.gtsc_khz) this.gtscKhz = hdr.gtsc_khz;

    // "Down all the vcpus: we only re-enable the ones that had state saved." (save.c:307-310)
    for (const vc of this.dom.vcpus) if (vc) setDown(vc);

    for (;;) {
      if (blob.length - cur < DESC) return 'ENODATA';
      const d = decode(hvm_save_descriptor, v, cur);
      if (d.typecode === T.END.code) return null;
      if (d.typecode > HVM_SAVE_CODE_MAX || !hasLoadHandler(d.typecode)) return 'EINVAL';
      const failed = this.loadRecord(d.typecode, d.instance, d.length, check, read);
      if (failed) return failed;
    }
  }

  private loadRecord(
    code: number,
    instance: number,
    length: number,
    check: (type: number, len: number, strict: boolean) => boolean,
    read: (len: number) => Uint8Array,
  ): HvmLoadError | null {
    const perVcpu = PER_VCPU.get(code);
    const vc = this.dom.vcpus[instance];
    // "Which vcpu is this?": per-vcpu loaders refuse an instance with no vcpu.
    if (perVcpu && (instance >= this.dom.maxVcpus || !vc)) return 'EINVAL';
    if (code === T.CPU.code) {
      // hvm_load_cpu_ctxt (hvm.c:973-1165), zero-extended.
      if (!check(code, T.CPU.length, false)) return 'EINVAL';
      const data = read(T.CPU.length);
      const c = decode(hvm_hw_cpu, dv(data));
      if (c.pad0 !== 0) return 'EINVAL';
      const cr0 = c.cr0;
      if (cr0 & ~BigInt(CR0_KNOWN) || !(cr0 & BigInt(X86_CR0.ET)) || (cr0 & BigInt(X86_CR0.PE | X86_CR0.PG)) === BigInt(X86_CR0.PG)) return 'EINVAL';
      if (c.cr4 & ~BigInt(CR4_VALID)) return 'EINVAL';
      // hvm_efer_valid (hvm.c:903-931): unknown bits, SVME without nested virtualisation, LMA
      // without LME and paging.
      const efer = c.msr_efer;
      if (efer & ~BigInt(EFER_KNOWN) || efer & BigInt(X86_PINNED.EFER_SVME)) return 'EINVAL';
      if (efer & BigInt(X86_PINNED.EFER_LMA) && (!(efer & BigInt(X86_PINNED.EFER_LME)) || !(cr0 & BigInt(X86_CR0.PG)))) return 'EINVAL';
      if (c.cr3 >> 52n) return 'EINVAL'; // d->arch.cpuid->extd.maxphysaddr: gpaddr_bits, 52 here
      if ((c.flags & ~XEN_X86_FPU_INITIALISED) !== 0) return 'EINVAL';
      if (c.msr_tsc_aux > 0xffffffffn) return 'EINVAL';
      this.set(code, instance, data);
      // "Auxiliary processors should be woken immediately." (hvm.c:1159-1162)
      vc!.initialised = true;
      vc!.online = true;
      vc!.blocked = false;
      vc!.running = !this.dom.paused;
      // The vcpu starts at the loaded rip: what it runs is decided afresh (testing/scheduler.ts).
      this.dom.guestProgram = undefined;
      return null;
    }
    if (code === T.MTRR.code) {
      // hvm_load_mtrr_msr (mtrr.c:744-792), strict length.
      if (!check(code, T.MTRR.length, true)) return 'EINVAL';
      const data = read(T.MTRR.length);
      if (Number(decode(hvm_hw_mtrr, dv(data)).msr_mtrr_cap & 0xffn) > MTRR_VCNT) return 'EINVAL';
      this.set(code, instance, data);
      return null;
    }
    // Every other type: the mock keeps the record as it came, checked as strictly as Xen's
    // loaders check their own types' lengths; types it has no length for need only fit.
    const known = Object.values(T).find((t) => t.code === code);
    if (!check(code, known ? known.length : length, true)) return 'EINVAL';
    this.set(code, instance, read(known ? known.length : length));
    return null;
  }
}

/** VPF_down: the vcpu is not runnable until a CPU record (or VCPUOP_up) brings it up. */
function setDown(vc: MockVcpu): void {
  vc.online = false;
  vc.running = false;
}

/** A record type's content on a new domain: zeros, but for MTRR's reset values. */
function defaultRecord(code: number): Uint8Array {
  if (code === T.MTRR.code) {
    const b = new Uint8Array(T.MTRR.length);
    // hvm_vcpu_cacheattr_init (mtrr.c:123-183): PAT reset value; MTRRcap = WC | FIX | 8 ranges.
    encode(hvm_hw_mtrr, dv(b), 0, { msr_pat_cr: 0x0007040600070406n, msr_mtrr_cap: BigInt((1 << 10) | (1 << 8) | MTRR_VCNT) });
    return b;
  }
  const t = Object.values(T).find((x) => x.code === code);
  return new Uint8Array(t ? t.length : 0);
}

/**
 * A made-up but valid CPU record for a vcpu that is up without a loaded one (test domains made
 * with onlineVcpus): 64-bit long mode, distinct per domain and vcpu.
 */
export function defaultCpuRecord(domid: number, vcpu: number): Uint8Array {
  const b = new Uint8Array(T.CPU.length);
  const base = 0xffffffff81000000n + BigInt(domid & 0xff) * 0x1000000n;
  encode(hvm_hw_cpu, dv(b), 0, {
    rip: base + 0x1000n + BigInt(vcpu) * 0x10n,
    rsp: base + 0x200000n - BigInt(vcpu) * 0x1000n,
    rflags: 0x246n,
    cr0: BigInt((X86_CR0.PE | X86_CR0.MP | X86_CR0.ET | X86_CR0.NE | X86_CR0.WP | X86_CR0.AM | X86_CR0.PG) >>> 0),
    cr3: BigInt(0x100000 + domid) << 12n,
    cr4: BigInt(X86_CR4.PAE | X86_CR4.PGE | X86_CR4.OSFXSR | X86_CR4.OSXMMEXCPT),
    msr_efer: BigInt(X86_PINNED.EFER_SCE | X86_PINNED.EFER_LME | X86_PINNED.EFER_LMA | X86_PINNED.EFER_NXE),
    dr6: BigInt(X86_DR_DEFAULT.DR6),
    dr7: BigInt(X86_DR_DEFAULT.DR7),
    cs_sel: 0x10,
    ds_sel: 0x18,
    ss_sel: 0x18,
    cs_limit: 0xffffffff,
    ds_limit: 0xffffffff,
    ss_limit: 0xffffffff,
    tr_limit: 0x67,
    cs_arbytes: 0xa9b, // the flat code segment with L set
    ds_arbytes: X86_PINNED.FLAT_DATA32_ARBYTES,
    ss_arbytes: X86_PINNED.FLAT_DATA32_ARBYTES,
    tr_arbytes: X86_PINNED.TSS32_BUSY_ARBYTES,
  });
  return b;
}

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
