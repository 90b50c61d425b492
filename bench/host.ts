// `npm run bench`: what xencall costs per call on the host, measured in one run as ratios.
// Not a test: it prints figures and the targets of issue 13 as pass/miss (--json writes them),
// and it asserts nothing.
//
//  - xencall's own cost, over a backend that answers 0 without leaving JavaScript
//    (bench/zero-backend.ts): raw and typed calls, and the bulk calls per entry;
//  - the real backend's raw path against a bare koffi ioctl on /dev/null (the FFI floor) and
//    against C doing the same ioctl (compiled here with cc, never committed);
//  - the mock hypervisor's raw and typed calls, the retry decision, buffer allocation;
//  - what importing the package and the CLI's --help add to a bare node start (child processes);
//  - RSS growth over 1e6 raw calls.
//
// Ratios are taken in pairs: the two sides run in alternating batches and the figure is the
// median of the per-pair ratios, so a slow moment of the machine hits both sides alike.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../src/index.js';
import { ZeroBackend } from './zero-backend.js';

// The built package is measured, as users run it (`npm run bench` builds first); its types are
// the sources'. The paths are variables so the typecheck does not need a build.
const distIndex = '../dist/index.js';
const distTesting = '../dist/testing.js';
const { DEFAULT_RETRY_POLICY, decideRetry, openSync, rowByName } = (await import(distIndex)) as typeof import('../src/index.js');
const { MockHypervisor } = (await import(distTesting)) as typeof import('../src/testing/index.js');
import { PrivcmdBackend, IOCTL_PRIVCMD_HYPERCALL } from '../src/backends/privcmd.js';

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const REPS = quick ? 3 : 9;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Figure {
  median: number;
  min: number;
  max: number;
  unit: string;
}
const results: Record<string, Figure> = {};
const put = (k: string, v: { median: number; min: number; max: number }, unit = 'ns/op') => (results[k] = { ...v, unit });

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s.at(-1)! };
};

/** ns per call of one batch of n calls. */
function batch(n: number, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t0) / n;
}

/** Median ns per operation over REPS batches of n calls, after a warm-up. */
function measure(n: number, fn: () => void): { median: number; min: number; max: number } {
  batch(Math.min(n, 20_000), fn); // warm up the JIT
  const per: number[] = [];
  for (let r = 0; r < REPS; r++) per.push(batch(n, fn));
  return stats(per);
}

/**
 * Times two variants in alternating batches (REPS pairs, after a warm-up of each) and records
 * both; returns the median of the per-pair ratios a/b.
 */
function pair(nameA: string, a: () => void, nameB: string, b: () => void, n: number): { median: number; min: number; max: number } {
  // At least 5,000 calls of each before timing: V8 optimizes after a number of calls, and a bulk
  // variant's batch is only a few hundred.
  batch(Math.min(Math.max(n, 5_000), 20_000), a);
  batch(Math.min(Math.max(n, 5_000), 20_000), b);
  const as: number[] = [];
  const bs: number[] = [];
  const rs: number[] = [];
  const ds: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const x = batch(n, a);
    const y = batch(n, b);
    as.push(x);
    bs.push(y);
    rs.push(x / y);
    ds.push(x - y);
  }
  put(nameA, stats(as));
  put(nameB, stats(bs));
  lastDifference = stats(ds).median;
  return stats(rs);
}
/** The median of the per-pair differences a - b of the last pair(), in ns per call. */
let lastDifference = 0;

interface Target {
  /** What is compared, in words. */
  what: string;
  value: number;
  unit: 'x' | 'ns/entry' | 'MB';
  limit: number;
  /** The figure before issue 13's work, where it was measured with this bench. */
  before?: number;
}
const targets: Target[] = [];
const target = (what: string, value: number, unit: Target['unit'], limit: number) => targets.push({ what, value, unit, limit });

