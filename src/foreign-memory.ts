// Foreign memory: libxenforeignmemory's core on a xencall handle (xc.foreignMemory). It maps
// pages of another domain into this process through the backend (privcmd's
// IOCTL_PRIVCMD_MMAPBATCH_V2 / IOCTL_PRIVCMD_MMAP_RESOURCE, or the mock's guest memory), keeps
// track of what is mapped so close() can unmap it, and turns use after unmap into a typed error.
//
// Bulk inputs stay bulk: a gfn list is checked and converted to one BigUint64Array through 32-bit
// views of its memory, so 10^5 gfns never become 10^5 BigInt objects.

import type { Backend, BackendForeignMap } from './backend.js';
import { ErrorCodes, ValidationError, XencallError, describeValue } from './errors.js';
import { DOMID, XEN_PAGE_SIZE } from './hypercalls/numbers.js';

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

function checkDomid(field: string, domid: unknown): number {
  if (typeof domid !== 'number' || !Number.isInteger(domid) || domid < 0 || domid >= DOMID.FIRST_RESERVED) {
    throw new ValidationError(field, `must be an ordinary domain id (0..${DOMID.FIRST_RESERVED - 1}), got ${describeValue(domid)}`);
  }
  return domid;
}

/** At most this many pages in one map (the ioctl's num is an unsigned int; the range must be addressable). */
export const MAX_FOREIGN_PAGES = 1 << 24;

export interface MapOptions {
  /** Map the pages writable. Default false: reading only (writing then kills the process, as in C). */
  writable?: boolean;
}

export interface MapResourceOptions {
  /** XENMEM_resource_* (numbers.XENMEM_RESOURCE): 1 for a grant table, 0 an ioreq server, 2 a vmtrace buffer. */
  type: number;
  /** Which instance: for a grant table XENMEM_resource_grant_table_id_shared (0) or _status (1). */
  id: number;
  /** First frame of the resource to map. Default 0. */
  frame?: number | bigint;
  /** How many frames. */
  nrFrames: number;
  writable?: boolean;
}

/**
 * Pages of another domain mapped into this process. `bytes` aliases the domain's memory: what
 * the guest writes shows up there, and (writable maps) what is written there the guest sees.
 * Disposable: `using m = xc.foreignMemory.map(...)` unmaps at the end of the block.
 */
export class ForeignMapping {
  readonly domid: number;
  readonly pages: number;
  readonly writable: boolean;
  /** Per page: 0, or the negative errno the kernel/Xen gave for it (its bytes then read as zeros). */
  readonly errors: Int32Array;
  private map: BackendForeignMap | null;

  /** @internal */
  constructor(
    map: BackendForeignMap,
    private readonly owner: ForeignMemory,
  ) {
    this.map = map;
    this.domid = map.domid;
    this.pages = map.pages;
    this.writable = map.writable;
    this.errors = map.errors;
  }

  /** True after unmap() (or after the handle was closed). */
  get unmapped(): boolean {
    return this.map === null;
  }

  /** All pages, pages*4096 bytes. Throws XEN_ERR_UNMAPPED after unmap; a view taken before reads zeros then. */
  get bytes(): Uint8Array {
    return this.live().bytes;
  }

  /** Page i's 4096 bytes (a view). */
  page(i: number): Uint8Array {
    const b = this.live().bytes;
    if (!Number.isInteger(i) || i < 0 || i >= this.pages) throw new ValidationError('page', `must be an integer from 0 to ${this.pages - 1}, got ${describeValue(i)}`);
    return b.subarray(i * XEN_PAGE_SIZE, (i + 1) * XEN_PAGE_SIZE);
  }

  /** Unmaps the pages. Idempotent. Views taken before read zeros from now on. */
  unmap(): void {
    const m = this.map;
    if (!m) return;
    this.map = null;
    this.owner.release(this, m);
  }

  [Symbol.dispose](): void {
    this.unmap();
  }

