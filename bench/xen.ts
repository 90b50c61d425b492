// `npm run bench:xen`, the dom0 half: per-call latency of xen_version (no buffer),
// getdomaininfo (a domctl through a buffer) and getdomaininfolist inside a real Xen dom0, in one
// run, through
//   (a) C linked against Debian's libxencall (bench/c/libxencall-bench.c, spawned each round),
//   (b) a bare koffi ioctl (the FFI floor: no xencall code at all),
//   (c) xencall's raw API (hypercallSync / hypercall),
//   (d) xencall's typed API (xc.sync.*, xc.*).
// Not a test: it measures and reports, it asserts nothing.
//
// scripts/bench-xen.sh bundles this file (with src/) into plain JS, compiles the C program and
// boots the VM once; in dom0 it runs as
//   node --expose-gc xen-bench.mjs --c BIN --out FILE [--batch N] [--rounds R] [--list K] [--gc-per-batch 0|1]
// and on the host `node xen-bench.mjs --report FILE` prints the table from the JSON.
//
// Method: a clock_gettime pair costs ~20 us in emulated dom0, so every figure is one batch of
// BATCH calls between two clock reads. Each round runs every variant once (C as one child
// process running all of its variants), in an order rotated from round to round so no variant
// always follows the same one; the figure of a variant is the median over rounds, and ratios
// are medians of the same-round ratios. Absolute figures vary from boot to boot under TCG; only
// ratios within one run mean anything.

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { open, type Xencall } from '../src/index.js';
import { DOMCTL_PAYLOAD_OFFSET, xen_domctl } from '../src/hypercalls/structs.js';
import { XEN_DOMCTL_INTERFACE_VERSION } from '../src/hypercalls/numbers.js';

const HYPERVISOR_xen_version = 17;
const HYPERVISOR_domctl = 36;
const XENVER_version = 0;
const XEN_DOMCTL_getdomaininfo = 5;
const SYS_ioctl = 16;
const IOCTL_PRIVCMD_HYPERCALL = 0x00305000;

interface Summary {
  median: number;
  min: number;
  max: number;
  /** Interquartile range over the rounds, as a fraction of the median. */
  iqrPct: number;
  rounds: number;
}

interface Results {
  kind: 'xencall-bench-xen';
  when: string;
  machine: Record<string, unknown>;
  params: { batch: number; rounds: number; warmup: number; listDomains: number; domainsFound: number; gcPerBatch?: boolean };
  /** ns per call (per whole list for the *_each / *list variants), one entry per round. */
  samples: Record<string, number[]>;
  summary: Record<string, Summary>;
  ratios: Record<string, Summary & { of: string; to: string }>;
  heapGrowthMb: number | null;
}

const argv = process.argv.slice(2);
const opt = (name: string, dflt?: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};

const quantile = (sorted: readonly number[], q: number): number => {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
};
function summarize(xs: readonly number[]): Summary {
  // A batch the clock saw as taking no time (a stalled guest clock) is dropped, not averaged in.
  const s = xs.filter((x) => Number.isFinite(x) && x > 0).sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN, iqrPct: NaN, rounds: 0 };
  const median = quantile(s, 0.5);
  return { median, min: s[0]!, max: s.at(-1)!, iqrPct: ((quantile(s, 0.75) - quantile(s, 0.25)) / median) * 100, rounds: s.length };
}

// ---- the ratios reported, as [numerator, denominator] -------------------------------------------
const RATIOS: readonly [string, string][] = [
  ['koffi.xen_version', 'c-libxencall.xen_version'],
  ['raw.xen_version', 'koffi.xen_version'],
  ['raw.xen_version', 'c-libxencall.xen_version'],
  ['typed.xen_version', 'koffi.xen_version'],
  ['typed.xen_version', 'c-libxencall.xen_version'],
  ['raw-async.xen_version', 'koffi.xen_version'],
  ['c-libxencall.xen_version', 'c-ioctl.xen_version'],
  ['koffi.getdomaininfo', 'c-libxencall.getdomaininfo'],
  ['raw.getdomaininfo', 'koffi.getdomaininfo'],
  ['raw.getdomaininfo', 'c-libxencall.getdomaininfo'],
  ['typed.getdomaininfo', 'koffi.getdomaininfo'],
  ['typed.getdomaininfo', 'c-libxencall.getdomaininfo'],
  ['typed-async.getdomaininfo', 'koffi.getdomaininfo'],
  ['typed.getdomaininfolist', 'c-libxencall.getdomaininfolist'],
  ['typed.getdomaininfolist', 'c-libxencall.getdomaininfo_each'],
  ['typed.getdomaininfo_each', 'c-libxencall.getdomaininfo_each'],
  ['typed.getdomaininfolist', 'typed.getdomaininfo_each'],
];

