// xencall's save image: a versioned, checksummed record stream (docs/saverestore.md).
//
//   file header (24 bytes): magic, version, flags, reserved, header CRC
//   records, each: type u32, payload length u32, payload CRC u32, record-header CRC u32,
//                  payload, zero padding to 8 bytes
//   DOMAIN first, then PAGE_DATA records (a later copy of a gfn replaces an earlier one, as live
//   rounds resend dirty pages), HVM_PARAMS, HVM_CONTEXT, and END last.
//
// Every length is checked against the record-header CRC before it is trusted, so a corrupt
// length is reported as corruption instead of an attempt to read gigabytes. The magic follows
// PNG's trick: a high-bit byte catches 7-bit transfers, CR LF catches line-ending conversion.

import { crc32 } from 'node:zlib';
import { ErrorCodes, XencallError } from '../errors.js';
import { XEN_PAGE_SIZE } from '../hypercalls/numbers.js';
import { bytes, decode, defineStruct, encode, i32, u16, u32, u64, type Decoded } from '../layout.js';
import { GfnSet } from './gfn-set.js';

export const IMAGE_MAGIC = Uint8Array.of(0x89, 0x58, 0x43, 0x53, 0x52, 0x0d, 0x0a, 0x1a); // "\x89XCSR\r\n\x1a"
export const IMAGE_VERSION = 1;
/** Header flag: the image was taken while the guest ran (live rounds). */
export const IMAGE_FLAG_LIVE = 1;

export const RECORD = {
  DOMAIN: 1,
  PAGE_DATA: 2,
  HVM_PARAMS: 3,
  HVM_CONTEXT: 4,
  END: 0xffff_ffff,
} as const;
export type RecordType = (typeof RECORD)[keyof typeof RECORD];
const RECORD_NAMES = new Map<number, string>(Object.entries(RECORD).map(([k, v]) => [v, k]));

/** Pages per PAGE_DATA record at most (4 MiB of data): bounds what a reader must hold at once. */
export const MAX_PAGES_PER_RECORD = 1024;
/** x86-64 guest-physical addresses have at most 52 bits: 2^40 gfns. */
export const MAX_P2M_SIZE = 1n << 40n;
/** A payload larger than this is corrupt whatever its CRC says (a PAGE_DATA record is the largest). */
export const MAX_RECORD_BYTES = 8 + MAX_PAGES_PER_RECORD * (8 + XEN_PAGE_SIZE);

const FILE_HEADER = defineStruct('xencall_image_header', 24, {
  magic: bytes(0, 8),
  version: u32(8),
  flags: u32(12),
  reserved: u32(16),
  /** CRC32 of the 20 bytes before it. */
  header_crc: u32(20),
});
const RECORD_HEADER = defineStruct('xencall_image_record', 16, {
  type: u32(0),
  length: u32(4),
  payload_crc: u32(8),
  header_crc: u32(12),
});

/** What restore needs to build the domain again: what Xen reports of the source, and its size. */
export const DOMAIN_RECORD = defineStruct('xencall_image_domain', 96, {
  source_domid: u16(0),
  xen_major: u16(2),
  xen_minor: u16(4),
  page_size: u16(6),
  /** XEN_DOMCTL_CDF_* of the source (hvm, hap, ...) as getdomaininfo implies them. */
  cdf_flags: u32(8),
  emulation_flags: u32(12),
  misc_flags: u32(16),
  max_vcpus: u32(20),
  max_evtchn_port: u32(24),
  max_grant_frames: i32(28),
  max_maptrack_frames: i32(32),
  grant_opts: u32(36),
  max_mem_kb: u64(40),
  /** One past the highest gfn that may appear in a PAGE_DATA record. */
  p2m_size: u64(48),
  /** Pages the source had (tot_pages): how many distinct gfns restore will populate. */
  tot_pages: u64(56),
  handle: bytes(64, 16),
  /** The paging pool (shadow_op GET_ALLOCATION), in MiB. */
  paging_pool_mb: u32(80),
  ssidref: u32(84),
  reserved: u64(88),
});
export type DomainRecord = Decoded<typeof DOMAIN_RECORD.fields>;

const END_RECORD = defineStruct('xencall_image_end', 16, {
  /** PAGE_DATA pages written, duplicates included. */
  pages: u64(0),
  /** Records before END, DOMAIN included. */
  records: u32(8),
  reserved: u32(12),
});

export type ImageProblem = 'magic' | 'version' | 'truncated' | 'checksum' | 'layout' | 'order';