  private live(): BackendForeignMap {
    if (!this.map) throw new XencallError(ErrorCodes.UNMAPPED, `this mapping of ${this.pages} page(s) of domain ${this.domid} was unmapped`);
    return this.map;
  }
}

/** xc.foreignMemory: maps other domains' memory through the handle's backend. */
export class ForeignMemory {
  private readonly open = new Set<ForeignMapping>();
  private readonly scratch: GfnScratch = { words: new BigUint64Array(0) };

  /** @internal */
  constructor(
    private readonly backend: Backend,
    private readonly checkOpen: () => void,
  ) {}

  /**
   * Maps `gfns` of domain `domid`, one page each, in order (xenforeignmemory_map2). Per-page
   * failures do not throw: see `errors` (-EINVAL: no RAM at that gfn; -ESRCH: no such domain).
   */
  map(domid: number, gfns: GfnList, options: MapOptions = {}): ForeignMapping {
    this.checkOpen();
    checkDomid('domid', domid);
    const writable = writableOption(options);
    // The backend reads the list during mapForeign() only (backend.ts): a BigUint64Array is
    // handed over as it is, other lists are converted into memory kept for it.
    const list = checkedGfns('gfns', gfns, MAX_FOREIGN_PAGES, this.scratch);
    if (!this.backend.mapForeign) throw new XencallError(ErrorCodes.BACKEND_UNAVAILABLE, `the ${this.backend.kind} backend cannot map foreign memory`);
    return this.track(this.backend.mapForeign(domid, list, writable));
  }

  /** Maps frames of a domain's resource (xenforeignmemory_map_resource): a grant table, ioreq pages. */
  mapResource(domid: number, options: MapResourceOptions): ForeignMapping {
    this.checkOpen();
    checkDomid('domid', domid);
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object with type, id and nrFrames');
    const u32 = (field: string, v: unknown) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new ValidationError(field, `must be a 32-bit unsigned integer, got ${describeValue(v)}`);
      return v;
    };
    const type = u32('type', options.type);
    const id = u32('id', options.id);
    const frameIn = options.frame ?? 0;
    // XENMEM_acquire_resource rejects frame >> 32 (memory.c acquire_resource), and the ioctl's idx is 32 bits.
    if (!((typeof frameIn === 'number' && Number.isInteger(frameIn)) || typeof frameIn === 'bigint') || BigInt(frameIn) < 0n || BigInt(frameIn) > 0xffffffffn) {
      throw new ValidationError('frame', `must be an integer from 0 to 2^32-1, got ${describeValue(frameIn)}`);
    }
    const nrFrames = u32('nrFrames', options.nrFrames);
    if (nrFrames < 1 || nrFrames > MAX_FOREIGN_PAGES) throw new ValidationError('nrFrames', `must be from 1 to ${MAX_FOREIGN_PAGES}, got ${nrFrames}`);
    const writable = writableOption(options);
    if (!this.backend.mapResource) throw new XencallError(ErrorCodes.BACKEND_UNAVAILABLE, `the ${this.backend.kind} backend cannot map resources`);
    return this.track(this.backend.mapResource(domid, type, id, BigInt(frameIn), nrFrames, writable));
  }

  /** Mappings not unmapped yet. */
  get mappings(): readonly ForeignMapping[] {
    return [...this.open];
  }

  /** @internal Unmaps everything (the handle's close()). */
  unmapAll(): void {
    for (const m of [...this.open]) m.unmap();
  }

  /** @internal */
  release(m: ForeignMapping, map: BackendForeignMap): void {
    this.open.delete(m);
    this.backend.unmapForeign?.(map);
  }

  private track(map: BackendForeignMap): ForeignMapping {
    const m = new ForeignMapping(map, this);
    this.open.add(m);
    return m;
  }
}

function writableOption(options: { writable?: unknown }): boolean {
  if (typeof options !== 'object' || options === null) throw new ValidationError('options', `must be an object, got ${describeValue(options)}`);
  const w = options.writable ?? false;
  if (typeof w !== 'boolean') throw new ValidationError('writable', `must be a boolean, got ${describeValue(w)}`);
  return w;
}
