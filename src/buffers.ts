// Hypercall buffers: page-granular memory from the backend, tracked by address so raw calls can
// be classified and their inputs snapshotted, and cached (1-4 pages, as libxencall caches) so
// the typed calls' per-call buffers cost no mmap.

import type { Backend, BackendPages } from './backend.js';
import { ErrorCodes, ValidationError, XencallError, describeValue } from './errors.js';
import { XEN_PAGE_SIZE } from './hypercalls/numbers.js';

/** One buffer's pages as a DataView, as bytes and as 32- and 64-bit words, from the same start. */
export interface PageViews {
  readonly view: DataView;
  readonly bytes: Uint8Array;
  /** Null where the memory is not 8-aligned; word i is bytes 8i..8i+7 (u32: 4i..4i+3). */
  readonly u64: BigUint64Array | null;
  readonly u32: Uint32Array | null;
}

/** Bigints of the numbers 0..1023, made once: the small values calls pass and Xen answers. */
export const SMALL_BIGINTS: readonly bigint[] = Array.from({ length: 1024 }, (_, i) => BigInt(i));

/**
 * The u64 at `at` of a buffer's pages as a bigint. A value below 1024 (zero counters, small
 * sizes) comes from SMALL_BIGINTS, so reading it allocates nothing; an aligned one is a word
 * read, which costs half of DataView's getBigUint64.
 */
export function u64At(mem: PageViews, at: number): bigint {
  const { u32, u64 } = mem;
  if (u64 && u32 && (at & 7) === 0) {
    const lo = u32[at >>> 2]!;
    return u32[(at >>> 2) + 1] === 0 && lo < 1024 ? SMALL_BIGINTS[lo]! : u64[at >>> 3]!;
  }
  return mem.view.getBigUint64(at, true);
}

export class HypercallBuffer {
  /** Guest-virtual address of the first byte; pass it as a hypercall argument. */
  readonly address: bigint;
  /** Bytes asked for (the allocation itself is whole pages). */
  readonly size: number;
  readonly pages: number;
  /** @internal */ mem: BackendPages | null;
  /** The view view() hands out, made on first use (a DataView costs more than a hypercall's own JS). */
  private sized: DataView | null = null;
  /** Its pages' views, made on first use (views()). */
  private seen: PageViews | null = null;
  /** @internal Set for the pool's kept buffers (BufferPool.take): whether one is in use now. */
  taken = false;
  /** @internal The pool that handed it out with alloc() (none for the pool's kept buffers). */
  owner: BufferPool | null = null;

  /** @internal */
  constructor(mem: BackendPages, size: number) {
    if (mem === null || typeof mem !== 'object' || typeof mem.address !== 'bigint') {
      throw new ValidationError('mem', 'a HypercallBuffer comes from xc.allocBuffer(); it cannot be made directly');
    }
    this.mem = mem;
    this.address = mem.address;
    this.size = size;
    this.pages = mem.pages;
  }

  get freed(): boolean {
    return this.mem === null;
  }

  /** The buffer's bytes (size bytes). Throws XEN_ERR_BUFFER_FREED after free. */
  get bytes(): Uint8Array {
    return this.live().bytes.subarray(0, this.size);
  }

  /** A DataView over the buffer, for struct codecs (the same one each time). Throws XEN_ERR_BUFFER_FREED after free. */
  view(): DataView {
    const b = this.live().bytes;
    return (this.sized ??= new DataView(b.buffer, b.byteOffset, this.size));
  }

