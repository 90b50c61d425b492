// The save/restore study (npm run study:saverestore, docs/saverestore.md "Measured on real Xen"):
// xencall live-migrates, saves and restores the running test guest on a real Xen, repeatedly,
// three ways, and compares itself with Xen's own toolstack in the same boot.
//
// The three ways, as the EFAULT study's (study/efault.ts):
//   1. buffers from /dev/xen/hypercall (the kernel owns them: they cannot fault);
//   2. locked buffers, every one the operations use soft-offlined under them by a worker
//      (study/buffer-stressor.ts: the seed's EFAULT, forced), xencall's retry on;
//   3. the same with the retry off: EFAULTs surface as typed errors.
// Each cycle live-migrates the guest to a new domain (keeping the paused source) and compares the
// two page for page, then live-saves it and restores the image, and compares again. A page that
// differs is "lost" when the destination holds an older image of it than the source (a write
// the copy missed) and "wrong" otherwise. After a failed operation the study checks that the
// source was left as found (running, log-dirty off, no new domain) and goes on with it.
//
// The xl part (in a boot with --with-xl): on the C guest of test/xen/xl/xl-guest.c, which
// answers xl's suspend request, created by xl: xl save, xl restore and a live localhost xl
// migrate, then xencall's save, restore and live migrate of the same kind of guest, interleaved
// round by round; wall times and pages per second.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { openPrivcmd } from '../src/backends/privcmd.js';
import { XencallError } from '../src/errors.js';
import { migrate, restore, save, type MigrateReport, type SaveReport } from '../src/saverestore/operations.js';
import { bootTestGuest, verifyTestGuestPage, type TestGuest } from '../src/testing/index.js';
import { open, type Xencall } from '../src/xencall.js';
import { BufferStressor, type BufferStressorCounts } from './buffer-stressor.js';

export type WayNumber = 1 | 2 | 3;
export const WAYS: Record<WayNumber, { label: string; buffers: 'hypercall-dev' | 'locked'; retry: 'on' | 'off' }> = {
  1: { label: '/dev/xen/hypercall buffers', buffers: 'hypercall-dev', retry: 'on' },
  2: { label: 'locked buffers under the stressor, retry on', buffers: 'locked', retry: 'on' },
  3: { label: 'locked buffers under the stressor, retry off', buffers: 'locked', retry: 'off' },
};

export interface OperationResult {
  op: 'migrate' | 'save' | 'restore';
  ok: boolean;
  /** The typed error's code when it failed. */
  error?: string;
  message?: string;
  ms: number;
  downtimeMs?: number;
  rounds?: number;
  pagesSent?: number;
  cleanFaults?: number;
  /** After a failure: the source was running, log-dirty off, and no new domain was left. */
  leftAsFound?: boolean;
}

export interface SwitchOver {
  what: 'migrate' | 'save/restore';
  pagesCompared: number;
  identical: number;
  lost: number;
  wrong: number;
  /** The destination's counter moved on from the source's. */
  carriedOn: boolean;
}

export interface WayResult {
  way: WayNumber;
  label: string;
  cycles: number;
  operations: OperationResult[];
  switchOvers: SwitchOver[];
  /** Per op: EFAULTs seen, re-issues, refusals, exhaustions (xc.stats()). */
  stats: Record<string, { efaults: number; retries: number; refused: number; exhausted: number; recovered: number }>;
  stressor: BufferStressorCounts | null;
}

export interface XlComparison {
  memoryMb: number;
  pages: number;
  rounds: { tool: 'xl' | 'xencall'; op: 'save' | 'restore' | 'migrate'; ms: number; ok: boolean; note?: string }[];
}

export interface StudyResult {
  xenVersion: string;
  guestPages: number;
  ways: WayResult[];
  xl: XlComparison | null;
  startedAt: string;
  seconds: number;
}

const PAGES = 1024;
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

