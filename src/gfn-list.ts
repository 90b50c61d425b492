// Gfn lists: the one converter of a list of guest frame numbers into the BigUint64Array the
// backends and the typed calls read. Bulk inputs stay bulk: a list is checked and converted
// through 32-bit views of its memory, so 10^5 gfns never become 10^5 BigInt objects. Pure (no
// handle, no backend): the table's argument schemas use it too.

import { ValidationError, describeValue } from './errors.js';

/**
 * One past the largest frame number a page-table entry can carry: x86-64 physical addresses
 * have at most 52 bits (PADDR_BITS in xen/arch/x86/include/asm/x86_64/page.h), 12 of them the
 * offset in the page. privcmd puts each gfn into a PTE (xen_remap_pfn's mfn_pte), so a larger
 * one cannot even be asked for; Xen's p2m holds none either.
 */
export const GFN_LIMIT = 2 ** 40;

/** What a gfn list may be: a typed array (converted in bulk) or a plain array of integers. */
export type GfnList = BigUint64Array | Uint32Array | Float64Array | readonly (number | bigint)[];

const GFN_LIMIT_HI = GFN_LIMIT / 2 ** 32; // the limit on a gfn's upper 32 bits

/**
 * Checks a gfn list and returns it as a BigUint64Array (a copy: the caller's list is never
 * changed later under it). Every entry must be an integer from 0 to 2^40-1; the error names the
 * first bad index. `maxLength` bounds the count.
 */
export function toGfnArray(field: string, gfns: unknown, maxLength: number): BigUint64Array {
  return gfnArray(field, gfns, maxLength, true);
}

/**
 * @internal toGfnArray() for callers that copy the list into memory of their own before anything
 * can change it: a BigUint64Array is checked and handed back as it is, not copied.
 */
export function checkedGfns(field: string, gfns: unknown, maxLength: number, scratch?: GfnScratch): BigUint64Array {
  return gfnArray(field, gfns, maxLength, false, scratch);
}

/**
 * @internal Memory a caller that uses a converted list only during one synchronous call lends
 * for the conversion, so converting 10^3 gfns allocates nothing: lists up to SCRATCH_GFNS.
 */
export interface GfnScratch {
  words: BigUint64Array;
}
const SCRATCH_GFNS = 1 << 16;

function gfnArray(field: string, gfns: unknown, maxLength: number, copy: boolean, scratch?: GfnScratch): BigUint64Array {
  const n = listLength(field, gfns);
  if (n === 0) throw new ValidationError(field, 'must not be empty');
  if (n > maxLength) throw new ValidationError(field, `has ${n} entries; at most ${maxLength} are allowed`);
  const bad = (i: number, v: unknown): never => {
    throw new ValidationError(`${field}[${i}]`, `must be an integer from 0 to 2^40-1 (a frame number), got ${describeValue(v)}`);
  };
  if (gfns instanceof BigUint64Array) {
    // The high halves alone say whether a gfn is below 2^40 (x86-64 is little-endian: word 2i
    // is a gfn's low half, 2i+1 its high half).
    const in32 = new Uint32Array(gfns.buffer, gfns.byteOffset, n * 2);
    // The limit is a power of two, so OR-ing the high halves together says at once whether any
    // is over it, without a branch per entry; the first bad one is looked for only then.
    let high = 0;
    for (let i = 1; i < 2 * n; i += 2) high |= in32[i]!;
    if (high >>> 0 >= GFN_LIMIT_HI) for (let i = 0; i < n; i++) if (in32[2 * i + 1]! >= GFN_LIMIT_HI) bad(i, gfns[i]);
    return copy ? gfns.slice() : gfns;
  }
  let out: BigUint64Array;
  if (scratch && n <= SCRATCH_GFNS) {
    if (scratch.words.length < n) scratch.words = new BigUint64Array(Math.max(n, 2 * scratch.words.length));
    out = scratch.words.subarray(0, n);
  } else out = new BigUint64Array(n);
  const out32 = new Uint32Array(out.buffer, out.byteOffset, 2 * n);
  if (gfns instanceof Uint32Array) {
    // Every u32 is below the limit. The high halves are zeroed in one go first (the scratch is
    // reused), then only the low halves are written.
    if (out.buffer === scratch?.words.buffer) out32.fill(0);
    for (let i = 0; i < n; i++) out32[2 * i] = gfns[i]!;
  } else {
    const list = gfns as ArrayLike<unknown>;
    for (let i = 0; i < n; i++) {
      const v = list[i];
      if (typeof v === 'number') {
        if (!(Number.isInteger(v) && v >= 0 && v < GFN_LIMIT)) bad(i, v);
        out32[2 * i] = v % 2 ** 32;
        out32[2 * i + 1] = Math.floor(v / 2 ** 32);
      } else if (typeof v === 'bigint') {
        if (v < 0n || v >= BigInt(GFN_LIMIT)) bad(i, v);
        out[i] = v;
      } else bad(i, v);
    }
  }
  return out;
}

function listLength(field: string, gfns: unknown): number {
  if (gfns instanceof BigUint64Array || gfns instanceof Uint32Array || gfns instanceof Float64Array || Array.isArray(gfns)) return gfns.length;
  throw new ValidationError(field, `must be a BigUint64Array, Uint32Array, Float64Array or an array of integers, got ${describeValue(gfns)}`);
}