// ---- xencall's own cost: a backend that answers 0 ------------------------------------------------
{
  const xc = openSync({ backend: new ZeroBackend(true) });
  const N = quick ? 100_000 : 500_000;
  // The raw caller of getdomaininfo writes the domctl header before each call (Xen rewrites the
  // struct) and reads what it wants back, as bench/xen.ts's raw variant does.
  const dbuf = xc.allocBuffer(144);
  const dv = dbuf.view();
  const rawGetdomaininfo = () => {
    dv.setUint32(0, 5, true); // XEN_DOMCTL_getdomaininfo
    dv.setUint32(4, 0x15, true); // XEN_DOMCTL_INTERFACE_VERSION
    dv.setUint16(8, 0, true);
    xc.hypercallSync(36, [dbuf.address]);
    return dv.getUint32(16 + 8, true);
  };
  put('zero: raw xen_version (hypercallSync)', measure(N, () => xc.hypercallSync(17, [0n])));
  put('zero: typed xen_version.version (sync)', measure(N, () => xc.sync.xen_version.version()));
  const typedVsRaw = pair(
    'zero: typed domctl.getdomaininfo (sync)',
    () => xc.sync.domctl.getdomaininfo({ domain: 0 }),
    'zero: raw getdomaininfo (hypercallSync, caller writes the header)',
    rawGetdomaininfo,
    N / 2,
  );
  target('typed getdomaininfo / raw getdomaininfo (backend answering 0)', typedVsRaw.median, 'x', 3);
  put('zero: typed domctl.getdomaininfo (async)', measure(N / 10, () => void xc.domctl.getdomaininfo({ domain: 0 })));

  // Bulk calls: 1024 entries each; the per-entry figure is (typed - raw) / 1024.
  const E = 1024;
  const NB = quick ? 500 : 2000;
  const gfns = new BigUint64Array(E).map((_, i) => BigInt(i * 3 + 0x100));
  const gfns32 = Uint32Array.from(gfns, Number);
  const perEntry = (name: string, typed: () => void, raw: () => void) => {
    pair(`zero: ${name} typed (${E})`, typed, `zero: ${name} raw (${E})`, raw, NB);
    const over = lastDifference / E;
    put(`zero: ${name}, typed over raw per entry`, { median: over, min: over, max: over }, 'ns/entry');
    target(`${name}: typed over raw, per entry`, over, 'ns/entry', 5);
  };

  // getpageframeinfo3: the raw caller rewrites the gfns (Xen overwrote them with types) and
  // the domctl, then reads the types back.
  {
    const arr = xc.allocBuffer(E * 8);
    const arr64 = new BigUint64Array(arr.bytes.buffer, arr.bytes.byteOffset, E);
    const arr32 = new Uint32Array(arr.bytes.buffer, arr.bytes.byteOffset, E * 2);
    const types = new Uint32Array(E);
    const raw = () => {
      arr64.set(gfns);
      dv.setUint32(0, 61, true); // XEN_DOMCTL_getpageframeinfo3
      dv.setUint32(4, 0x15, true);
      dv.setUint16(8, 1, true);
      dv.setBigUint64(16, BigInt(E), true);
      dv.setBigUint64(24, arr.address, true);
      xc.hypercallSync(36, [dbuf.address]);
      for (let i = 0; i < E; i++) types[i] = arr32[2 * i]!;
    };
    // Before issue 13 the typed call took bigint[] only: the bench times the fastest form the
    // build accepts, so it can measure the sources before and after.
    let typedIn: unknown = gfns;
    try {
      xc.sync.domctl.getpageframeinfo3({ domain: 1, gfns: typedIn as never });
    } catch {
      typedIn = Array.from(gfns);
      process.stderr.write('bench: getpageframeinfo3 refused a BigUint64Array; timing bigint[]\n');
    }
    perEntry('getpageframeinfo3', () => xc.sync.domctl.getpageframeinfo3({ domain: 1, gfns: typedIn as never }), raw);
    const legacy = Array.from(gfns);
    put(`zero: getpageframeinfo3 typed, bigint[] in (${E})`, measure(NB, () => xc.sync.domctl.getpageframeinfo3({ domain: 1, gfns: legacy as never })));
  }

  // populate_physmap: the raw caller writes the reservation and the list.
  {
    const res = xc.allocBuffer(32);
    const rv = res.view();
    const list = xc.allocBuffer(E * 8);
    const list64 = new BigUint64Array(list.bytes.buffer, list.bytes.byteOffset, E);
    const raw = () => {
      list64.set(gfns);
      rv.setBigUint64(0, list.address, true);
      rv.setBigUint64(8, BigInt(E), true);
      rv.setUint32(16, 0, true);
      rv.setUint32(20, 0, true);
      rv.setUint16(24, 1, true);
      xc.hypercallSync(12, [6, res.address]);
    };
    perEntry('populate_physmap', () => xc.sync.memory_op.populate_physmap({ domid: 1, gfns }), raw);
  }

  // Foreign maps: the raw call is the backend's own mapForeign on a ready BigUint64Array.
  {
    const backend = xc.backend;
    const raw = () => backend.unmapForeign!(backend.mapForeign!(1, gfns, false));
    perEntry('foreign map (Uint32Array gfns)', () => xc.foreignMemory.map(1, gfns32).unmap(), raw);
    put(`zero: foreign map typed, BigUint64Array gfns (${E})`, measure(NB, () => xc.foreignMemory.map(1, gfns).unmap()));
  }

  // Dirty bitmaps: shadow_op peek of 2^20 pages (a 4 GiB guest); the raw caller reads the bitmap
  // out of its own buffer. Entries are pages here.
  {
    const PAGES = 1 << 20;
    const bm = xc.allocBuffer(PAGES / 8);
    const copy = new Uint8Array(PAGES / 8);
    const raw = () => {
      dv.setUint32(0, 13, true); // XEN_DOMCTL_shadow_op
      dv.setUint32(4, 0x15, true);
      dv.setUint16(8, 1, true);
      dv.setUint32(16, 12, true); // XEN_DOMCTL_SHADOW_OP_PEEK
      dv.setUint32(20, 0, true);
      dv.setBigUint64(32, bm.address, true);
      dv.setBigUint64(40, BigInt(PAGES), true);
      xc.hypercallSync(36, [dbuf.address]);
      copy.set(bm.bytes);
    };
    const NP = quick ? 50 : 200;
    pair(`zero: shadow_op.peek typed (${PAGES} pages)`, () => xc.sync.domctl.shadow_op.peek({ domain: 1, pages: BigInt(PAGES) }), `zero: shadow_op.peek raw (${PAGES} pages)`, raw, NP);
    const over = lastDifference / PAGES;
    put('zero: shadow_op.peek, typed over raw per page', { median: over, min: over, max: over }, 'ns/entry');
    target('dirty bitmap (shadow_op.peek): typed over raw, per page', over, 'ns/entry', 5);
  }
  xc.close();
}

