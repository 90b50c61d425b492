// The test guest's ELF image: assembled from the package's own source (src/testing/guest/) with
// the system's binutils at test time, cached by the hash of what went into it, and parsed and
// checked before anything of it reaches a domain.

import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ErrorCodes, ValidationError, XencallError, describeValue } from '../errors.js';
import { optionBag } from '../input.js';
import { XEN_ELFNOTE } from '../hypercalls/values.js';
import { TEST_GUEST_CONTROL, TEST_GUEST_COUNTER, TEST_GUEST_IMAGE_HEADER, TEST_GUEST_LAYOUT, TEST_GUEST_PATTERN, TEST_GUEST_WORK } from './test-guest-layout.js';

const run = promisify(execFile);

/** Where a test guest's build or boot stopped. */
export type TestGuestStep =
  | 'build'
  | 'image'
  | 'createdomain'
  | 'max_vcpus'
  | 'max_mem'
  | 'populate_physmap'
  | 'load'
  | 'gethvmcontext'
  | 'sethvmcontext'
  | 'unpausedomain'
  /** A foreign mapping of a running guest's page failed. */
  | 'map'
  /** waitForProgress / waitForWriteSet gave up. */
  | 'wait';

/** XEN_ERR_TEST_GUEST: the step that failed, with the underlying error as `cause`. */
export class TestGuestError extends XencallError {
  readonly step: TestGuestStep;
  constructor(step: TestGuestStep, message: string, options?: { cause?: unknown }) {
    super(ErrorCodes.TEST_GUEST, `test guest, ${step}: ${message}`, options);
    this.step = step;
  }
}

/** The symbols the assembler and the linker are given: the layout, protocol and pattern. */
export function testGuestSymbols(): { as: Record<string, number>; ld: Record<string, number> } {
  const L = TEST_GUEST_LAYOUT;
  const C = TEST_GUEST_CONTROL;
  const K = TEST_GUEST_COUNTER;
  const W = TEST_GUEST_WORK;
  const P = TEST_GUEST_PATTERN;
  return {
    as: {
      GUEST_VERSION: L.version,
      ELFNOTE_PHYS32_ENTRY: XEN_ELFNOTE.PHYS32_ENTRY,
      CONTROL_GFN: L.controlGfn,
      COUNTER_GFN: L.counterGfn,
      WORK_GFN: L.workGfn,
      STACK_GFN: L.stackGfn,
      RESERVED_FIRST: L.reservedFirstGfn,
      RESERVED_END: L.reservedEndGfn,
      MAX_WRITE_SET: L.maxWriteSet,
      CONTROL_MAGIC: C.magic,
      CONTROL_MAGIC_OFF: C.magicOffset,
      CONTROL_VERSION: C.versionOffset,
      CONTROL_GENERATION: C.generationOffset,
      CONTROL_PAGES: C.pagesOffset,
      CONTROL_COUNT: C.countOffset,
      CONTROL_GFNS: C.gfnsOffset,
      COUNTER_ITER_LO: K.iterationsOffset,
      COUNTER_ITER_HI: K.iterationsOffset + 4,
      COUNTER_GENERATION: K.generationOffset,
      COUNTER_WRITING: K.writingOffset,
      WORK_PAGES: W.pagesOffset,
      WORK_COUNT: W.countOffset,
      WORK_GFNS: W.gfnsOffset,
      PAGE_MAGIC: P.pageMagic,
      MIX_ITER_LO: P.mixIterLo,
      MIX_ITER_HI: P.mixIterHi,
      MIX_GFN: P.mixGfn,
      MIX_WORD: P.mixWord,
    },
    ld: { GUEST_BASE: L.codeGfn * L.pageSize, CODE_PAGES: L.codePages },
  };
}

const SOURCE = 'test-guest.s';
const LINKER_SCRIPT = 'test-guest.ld';

/**
 * The directory holding the guest's source: next to this module under src/, or the package's
 * src/testing/guest/ when running from the bundled dist/ ("files" in package.json ships it).
 */
export function testGuestSourceDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'guest'), path.join(here, '..', 'src', 'testing', 'guest')];
  const found = candidates.find((d) => fs.existsSync(path.join(d, SOURCE)) && fs.existsSync(path.join(d, LINKER_SCRIPT)));
  if (!found) throw new TestGuestError('build', `the guest's source (${SOURCE}, ${LINKER_SCRIPT}) is not in ${candidates.join(' or ')}; is the package complete?`);
  return found;
}

export interface BuildTestGuestOptions {
  /** Where built images are kept. Default: $XENCALL_TEST_GUEST_CACHE, else a per-user directory under os.tmpdir(). */
  cacheDir?: string;
  /** Build even when a cached image of the same source exists. */
  force?: boolean;
  /** The assembler and linker. Default: $AS or "as", $LD or "ld" (GNU binutils with elf_i386). */
  as?: string;
  ld?: string;
}

