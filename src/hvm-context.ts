// The HVM context stream of domctl gethvmcontext/sethvmcontext, as data: a HEADER record, any
// number of typed records, an END record; each record a struct hvm_save_descriptor (typecode,
// instance, length) followed by `length` bytes (hvm_save and hvm_load, xen/arch/x86/hvm/save.c,
// RELEASE-4.17.7 lines 204-351). Toolstacks read one record out of a saved context and build
// small streams of their own, as libxenguest does for a new PVH vcpu
// (tools/libs/guest/xg_dom_x86.c vcpu_hvm, lines 990-1140).

import { ValidationError, describeValue } from './errors.js';
import { bytesArg, integerIn, requiredBag } from './input.js';
import { decode, encode, type Decoded } from './layout.js';
import { HVM_SAVE_TYPES, hvm_hw_cpu, hvm_hw_mtrr, hvm_save_descriptor, hvm_save_header } from './hypercalls/structs.js';
import { MTRR_TYPE, X86_CR0, X86_DR_DEFAULT, X86_PINNED } from './hypercalls/values.js';

export interface HvmRecord {
  /** HVM_SAVE_CODE(type): 2 for CPU, 14 for MTRR, ... (HVM_SAVE_TYPES). */
  readonly typecode: number;
  /** The vcpu for per-vcpu records, else 0. */
  readonly instance: number;
  /** The record's bytes, without its descriptor. */
  readonly data: Uint8Array;
}

export interface HvmContext {
  /** The HEADER record's bytes (struct hvm_save_header). */
  readonly header: Uint8Array;
  /** Every record between HEADER and END, in stream order. */
  readonly records: readonly HvmRecord[];
}

const DESC = hvm_save_descriptor.size;

/**
 * Splits a context into its records. Throws ValidationError when it does not start with a
 * HEADER record of the right length or a record runs past the end, or END is missing. Bytes after
 * END are ignored, as hvm_load ignores them.
 */
export function parseHvmContext(bytes: Uint8Array): HvmContext {
  bytesArg('context', bytes);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const desc = (at: number) => decode(hvm_save_descriptor, v, at);
  if (bytes.length < DESC + hvm_save_header.size) throw new ValidationError('context', `an HVM context is at least ${DESC + hvm_save_header.size} bytes (its HEADER record), got ${bytes.length}`);
  const h = desc(0);
  if (h.typecode !== HVM_SAVE_TYPES.HEADER.code || h.length !== hvm_save_header.size) {
    throw new ValidationError('context', `an HVM context starts with a HEADER record (typecode 1, length 24), got typecode ${h.typecode} length ${h.length}`);
  }
  const header = bytes.slice(DESC, DESC + h.length);
  const records: HvmRecord[] = [];
  let at = DESC + h.length;
  for (;;) {
    if (bytes.length - at < DESC) throw new ValidationError('context', `the HVM context ends at byte ${at} without an END record`);
    const d = desc(at);
    if (d.typecode === HVM_SAVE_TYPES.END.code) return { header, records };
    if (d.length > bytes.length - at - DESC) throw new ValidationError('context', `record ${d.typecode}/${d.instance} at byte ${at} claims ${d.length} bytes; only ${bytes.length - at - DESC} follow`);
    records.push({ typecode: d.typecode, instance: d.instance, data: bytes.slice(at + DESC, at + DESC + d.length) });
    at += DESC + d.length;
  }
}

/** Builds a context: the HEADER record, the given records in order, then END. */
export function buildHvmContext(header: Uint8Array, records: readonly HvmRecord[]): Uint8Array {
  bytesArg('header', header);
  if (!Array.isArray(records)) throw new ValidationError('records', `must be an array, got ${describeValue(records)}`);
  records = records.map((r, i) => {
    const rec = requiredBag(`records[${i}]`, r as HvmRecord);
    return {
      typecode: integerIn(`records[${i}].typecode`, rec.typecode, 1, 0xffff),
      instance: integerIn(`records[${i}].instance`, rec.instance, 0, 0xffff),
      data: bytesArg(`records[${i}].data`, rec.data),
    };
  });
  if (header.length !== hvm_save_header.size) throw new ValidationError('header', `a HEADER record is ${hvm_save_header.size} bytes, got ${header.length}`);
  const size = DESC + header.length + records.reduce((s, r) => s + DESC + r.data.length, 0) + DESC;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let at = 0;
  const put = (typecode: number, instance: number, data: Uint8Array) => {
    encode(hvm_save_descriptor, v, at, { typecode, instance, length: data.length });
    out.set(data, at + DESC);
    at += DESC + data.length;
  };
  put(HVM_SAVE_TYPES.HEADER.code, 0, header);
  for (const r of records) put(r.typecode, r.instance, r.data);
  put(HVM_SAVE_TYPES.END.code, 0, new Uint8Array(0));
  return out;
}