// ---- mock ------------------------------------------------------------------------------------
{
  const hv = new MockHypervisor({ historyLimit: 1000 });
  const xc = openSync({ backend: hv.backend() });
  const N = quick ? 20_000 : 100_000;
  put('mock raw xen_version (hypercallSync)', measure(N, () => xc.hypercallSync(17, [0n])));
  put('mock typed xen_version.version (sync)', measure(N, () => xc.sync.xen_version.version()));
  put('mock typed domctl.getdomaininfo (sync)', measure(N / 2, () => xc.sync.domctl.getdomaininfo({ domain: 0 })));
  xc.close();
}

// ---- retry decision ---------------------------------------------------------------------------
{
  const row = rowByName('domctl.getdomaininfo')!;
  const input = { errno: 14, attempt: 1, row, args: undefined, buffersCanFault: true, policy: DEFAULT_RETRY_POLICY };
  put('decideRetry', measure(quick ? 200_000 : 1_000_000, () => decideRetry(input)));
}

// ---- real backend on /dev/null ----------------------------------------------------------------
/**
 * A backend that turns /dev/null's ENOTTY into success, so the success path is what is timed;
 * XENVER_version answers 4.17, so the handle's typed calls pass its one Xen version check.
 */
function succeeding(inner: Backend): Backend {
  return Object.assign(Object.create(inner) as Backend, {
    hypercall: (op: number, args: readonly bigint[]) => {
      const r = inner.hypercall(op, args);
      return r === -25n ? (op === 17 && args[0] === 0n ? 0x40011n : 0n) : r;
    },
  });
}

const require = createRequire(import.meta.url);
const koffi = require('koffi') as typeof import('koffi');
const libc = koffi.load('libc.so.6');
const sys = libc.func('long syscall(long nr, long fd, unsigned long req, void *arg)') as (n: number, fd: number, r: number, a: Buffer) => number;
const openFn = libc.func('int open(const char *path, int flags, uint32_t mode)') as (p: string, f: number, m: number) => number;
const nullFd = openFn('/dev/null', 2, 0);
const struct = Buffer.alloc(48);
const N = quick ? 100_000 : 1_000_000;
put('bare koffi ioctl(/dev/null) (FFI floor)', measure(N, () => sys(16, nullFd, IOCTL_PRIVCMD_HYPERCALL, struct)));