export function defaultTestGuestCacheDir(): string {
  const env = process.env.XENCALL_TEST_GUEST_CACHE;
  if (env) return env;
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  return path.join(os.tmpdir(), `xencall-test-guest-${uid}`);
}

/**
 * Assembles and links the test guest, or finds it in the cache: the file name carries a hash of
 * the source, the linker script and the symbols, so a changed layout is a new image. Returns
 * the image's path and whether it was built now.
 */
export async function buildTestGuestImage(options?: BuildTestGuestOptions): Promise<{ path: string; built: boolean }> {
  options = optionBag('options', options);
  for (const k of ['cacheDir', 'as', 'ld'] as const) {
    if (options[k] !== undefined && (typeof options[k] !== 'string' || options[k] === '')) throw new ValidationError(`options.${k}`, `must be a non-empty string, got ${describeValue(options[k])}`);
  }
  if (options.force !== undefined && typeof options.force !== 'boolean') throw new ValidationError('options.force', `must be a boolean, got ${describeValue(options.force)}`);
  const dir = testGuestSourceDir();
  const source = fs.readFileSync(path.join(dir, SOURCE));
  const script = fs.readFileSync(path.join(dir, LINKER_SCRIPT));
  const syms = testGuestSymbols();
  const key = createHash('sha256').update(source).update('\0').update(script).update('\0').update(JSON.stringify(syms)).digest('hex').slice(0, 20);
  const cacheDir = options.cacheDir ?? defaultTestGuestCacheDir();
  const target = path.join(cacheDir, `test-guest-${key}.elf`);
  if (!options.force && fs.existsSync(target)) {
    try {
      loadTestGuestImage(target);
      return { path: target, built: false };
    } catch {
      // A damaged cache entry is rebuilt below.
    }
  }
  let work: string;
  try {
    fs.mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    work = fs.mkdtempSync(path.join(cacheDir, 'build-'));
  } catch (e) {
    throw new TestGuestError('build', `cannot use the cache directory ${cacheDir}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const object = path.join(work, 'test-guest.o');
    const elf = path.join(work, 'test-guest.elf');
    const defsyms = (m: Record<string, number>) => Object.entries(m).flatMap(([k, v]) => ['--defsym', `${k}=0x${v.toString(16)}`]);
    await tool(options.as ?? process.env.AS ?? 'as', ['--32', ...defsyms(syms.as), '-o', object, path.join(dir, SOURCE)]);
    await tool(options.ld ?? process.env.LD ?? 'ld', [
      '-m', 'elf_i386', '-static', '-nostdlib', '--build-id=none', '-z', 'max-page-size=0x1000',
      ...defsyms(syms.ld), '-T', path.join(dir, LINKER_SCRIPT), '-o', elf, object,
    ]);
    loadTestGuestImage(elf);
    // rename() is atomic: a concurrent build of the same source leaves one whole file.
    try {
      fs.renameSync(elf, target);
    } catch (e) {
      throw new TestGuestError('build', `cannot store the image as ${target}: ${(e as Error).message}`, { cause: e });
    }
    return { path: target, built: true };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function tool(file: string, args: string[]): Promise<void> {
  try {
    await run(file, args, { timeout: 60_000 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    const why = err.code === 'ENOENT' ? `${file} is not installed (GNU binutils: apt-get install binutils), or pass bootTestGuest an image built elsewhere` : (err.stderr?.trim() || err.message);
    throw new TestGuestError('build', `${path.basename(file)} failed: ${why}`, { cause: e });
  }
}

export interface TestGuestSegment {
  /** Guest-physical address of the segment's first byte. */
  readonly paddr: number;
  /** The bytes from the file (p_filesz). */
  readonly data: Uint8Array;
  /** Bytes in memory (p_memsz >= data.length; the rest is zero). */
  readonly memsz: number;
}

export interface TestGuestImage {
  /** The file it was read from, when it came from one. */
  readonly path: string | null;
  /** XEN_ELFNOTE_PHYS32_ENTRY: where the vcpu starts. */
  readonly entry: number;
  readonly segments: readonly TestGuestSegment[];
  /** The layout/protocol version in the image header. */
  readonly version: number;
}

const PT_LOAD = 1;
const PT_NOTE = 4;
const EM_386 = 3;
const ET_EXEC = 2;

/**
 * Reads and checks a test guest image: a 32-bit x86 ELF executable whose loadable segments fit
 * in the code pages, with Xen's PHYS32_ENTRY note, and whose first bytes are the test guest's
 * header with this package's version and the same entry point.
 */
export function loadTestGuestImage(source: string | Uint8Array): TestGuestImage {
  let bytes: Uint8Array;
  const file = typeof source === 'string' ? source : null;
  if (typeof source === 'string') {
    try {
      bytes = new Uint8Array(fs.readFileSync(source));
    } catch (e) {
      throw new TestGuestError('image', `cannot read ${source}: ${(e as Error).message}`, { cause: e });
    }
  } else if (source instanceof Uint8Array) {
    bytes = source;
  } else {
    throw new ValidationError('image', `must be a path or the image's bytes, got ${describeValue(source)}`);
  }
  const what = file ?? 'the image';
  const bad = (msg: string): never => {
    throw new TestGuestError('image', `${what}: ${msg}`);
  };
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 52 || v.getUint32(0, false) !== 0x7f454c46) bad('not an ELF file');
  if (bytes[4] !== 1 || bytes[5] !== 1) bad('not a 32-bit little-endian ELF file');
  if (v.getUint16(16, true) !== ET_EXEC || v.getUint16(18, true) !== EM_386) bad('not an i386 executable');
  const phoff = v.getUint32(28, true);
  const phentsize = v.getUint16(42, true);
  const phnum = v.getUint16(44, true);
  if (phentsize < 32 || phoff + phnum * phentsize > bytes.length) bad('program headers run past the end of the file');

  const L = TEST_GUEST_LAYOUT;
  const codeStart = L.codeGfn * L.pageSize;
  const codeEnd = codeStart + L.codePages * L.pageSize;
  const segments: TestGuestSegment[] = [];
  let entry: number | null = null;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const type = v.getUint32(at, true);
    const offset = v.getUint32(at + 4, true);
    const paddr = v.getUint32(at + 12, true);
    const filesz = v.getUint32(at + 16, true);
    const memsz = v.getUint32(at + 20, true);
    if (offset + filesz > bytes.length) bad(`segment ${i} runs past the end of the file`);
    if (type === PT_LOAD) {
      if (memsz < filesz) bad(`segment ${i} is smaller in memory than in the file`);
      if (paddr < codeStart || paddr + memsz > codeEnd) {
        bad(`segment ${i} (0x${paddr.toString(16)}+0x${memsz.toString(16)}) is outside the code pages 0x${codeStart.toString(16)}-0x${(codeEnd - 1).toString(16)}`);
      }
      segments.push({ paddr, data: bytes.slice(offset, offset + filesz), memsz });
    } else if (type === PT_NOTE) {
      // Notes: namesz, descsz, type, name padded to 4, desc padded to 4 (as Xen's libelf reads them).
      let n = offset;
      const end = offset + filesz;
      while (n + 12 <= end) {
        const namesz = v.getUint32(n, true);
        const descsz = v.getUint32(n + 4, true);
        const ntype = v.getUint32(n + 8, true);
        const nameAt = n + 12;
        const descAt = nameAt + align4(namesz);
        if (descAt + descsz > end) bad('a note runs past its segment');
        const name = Buffer.from(bytes.subarray(nameAt, nameAt + namesz)).toString('latin1').replace(/\0+$/, '');
        if (name === 'Xen' && ntype === XEN_ELFNOTE.PHYS32_ENTRY) {
          if (descsz === 4) entry = v.getUint32(descAt, true);
          else if (descsz === 8) entry = Number(v.getBigUint64(descAt, true));
          else bad(`the PHYS32_ENTRY note has ${descsz} bytes, not 4 or 8`);
        }
        n = descAt + align4(descsz);
      }
    }
  }
  if (entry === null) bad(`no Xen PHYS32_ENTRY note (type ${XEN_ELFNOTE.PHYS32_ENTRY}): Xen cannot start it as a PVH guest`);
  if (segments.length === 0) bad('no loadable segment');
  const first = segments.find((s) => s.paddr === codeStart);
  const H = TEST_GUEST_IMAGE_HEADER;
  if (!first || first.data.length < H.size) bad(`no image header at 0x${codeStart.toString(16)}`);
  const hv = new DataView(first!.data.buffer, first!.data.byteOffset, H.size);
  if (Buffer.from(first!.data.subarray(0, 16)).toString('latin1') !== H.magic) bad('not the xencall test guest (its image header is missing)');
  const version = hv.getUint32(H.versionOffset, true);
  if (version !== L.version) bad(`test guest version ${version}; this package's is ${L.version} (rebuild it)`);
  if (hv.getUint32(H.entryOffset, true) !== entry) bad('the image header and the PHYS32_ENTRY note disagree on the entry point');
  if (entry! < codeStart || entry! >= codeEnd) bad(`the entry point 0x${entry!.toString(16)} is outside the code pages`);
  return { path: file, entry: entry!, segments, version };
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
