// The long-run check (`npm run longrun`): a seeded sequence of typed calls — reads, safe writes,
// and unsafe ops with their documented recovery — run twice, on a fault-free mock and on a mock
// that faults guest copies at random, and compared call by call. The faulted run must give the
// same result for every call (after retries, and after recovery where the table refuses a
// re-issue) and end in the same world: no wrong result, no effect done twice or lost. RSS is
// sampled as it goes and must stay flat. Figures: docs/testing.md. A short run of the same
// comparison is a unit test (test/long-run.test.ts).
//
//   node --expose-gc --import tsx scripts/long-run.ts [--calls 1000000] [--seed 1] [--rate 0.02]

import { isDeepStrictEqual, parseArgs } from 'node:util';
import { ErrorCodes, HVM_PARAM, HypercallError, XencallError, findDomainByHandle, findLeakedPorts, open, type Xencall } from '../src/index.js';
import { MockHypervisor } from '../src/testing/index.js';
import { xorshift32 } from '../src/testing/random.js';

export interface LongRunOptions {
  calls: number;
  seed: number;
  /** Probability that any guest copy of the faulted run fails. */
  rate: number;
  /** Compare the two worlds every this many calls (and at the end). Default 10,000. */
  checkEvery?: number;
  /** Sample RSS every this many calls. Default calls / 20. */
  sampleEvery?: number;
  onProgress?: (done: number, report: LongRunReport) => void;
  /**
   * After a refused unsafe op: 'recover' (default) looks the effect up as docs/retry.md says;
   * 'reissue' issues it again blindly, as a retry-every-EFAULT toolstack would — the control
   * that shows the comparison catches double effects.
   */
  afterRefusal?: 'recover' | 'reissue';
}

export interface LongRunReport {
  calls: number;
  /** Guest copies the faulted run failed on purpose. */
  injectedFaults: number;
  /** Re-issues the retry made, refusals it gave (unsafe ops), and safe calls that gave up. */
  retries: number;
  refused: number;
  exhausted: number;
  /** After a refusal: the effect had happened and was adopted, or had not and the op was issued again. */
  adopted: number;
  reissued: number;
  /** Calls whose result differed from the fault-free run's. */
  wrongResults: number;
  /** Recoveries that found the effect twice (two domains with one handle, two leaked ports). */
  doubleEffects: number;
  /** World comparisons that found the two mocks different. */
  worldMismatches: number;
  /** The first few differences, for the report. */
  problems: string[];
  /** RSS in MiB at each sample (after a GC where --expose-gc allows one). */
  rssMiB: number[];
}

type Outcome = { ok: true; value: unknown } | { ok: false; code: string; errno: number | null };

type Op =
  | { kind: 'read'; name: string; run: (xc: Xencall) => Promise<unknown> }
  | { kind: 'safe-write'; name: string; run: (xc: Xencall) => Promise<unknown> }
  | { kind: 'createdomain'; handle: string }
  | { kind: 'destroydomain'; domid: number }
  | { kind: 'alloc_unbound'; remote: number }
  | { kind: 'close'; port: number };

const HVM_DOMAINS = [4, 5, 6];
const DOMAINS = [1, 2, 3, ...HVM_DOMAINS];
/** Parameters the mock lets a toolstack set again and again (not set-once, not deprecated). */
const SETTABLE_PARAMS = ['CALLBACK_IRQ', 'STORE_PFN', 'STORE_EVTCHN', 'TIMER_MODE', 'HPET_ENABLED', 'ACPI_S_STATE'] as const;

function world(): MockHypervisor {
  // historyLimit 0: a million calls must not accumulate a history; the worlds are compared instead.
  const hv = new MockHypervisor({ strict: true, historyLimit: 0, nrCpus: 4 });
  for (const domid of DOMAINS) hv.addDomain({ domid, totPages: 4096, maxVcpus: 2, onlineVcpus: 2, hvm: HVM_DOMAINS.includes(domid) });
  return hv;
}

