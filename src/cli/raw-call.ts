// `xencall call OP [A1..A5]`: one raw hypercall from a shell, made hard to misuse. Each
// argument is a number or a buffer the CLI makes (buf:SIZE zeroed, buf:@FILE with a file's
// bytes). Two rules hold before anything is issued:
// - Xen is pointed only at the CLI's own buffers: a number that could be an address (one inside
//   this process's mappings, or 2^32 and above) is refused, and every guest handle in the
//   argument struct, where the table has its layout, must be 0 or point into a CLI buffer.
// - Without --allow-writes only calls the table marks read-only run (readOnlyFor), and only
//   when every pointer Xen will follow can be checked (pointersVisible). `sched_op_compat 2 0`
//   (SCHEDOP_shutdown of dom0, i.e. powering the host off) is refused, as is anything the table
//   has no row for.
// Xen writes as much as the struct's own count fields say: size buf: to match.

import { readFileSync } from 'node:fs';
import type { HypercallBuffer } from '../buffers.js';
import { ValidationError } from '../errors.js';
import { HYPERCALL, XEN_PAGE_SIZE } from '../hypercalls/numbers.js';
import { readOnlyFor } from '../hypercalls/row.js';
import { classify, pointersVisible } from '../hypercalls/table.js';
import { handleOffsets } from '../layout.js';
import { openFor } from './commands.js';
import type { CallJson } from './json-schemas.js';
import type { CliIO } from './main.js';
import type { CliOptions } from './table.js';

/** The largest buffer the CLI makes (16 MiB): a typo should not map gigabytes. */
const MAX_BUFFER = 16 << 20;

type RawArg = { readonly kind: 'number'; readonly value: bigint } | { readonly kind: 'buffer'; readonly spec: string; readonly bytes: Uint8Array };

const hypercallNumbers = new Map<string, number>(Object.entries(HYPERCALL));
const hypercallNames = new Map<number, string>(Object.entries(HYPERCALL).map(([name, n]) => [n, name]));

export async function runCall(args: string[], opts: CliOptions & { allowWrites: boolean }, io: CliIO): Promise<number> {
  if (args.length < 1 || args.length > 6) throw new ValidationError('call', 'usage: xencall call OP [A1 .. A5] (OP a number or a hypercall name; A a number, buf:SIZE or buf:@FILE)');
  const [opText, ...rest] = args as [string, ...string[]];
  const op = parseOp(opText);
  const raw = rest.map((a, i) => parseArg(`A${i + 1}`, a));
  const mapped = processMappings();
  for (const [i, a] of raw.entries()) if (a.kind === 'number') refuseAddress(`A${i + 1}`, a.value, mapped);

  const xc = await openFor(opts);
  const buffers: { arg: string; spec: string; buf: HypercallBuffer }[] = [];
  try {
    const regs = raw.map((a, i) => {
      if (a.kind === 'number') return a.value;
      const buf = xc.allocBuffer(a.bytes.length);
      buf.write(a.bytes);
      buffers.push({ arg: `A${i + 1}`, spec: a.spec, buf });
      return buf.address;
    });
    check(op, regs, buffers.map((b) => b.buf), opts.allowWrites);
    const result = await xc.hypercall(op, regs);
    const written = buffers.map((b) => ({ arg: b.arg, spec: b.spec, size: b.buf.size, hex: Buffer.from(b.buf.bytes).toString('hex') }));
    if (opts.json) {
      const out: CallJson = { op, op_name: hypercallNames.get(op) ?? null, args: regs.map(String), result: result.toString(), result_hex: `0x${result.toString(16)}`, buffers: written };
      io.out(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      io.out(`${result} (0x${result.toString(16)})\n`);
      for (const w of written) io.out(`${w.arg} ${w.spec}: ${w.hex}\n`);
    }
    return 0;
  } finally {
    xc.close();
  }
}

/** A hypercall name (an own key of the number table, never an inherited one) or a number. */
function parseOp(text: string): number {
  const byName = hypercallNumbers.get(text);
  if (byName !== undefined) return byName;
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(text)) throw new ValidationError('OP', `"${text}" is not a hypercall name or number (see xencall table)`);
  const n = BigInt(text);
  if (n > 0xffffffffn) throw new ValidationError('OP', `hypercall number ${text} is out of range`);
  return Number(n);
}

