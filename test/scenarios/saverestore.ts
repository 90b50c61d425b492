// One save/restore/migrate scenario for the test guest, run on the mock
// (test/saverestore-scenario.test.ts) and on a real Xen (test/xen/guest/saverestore.test.ts):
// live-migrate the running guest, then live-save it and restore the image; at each switch-over
// the paused source and the (still paused) destination must hold the same memory page for page,
// the destination's counter must start where the source stopped and move on, and its pages must
// keep the guest's pattern. Then nothing is left but what the scenario found.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, restore, save, type Xencall } from '../../src/index.js';
import { bootTestGuest, type TestGuest } from '../../src/testing/index.js';

export interface SaveRestoreScenarioOptions {
  /** A prebuilt guest image (real Xen: dom0 has no assembler). */
  image?: string;
  /** The handle save/restore/migrate run on (e.g. locked buffers under a stressor). Default: `xc`. */
  ops?: Xencall;
  /** Migrate/save-restore cycles. Default 1 each. */
  cycles?: number;
  log?: (line: string) => void;
}

export interface SaveRestoreScenarioResult {
  migrations: number;
  restores: number;
  /** Pages compared at switch-overs, and how many differed (must be 0). */
  pagesCompared: number;
  pagesDiffering: number;
  downtimesMs: number[];
}

const PAGES = 1024;
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

/** Gfns at which two domains' memory differ (both read through read-only foreign mappings). */
export function differingPages(xc: Xencall, a: number, b: number, pages: number): number[] {
  const gfns = range(0, pages);
  const ma = xc.foreignMemory.map(a, gfns);
  try {
    const mb = xc.foreignMemory.map(b, gfns);
    try {
      assert.deepEqual([ma.errors.some((e) => e !== 0), mb.errors.some((e) => e !== 0)], [false, false], 'every page of both domains maps');
      return gfns.filter((g) => Buffer.compare(ma.page(g), mb.page(g)) !== 0);
    } finally {
      mb.unmap();
    }
  } finally {
    ma.unmap();
  }
}

/** Checks a paused source against its paused copy, starts the copy and sees it carry on. */
async function switchOver(xc: Xencall, source: TestGuest, destination: number, what: string, r: SaveRestoreScenarioResult): Promise<TestGuest> {
  assert.equal((await xc.domctl.getdomaininfo({ domain: source.domid })).paused, true, `${what}: the source is paused`);
  assert.equal((await xc.domctl.getdomaininfo({ domain: destination })).paused, true, `${what}: the destination waits, paused`);
  const diff = differingPages(xc, source.domid, destination, PAGES);
  r.pagesCompared += PAGES;
  r.pagesDiffering += diff.length;
  assert.deepEqual(diff, [], `${what}: pages differ between the paused source and the destination`);
  const moved = source.movedTo(destination);
  const stopped = await source.counter();
  assert.equal(await moved.counter(), stopped, `${what}: the destination's counter is the source's`);
  await xc.domctl.unpausedomain({ domain: destination });
  const now = await moved.waitForProgress(stopped + 2);
  assert.ok(now >= stopped + 2, `${what}: the destination carries on from ${stopped}`);
  await xc.domctl.pausedomain({ domain: destination });
  const pages = await moved.verifyPages();
  assert.deepEqual(pages.broken, [], `${what}: the destination's write set keeps the guest's pattern`);
  await xc.domctl.unpausedomain({ domain: destination });
  await source.destroy();
  return moved;
}

export async function saveRestoreScenario(xc: Xencall, options: SaveRestoreScenarioOptions = {}): Promise<SaveRestoreScenarioResult> {
  const log = options.log ?? (() => {});
  const ops = options.ops ?? xc;
  const before = (await xc.sysctl.getdomaininfolist()).map((d) => d.domid);
  const r: SaveRestoreScenarioResult = { migrations: 0, restores: 0, pagesCompared: 0, pagesDiffering: 0, downtimesMs: [] };
  const dir = mkdtempSync(join(tmpdir(), 'xencall-sr-'));
  let guest: TestGuest = await bootTestGuest(xc, { pages: PAGES, writeSet: range(0x200, 48), image: options.image });
  try {
    await guest.waitForWriteSet();
    for (let cycle = 1; cycle <= (options.cycles ?? 1); cycle++) {
      const m = await migrate(ops, guest.domid, { live: true, keepSource: true, paused: true });
      r.migrations++;
      r.downtimesMs.push(m.downtimeMs);
      log(`migrate ${m.source} -> ${m.destination}: ${m.rounds.length} rounds, ${m.pagesSent} pages, downtime ${m.downtimeMs.toFixed(0)} ms, total ${m.totalMs.toFixed(0)} ms`);
      guest = await switchOver(xc, guest, m.destination, `migration ${cycle}`, r);

      const file = join(dir, `cycle-${cycle}.xcsr`);
      const s = await save(ops, guest.domid, file, { live: true, after: 'pause' });
      const restored = await restore(ops, file, { paused: true });
      r.restores++;
      log(`save ${guest.domid} (${s.rounds.length} rounds, ${s.bytes} bytes, ${s.totalMs.toFixed(0)} ms) -> restore ${restored.domid} (${restored.totalMs.toFixed(0)} ms)`);
      guest = await switchOver(xc, guest, restored.domid, `save/restore ${cycle}`, r);
      rmSync(file);
    }
  } finally {
    await guest.destroy().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual((await xc.sysctl.getdomaininfolist()).map((d) => d.domid), before, 'nothing is left behind');
  return r;
}