const backend = new PrivcmdBackend({ privcmdPaths: ['/dev/null'], hypercallBufPath: null });
put('PrivcmdBackend.hypercall (reads errno: /dev/null fails)', measure(N, () => backend.hypercall(17, [0n, 0n, 0n, 0n, 0n])));
const xc = openSync({ backend: succeeding(backend) });
put('xencall raw hypercallSync (privcmd, /dev/null)', measure(N, () => xc.hypercallSync(17, [0n])));
const buf = xc.allocBuffer(144);
// The struct is written before every call, as a caller of the raw API does (Xen rewrites it).
const bufView = buf.view();
const writeDomctl = () => {
  bufView.setUint32(0, 5, true); // XEN_DOMCTL_getdomaininfo
  bufView.setUint32(4, 0x15, true); // XEN_DOMCTL_INTERFACE_VERSION
  bufView.setUint16(8, 0, true);
};
put('xencall raw domctl with a buffer (buffers can fault: pristine copy)', measure(N / 2, () => (writeDomctl(), xc.hypercallSync(36, [buf.address]))));
xc.freeBuffer(buf);
put('allocBuffer+freeBuffer (cache hit)', measure(N, () => xc.freeBuffer(xc.allocBuffer(100))));
put('xencall typed xen_version.version (privcmd, /dev/null)', measure(N / 2, () => xc.sync.xen_version.version()));
// As with /dev/xen/hypercall: buffers that cannot fault, so no call can be re-issued and no
// pristine copy is taken. This is the path dom0 runs on any kernel since 4.18.
const backendNf = new PrivcmdBackend({ privcmdPaths: ['/dev/null'], hypercallBufPath: null });
const xcNf = openSync({ backend: Object.assign(Object.create(succeeding(backendNf)) as Backend, { buffersNeverFault: () => true }) });
const bufNf = xcNf.allocBuffer(144);
const bufNfView = bufNf.view();
put(
  'xencall raw domctl with a buffer (never-fault buffers)',
  measure(N / 2, () => {
    bufNfView.setUint32(0, 5, true);
    bufNfView.setUint32(4, 0x15, true);
    bufNfView.setUint16(8, 0, true);
    xcNf.hypercallSync(36, [bufNf.address]);
  }),
);
xcNf.freeBuffer(bufNf);
put('xencall typed domctl.getdomaininfo (never-fault buffers)', measure(N / 4, () => xcNf.sync.domctl.getdomaininfo({ domain: 0 })));

// ---- C, the same ioctl ------------------------------------------------------------------------
let cNs: number | null = null;
try {
  const dir = mkdtempSync(join(tmpdir(), 'xencall-bench-'));
  writeFileSync(
    join(dir, 'ioctl.c'),
    `#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
  long n = atol(argv[1]); int reps = atoi(argv[2]);
  int fd = open("/dev/null", O_RDWR);
  unsigned long long s[6] = {17, 0, 0, 0, 0, 0};
  double best[64];
  for (int r = 0; r < reps; r++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) syscall(SYS_ioctl, fd, 0x00305000UL, s);
    clock_gettime(CLOCK_MONOTONIC, &b);
    best[r] = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
  }
  for (int r = 0; r < reps; r++) printf("%f\\n", best[r]);
  return 0;
}
`,
  );
  execFileSync('cc', ['-O2', '-o', join(dir, 'ioctl'), join(dir, 'ioctl.c')], { timeout: 60_000 });
  const per = execFileSync(join(dir, 'ioctl'), [String(N), String(REPS)], { encoding: 'utf8', timeout: 120_000 })
    .trim()
    .split('\n')
    .map(Number);
  const s = stats(per);
  cNs = s.median;
  put('C syscall(SYS_ioctl) on /dev/null', s);
} catch (e) {
  process.stderr.write(`bench: the C comparison did not run: ${(e as Error).message}\n`);
}

// ---- memory -----------------------------------------------------------------------------------
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const rss0 = process.memoryUsage().rss;
const heap0 = process.memoryUsage().heapUsed;
for (let i = 0; i < 1_000_000; i++) xc.hypercallSync(17, [0n]);
gc?.();
const rssGrowthMb = (process.memoryUsage().rss - rss0) / 2 ** 20;
const heapGrowthMb = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
target('RSS growth over 1e6 raw calls', rssGrowthMb, 'MB', 5);
xcNf.close();
xc.close();