/** A save image that cannot be used; `problem` says what is wrong, `offset` where (bytes from the start). */
export class ImageError extends XencallError {
  readonly problem: ImageProblem;
  readonly offset: number;
  constructor(problem: ImageProblem, offset: number, message: string) {
    super(ErrorCodes.IMAGE_INVALID, `save image ${problem} at byte ${offset}: ${message}`);
    this.problem = problem;
    this.offset = offset;
  }
}

const pad8 = (n: number) => (8 - (n & 7)) & 7;
const ZEROS = new Uint8Array(8);
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const crcOf = (parts: readonly Uint8Array[]) => parts.reduce((c, p) => crc32(p, c), 0);

// ---- writing --------------------------------------------------------------------------------

/** Where an image goes: gets each record as a list of chunks (writev-friendly; nothing copied). */
export type ImageSink = (chunks: readonly Uint8Array[]) => void | Promise<void>;

export function fileHeader(flags: number): Uint8Array {
  const b = new Uint8Array(FILE_HEADER.size);
  encode(FILE_HEADER, view(b), 0, { magic: IMAGE_MAGIC, version: IMAGE_VERSION, flags });
  view(b).setUint32(FILE_HEADER.fields.header_crc.offset, crc32(b.subarray(0, 20)), true);
  return b;
}

/** One record as chunks: header, the payload parts as given (not copied), padding. */
export function recordChunks(type: RecordType, parts: readonly Uint8Array[]): Uint8Array[] {
  const length = parts.reduce((n, p) => n + p.length, 0);
  if (length > MAX_RECORD_BYTES) throw new RangeError(`record payload of ${length} bytes exceeds ${MAX_RECORD_BYTES}`);
  const h = new Uint8Array(RECORD_HEADER.size);
  encode(RECORD_HEADER, view(h), 0, { type, length, payload_crc: crcOf(parts) });
  view(h).setUint32(RECORD_HEADER.fields.header_crc.offset, crc32(h.subarray(0, 12)), true);
  const p = pad8(length);
  return p ? [h, ...parts, ZEROS.subarray(0, p)] : [h, ...parts];
}

/**
 * Writes an image record by record. The caller keeps the order (DOMAIN first, END last); the
 * writer counts what END must carry.
 */
export class ImageWriter {
  private records = 0;
  private pageCount = 0n;
  private ended = false;
  constructor(private readonly sink: ImageSink) {}

  async begin(flags: number, domain: Partial<DomainRecord>): Promise<void> {
    const d = new Uint8Array(DOMAIN_RECORD.size);
    encode(DOMAIN_RECORD, view(d), 0, { page_size: XEN_PAGE_SIZE, ...domain });
    await this.sink([fileHeader(flags), ...recordChunks(RECORD.DOMAIN, [d])]);
    this.records = 1;
  }

  /**
   * Page contents: `gfns[i]`'s 4096 bytes at data[i*4096]. Split into records of at most
   * MAX_PAGES_PER_RECORD pages; `data` is referenced, not copied, until the sink returns.
   */
  async pages(gfns: BigUint64Array, data: Uint8Array): Promise<void> {
    if (data.length !== gfns.length * XEN_PAGE_SIZE) throw new RangeError(`${gfns.length} gfns need ${gfns.length * XEN_PAGE_SIZE} bytes of data, got ${data.length}`);
    for (let i = 0; i < gfns.length; i += MAX_PAGES_PER_RECORD) {
      const n = Math.min(MAX_PAGES_PER_RECORD, gfns.length - i);
      const head = new Uint8Array(8 + n * 8);
      view(head).setUint32(0, n, true);
      new BigUint64Array(head.buffer, 8, n).set(gfns.subarray(i, i + n));
      await this.sink(recordChunks(RECORD.PAGE_DATA, [head, data.subarray(i * XEN_PAGE_SIZE, (i + n) * XEN_PAGE_SIZE)]));
      this.records++;
      this.pageCount += BigInt(n);
    }
  }

  async hvmParams(params: ReadonlyMap<number, bigint>): Promise<void> {
    const b = new Uint8Array(8 + params.size * 16);
    const v = view(b);
    v.setUint32(0, params.size, true);
    let at = 8;
    for (const [index, value] of params) {
      v.setUint32(at, index, true);
      v.setBigUint64(at + 8, value, true);
      at += 16;
    }
    await this.sink(recordChunks(RECORD.HVM_PARAMS, [b]));
    this.records++;
  }

  async hvmContext(blob: Uint8Array): Promise<void> {
    await this.sink(recordChunks(RECORD.HVM_CONTEXT, [blob]));
    this.records++;
  }

  async end(): Promise<void> {
    if (this.ended) return;
    const b = new Uint8Array(END_RECORD.size);
    encode(END_RECORD, view(b), 0, { pages: this.pageCount, records: this.records });
    await this.sink(recordChunks(RECORD.END, [b]));
    this.ended = true;
  }

