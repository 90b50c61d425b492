// `xencall save`, `xencall restore`, `xencall migrate`: thin shells over the library's save,
// restore and migrate (src/saverestore/operations.ts), with progress on stderr when it is a
// terminal. With --backend mock they run against a mock hypervisor whose guest (at the domid
// given, or domid 1) keeps writing its memory while the operation runs.

import diagnostics_channel from 'node:diagnostics_channel';
import { ValidationError, describeValue } from '../errors.js';
import { CHANNELS } from '../retry/runner.js';
import { migrate, restore, save } from '../saverestore/operations.js';
import type { SaveRestoreProgress } from '../saverestore/progress.js';
import { MockHypervisor } from '../testing/hypervisor.js';
import { MockGuestWorkload } from '../testing/world.js';
import { open, type Xencall } from '../xencall.js';
import type { MigrateJson, RestoreJson, SaveJson } from './json-schemas.js';
import type { CliIO } from './main.js';
import type { CliOptions } from './table.js';

export interface SaveRestoreMigrateOptions extends CliOptions {
  live: boolean;
  /** save: leave the domain running after the image is taken (xl save -c). */
  keep: boolean;
  /** restore/migrate: leave the new domain paused. */
  paused: boolean;
  /** migrate: leave the source paused instead of destroying it. */
  keepSource: boolean;
  progress: boolean;
}

/** Pages of the mock's guest. */
const MOCK_GUEST_PAGES = 4096;

async function openWith(opts: SaveRestoreMigrateOptions, guestDomid: number | null): Promise<{ xc: Xencall; done(): void }> {
  if (opts.backend !== 'mock') return { xc: await open(), done: () => undefined };
  const hv = new MockHypervisor({ preempt: { rate: 0.2, seed: opts.seed } });
  let stop = () => undefined as void;
  if (guestDomid !== null) {
    const dom = hv.addDomain({ domid: guestDomid, totPages: MOCK_GUEST_PAGES, hvm: true, withMemory: true, onlineVcpus: 1 });
    for (let g = 0; g < MOCK_GUEST_PAGES; g++) dom.writePage(g, (p) => p.fill(g & 0xff));
    // The guest runs "concurrently": a few writes before every hypercall the CLI makes.
    const guest = new MockGuestWorkload(dom, opts.seed);
    const step = () => guest.step(4);
    diagnostics_channel.subscribe(CHANNELS.attempt, step);
    stop = () => diagnostics_channel.unsubscribe(CHANNELS.attempt, step);
  }
  return { xc: await open({ backend: hv.backend() }), done: stop };
}

function domidArg(command: string, text: string | undefined): number {
  const n = text !== undefined && /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n < 0x7ff0)) throw new ValidationError('domid', `xencall ${command} needs a guest domain id (1 to 32751), got ${describeValue(text)}`);
  return n;
}

/** One line on stderr, rewritten per round. */
function progressLine(io: CliIO, enabled: boolean): { listener?: (p: SaveRestoreProgress) => void; end(): void } {
  if (!enabled) return { end: () => undefined };
  let shown = false;
  return {
    listener: (p) => {
      if (p.phase === 'done') return;
      shown = true;
      const what = p.operation === 'restore' ? `${p.pagesSent} pages written` : `round ${p.round}${p.final ? ' (final, paused)' : ''}: ${p.roundPages} pages, ${p.pagesSent} sent in all`;
      io.err(`\r${p.operation} ${p.domid}: ${what}, ${(p.elapsedMs / 1000).toFixed(1)} s   `);
    },
    end: () => void (shown && io.err('\n')),
  };
}

const ms = (v: number) => Math.round(v * 10) / 10;

export async function runSave(args: readonly string[], opts: SaveRestoreMigrateOptions, io: CliIO): Promise<number> {
  const domid = domidArg('save', args[0]);
  const file = args[1];
  if (!file || args.length > 2) throw new ValidationError('file', 'usage: xencall save <domid> <file> [--live] [--keep] [--json]');
  const { xc, done } = await openWith(opts, domid);
  const bar = progressLine(io, opts.progress);
  try {
    const r = await save(xc, domid, file, { live: opts.live, after: opts.keep ? 'resume' : 'destroy', onProgress: bar.listener });
    bar.end();
    const out: SaveJson = { domid, file, live: r.live, rounds: r.rounds.length, pages_sent: r.pagesSent, bytes: r.bytes, downtime_ms: ms(r.downtimeMs), total_ms: ms(r.totalMs), source: opts.keep ? 'running' : 'destroyed' };
    io.out(opts.json ? `${JSON.stringify(out, null, 2)}\n` : `saved domain ${domid} to ${file}: ${r.pagesSent} pages in ${r.rounds.length} round${r.rounds.length === 1 ? '' : 's'}, ${r.bytes} bytes, downtime ${out.downtime_ms} ms, total ${out.total_ms} ms; the domain was ${out.source}\n`);
    return 0;
  } finally {
    bar.end();
    done();
    xc.close();
  }
}

export async function runRestore(args: readonly string[], opts: SaveRestoreMigrateOptions, io: CliIO): Promise<number> {
  const file = args[0];
  if (!file || args.length > 1) throw new ValidationError('file', 'usage: xencall restore <file> [--paused] [--json]');
  const { xc, done } = await openWith(opts, null);
  const bar = progressLine(io, opts.progress);
  try {
    const r = await restore(xc, file, { paused: opts.paused, onProgress: bar.listener });
    bar.end();
    // Plain output is the domid alone, for `domid=$(xencall restore FILE)`.
    const out: RestoreJson = { domid: r.domid, file, pages: r.pages, paused: opts.paused, total_ms: ms(r.totalMs) };
    io.out(opts.json ? `${JSON.stringify(out, null, 2)}\n` : `${r.domid}\n`);
    return 0;
  } finally {
    bar.end();
    done();
    xc.close();
  }
}

export async function runMigrate(args: readonly string[], opts: SaveRestoreMigrateOptions, io: CliIO): Promise<number> {
  const domid = domidArg('migrate', args[0]);
  if (args.length > 1) throw new ValidationError('args', 'usage: xencall migrate <domid> [--live] [--keep-source] [--paused] [--json]');
  const { xc, done } = await openWith(opts, domid);
  const bar = progressLine(io, opts.progress);
  try {
    const r = await migrate(xc, domid, { live: opts.live, keepSource: opts.keepSource, paused: opts.paused, onProgress: bar.listener });
    bar.end();
    const out: MigrateJson = { source: r.source, destination: r.destination, live: r.live, rounds: r.rounds.length, pages_sent: r.pagesSent, downtime_ms: ms(r.downtimeMs), total_ms: ms(r.totalMs) };
    io.out(
      opts.json
        ? `${JSON.stringify(out, null, 2)}\n`
        : `migrated domain ${r.source} to ${r.destination}: ${r.rounds.length} round${r.rounds.length === 1 ? '' : 's'}, ${r.pagesSent} pages sent, downtime ${out.downtime_ms} ms, total ${out.total_ms} ms\n`,
    );
    return 0;
  } finally {
    bar.end();
    done();
    xc.close();
  }
}
