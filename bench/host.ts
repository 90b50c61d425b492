// `npm run bench`: what xencall costs per call on the host, measured in one run as ratios.
// Not a test: it prints figures (and --json writes them), it asserts nothing.
//
//  - the mock hypervisor's raw and typed calls per second;
//  - the retry decision's cost;
//  - the real backend's raw path against a bare koffi ioctl on /dev/null (the FFI floor) and
//    against C doing the same ioctl (compiled here with cc, never committed);
//  - buffer allocation from the cache;
//  - RSS growth over 1e6 raw calls.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../src/index.js';

// The built package is measured, as users run it (`npm run bench` builds first); its types are
// the sources'. The paths are variables so the typecheck does not need a build.
const distIndex = '../dist/index.js';
const distTesting = '../dist/testing.js';
const { DEFAULT_RETRY_POLICY, decideRetry, openSync, rowByName } = (await import(distIndex)) as typeof import('../src/index.js');
const { MockHypervisor } = (await import(distTesting)) as typeof import('../src/testing/index.js');
import { PrivcmdBackend, IOCTL_PRIVCMD_HYPERCALL } from '../src/backends/privcmd.js';

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const REPS = quick ? 3 : 7;

/** Median ns per operation over REPS batches of n calls. */
function measure(n: number, fn: () => void): { median: number; min: number; max: number } {
  for (let i = 0; i < Math.min(n, 20_000); i++) fn(); // warm up the JIT
  const per: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    per.push(Number(process.hrtime.bigint() - t0) / n);
  }
  per.sort((a, b) => a - b);
  return { median: per[Math.floor(per.length / 2)]!, min: per[0]!, max: per.at(-1)! };
}

/** A backend that turns /dev/null's ENOTTY into success, so the success path is what is timed. */
function succeeding(inner: Backend): Backend {
  return Object.assign(Object.create(inner) as Backend, {
    hypercall: (op: number, args: readonly bigint[]) => {
      const r = inner.hypercall(op, args);
      return r === -25n ? 0n : r;
    },
  });
}

const results: Record<string, { median: number; min: number; max: number; unit: string }> = {};
const put = (k: string, v: { median: number; min: number; max: number }, unit = 'ns/op') => (results[k] = { ...v, unit });

// ---- mock ------------------------------------------------------------------------------------
{
  const hv = new MockHypervisor();
  const xc = openSync({ backend: hv.backend() });
  hv.history.clear();
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
put('PrivcmdBackend.hypercall', measure(N, () => backend.hypercall(17, [0n, 0n, 0n, 0n, 0n])));
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
put('xencall raw domctl with a buffer (classified)', measure(N / 2, () => (writeDomctl(), xc.hypercallSync(36, [buf.address]))));
xc.freeBuffer(buf);
put('allocBuffer+freeBuffer (cache hit)', measure(N, () => xc.freeBuffer(xc.allocBuffer(100))));
put('xencall typed xen_version.version (privcmd, /dev/null)', measure(N / 2, () => xc.sync.xen_version.version()));
put('xencall typed domctl.getdomaininfo (privcmd, /dev/null)', measure(N / 4, () => xc.sync.domctl.getdomaininfo({ domain: 0 })));
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
    .map(Number)
    .sort((a, b) => a - b);
  cNs = per[Math.floor(per.length / 2)]!;
  put('C syscall(SYS_ioctl) on /dev/null', { median: cNs, min: per[0]!, max: per.at(-1)! });
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
xcNf.close();
xc.close();

const floor = results['bare koffi ioctl(/dev/null) (FFI floor)']!.median;
const raw = results['xencall raw hypercallSync (privcmd, /dev/null)']!.median;
const ratios = {
  'xencall raw / FFI floor': raw / floor,
  'xencall typed xen_version / FFI floor': results['xencall typed xen_version.version (privcmd, /dev/null)']!.median / floor,
  'xencall typed getdomaininfo / FFI floor': results['xencall typed domctl.getdomaininfo (never-fault buffers)']!.median / floor,
  'PrivcmdBackend.hypercall / FFI floor': results['PrivcmdBackend.hypercall']!.median / floor,
  'FFI floor / C': cNs ? floor / cNs : null,
  'xencall raw / C': cNs ? raw / cNs : null,
};

if (json) {
  process.stdout.write(`${JSON.stringify({ node: process.version, results, ratios, memory: { calls: 1_000_000, rssGrowthMb, heapGrowthMb, gcExposed: Boolean(gc) } }, null, 2)}\n`);
} else {
  const w = Math.max(...Object.keys(results).map((k) => k.length));
  process.stdout.write(`xencall host benchmark (node ${process.version}; median of ${REPS} batches, min..max)\n\n`);
  for (const [k, v] of Object.entries(results)) {
    process.stdout.write(`${k.padEnd(w)}  ${v.median.toFixed(1).padStart(9)} ${v.unit}   (${v.min.toFixed(1)}..${v.max.toFixed(1)})\n`);
  }
  process.stdout.write('\nratios (same run):\n');
  for (const [k, v] of Object.entries(ratios)) process.stdout.write(`  ${k.padEnd(40)} ${v === null ? 'n/a' : `${v.toFixed(2)}x`}\n`);
  process.stdout.write(`\nmemory over 1e6 raw calls: RSS ${rssGrowthMb >= 0 ? '+' : ''}${rssGrowthMb.toFixed(2)} MB, heap ${heapGrowthMb >= 0 ? '+' : ''}${heapGrowthMb.toFixed(2)} MB${gc ? '' : ' (run with --expose-gc for settled figures)'}\n`);
}