async function openWay(way: WayNumber, stressor: BufferStressor | null): Promise<Xencall> {
  const w = WAYS[way];
  const retry = w.retry === 'off' ? { maxAttempts: 1 } : {};
  if (w.buffers === 'hypercall-dev') {
    const b = openPrivcmd();
    if (!b.buffersNeverFault()) throw new Error('way 1 needs /dev/xen/hypercall (a boot without --no-hypercall-dev)');
    return open({ backend: b, retry });
  }
  return open({ backend: stressor!.aimAt(openPrivcmd({ hypercallBufPath: null })), retry });
}

/** Compares the paused source with the paused destination and classifies what differs. */
function compare(admin: Xencall, src: number, dst: number): Omit<SwitchOver, 'what' | 'carriedOn'> {
  const gfns = range(0, PAGES);
  const a = admin.foreignMemory.map(src, gfns);
  const b = admin.foreignMemory.map(dst, gfns);
  try {
    let identical = 0;
    let lost = 0;
    let wrong = 0;
    for (const g of gfns) {
      if (Buffer.compare(a.page(g), b.page(g)) === 0) identical++;
      else {
        const s = verifyTestGuestPage(a.page(g), g);
        const d = verifyTestGuestPage(b.page(g), g);
        if (s !== null && d !== null && d < s) lost++;
        else wrong++;
      }
    }
    return { pagesCompared: PAGES, identical, lost, wrong };
  } finally {
    a.unmap();
    b.unmap();
  }
}

async function leftAsFound(admin: Xencall, domid: number, domainsBefore: number[]): Promise<boolean> {
  const info = await admin.domctl.getdomaininfo({ domain: domid });
  const domains = (await admin.sysctl.getdomaininfolist()).map((d) => d.domid);
  // Log-dirty is off exactly when ENABLE succeeds (it answers EINVAL when already on).
  let logDirtyOff = true;
  try {
    await admin.domctl.shadow_op.enable_logdirty({ domain: domid });
    await admin.domctl.shadow_op.off({ domain: domid });
  } catch {
    logDirtyOff = false;
  }
  return !info.paused && logDirtyOff && domains.join() === domainsBefore.join();
}

function failure(op: OperationResult['op'], t0: number, e: unknown): OperationResult {
  return { op, ok: false, error: e instanceof XencallError ? e.code : 'not a XencallError', message: e instanceof Error ? e.message.slice(0, 300) : String(e), ms: performance.now() - t0 };
}

