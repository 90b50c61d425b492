// The save image format (src/saverestore/image.ts): round trips through any chunking, and every
// truncation or corruption is a typed ImageError naming the problem, never a wrong success.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ErrorCodes } from '../src/errors.js';
import { ImageError, ImageWriter, IMAGE_FLAG_LIVE, IMAGE_VERSION, MAX_PAGES_PER_RECORD, readImage, verifyImage, type ImageRecord } from '../src/saverestore/image.js';

const PAGE = 4096;

async function build(opts: { pages?: number; repeat?: number[]; context?: Uint8Array } = {}): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const w = new ImageWriter((c) => {
    for (const x of c) chunks.push(x.slice());
  });
  const n = opts.pages ?? 5;
  await w.begin(IMAGE_FLAG_LIVE, { source_domid: 7, xen_major: 4, xen_minor: 17, cdf_flags: 5, emulation_flags: 1, max_vcpus: 1, max_mem_kb: 5120n, p2m_size: 8192n, tot_pages: BigInt(n) });
  const gfns = BigUint64Array.from({ length: n }, (_, i) => BigInt(i * 3));
  const data = new Uint8Array(n * PAGE).map((_, i) => (i * 7 + (i >> 12)) & 0xff);
  await w.pages(gfns, data);
  if (opts.repeat) {
    const g = BigUint64Array.from(opts.repeat, BigInt);
    await w.pages(g, new Uint8Array(g.length * PAGE).fill(0xee));
  }
  await w.hvmParams(new Map([[1, 0x1234n], [34, 0xffff_ffff_ffffn]]));
  await w.hvmContext(opts.context ?? Uint8Array.from({ length: 77 }, (_, i) => i));
  await w.end();
  // A plain Uint8Array: Buffer's slice() would share memory and the corruption tests would leak.
  return new Uint8Array(Buffer.concat(chunks));
}

async function collect(source: Uint8Array | AsyncIterable<Uint8Array>): Promise<ImageRecord[]> {
  const out: ImageRecord[] = [];
  for await (const r of readImage(source)) out.push(r.type === 'PAGE_DATA' ? { ...r, data: r.data.slice() } : r);
  return out;
}

async function* chunked(b: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  let i = 0;
  while (at < b.length) {
    const n = Math.max(1, sizes[i++ % sizes.length]!);
    yield b.subarray(at, at + n);
    at += n;
  }
}

async function problemOf(b: Uint8Array): Promise<string | null> {
  try {
    await verifyImage(b);
    return null;
  } catch (e) {
    assert.ok(e instanceof ImageError, `expected an ImageError, got ${String(e)}`);
    assert.equal(e.code, ErrorCodes.IMAGE_INVALID);
    return e.problem;
  }
}

test('an image reads back record for record, the same whatever the chunking', async () => {
  const img = await build({ repeat: [3, 6] });
  const whole = await collect(img);
  assert.deepEqual(
    whole.map((r) => r.type),
    ['DOMAIN', 'PAGE_DATA', 'PAGE_DATA', 'HVM_PARAMS', 'HVM_CONTEXT', 'END'],
  );
  const d = whole[0]!;
  assert.ok(d.type === 'DOMAIN' && d.domain.source_domid === 7 && d.domain.p2m_size === 8192n && d.flags === IMAGE_FLAG_LIVE);
  const p = whole[1]!;
  assert.ok(p.type === 'PAGE_DATA');
  assert.deepEqual([...p.gfns], [0n, 3n, 6n, 9n, 12n]);
  assert.equal(p.data[PAGE + 5], (PAGE + 5) * 7 + 1 & 0xff);
  const params = whole[3]!;
  assert.ok(params.type === 'HVM_PARAMS' && params.params.get(34) === 0xffff_ffff_ffffn);
  await fc.assert(
    fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 8 }), async (sizes) => {
      assert.deepEqual(await collect(chunked(img, sizes)), whole);
    }),
    { numRuns: 40 },
  );
  const s = await verifyImage(img);
  assert.equal(s.pageRecords, 7n);
  assert.equal(s.distinctPages, 5);
  assert.equal(s.bytes, img.length);
});

test('large page batches are split into records of at most MAX_PAGES_PER_RECORD pages', async () => {
  const img = await build({ pages: MAX_PAGES_PER_RECORD + 3 });
  const recs = await collect(img);
  const sizes = recs.filter((r) => r.type === 'PAGE_DATA').map((r) => (r.type === 'PAGE_DATA' ? r.gfns.length : 0));
  assert.deepEqual(sizes, [MAX_PAGES_PER_RECORD, 3]);
});

test('every truncation is "truncated" (or a missing END), never a success', async () => {
  const img = await build({ pages: 2 });
  for (let len = 0; len < img.length; len += len < 200 ? 1 : 97) {
    assert.equal(await problemOf(img.subarray(0, len)), 'truncated', `cut at ${len} of ${img.length}`);
  }
});

test('every single-byte corruption is caught as a typed problem', async () => {
  const img = await build({ pages: 2 });
  // Every byte of the headers and small records, a sample of the page data.
  const offsets: number[] = [];
  for (let i = 0; i < img.length; i += i < 160 || i > img.length - 200 ? 1 : 211) offsets.push(i);
  for (const at of offsets) {
    const bad = img.slice();
    bad[at]! ^= 0x41;
    const problem = await problemOf(bad);
    assert.ok(problem !== null, `a flipped byte at ${at} went unnoticed`);
  }
});

test('the wrong magic, version or record order is named', async () => {
  const img = await build({ pages: 1 });
  const magic = img.slice();
  magic[1] = 0x59;
  assert.equal(await problemOf(magic), 'magic');

  // A future version with a correct header CRC: the version is what is reported.
  const { fileHeader } = await import('../src/saverestore/image.js');
  const v2 = img.slice();
  const h = fileHeader(0);
  new DataView(h.buffer).setUint32(8, IMAGE_VERSION + 1, true);
  const { crc32 } = await import('node:zlib');
  new DataView(h.buffer).setUint32(20, crc32(h.subarray(0, 20)), true);
  v2.set(h, 0);
  await assert.rejects(verifyImage(v2), (e: unknown) => e instanceof ImageError && e.problem === 'version' && /version 2; this xencall reads version 1/.test(e.message));

  // A stream that starts with a PAGE_DATA record.
  const { recordChunks, RECORD } = await import('../src/saverestore/image.js');
  const noDomain = new Uint8Array(Buffer.concat([fileHeader(0), ...recordChunks(RECORD.END, [new Uint8Array(16)])]));
  assert.equal(await problemOf(noDomain), 'order');

  const trailing = new Uint8Array(Buffer.concat([img, new Uint8Array(8)]));
  assert.equal(await problemOf(trailing), 'layout');
});

test('a gfn outside the p2m size is refused before the record is handed out', async () => {
  const chunks: Uint8Array[] = [];
  const w = new ImageWriter((c) => void chunks.push(...c.map((x) => x.slice())));
  await w.begin(0, { max_vcpus: 1, p2m_size: 16n });
  await w.pages(BigUint64Array.of(16n), new Uint8Array(PAGE));
  await w.end();
  const got: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const r of readImage(Buffer.concat(chunks))) got.push(r.type);
    })(),
    (e: unknown) => e instanceof ImageError && e.problem === 'layout' && /gfn 16/.test(e.message),
  );
  assert.deepEqual(got, ['DOMAIN']);
});