/** What the calls can change, as comparable data. */
function fingerprint(hv: MockHypervisor): unknown {
  return {
    rover: hv.rover,
    domains: hv.sortedDomains().map((d) => [
      d.domid,
      Buffer.from(d.handle).toString('hex'),
      d.controllerPauseCount,
      d.dying,
      String(d.maxPages),
      String(d.timeOffsetSeconds),
      d.vcpus.map((v) => `${v.hardAffinity.toString(16)}/${v.softAffinity.toString(16)}`),
      d.hvmParams.map(String),
      [...d.evtchns].map(([p, c]) => [p, c.state]),
    ]),
    console: [hv.console.prod, hv.console.cons],
  };
}

/** The seeded sequence of operations; `state` mirrors what the fault-free run created. */
function nextOp(rand: () => number, state: { created: number[]; ports: number[]; handles: number }): Op {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const int = (n: number) => Math.floor(rand() * n);
  const r = rand();
  const d = pick(DOMAINS);
  // Arguments are drawn here, once, so both runs issue exactly the same call.
  if (r < 0.5) {
    const reads: [string, () => (xc: Xencall) => Promise<unknown>][] = [
      ['getdomaininfo', () => ((domain) => (xc) => xc.domctl.getdomaininfo({ domain }))(int(10))],
      ['getdomaininfolist', () => (xc) => xc.sysctl.getdomaininfolist()],
      ['physinfo', () => (xc) => xc.sysctl.physinfo()],
      ['getpageframeinfo3', () => ((gfns) => (xc) => xc.domctl.getpageframeinfo3({ domain: d, gfns }))([BigInt(int(5000)), BigInt(int(16)), BigInt(int(5000))])],
      ['getvcpuinfo', () => ((vcpu) => (xc) => xc.domctl.getvcpuinfo({ domain: d, vcpu }))(int(3))],
      ['getvcpuaffinity', () => ((vcpu) => (xc) => xc.domctl.getvcpuaffinity({ domain: d, vcpu }))(int(2))],
      ['evtchn status', () => ((port) => (xc) => xc.event_channel_op.status({ dom: 0, port }))(1 + int(40))],
      ['extraversion', () => (xc) => xc.xen_version.extraversion()],
      ['current_reservation', () => (xc) => xc.memory_op.current_reservation({ domid: d })],
      ['readconsole', () => (xc) => xc.sysctl.readconsole({ size: 128 })],
      ['get_param', () => ((domid, index) => (xc) => xc.hvm_op.get_param({ domid, index }))(pick(HVM_DOMAINS), paramIndex(pick(SETTABLE_PARAMS)))],
    ];
    const [name, make] = pick(reads);
    return { kind: 'read', name, run: make() };
  }
  if (r < 0.85) {
    const v = int(2);
    const writes: [string, () => (xc: Xencall) => Promise<unknown>][] = [
      ['pausedomain', () => (xc) => xc.domctl.pausedomain({ domain: d })],
      ['unpausedomain', () => (xc) => xc.domctl.unpausedomain({ domain: d })],
      ['max_mem', () => ((kb) => (xc) => xc.domctl.max_mem({ domain: d, max_memkb: kb }))(BigInt(16384 + int(1 << 20)))],
      ['setvcpuaffinity', () => ((hard) => (xc) => xc.domctl.setvcpuaffinity({ domain: d, vcpu: v, hard }))([...new Set([int(4), int(4)])])],
      ['settimeoffset', () => ((secs) => (xc) => xc.domctl.settimeoffset({ domain: d, time_offset_seconds: secs }))(BigInt(int(1 << 30)) - (1n << 29n))],
      [
        'set_param',
        () => ((domid, index, value) => (xc) => xc.hvm_op.set_param({ domid, index, value }))(pick(HVM_DOMAINS), paramIndex(pick(SETTABLE_PARAMS)), BigInt(int(8))),
      ],
    ];
    const [name, make] = pick(writes);
    return { kind: 'safe-write', name, run: make() };
  }
  if (r < 0.9) {
    if (state.created.length < 16) return { kind: 'createdomain', handle: uuid(++state.handles) };
    return { kind: 'destroydomain', domid: pick(state.created) };
  }
  if (r < 0.95 && state.created.length > 0) return { kind: 'destroydomain', domid: pick(state.created) };
  if (state.ports.length < 24) return { kind: 'alloc_unbound', remote: d };
  return { kind: 'close', port: pick(state.ports) };
}