  /**
   * @internal All its pages as a DataView, as bytes and as 32- and 64-bit words (null where the
   * memory is not 8-aligned), all from the same start: what decoders read a struct with, made once.
   */
  views(): PageViews {
    if (this.seen) {
      this.live();
      return this.seen;
    }
    const b = this.live().bytes;
    const aligned = b.byteOffset % 8 === 0;
    return (this.seen = {
      view: new DataView(b.buffer, b.byteOffset, b.length),
      bytes: b,
      u64: aligned ? new BigUint64Array(b.buffer, b.byteOffset, b.length >>> 3) : null,
      u32: aligned ? new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2) : null,
    });
  }

  /**
   * @internal The five registers of a call whose one argument is this buffer's address, made
   * once: the typed calls pass their struct page this way on every call.
   */
  asRegisters(): readonly bigint[] {
    return (this.registers ??= Object.freeze([this.address, 0n, 0n, 0n, 0n]));
  }
  private registers: readonly bigint[] | undefined;

  /** Copies `data` (bytes: a Uint8Array or Buffer) in at `offset`. */
  write(data: Uint8Array, offset = 0): void {
    // Uint8Array.set() would take a string or an array of anything, coercing each element.
    if (!(data instanceof Uint8Array)) throw new ValidationError('data', `must be a Uint8Array (or Buffer), got ${describeValue(data)}`);
    this.checkRange('offset', offset, 'data', data.length, 'write');
    this.live().bytes.set(data, offset);
  }

  /** Copies `length` bytes out from `offset`. */
  read(offset = 0, length?: number): Uint8Array {
    // The default is worked out after the offset is known to be a number.
    this.checkRange('offset', offset, 'length', length ?? (typeof offset === 'number' ? this.size - offset : 0), 'read');
    length ??= this.size - offset;
    return this.live().bytes.slice(offset, offset + length);
  }

  private checkRange(offsetField: string, offset: unknown, lengthField: string, length: unknown, what: string): void {
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset > this.size) {
      throw new ValidationError(offsetField, `must be an integer from 0 to ${this.size}, got ${describeValue(offset)}`);
    }
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0 || offset + length > this.size) {
      throw new ValidationError(lengthField, `a ${what} of ${describeValue(length)} bytes at ${offset} overruns a ${this.size}-byte buffer`);
    }
  }

  /**
   * `using buf = xc.allocBuffer(n)`: frees it at the end of the block (xc.freeBuffer). Nothing
   * happens when it was freed already, or when its handle was closed (which freed it).
   */
  [Symbol.dispose](): void {
    if (this.mem && this.owner) this.owner.free(this);
  }

  /** @internal */
  live(): BackendPages {
    if (!this.mem) {
      throw new XencallError(ErrorCodes.BUFFER_FREED, `hypercall buffer at 0x${this.address.toString(16)} was used after it was freed`);
    }
    return this.mem;
  }
}

// The brand the table's argument schemas recognise a hypercall buffer by (schemas.ts
// HYPERCALL_BUFFER_BRAND): src/hypercalls imports nothing from here at run time.
Object.defineProperty(HypercallBuffer.prototype, Symbol.for('xencall.HypercallBuffer'), { value: true });

/** How many freed 1-4 page allocations are kept for reuse, per page count. */
const CACHE_PER_SIZE = 4;
const CACHED_MAX_PAGES = 4;

export class BufferPool {
  private readonly live = new Map<bigint, HypercallBuffer>();
  private readonly cache: BackendPages[][] = Array.from({ length: CACHED_MAX_PAGES + 1 }, () => []);
  /** Sorted start addresses of live buffers, rebuilt lazily for address lookups. */
  private sorted: HypercallBuffer[] | null = null;
  /** The live buffer find() last found by its start address. */
  private lastFound: HypercallBuffer | null = null;
  /**
   * Buffers of 1-4 pages the typed calls build their own structs and arrays in (a domctl, a
   * gfn list, a domain list), kept with their views while not in use, per page count: taking one
   * is a pop, where a buffer from the cache is a new object, two map updates and new views. They
   * are never live buffers of the handle, so raw calls cannot name them.
   */
  private readonly kept: HypercallBuffer[][] = Array.from({ length: CACHED_MAX_PAGES + 1 }, () => []);
  /** Every kept buffer there is, in use or not (close() frees them once their calls end). */
  private readonly keptAll = new Set<HypercallBuffer>();

  constructor(private readonly backend: Backend) {}

  alloc(size: number): HypercallBuffer {
    if (!Number.isInteger(size) || size < 1 || size > 1 << 30) {
      throw new ValidationError('size', `must be an integer from 1 to 2^30 bytes, got ${describeValue(size)}`);
    }
    const pages = Math.ceil(size / XEN_PAGE_SIZE);
    let mem = pages <= CACHED_MAX_PAGES ? this.cache[pages]!.pop() : undefined;
    // A cached page is zeroed as far as the buffer reaches: nothing past `size` is handed out.
    if (mem) mem.bytes.fill(0, 0, size);
    else mem = this.backend.allocPages(pages);
    const buf = new HypercallBuffer(mem, size);
    buf.owner = this;
    this.live.set(buf.address, buf);
    this.sorted = null;
    return buf;
  }