/** The record of `typecode` and `instance`, or undefined (libxenguest's hvm_get_save_record). */
export function findHvmRecord(context: HvmContext, typecode: number, instance = 0): HvmRecord | undefined {
  const ctx = requiredBag('context', context);
  if (!Array.isArray(ctx.records)) throw new ValidationError('context.records', `must be an array (what parseHvmContext returns), got ${describeValue(ctx.records)}`);
  integerIn('typecode', typecode, 0, 0xffff);
  integerIn('instance', instance, 0, 0xffff);
  return ctx.records.find((r) => r.typecode === typecode && r.instance === instance);
}

/** The HEADER record decoded. */
export function decodeHvmHeader(header: Uint8Array): Decoded<typeof hvm_save_header.fields> {
  bytesArg('header', header, hvm_save_header.size);
  return decode(hvm_save_header, new DataView(header.buffer, header.byteOffset, header.byteLength));
}

/**
 * The two contexts libxenguest loads to start a PVH vcpu 0 (vcpu_hvm, xg_dom_x86.c:1042-1133),
 * built from the new domain's own saved context `saved` (its HEADER, which only Xen can
 * produce, and its MTRR record): first HEADER + MTRR + END with the MTRRs enabled and
 * write-back the default type; then HEADER + CPU + END with flat 4 GiB segments, CR0 = PE|ET
 * (protected mode, paging off), the debug registers at their reset values, and rip = `entry`.
 * Load them in this order: every hvm_load puts all vcpus down first, and only the CPU record
 * brings vcpu 0 up.
 */
export function pvhStartContexts(saved: Uint8Array, entry: number): [mtrr: Uint8Array, cpu: Uint8Array] {
  integerIn('entry', entry, 0, 0xffffffff);
  const ctx = parseHvmContext(saved);
  const mtrrRecord = findHvmRecord(ctx, HVM_SAVE_TYPES.MTRR.code, 0);
  if (!mtrrRecord || mtrrRecord.data.length !== hvm_hw_mtrr.size) throw new ValidationError('context', 'the saved context has no MTRR record for vcpu 0');
  const mtrr = mtrrRecord.data.slice();
  encode(hvm_hw_mtrr, new DataView(mtrr.buffer), 0, { msr_mtrr_def_type: BigInt(MTRR_TYPE.WRBACK | X86_PINNED.MTRR_DEF_TYPE_ENABLE) });

  const cpu = new Uint8Array(hvm_hw_cpu.size);
  const flat = 0xffffffff;
  encode(hvm_hw_cpu, new DataView(cpu.buffer), 0, {
    cs_limit: flat,
    ds_limit: flat,
    es_limit: flat,
    ss_limit: flat,
    tr_limit: 0x67,
    cs_arbytes: X86_PINNED.FLAT_CODE32_ARBYTES,
    ds_arbytes: X86_PINNED.FLAT_DATA32_ARBYTES,
    es_arbytes: X86_PINNED.FLAT_DATA32_ARBYTES,
    ss_arbytes: X86_PINNED.FLAT_DATA32_ARBYTES,
    tr_arbytes: X86_PINNED.TSS32_BUSY_ARBYTES,
    cr0: BigInt(X86_CR0.PE | X86_CR0.ET),
    rip: BigInt(entry),
    dr6: BigInt(X86_DR_DEFAULT.DR6),
    dr7: BigInt(X86_DR_DEFAULT.DR7),
  });
  return [
    buildHvmContext(ctx.header, [{ typecode: HVM_SAVE_TYPES.MTRR.code, instance: 0, data: mtrr }]),
    buildHvmContext(ctx.header, [{ typecode: HVM_SAVE_TYPES.CPU.code, instance: 0, data: cpu }]),
  ];
}