function paramIndex(name: (typeof SETTABLE_PARAMS)[number]): number {
  return HVM_PARAM[name];
}

function uuid(n: number): string {
  const hex = n.toString(16).padStart(12, '0');
  return `7e57c0de-0000-4000-8000-${hex}`;
}

async function outcome(p: Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    if (!(e instanceof XencallError)) throw e;
    return { ok: false, code: e.code, errno: e instanceof HypercallError ? e.errno : null };
  }
}

function issue(xc: Xencall, op: Op): Promise<unknown> {
  switch (op.kind) {
    case 'read':
    case 'safe-write':
      return op.run(xc);
    case 'createdomain':
      return xc.domctl.createdomain({ handle: op.handle });
    case 'destroydomain':
      return xc.domctl.destroydomain({ domain: op.domid });
    case 'alloc_unbound':
      return xc.event_channel_op.alloc_unbound({ dom: 0, remote_dom: op.remote });
    case 'close':
      return xc.event_channel_op.close({ port: op.port });
  }
}

const giveUps = new Set<string>([ErrorCodes.RETRY_EXHAUSTED, ErrorCodes.RETRY_REFUSED]);

/** A read the recovery itself makes, called again while its own copies keep faulting. */
async function persist<T>(f: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await f();
    } catch (e) {
      if (i > 100 || !(e instanceof XencallError) || e.code !== ErrorCodes.RETRY_EXHAUSTED) throw e;
    }
  }
}

/**
 * One op on the faulted run, as a toolstack following docs/retry.md would do it: a safe op that
 * gave up is called again (its EFAULTs changed nothing lasting); an unsafe op that was refused is
 * recovered — the effect is looked up and adopted, or, if it did not happen, the op is issued again.
 */
async function onFaulted(xc: Xencall, op: Op, known: { ports: readonly number[] }, report: LongRunReport, afterRefusal: 'recover' | 'reissue'): Promise<Outcome> {
  for (let round = 0; round < 100; round++) {
    const r = await outcome(issue(xc, op));
    if (r.ok || !giveUps.has(r.code)) return r;
    if (r.code === ErrorCodes.RETRY_EXHAUSTED) {
      report.exhausted++;
      continue;
    }
    report.refused++;
    if (afterRefusal === 'reissue') {
      report.reissued++;
      continue;
    }
    if (op.kind === 'createdomain') {
      const found = await persist(() => findDomainByHandle(xc, op.handle));
      if (found.length > 1) report.doubleEffects++;
      if (found.length >= 1) {
        report.adopted++;
        return { ok: true, value: { domid: found[0]!.domid } };
      }
    } else if (op.kind === 'alloc_unbound') {
      const leaked = await persist(() => findLeakedPorts(xc, { dom: 0, remote_dom: op.remote, known: known.ports }));
      if (leaked.length > 1) report.doubleEffects++;
      if (leaked.length >= 1) {
        report.adopted++;
        return { ok: true, value: { port: leaked[0]! } };
      }
    } else {
      throw new Error(`${op.kind} was refused, but the long run expects the table to call it safe`);
    }
    report.reissued++;
  }
  throw new Error(`the faulted run could not complete ${op.kind} in 100 rounds`);
}

function label(op: Op): string {
  return op.kind === 'read' || op.kind === 'safe-write' ? op.name : op.kind;
}