function parseArg(field: string, text: string): RawArg {
  if (text.startsWith('buf:')) return { kind: 'buffer', spec: text, bytes: bufferContents(field, text.slice(4)) };
  if (!/^-?(0x[0-9a-f]+|\d+)$/i.test(text)) throw new ValidationError(field, `"${text}" is not a decimal or 0x-hex integer, buf:SIZE or buf:@FILE`);
  const n = text.startsWith('-') ? -BigInt(text.slice(1)) : BigInt(text);
  if (n < -(1n << 63n) || n >= 1n << 64n) throw new ValidationError(field, `${text} does not fit in 64 bits`);
  return { kind: 'number', value: BigInt.asUintN(64, n) };
}

function bufferContents(field: string, spec: string): Uint8Array {
  if (spec.startsWith('@')) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(spec.slice(1));
    } catch (e) {
      throw new ValidationError(field, `cannot read ${spec.slice(1)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (bytes.length < 1 || bytes.length > MAX_BUFFER) throw new ValidationError(field, `${spec.slice(1)} must hold 1 to ${MAX_BUFFER} bytes, it holds ${bytes.length}`);
    return bytes;
  }
  if (!/^\d+$/.test(spec) || Number(spec) < 1 || Number(spec) > MAX_BUFFER) throw new ValidationError(field, `buf:SIZE takes a size from 1 to ${MAX_BUFFER} bytes, got "${spec}"`);
  return new Uint8Array(Number(spec));
}

/** This process's mapped ranges (/proc/self/maps), or null where they cannot be read. */
function processMappings(): [bigint, bigint][] | null {
  try {
    return readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .map((l) => /^([0-9a-f]+)-([0-9a-f]+) /.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [BigInt(`0x${m[1]}`), BigInt(`0x${m[2]}`)] as [bigint, bigint]);
  } catch {
    return null;
  }
}

/**
 * Refuses a number Xen could take for an address of this process: at or above 2^32 (where
 * Linux puts the heap, the libraries and mmap; the kernel's half included), or inside a range
 * mapped now. What is left are counts, ids and sub-op numbers.
 */
function refuseAddress(field: string, value: bigint, mapped: [bigint, bigint][] | null): void {
  const inside = mapped === null ? value >= 0x1000n : mapped.some(([lo, hi]) => value >= lo && value < hi);
  if (value >= 1n << 32n || inside) {
    throw new ValidationError(field, `0x${value.toString(16)} could be an address in this process; Xen may follow it and write there. Pass memory as buf:SIZE or buf:@FILE`);
  }
}

/** The two rules of the header comment, for a call about to be issued. */
function check(op: number, regs: readonly bigint[], buffers: readonly HypercallBuffer[], allowWrites: boolean): void {
  const inBuffer = (address: bigint, length = 1) =>
    buffers.some((b) => address >= b.address && address + BigInt(length) <= b.address + BigInt(b.pages * XEN_PAGE_SIZE));
  const read = (address: bigint, length: number) => {
    const b = buffers.find((x) => address >= x.address && address + BigInt(length) <= x.address + BigInt(x.size));
    return b ? new DataView(b.bytes.buffer, b.bytes.byteOffset + Number(address - b.address), length) : null;
  };
  const c = classify(op, [...regs, 0n, 0n, 0n, 0n, 0n].slice(0, 5), read);
  const label = c.row?.name ?? `${c.hypercall?.name ?? `hypercall ${op}`}${c.subop === null ? '' : ` sub-op ${c.subop}`}`;
  if (c.row?.layout && c.payloadAddress !== undefined) {
    const v = read(c.payloadAddress, c.row.layout.size);
    if (v) {
      for (const off of handleOffsets(c.row.layout)) {
        const h = v.getBigUint64(off, true);
        if (h !== 0n && !inBuffer(h)) {
          throw new ValidationError('call', `${label}: the guest handle at byte ${off} of its struct (0x${h.toString(16)}) points into no buffer the CLI made`);
        }
      }
    }
  }
  if (allowWrites) return;
  if (!c.row) throw new ValidationError('call', `${label} has no row in the hypercall table, so nothing says it only reads; pass --allow-writes to issue it anyway`);
  if (!readOnlyFor(c.row, c.decoded)) {
    const rule = c.row.readOnly !== undefined && c.row.readOnly !== true ? ` (${c.row.readOnly.text})` : '';
    throw new ValidationError('call', `${label} can change Xen's or a domain's state${rule}: the table does not mark it read-only; pass --allow-writes to issue it`);
  }
  if (!pointersVisible(c.row)) {
    throw new ValidationError('call', `${label} only reads, but its struct may hold pointers the table has no layout for, so the CLI cannot check where Xen writes; pass --allow-writes to issue it`);
  }
}