// ---- start-up: a bare node, `import('xencall')`, `xencall --help` ------------------------------
// Each is a fresh node process, run in rotation so the machine's load hits all three alike; the
// figure is the median wall time, and the ratios are of the medians of per-round differences.
{
  const dir = mkdtempSync(join(tmpdir(), 'xencall-bench-start-'));
  const bare = join(dir, 'bare.mjs');
  const imp = join(dir, 'import.mjs');
  writeFileSync(bare, '\n');
  writeFileSync(imp, `import ${JSON.stringify(join(root, 'dist/index.js'))};\n`);
  const cli = join(root, 'dist/cli.js');
  const runs: [string, string[]][] = [
    ['node (bare start)', [bare]],
    ["node: import('xencall')", [imp]],
    ['node: xencall --help', [cli, '--help']],
  ];
  const R = quick ? 8 : 24;
  const times: number[][] = runs.map(() => []);
  for (const [, args] of runs) execFileSync(process.execPath, args, { stdio: 'ignore' }); // page cache
  for (let r = 0; r < R; r++) {
    for (let k = 0; k < runs.length; k++) {
      const j = (k + r) % runs.length;
      const t0 = process.hrtime.bigint();
      execFileSync(process.execPath, runs[j]![1], { stdio: 'ignore' });
      times[j]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  runs.forEach(([name], j) => put(name, stats(times[j]!), 'ms'));
  const added = (j: number) => stats(times[j]!.map((t, r) => (t - times[0]![r]!) / times[0]![r]!)).median;
  target("import('xencall') over a bare node start", added(1), 'x', 0.5);
  target('xencall --help over a bare node start', added(2), 'x', 0.5);
}

const floor = results['bare koffi ioctl(/dev/null) (FFI floor)']!.median;
const raw = results['xencall raw hypercallSync (privcmd, /dev/null)']!.median;
const ratios = {
  'xencall raw / FFI floor (privcmd, /dev/null)': raw / floor,
  'xencall typed getdomaininfo / FFI floor (never-fault)': results['xencall typed domctl.getdomaininfo (never-fault buffers)']!.median / floor,
  'FFI floor / C': cNs ? floor / cNs : null,
  'xencall raw / C': cNs ? raw / cNs : null,
  'typed getdomaininfo / raw xen_version (backend answering 0)':
    results['zero: typed domctl.getdomaininfo (sync)']!.median / results['zero: raw xen_version (hypercallSync)']!.median,
};

const verdict = (t: Target) => (t.value <= t.limit ? 'pass' : 'MISS');
if (json) {
  process.stdout.write(
    `${JSON.stringify({ node: process.version, results, ratios, targets: targets.map((t) => ({ ...t, pass: t.value <= t.limit })), memory: { calls: 1_000_000, rssGrowthMb, heapGrowthMb, gcExposed: Boolean(gc) } }, null, 2)}\n`,
  );
} else {
  const w = Math.max(...Object.keys(results).map((k) => k.length));
  process.stdout.write(`xencall host benchmark (node ${process.version}; median of ${REPS} batches, min..max)\n\n`);
  for (const [k, v] of Object.entries(results)) {
    process.stdout.write(`${k.padEnd(w)}  ${v.median.toFixed(1).padStart(9)} ${v.unit.padEnd(8)} (${v.min.toFixed(1)}..${v.max.toFixed(1)})\n`);
  }
  process.stdout.write('\nratios (same run):\n');
  for (const [k, v] of Object.entries(ratios)) process.stdout.write(`  ${k.padEnd(62)} ${v === null ? 'n/a' : `${v.toFixed(2)}x`}\n`);
  process.stdout.write(`\nmemory over 1e6 raw calls: RSS ${rssGrowthMb >= 0 ? '+' : ''}${rssGrowthMb.toFixed(2)} MB, heap ${heapGrowthMb >= 0 ? '+' : ''}${heapGrowthMb.toFixed(2)} MB${gc ? '' : ' (run with --expose-gc for settled figures)'}\n`);
  process.stdout.write('\ntargets (issue 13):\n');
  const tw = Math.max(...targets.map((t) => t.what.length));
  for (const t of targets) {
    const v = t.unit === 'x' ? `${t.value.toFixed(2)}x` : `${t.value.toFixed(2)} ${t.unit}`;
    const lim = t.unit === 'x' ? `${t.limit}x` : `${t.limit} ${t.unit}`;
    process.stdout.write(`  ${t.what.padEnd(tw)}  ${v.padStart(13)}  <= ${lim.padEnd(11)} ${verdict(t)}\n`);
  }
}
