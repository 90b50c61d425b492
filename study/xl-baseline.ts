// Xen's own toolstack timed on the PVH test guest (test/xen/xl/xl-guest.c): xl create, xl save,
// xl restore, a live `xl migrate` to this host and xl destroy, each as wall time around the xl
// process. The baseline that xencall's own save, restore and migration are to be compared with
// (issue 11; docs/performance.md). Runs in dom0 under `xen-vm/run.sh --with-xl --vcpus 1`
// (scripts/xl-baseline.sh). An xl run that fails, hangs or dies is recorded as such, never
// retried or dropped: it is one of the things this measures.

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { open, type Xencall } from '../src/xencall.js';
import { GuestConsole } from '../test/xen/xl/guest-console.js';
import {
  XlFailure,
  describeXlRun,
  formatXlTiming,
  xl,
  xlAvailable,
  xlCreate,
  xlDestroy,
  xlMigrateLocal,
  xlRestore,
  xlSave,
  xlScratchDir,
  xlTiming,
  type XlTiming,
} from '../test/xen/xl/xl.js';

export interface XlBaselineOptions {
  /** The guest ELF (scripts/build-xl-guest.sh). */
  kernel: string;
  /** One series of rounds per guest size, in MiB. */
  memoryMb: number[];
  rounds: number;
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface XlBaselineRound {
  memoryMb: number;
  round: number;
  timings: XlTiming[];
  /** How each failed xl run ended (describeXlRun), in order. */
  failures: string[];
}

export interface XlBaselineResult {
  xenVersion: string;
  /** Wall time of `xl list` (the fixed cost of starting xl here), each of five runs. */
  xlListMs: number[];
  rounds: XlBaselineRound[];
}

export async function runXlBaseline(opts: XlBaselineOptions): Promise<XlBaselineResult> {
  const log = opts.log ?? (() => undefined);
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const avail = xlAvailable();
  if (!avail.ok) throw new Error(`xl is not available: ${avail.reason}`);
  const xc = await open();
  try {
    const v = await xc.xen_version.version();
    const result: XlBaselineResult = { xenVersion: `${v.major}.${v.minor}${await xc.xen_version.extraversion()}`, xlListMs: [], rounds: [] };
    for (let i = 0; i < 5; i++) result.xlListMs.push((await xl(['list'], { timeoutMs })).ms);
    const guestConsole = await GuestConsole.open(xc);
    for (const memoryMb of opts.memoryMb) {
      for (let round = 1; round <= opts.rounds; round++) {
        const r = await oneRound(xc, guestConsole, opts.kernel, memoryMb, round, timeoutMs);
        for (const t of r.timings) log(`${memoryMb} MiB round ${round}: ${formatXlTiming(t)}`);
        for (const f of r.failures) log(`${memoryMb} MiB round ${round}: FAILED ${f}`);
        result.rounds.push(r);
      }
    }
    return result;
  } finally {
    xc.close();
  }
}

async function oneRound(xc: Xencall, guestConsole: GuestConsole, kernel: string, memoryMb: number, round: number, timeoutMs: number): Promise<XlBaselineRound> {
  const name = `xl-baseline-${process.pid}-${memoryMb}-${round}`;
  const out: XlBaselineRound = { memoryMb, round, timings: [], failures: [] };
  const pagesOf = async (domid: number) => Number((await xc.domctl.getdomaininfo({ domain: domid })).tot_pages);
  let domid = -1;
  try {
    const created = await xlCreate({ name, kernel, memoryMb }, { timeoutMs });
    domid = created.domid;
    const pages = await pagesOf(domid);
    out.timings.push(xlTiming('xl create', created.run, pages));
    // Measure a running guest, as a migration would meet it.
    await guestConsole.waitForCount(domid, 'count', 'a count from the new guest');

    const file = path.join(xlScratchDir(), `${name}.save`);
    const saved = await xlSave(domid, file, { timeoutMs });
    domid = -1;
    out.timings.push(xlTiming('xl save', saved, pages));
    const restored = await xlRestore(file, name, { timeoutMs });
    domid = restored.domid;
    fs.rmSync(file, { force: true });
    out.timings.push(xlTiming('xl restore', restored.run, pages));
    await guestConsole.waitForCount(domid, 'resumed', 'the restored guest resuming');

    const migrated = await xlMigrateLocal(domid, name, { timeoutMs });
    domid = migrated.domid;
    out.timings.push(xlTiming('xl migrate (live, localhost)', migrated.run, pages));
    await guestConsole.waitForCount(domid, 'resumed', 'the migrated guest resuming');

    out.timings.push(xlTiming('xl destroy', await xlDestroy(domid, { timeoutMs }), pages));
    domid = -1;
  } catch (e) {
    out.failures.push(e instanceof XlFailure ? describeXlRun(e.run) : String(e));
  } finally {
    if (domid > 0) {
      const r = await xl(['destroy', String(domid)], { timeoutMs: 30_000 });
      if (r.code !== 0) out.failures.push(`cleanup: ${describeXlRun(r)}`);
      await xc.domctl.destroydomain({ domain: domid }).catch(() => undefined);
    }
  }
  return out;
}

/** Median wall time per operation and guest size, with pages per second. */
export function summarise(r: XlBaselineResult): string {
  const lines = [`Xen ${r.xenVersion}; xl list (the cost of starting xl): median ${median(r.xlListMs).toFixed(0)} ms`];
  const keys = new Map<string, XlTiming[]>();
  for (const round of r.rounds) {
    for (const t of round.timings) {
      const k = `${round.memoryMb} MiB | ${t.op}`;
      keys.set(k, [...(keys.get(k) ?? []), t]);
    }
  }
  lines.push('| guest | operation | runs | median ms | pages | pages/s |', '| --- | --- | --- | --- | --- | --- |');
  for (const [k, ts] of keys) {
    const ms = median(ts.map((t) => t.ms));
    const pages = ts[0]!.pages;
    lines.push(`| ${k} | ${ts.length} | ${ms.toFixed(0)} | ${pages} | ${((pages * 1000) / ms).toFixed(0)} |`);
  }
  const failed = r.rounds.filter((x) => x.failures.length > 0);
  lines.push(`failed rounds: ${failed.length} of ${r.rounds.length}`);
  for (const f of failed) lines.push(`  ${f.memoryMb} MiB round ${f.round}: ${f.failures.join(' / ')}`);
  return lines.join('\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      kernel: { type: 'string' },
      memory: { type: 'string', default: '16,64' },
      rounds: { type: 'string', default: '2' },
      out: { type: 'string' },
    },
  });
  const kernel = values.kernel ?? process.env.XENCALL_XL_GUEST_KERNEL;
  if (!kernel) throw new Error('--kernel (or XENCALL_XL_GUEST_KERNEL) is required');
  const result = await runXlBaseline({
    kernel,
    memoryMb: values.memory.split(',').map(Number),
    rounds: Number(values.rounds),
    log: (line) => console.log(line),
  });
  console.log(summarise(result));
  if (values.out) fs.writeFileSync(values.out, JSON.stringify(result, null, 2) + '\n');
  process.exitCode = result.rounds.some((x) => x.failures.length > 0) ? 1 : 0;
}