async function runWay(admin: Xencall, way: WayNumber, opts: StudyOptions): Promise<WayResult> {
  const w = WAYS[way];
  const stressor = w.buffers === 'locked' ? new BufferStressor({ intervalMs: opts.intervalMs, cap: opts.cap }) : null;
  // The worker loads koffi before the guest takes a CPU of its own.
  await stressor?.start();
  const xc = await openWay(way, stressor);
  const result: WayResult = { way, label: w.label, cycles: opts.cycles, operations: [], switchOvers: [], stats: {}, stressor: null };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-study-'));
  let guest: TestGuest = await bootTestGuest(admin, { pages: PAGES, writeSet: range(0x200, 48), image: opts.image });
  try {
    await guest.waitForWriteSet();
    const switchOver = async (what: SwitchOver['what'], dst: number) => {
      const stopped = await guest.counter();
      const c = compare(admin, guest.domid, dst);
      const moved = guest.movedTo(dst);
      await admin.domctl.unpausedomain({ domain: dst });
      let carriedOn = false;
      try {
        carriedOn = (await moved.waitForProgress(stopped + 2, { timeoutMs: 30_000 })) >= stopped + 2;
      } catch {
        carriedOn = false;
      }
      result.switchOvers.push({ what, ...c, carriedOn });
      opts.log(`way ${way} ${what}: ${c.identical}/${c.pagesCompared} identical, ${c.lost} lost, ${c.wrong} wrong; counter ${carriedOn ? 'carried on' : 'DID NOT carry on'} from ${stopped}`);
      await guest.destroy();
      guest = moved;
    };
    for (let cycle = 1; cycle <= opts.cycles; cycle++) {
      const before = (await admin.sysctl.getdomaininfolist()).map((d) => d.domid);
      let t0 = performance.now();
      let m: MigrateReport | undefined;
      try {
        m = await migrate(xc, guest.domid, { live: true, keepSource: true, paused: true });
        result.operations.push({ op: 'migrate', ok: true, ms: m.totalMs, downtimeMs: m.downtimeMs, rounds: m.rounds.length, pagesSent: m.pagesSent, cleanFaults: m.rounds.reduce((n, r) => n + r.cleanFaults, 0) });
      } catch (e) {
        const f = failure('migrate', t0, e);
        f.leftAsFound = await leftAsFound(admin, guest.domid, before);
        result.operations.push(f);
        opts.log(`way ${way} migrate FAILED (${f.error}; left as found: ${f.leftAsFound}): ${f.message}`);
      }
      if (m) await switchOver('migrate', m.destination);

      const file = path.join(dir, `cycle-${cycle}.xcsr`);
      const before2 = (await admin.sysctl.getdomaininfolist()).map((d) => d.domid);
      t0 = performance.now();
      let s: SaveReport | undefined;
      try {
        s = await save(xc, guest.domid, file, { live: true, after: 'pause' });
        result.operations.push({ op: 'save', ok: true, ms: s.totalMs, downtimeMs: s.downtimeMs, rounds: s.rounds.length, pagesSent: s.pagesSent, cleanFaults: s.rounds.reduce((n, r) => n + r.cleanFaults, 0) });
      } catch (e) {
        const f = failure('save', t0, e);
        f.leftAsFound = await leftAsFound(admin, guest.domid, before2);
        result.operations.push(f);
        opts.log(`way ${way} save FAILED (${f.error}; left as found: ${f.leftAsFound}): ${f.message}`);
      }
      if (s) {
        t0 = performance.now();
        try {
          const r = await restore(xc, file, { paused: true });
          result.operations.push({ op: 'restore', ok: true, ms: r.totalMs });
          await switchOver('save/restore', r.domid);
        } catch (e) {
          const f = failure('restore', t0, e);
          // The source is paused by the save; a failed restore must leave no domain behind.
          f.leftAsFound = (await admin.sysctl.getdomaininfolist()).map((d) => d.domid).join() === before2.join();
          result.operations.push(f);
          opts.log(`way ${way} restore FAILED (${f.error}; nothing left: ${f.leftAsFound}): ${f.message}`);
          await admin.domctl.unpausedomain({ domain: guest.domid });
        }
        fs.rmSync(file, { force: true });
      }
    }
  } finally {
    await guest.destroy().catch(() => undefined);
    result.stressor = (await stressor?.stop()) ?? null;
    for (const [op, c] of Object.entries(xc.stats())) {
      if (c.efaults || c.refused || c.exhausted) result.stats[op] = { efaults: c.efaults, retries: c.retries, refused: c.refused, exhausted: c.exhausted, recovered: c.recovered };
    }
    xc.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

export interface StudyOptions {
  image: string;
  ways: WayNumber[];
  cycles: number;
  intervalMs: number;
  cap: number;
  /** The xl guest's kernel (scripts/build-xl-guest.sh); null skips the xl comparison. */
  xlKernel: string | null;
  xlMemoryMb: number;
  xlRounds: number;
  log: (line: string) => void;
}

async function runXl(admin: Xencall, opts: StudyOptions): Promise<XlComparison> {
  const xlm = await import('../test/xen/xl/xl.js');
  const { GuestConsole } = await import('../test/xen/xl/guest-console.js');
  const avail = xlm.xlAvailable();
  if (!avail.ok) throw new Error(`xl is not available: ${avail.reason}`);
  const console_ = await GuestConsole.open(admin);
  const out: XlComparison = { memoryMb: opts.xlMemoryMb, pages: 0, rounds: [] };
  const timeoutMs = 300_000;
  const xc = await open();
  const created: number[] = [];
  const note = (tool: 'xl' | 'xencall', op: 'save' | 'restore' | 'migrate', ms: number, ok: boolean, n?: string) => {
    out.rounds.push({ tool, op, ms, ok, ...(n ? { note: n } : {}) });
    opts.log(`xl comparison: ${tool} ${op}: ${ms.toFixed(0)} ms${ok ? '' : ` FAILED ${n}`}`);
  };
  try {
    for (let round = 1; round <= opts.xlRounds; round++) {
      // xl: save, restore, live migrate, on a guest xl created.
      const name = `study-xl-${round}`;
      let dom = (await xlm.xlCreate({ name, kernel: opts.xlKernel!, memoryMb: opts.xlMemoryMb }, { timeoutMs })).domid;
      out.pages = Number((await admin.domctl.getdomaininfo({ domain: dom })).tot_pages);
      await console_.waitForCount(dom, 'count', 'a count from the xl guest');
      const file = path.join(xlm.xlScratchDir(), `${name}.xl`);
      const saved = await xlm.xl(['save', String(dom), file], { timeoutMs });
      note('xl', 'save', saved.ms, saved.code === 0, saved.code === 0 ? undefined : xlm.describeXlRun(saved));
      const restored = await xlm.xlRestore(file, name, { timeoutMs });
      dom = restored.domid;
      note('xl', 'restore', restored.run.ms, true);
      fs.rmSync(file, { force: true });
      await console_.waitForCount(dom, 'resumed', 'the restored xl guest');
      const migrated = await xlm.xlMigrateLocal(dom, name, { timeoutMs });
      dom = migrated.domid;
      note('xl', 'migrate', migrated.run.ms, true);
      await xlm.xlDestroy(dom, { timeoutMs });

      // xencall: the same guest, created by xl and running as xl's was: live migrate (keeping
      // the paused source), then save that source (not live: xl save suspends first), restore.
      // Each operation meets a guest in the state xl's met. xencall neither asks the guest to
      // suspend nor re-creates its PV connections, so the xl guest it restores or migrates to
      // keeps a stale copy of its shared_info page and its clock stops (docs/saverestore.md,
      // "What is carried over"): it runs, spinning, which is why the restored copy is not the one
      // migrated. xencall's domains are destroyed by domctl, xl's by xl.
      const name2 = `study-xc-${round}`;
      const src = (await xlm.xlCreate({ name: name2, kernel: opts.xlKernel!, memoryMb: opts.xlMemoryMb }, { timeoutMs })).domid;
      await console_.waitForCount(src, 'count', 'a count from the guest xencall migrates and saves');
      const m = await migrate(xc, src, { live: true, keepSource: true, paused: true });
      note('xencall', 'migrate', m.totalMs, true, `downtime ${m.downtimeMs.toFixed(0)} ms`);
      await xc.domctl.destroydomain({ domain: m.destination });
      const file2 = path.join(xlm.xlScratchDir(), `${name2}.xcsr`);
      const s = await save(xc, src, file2, { live: false, after: 'pause' });
      note('xencall', 'save', s.totalMs, true);
      await xlm.xlDestroy(src, { timeoutMs });
      const t0 = performance.now();
      const r = await restore(xc, file2, { paused: true });
      created.push(r.domid);
      note('xencall', 'restore', performance.now() - t0, true);
      fs.rmSync(file2, { force: true });
      await xc.domctl.destroydomain({ domain: r.domid });
      created.pop();
    }
  } finally {
    for (const d of created) await xc.domctl.destroydomain({ domain: d }).catch(() => undefined);
    xc.close();
  }
  return out;
}

export async function runStudy(opts: StudyOptions): Promise<StudyResult> {
  const t0 = performance.now();
  const admin = await open();
  try {
    const v = await admin.xen_version.version();
    const result: StudyResult = {
      xenVersion: `${v.major}.${v.minor}${await admin.xen_version.extraversion()}`,
      guestPages: PAGES,
      ways: [],
      xl: null,
      startedAt: new Date().toISOString(),
      seconds: 0,
    };
    for (const way of opts.ways) {
      opts.log(`way ${way}: ${WAYS[way].label}, ${opts.cycles} cycles`);
      result.ways.push(await runWay(admin, way, opts));
    }
    if (opts.xlKernel) result.xl = await runXl(admin, opts);
    result.seconds = (performance.now() - t0) / 1000;
    return result;
  } finally {
    admin.close();
  }
}

/** The invariants the study stands for; each is reported, and any that fails makes the exit status 1. */
export function invariants(r: StudyResult): { text: string; ok: boolean; detail: string }[] {
  const out: { text: string; ok: boolean; detail: string }[] = [];
  for (const w of r.ways) {
    const lost = w.switchOvers.reduce((n, s) => n + s.lost, 0);
    const wrong = w.switchOvers.reduce((n, s) => n + s.wrong, 0);
    out.push({ text: `way ${w.way}: no page lost or wrong at any switch-over`, ok: lost === 0 && wrong === 0, detail: `${w.switchOvers.length} switch-overs, ${lost} lost, ${wrong} wrong` });
    out.push({ text: `way ${w.way}: every destination carried on from the source's counter`, ok: w.switchOvers.every((s) => s.carriedOn), detail: `${w.switchOvers.filter((s) => s.carriedOn).length} of ${w.switchOvers.length}` });
    const failed = w.operations.filter((o) => !o.ok);
    out.push({ text: `way ${w.way}: every failure was a typed error that left the source as found`, ok: failed.every((o) => o.error !== 'not a XencallError' && o.leftAsFound === true), detail: `${failed.length} failures` });
    if (WAYS[w.way].retry === 'on') {
      out.push({ text: `way ${w.way}: with the retry, every operation completed`, ok: failed.length === 0, detail: `${w.operations.length - failed.length} of ${w.operations.length}` });
    }
    if (w.way === 1) {
      const efaults = Object.values(w.stats).reduce((n, s) => n + s.efaults, 0);
      out.push({ text: 'way 1: no EFAULT with /dev/xen/hypercall buffers', ok: efaults === 0, detail: `${efaults} EFAULTs` });
    }
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      image: { type: 'string' },
      ways: { type: 'string', default: '1,2,3' },
      cycles: { type: 'string', default: '4' },
      'interval-ms': { type: 'string', default: '0.1' },
      cap: { type: 'string', default: '40000' },
      'xl-kernel': { type: 'string' },
      'xl-memory': { type: 'string', default: '16' },
      'xl-rounds': { type: 'string', default: '2' },
      out: { type: 'string' },
    },
  });
  const image = values.image ?? process.env.XENCALL_TEST_GUEST_IMAGE;
  if (!image) throw new Error('--image (or XENCALL_TEST_GUEST_IMAGE) is required: scripts/saverestore-study.sh builds the test guest');
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const result = await runStudy({
    image,
    ways: values.ways.split(',').map(Number) as WayNumber[],
    cycles: Number(values.cycles),
    intervalMs: Number(values['interval-ms']),
    cap: Number(values.cap),
    xlKernel: values['xl-kernel'] ?? null,
    xlMemoryMb: Number(values['xl-memory']),
    xlRounds: Number(values['xl-rounds']),
    log,
  });
  const inv = invariants(result);
  for (const i of inv) log(`${i.ok ? 'HOLDS' : 'FAILS'}: ${i.text} (${i.detail})`);
  if (values.out) fs.writeFileSync(values.out, `${JSON.stringify({ ...result, invariants: inv }, null, 2)}\n`);
  process.exitCode = inv.every((i) => i.ok) ? 0 : 1;
}