/** Issue 13's dom0 targets: a ratio of the run (median of same-round ratios) and its limit. */
const TARGETS: readonly { of: string; to: string; limit: number }[] = [
  { of: 'raw.xen_version', to: 'koffi.xen_version', limit: 1.1 },
  { of: 'raw.getdomaininfo', to: 'koffi.getdomaininfo', limit: 1.1 },
  { of: 'typed.getdomaininfo', to: 'koffi.getdomaininfo', limit: 1.3 },
  { of: 'typed.getdomaininfolist', to: 'c-libxencall.getdomaininfolist', limit: 3 },
];

function report(r: Results): string {
  const us = (ns: number | null) => (ns === null || !Number.isFinite(ns) ? 'n/a' : (ns / 1000).toFixed(2));
  const x = (v: number | null, d = 3) => (v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));
  const lines: string[] = [];
  lines.push(`xencall dom0 benchmark: ${r.when}`);
  lines.push(`machine: ${Object.entries(r.machine).map(([k, v]) => `${k}=${v}`).join(', ')}`);
  lines.push(
    `method: ${r.params.warmup} warm-up calls per variant, then ${r.params.rounds} rounds, ${r.params.batch} calls per batch (list variants: whole lists of ${r.params.domainsFound} domains), ` +
      `${r.params.gcPerBatch ? 'a full gc before each batch, ' : ''}` +
      'variants interleaved in rotated order; median over rounds, [min..max], IQR % of median',
  );
  lines.push('');
  const w = Math.max(...Object.keys(r.summary).map((k) => k.length), 8);
  lines.push(`${'variant'.padEnd(w)}  ${'median us'.padStart(10)}  ${'min..max us'.padStart(17)}  IQR%`);
  for (const [k, s] of Object.entries(r.summary)) {
    lines.push(`${k.padEnd(w)}  ${us(s.median).padStart(10)}  ${`${us(s.min)}..${us(s.max)}`.padStart(17)}  ${x(s.iqrPct, 1).padStart(4)}  (${s.rounds} rounds)`);
  }
  lines.push('');
  lines.push('ratios (median of same-round ratios, [min..max]):');
  for (const [, q] of Object.entries(r.ratios)) {
    lines.push(`  ${`${q.of} / ${q.to}`.padEnd(62)} ${x(q.median)}x  [${x(q.min)}..${x(q.max)}]`);
  }
  lines.push('');
  lines.push('targets (issue 13):');
  for (const t of TARGETS) {
    const q = r.ratios[`${t.of} / ${t.to}`];
    const v = q?.median ?? NaN;
    lines.push(`  ${`${t.of} / ${t.to}`.padEnd(62)} ${x(v)}x  <= ${t.limit}x  ${Number.isFinite(v) ? (v <= t.limit ? 'pass' : 'MISS') : 'not measured'}`);
  }
  if (r.heapGrowthMb !== null) lines.push(`\nheap growth over the whole run (after gc): ${r.heapGrowthMb.toFixed(2)} MB`);
  return `${lines.join('\n')}\n`;
}

// ---- host side: print a saved result -----------------------------------------------------------
const reportFile = opt('report');
if (reportFile) {
  process.stdout.write(report(JSON.parse(readFileSync(reportFile, 'utf8')) as Results));
  process.exit(0);
}

// ---- dom0 side ----------------------------------------------------------------------------------
const cBin = opt('c');
const out = opt('out');
const BATCH = Number(opt('batch', '300'));
const ROUNDS = Number(opt('rounds', '24'));
const LIST = Number(opt('list', '8'));
/**
 * Calls per variant before anything is timed. V8 optimizes a function after enough calls, not
 * after enough time, and under emulation a few hundred calls are a lot of time: without this
 * the first rounds time the interpreter.
 */
const WARMUP = Number(opt('warmup', '4000'));
/**
 * Whether a full gc runs before every timed batch. Off by default: batches run as a long-running
 * process runs them, each paying its share of scavenges. A forced full gc before each batch (the
 * method until issue 13) made every variant noisy (IQRs of 50-90%, the bare koffi call itself
 * 27 us one run and 50 the next) and cold, since V8 flushes code over repeated full gcs (with
 * --no-flush-bytecode the same runs came out far steadier); `--gc-per-batch 1` brings it back.
 */
const GC_PER_BATCH = opt('gc-per-batch', '0') !== '0';
/** Only these variants (comma-separated names; "c" for the C program), for profiling. */
const ONLY = opt('only')?.split(',');
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

