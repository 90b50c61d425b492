// Foreign memory: libxenforeignmemory's core on a xencall handle (xc.foreignMemory). It maps
// pages of another domain into this process through the backend (privcmd's
// IOCTL_PRIVCMD_MMAPBATCH_V2 / IOCTL_PRIVCMD_MMAP_RESOURCE, or the mock's guest memory), keeps
// track of what is mapped so close() can unmap it, and turns use after unmap into a typed error.
// Gfn lists are converted by gfn-list.ts.

import type { Backend, BackendForeignMap } from './backend.js';
import { ErrorCodes, ValidationError, XencallError, describeValue } from './errors.js';
import { DOMID, XEN_PAGE_SIZE } from './hypercalls/numbers.js';
import { checkedGfns, type GfnList, type GfnScratch } from './gfn-list.js';

export { toGfnArray, GFN_LIMIT, type GfnList } from './gfn-list.js';

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