  /** PAGE_DATA pages written so far. */
  get pagesWritten(): bigint {
    return this.pageCount;
  }
}

// ---- reading --------------------------------------------------------------------------------

export type ImageRecord =
  | { type: 'DOMAIN'; offset: number; domain: DomainRecord; flags: number }
  | { type: 'PAGE_DATA'; offset: number; gfns: BigUint64Array; data: Uint8Array }
  | { type: 'HVM_PARAMS'; offset: number; params: Map<number, bigint> }
  | { type: 'HVM_CONTEXT'; offset: number; context: Uint8Array }
  | { type: 'END'; offset: number; pages: bigint; records: number };

/** Bytes from any source, read exactly: a Uint8Array or an async iterable of chunks (a stream). */
class ByteReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  offset = 0;
  private done = false;
  private readonly it: AsyncIterator<Uint8Array> | null;

  constructor(source: Uint8Array | AsyncIterable<Uint8Array>) {
    if (source instanceof Uint8Array) {
      this.chunks = [source];
      this.buffered = source.length;
      this.done = true;
      this.it = null;
    } else this.it = source[Symbol.asyncIterator]();
  }

  /** Exactly n bytes, or null if the source ends first (after `atLeast` the short read is an error). */
  async read(n: number): Promise<Uint8Array | null> {
    while (this.buffered < n && !this.done) {
      const r = await this.it!.next();
      if (r.done) this.done = true;
      else if (r.value.length) {
        this.chunks.push(r.value);
        this.buffered += r.value.length;
      }
    }
    if (this.buffered < n) return null;
    let out: Uint8Array;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = new Uint8Array(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0]!;
        const take = Math.min(c.length, n - at);
        out.set(c.subarray(0, take), at);
        at += take;
        if (take === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(take);
      }
    }
    this.buffered -= n;
    this.offset += n;
    return out;
  }

  async atEnd(): Promise<boolean> {
    return (await this.read(1)) === null;
  }

  async close(): Promise<void> {
    await this.it?.return?.();
  }
}

/**
 * Reads and checks an image record by record: the magic, the version, every CRC, the record
 * order (DOMAIN first, END last, nothing after it), every gfn below DOMAIN's p2m_size, and END's
 * counts. Throws ImageError at the first problem, before yielding the record that has it.
 */