export async function longRun(options: LongRunOptions): Promise<LongRunReport> {
  const { calls, seed, rate } = options;
  const checkEvery = options.checkEvery ?? 10_000;
  const sampleEvery = options.sampleEvery ?? Math.max(1, Math.floor(calls / 20));
  const clean = world();
  const faulted = world();
  const rule = faulted.faults.random({ rate, seed });
  const noWait = { sync: () => {}, async: async () => {} };
  const xcClean = await open({ backend: clean.backend(), sleep: noWait });
  const xcFaulted = await open({ backend: faulted.backend(), sleep: noWait });
  const report: LongRunReport = {
    calls,
    injectedFaults: 0,
    retries: 0,
    refused: 0,
    exhausted: 0,
    adopted: 0,
    reissued: 0,
    wrongResults: 0,
    doubleEffects: 0,
    worldMismatches: 0,
    problems: [],
    rssMiB: [],
  };
  const problem = (s: string) => {
    if (report.problems.length < 10) report.problems.push(s);
  };
  const gc = (globalThis as { gc?: () => void }).gc;
  const rand = xorshift32(seed ^ 0x5eed);
  const state = { created: [] as number[], ports: [] as number[], handles: 0 };
  const compareWorlds = (at: number) => {
    if (!isDeepStrictEqual(fingerprint(clean), fingerprint(faulted))) {
      report.worldMismatches++;
      problem(`after call ${at}: the worlds differ`);
    }
  };
  try {
    for (let i = 1; i <= calls; i++) {
      const op = nextOp(rand, state);
      const a = await outcome(issue(xcClean, op));
      const b = await onFaulted(xcFaulted, op, state, report, options.afterRefusal ?? 'recover');
      if (!isDeepStrictEqual(a, b)) {
        report.wrongResults++;
        problem(`call ${i} (${label(op)}): fault-free ${JSON.stringify(a, big)}, faulted ${JSON.stringify(b, big)}`);
      }
      // The fault-free run says what exists now; both runs agree when the check above passed.
      if (a.ok && op.kind === 'createdomain') state.created.push((a.value as { domid: number }).domid);
      if (a.ok && op.kind === 'destroydomain') state.created.splice(state.created.indexOf(op.domid), 1);
      if (a.ok && op.kind === 'alloc_unbound') state.ports.push((a.value as { port: number }).port);
      if (a.ok && op.kind === 'close') state.ports.splice(state.ports.indexOf(op.port), 1);
      if (i % checkEvery === 0 || i === calls) compareWorlds(i);
      if (i % sampleEvery === 0) {
        gc?.();
        report.rssMiB.push(Math.round(process.memoryUsage().rss / (1 << 20)));
        report.injectedFaults = rule.fired;
        options.onProgress?.(i, report);
      }
    }
  } finally {
    xcClean.close();
    xcFaulted.close();
  }
  report.injectedFaults = rule.fired;
  report.retries = Object.values(xcFaulted.stats()).reduce((s, c) => s + c.retries, 0);
  return report;
}

const big = (_k: string, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v);

/** RSS growth from the first sample after warm-up (the second) to the last, in MiB. */
export function rssGrowth(report: LongRunReport): number {
  const s = report.rssMiB;
  return s.length < 3 ? 0 : s[s.length - 1]! - s[1]!;
}

async function cli(): Promise<number> {
  const { values } = parseArgs({
    options: { calls: { type: 'string', default: '1000000' }, seed: { type: 'string', default: '1' }, rate: { type: 'string', default: '0.02' } },
  });
  const calls = Number(values.calls);
  const seed = Number(values.seed);
  const rate = Number(values.rate);
  if (!Number.isInteger(calls) || calls < 1 || !Number.isInteger(seed) || !(rate >= 0 && rate <= 1)) {
    process.stderr.write('usage: long-run.ts [--calls N] [--seed N] [--rate 0..1]\n');
    return 2;
  }
  if (!(globalThis as { gc?: unknown }).gc) process.stderr.write('(run with node --expose-gc for RSS samples taken after a GC)\n');
  const started = Date.now();
  const report = await longRun({
    calls,
    seed,
    rate,
    onProgress: (done, r) => process.stderr.write(`${done} calls, ${r.injectedFaults} faults injected, RSS ${r.rssMiB.at(-1)} MiB\n`),
  });
  const growth = rssGrowth(report);
  const flat = growth <= 32;
  const { problems, rssMiB, ...figures } = report;
  process.stdout.write(
    `${JSON.stringify({ ...figures, seconds: Math.round((Date.now() - started) / 1000), rss_mib: rssMiB, rss_growth_mib: growth, rss_flat: flat }, null, 2)}\n`,
  );
  for (const p of problems) process.stdout.write(`PROBLEM ${p}\n`);
  const good = report.wrongResults === 0 && report.doubleEffects === 0 && report.worldMismatches === 0 && flat;
  process.stdout.write(good ? 'LONG RUN PASSED\n' : 'LONG RUN FAILED\n');
  return good ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await cli();
}