const require = createRequire(import.meta.url);
const koffi = require('koffi') as typeof import('koffi');
const libc = koffi.load('libc.so.6');
// The same prototype PrivcmdBackend uses: a fixed (non-variadic) syscall().
const syscall = libc.func('long syscall(long nr, long fd, unsigned long req, void *arg)') as (n: number, fd: number, r: number, a: Buffer) => number | bigint;
const openC = libc.func('int open(const char *path, int flags, uint32_t mode)') as (p: string, f: number, m: number) => number;
const mmap = libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)') as (a: null, l: number, p: number, f: number, fd: number, o: number) => bigint | null;

const xc: Xencall = await open();
const created: number[] = [];
try {
  // ---- the world: LIST domains in all (dom0 and empty ones created here) ----
  for (let i = 1; i < LIST; i++) {
    const { domid } = xc.sync.domctl.createdomain({ handle: `b0000000-0000-4000-8000-${String(i).padStart(12, '0')}`, max_vcpus: 1 });
    created.push(domid);
  }
  const ids = xc.sync.sysctl.getdomaininfolist({ first_domain: 0, max_domains: LIST }).map((d) => d.domid);

  // ---- (b) bare koffi: no xencall code, the struct prepared once ----
  const privFd = openC('/dev/xen/privcmd', 2 | 0o2000000, 0);
  const bufFd = openC('/dev/xen/hypercall', 2 | 0o2000000, 0);
  if (privFd < 0) throw new Error('cannot open /dev/xen/privcmd');
  const vStruct = Buffer.alloc(48);
  vStruct.writeBigUInt64LE(BigInt(HYPERVISOR_xen_version), 0);
  vStruct.writeBigUInt64LE(BigInt(XENVER_version), 8);
  // A domctl buffer mapped once: from /dev/xen/hypercall, or locked anonymous memory without it.
  const page =
    bufFd >= 0 ? mmap(null, 4096, 3, 0x01, bufFd, 0) : mmap(null, 4096, 3, 0x02 | 0x20 | 0x2000, -1, 0);
  if (page === null || page === 0xffffffffffffffffn) throw new Error('mmap of the domctl buffer failed');
  const pageView = new DataView(koffi.view(page, 4096));
  const dStruct = Buffer.alloc(48);
  dStruct.writeBigUInt64LE(BigInt(HYPERVISOR_domctl), 0);
  dStruct.writeBigUInt64LE(page, 8);
  const writeDomctl = (v: DataView, at: number, domain: number) => {
    v.setUint32(at + 0, XEN_DOMCTL_getdomaininfo, true);
    v.setUint32(at + 4, XEN_DOMCTL_INTERFACE_VERSION, true);
    v.setUint16(at + 8, domain, true);
  };
  let sink = 0;

  // ---- (c) raw: the same domctl, written by the caller into an xencall buffer ----
  const rawBuf = xc.allocBuffer(xen_domctl.size);
  const rawView = rawBuf.view();

  type Variant = { name: string; calls: number; run: () => void | Promise<void> };
  const node: Variant[] = [
    {
      name: 'koffi.xen_version',
      calls: BATCH,
      run: () => {
        for (let i = 0; i < BATCH; i++) sink += Number(syscall(SYS_ioctl, privFd, IOCTL_PRIVCMD_HYPERCALL, vStruct));
      },
    },
    {
      name: 'raw.xen_version',
      calls: BATCH,
      run: () => {
        for (let i = 0; i < BATCH; i++) sink += Number(xc.hypercallSync(HYPERVISOR_xen_version, [XENVER_version, 0]));
      },
    },
    {
      name: 'typed.xen_version',
      calls: BATCH,
      run: () => {
        for (let i = 0; i < BATCH; i++) sink += xc.sync.xen_version.version().major;
      },
    },
    {
      name: 'raw-async.xen_version',
      calls: BATCH,
      run: async () => {
        for (let i = 0; i < BATCH; i++) sink += Number(await xc.hypercall(HYPERVISOR_xen_version, [XENVER_version, 0]));
      },
    },
    {
      name: 'koffi.getdomaininfo',
      calls: BATCH,
      run: () => {
        for (let i = 0; i < BATCH; i++) {
          writeDomctl(pageView, 0, 0);
          const r = syscall(SYS_ioctl, privFd, IOCTL_PRIVCMD_HYPERCALL, dStruct);
          if (r !== 0) throw new Error(`bare getdomaininfo returned ${r}`);
          sink += pageView.getUint32(DOMCTL_PAYLOAD_OFFSET + 8, true);
        }
      },
    },
    {
      name: 'raw.getdomaininfo',
      calls: BATCH,
      run: () => {
        for (let i = 0; i < BATCH; i++) {
          writeDomctl(rawView, 0, 0);
          xc.hypercallSync(HYPERVISOR_domctl, [rawBuf.address]);
          sink += rawView.getUint32(DOMCTL_PAYLOAD_OFFSET + 8, true);
        }
      },
    },
    {
      name: 'typed.getdomaininfo',
      calls: BATCH,
      run: () => {
        for (let i = 0; i < BATCH; i++) sink += xc.sync.domctl.getdomaininfo({ domain: 0 }).nr_online_vcpus;
      },
    },
    {
      name: 'typed-async.getdomaininfo',
      calls: BATCH,
      run: async () => {
        for (let i = 0; i < BATCH; i++) sink += (await xc.domctl.getdomaininfo({ domain: 0 })).nr_online_vcpus;
      },
    },
  ];
  const lists = Math.floor(BATCH / ids.length) + 1;
  node.push(
    {
      name: 'typed.getdomaininfo_each',
      calls: lists,
      run: () => {
        for (let i = 0; i < lists; i++) for (const domain of ids) sink += xc.sync.domctl.getdomaininfo({ domain }).nr_online_vcpus;
      },
    },
    {
      name: 'typed.getdomaininfolist',
      calls: lists,
      run: () => {
        for (let i = 0; i < lists; i++) sink += xc.sync.sysctl.getdomaininfolist({ first_domain: 0, max_domains: LIST }).length;
      },
    },
  );

  const samples: Record<string, number[]> = {};
  const put = (name: string, nsPerCall: number) => (samples[name] ??= []).push(nsPerCall);
  const timeNode = async (v: Variant) => {
    if (GC_PER_BATCH) gc();
    const t0 = process.hrtime.bigint();
    await v.run();
    put(v.name, Number(process.hrtime.bigint() - t0) / v.calls);
  };
  const runC = () => {
    if (!cBin) return;
    const text = execFileSync(cBin, [String(BATCH), String(LIST)], { encoding: 'utf8', timeout: 600_000 });
    for (const line of text.split('\n')) {
      const m = /^(\S+) (\d+) (\d+)$/.exec(line);
      if (m) put(m[1]!, Number(m[3]) / Number(m[2]));
    }
  };

  // Warm-up: JIT, buffer cache, koffi's call stubs; nothing recorded.
  // WARMUP calls of each variant's own unit (a list variant's unit is a whole list), so the code
  // only it runs (the sysctl path, for one) is as warm as the rest.
  for (const v of node) for (let done = 0; done < WARMUP; done += v.calls) await v.run();
  for (const k of Object.keys(samples)) delete samples[k];
  gc();
  const heap0 = process.memoryUsage().heapUsed;

  const chosen = ONLY ? node.filter((v) => ONLY.includes(v.name)) : node;
  const units: (() => Promise<void> | void)[] = [...(!ONLY || ONLY.includes('c') ? [runC] : []), ...chosen.map((v) => () => timeNode(v))];
  for (let r = 0; r < ROUNDS; r++) {
    for (let j = 0; j < units.length; j++) await units[(j + r * 3) % units.length]!();
  }
  gc();
  const heapGrowthMb = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
  void sink;

  const summary: Record<string, Summary> = {};
  for (const k of Object.keys(samples).sort()) summary[k] = summarize(samples[k]!);
  const ratios: Results['ratios'] = {};
  for (const [of, to] of RATIOS) {
    const a = samples[of];
    const b = samples[to];
    if (!a || !b || a.length !== b.length) continue;
    ratios[`${of} / ${to}`] = { of, to, ...summarize(a.map((x, i) => x / b[i]!)) };
  }
  const env = process.env;
  const results: Results = {
    kind: 'xencall-bench-xen',
    when: new Date().toISOString(),
    machine: {
      xen: env.XENCALL_VM_XEN_VERSION ?? '?',
      dom0Kernel: env.XENCALL_VM_KERNEL ?? os.release(),
      dom0Vcpus: env.XENCALL_VM_VCPUS ?? os.cpus().length,
      dom0MemMb: env.XENCALL_VM_DOM0_MEM_MB ?? '?',
      hypercallDev: bufFd >= 0,
      cpu: os.cpus()[0]?.model ?? '?',
      node: process.version,
      host: env.XENCALL_BENCH_HOST ?? '?',
    },
    params: { batch: BATCH, rounds: ROUNDS, warmup: WARMUP, listDomains: LIST, domainsFound: ids.length, gcPerBatch: GC_PER_BATCH },
    samples,
    summary,
    ratios,
    heapGrowthMb,
  };
  if (out) writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(report(results));
  xc.freeBuffer(rawBuf);
} finally {
  for (const domain of created) {
    try {
      xc.sync.domctl.destroydomain({ domain });
    } catch (e) {
      process.stderr.write(`bench: destroydomain(${domain}) failed: ${(e as Error).message}\n`);
    }
  }
  xc.close();
}