export async function* readImage(source: Uint8Array | AsyncIterable<Uint8Array>): AsyncGenerator<ImageRecord, void, void> {
  const r = new ByteReader(source);
  try {
    const h = await r.read(FILE_HEADER.size);
    if (!h) throw new ImageError('truncated', r.offset, `the file header needs ${FILE_HEADER.size} bytes`);
    if (!IMAGE_MAGIC.every((b, i) => h[i] === b)) throw new ImageError('magic', 0, 'not a xencall save image (bad magic)');
    const header = decode(FILE_HEADER, view(h));
    if (header.header_crc !== crc32(h.subarray(0, 20))) throw new ImageError('checksum', 0, 'the file header CRC does not match');
    if (header.version !== IMAGE_VERSION) {
      throw new ImageError('version', 8, `image version ${header.version}; this xencall reads version ${IMAGE_VERSION}`);
    }
    let domain: DomainRecord | null = null;
    let records = 0;
    let pages = 0n;
    for (;;) {
      const at = r.offset;
      const rh = await r.read(RECORD_HEADER.size);
      if (!rh) throw new ImageError('truncated', at, `the image ends after ${records} records without an END record`);
      const rec = decode(RECORD_HEADER, view(rh));
      if (rec.header_crc !== crc32(rh.subarray(0, 12))) throw new ImageError('checksum', at, `record ${records}: the record header CRC does not match`);
      const name = RECORD_NAMES.get(rec.type);
      if (!name) throw new ImageError('layout', at, `record ${records}: unknown record type ${rec.type}`);
      if (rec.length > MAX_RECORD_BYTES) throw new ImageError('layout', at, `record ${records} (${name}): ${rec.length} bytes is more than any record holds`);
      const padded = rec.length + pad8(rec.length);
      const body = await r.read(padded);
      if (!body) throw new ImageError('truncated', at, `record ${records} (${name}) needs ${padded} bytes; the image ends first`);
      const payload = body.subarray(0, rec.length);
      if (crc32(payload) !== rec.payload_crc) throw new ImageError('checksum', at, `record ${records} (${name}): the payload CRC does not match`);
      if (body.subarray(rec.length).some((b) => b !== 0)) throw new ImageError('layout', at, `record ${records} (${name}): padding is not zero`);
      if ((records === 0) !== (rec.type === RECORD.DOMAIN)) {
        throw new ImageError('order', at, records === 0 ? `the first record is ${name}, not DOMAIN` : `a second DOMAIN record (record ${records})`);
      }
      const pv = view(payload);
      const need = (n: number) => {
        if (payload.length !== n) throw new ImageError('layout', at, `record ${records} (${name}): ${payload.length} bytes where ${n} are expected`);
      };
      switch (rec.type) {
        case RECORD.DOMAIN: {
          need(DOMAIN_RECORD.size);
          domain = decode(DOMAIN_RECORD, pv);
          if (domain.page_size !== XEN_PAGE_SIZE) throw new ImageError('layout', at, `page size ${domain.page_size}; xencall restores ${XEN_PAGE_SIZE}-byte pages`);
          if (domain.max_vcpus < 1) throw new ImageError('layout', at, 'DOMAIN: max_vcpus is 0');
          if (domain.p2m_size < 1n || domain.p2m_size > MAX_P2M_SIZE) throw new ImageError('layout', at, `DOMAIN: p2m size ${domain.p2m_size} (1 to 2^40 gfns)`);
          yield { type: 'DOMAIN', offset: at, domain, flags: header.flags };
          break;
        }
        case RECORD.PAGE_DATA: {
          if (payload.length < 8) need(8);
          const n = pv.getUint32(0, true);
          if (n < 1 || n > MAX_PAGES_PER_RECORD) throw new ImageError('layout', at, `PAGE_DATA with ${n} pages (1 to ${MAX_PAGES_PER_RECORD})`);
          need(8 + n * (8 + XEN_PAGE_SIZE));
          // Copy the gfns out: the payload may sit at any alignment inside a stream chunk.
          const gfns = new BigUint64Array(n);
          new Uint8Array(gfns.buffer).set(payload.subarray(8, 8 + n * 8));
          for (const g of gfns) {
            if (g >= domain!.p2m_size) throw new ImageError('layout', at, `PAGE_DATA gfn ${g} is not below the domain's p2m size ${domain!.p2m_size}`);
          }
          pages += BigInt(n);
          yield { type: 'PAGE_DATA', offset: at, gfns, data: payload.subarray(8 + n * 8) };
          break;
        }
        case RECORD.HVM_PARAMS: {
          if (payload.length < 8) need(8);
          const n = pv.getUint32(0, true);
          need(8 + n * 16);
          const params = new Map<number, bigint>();
          for (let i = 0; i < n; i++) params.set(pv.getUint32(8 + i * 16, true), pv.getBigUint64(16 + i * 16, true));
          yield { type: 'HVM_PARAMS', offset: at, params };
          break;
        }
        case RECORD.HVM_CONTEXT:
          yield { type: 'HVM_CONTEXT', offset: at, context: payload };
          break;
        case RECORD.END: {
          need(END_RECORD.size);
          const end = decode(END_RECORD, pv);
          if (end.records !== records || end.pages !== pages) {
            throw new ImageError('layout', at, `END counts ${end.records} records and ${end.pages} pages; the image has ${records} and ${pages}`);
          }
          if (!(await r.atEnd())) throw new ImageError('layout', r.offset - 1, 'data after the END record');
          yield { type: 'END', offset: at, pages, records };
          return;
        }
      }
      records++;
    }
  } finally {
    await r.close();
  }
}

export interface ImageSummary {
  domain: DomainRecord;
  flags: number;
  /** PAGE_DATA pages, duplicates included. */
  pageRecords: bigint;
  /** Distinct gfns with contents. */
  distinctPages: number;
  hvmContextBytes: number;
  hvmParams: number;
  bytes: number;
}

/** Reads a whole image and checks it (restore does this first for a file: nothing is created from a bad image). */
export async function verifyImage(source: Uint8Array | AsyncIterable<Uint8Array>): Promise<ImageSummary> {
  let s: Partial<ImageSummary> = { pageRecords: 0n, hvmContextBytes: 0, hvmParams: 0 };
  const seen = new GfnSet();
  for await (const rec of readImage(source)) {
    switch (rec.type) {
      case 'DOMAIN':
        s = { ...s, domain: rec.domain, flags: rec.flags };
        break;
      case 'PAGE_DATA':
        s.pageRecords! += BigInt(rec.gfns.length);
        for (const g of rec.gfns) seen.add(Number(g));
        break;
      case 'HVM_PARAMS':
        s.hvmParams = rec.params.size;
        break;
      case 'HVM_CONTEXT':
        s.hvmContextBytes = rec.context.length;
        break;
      case 'END':
        s.bytes = rec.offset + RECORD_HEADER.size + END_RECORD.size;
        break;
    }
  }
  return { ...(s as ImageSummary), distinctPages: seen.size };
}