  free(buf: HypercallBuffer): void {
    const mem = buf.mem;
    if (!mem || this.live.get(buf.address) !== buf) {
      const why = mem ? 'is not a live buffer of this handle' : 'was already freed';
      throw new XencallError(ErrorCodes.BUFFER_FREED, `hypercall buffer at 0x${buf.address.toString(16)} ${why}`);
    }
    buf.mem = null;
    this.live.delete(buf.address);
    if (this.lastFound === buf) this.lastFound = null;
    this.sorted = null;
    const slot = mem.pages <= CACHED_MAX_PAGES ? this.cache[mem.pages] : undefined;
    if (slot && slot.length < CACHE_PER_SIZE) slot.push(mem);
    else this.backend.freePages(mem);
  }

  /** The live buffer holding [address, address+length), or undefined. */
  find(address: bigint, length = 1): HypercallBuffer | undefined {
    // A raw caller passes the same buffer call after call: comparing with the last one found
    // costs a fraction of hashing a bigint for the map (freed buffers have no pages).
    const last = this.lastFound;
    if (last !== null && last.address === address && last.mem !== null) return length <= last.pages * XEN_PAGE_SIZE ? last : undefined;
    if (this.live.size === 0) return undefined;
    const exact = this.live.get(address);
    if (exact) this.lastFound = exact;
    if (exact) return length <= exact.pages * XEN_PAGE_SIZE ? exact : undefined;
    this.sorted ??= [...this.live.values()].sort((a, b) => (a.address < b.address ? -1 : 1));
    let lo = 0;
    let hi = this.sorted.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const b = this.sorted[mid]!;
      const end = b.address + BigInt(b.pages * XEN_PAGE_SIZE);
      if (address < b.address) hi = mid - 1;
      else if (address >= end) lo = mid + 1;
      else return address + BigInt(length) <= end ? b : undefined;
    }
    return undefined;
  }

  /**
   * @internal A buffer whose first `size` bytes are zeroed, for one typed call's own struct or
   * array, given back with giveBack(). Its `size` is its whole pages: callers pass Xen lengths of
   * their own. Past 4 pages it is an ordinary buffer.
   */
  take(size: number): HypercallBuffer {
    const pages = Math.ceil(size / XEN_PAGE_SIZE);
    if (!(pages >= 1 && pages <= CACHED_MAX_PAGES)) return this.alloc(size);
    let buf = this.kept[pages]!.pop();
    if (!buf) {
      buf = new HypercallBuffer(this.backend.allocPages(pages), pages * XEN_PAGE_SIZE);
      this.keptAll.add(buf);
    }
    buf.mem!.bytes.fill(0, 0, size);
    buf.taken = true;
    return buf;
  }

  /** @internal Ends the use of a buffer from take(). */
  giveBack(buf: HypercallBuffer): void {
    if (!buf.taken) {
      if (!buf.freed) this.free(buf);
      return;
    }
    buf.taken = false;
    const slot = this.kept[buf.pages]!;
    if (slot.length < CACHE_PER_SIZE) slot.push(buf);
    else this.release(buf);
  }

  /** Frees the pages of a kept buffer (it was never a live one). */
  private release(buf: HypercallBuffer): void {
    const mem = buf.mem;
    this.keptAll.delete(buf);
    if (!mem) return;
    buf.mem = null;
    this.backend.freePages(mem);
  }

  /** @internal readU32, bound once: the raw API hands it to classification on every call. */
  readonly readU32Bound = (address: bigint): number | null => this.readU32(address);

  /** @internal The u32 at `address` of the caller's memory (a sub-op), or null outside live buffers; makes no view. */
  readU32(address: bigint): number | null {
    const b = this.find(address, 4);
    const mem = b?.mem;
    if (!mem) return null;
    return b.views().view.getUint32(address === b.address ? 0 : Number(address - b.address), true);
  }

  /** Reads caller memory for classification: a view, or null outside live buffers. */
  readonly reader = (address: bigint, length: number): DataView | null => {
    const b = this.find(address, length);
    if (!b?.mem) return null;
    const off = Number(address - b.address);
    return new DataView(b.mem.bytes.buffer, b.mem.bytes.byteOffset + off, length);
  };

  /** Every buffer in use now: the handle's live buffers and the kept ones a call has taken. */
  *liveBuffers(): IterableIterator<HypercallBuffer> {
    yield* this.live.values();
    for (const b of this.keptAll) if (b.taken) yield b;
  }

  /** Frees everything, cached pages included (on close). */
  drain(): void {
    for (const b of [...this.live.values()]) this.free(b);
    for (const slot of this.cache) for (const mem of slot.splice(0)) this.backend.freePages(mem);
    for (const slot of this.kept) slot.length = 0;
    for (const b of [...this.keptAll]) this.release(b);
  }
}
