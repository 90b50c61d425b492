// `xencall saverestore --backend mock`: the live-migration loop on the mock hypervisor, with a
// guest that keeps writing, seeded copy faults in CLEAN and its continuations, and a final
// byte-for-byte comparison of source and destination.

import { open } from '../xencall.js';
import { ValidationError } from '../errors.js';
import { liveMigrate, type CleanStrategy } from '../saverestore.js';
import { MockHypervisor } from '../testing/hypervisor.js';
import { MockGuestWorkload } from '../testing/world.js';
import type { SaveRestoreJson } from './json-schemas.js';
import type { CliIO } from './main.js';
import { EXIT } from './spec.js';
import type { CliOptions } from './table.js';

export interface SaveRestoreCliOptions extends CliOptions {
  pages: number;
  strategy: CleanStrategy;
  progress: boolean;
}

const PAGE_BYTES = 16;

export async function runSaveRestore(opts: SaveRestoreCliOptions, io: CliIO): Promise<number> {
  if (opts.backend !== 'mock') {
    throw new ValidationError('backend', 'saverestore runs on the mock hypervisor only (--backend mock): migrating a real guest needs foreign-memory mapping, which is not libxencall\'s job');
  }
  const hv = new MockHypervisor({ strict: true, preempt: { rate: 0.5, seed: opts.seed } });
  const dom = hv.addDomain({ domid: 9, totPages: opts.pages, withMemory: true, memoryPageBytes: PAGE_BYTES });
  for (let g = 0; g < opts.pages; g++) dom.writePage(g, (p) => p.fill(g & 0xff));
  for (const op of ['domctl.shadow_op.clean', 'arch_1'] as const) hv.faults.random({ op, rate: opts.rate, seed: opts.seed + op.length });
  const guest = new MockGuestWorkload(dom, opts.seed);
  const dest = new Uint8Array(opts.pages * PAGE_BYTES);
  const xc = await open({ backend: hv.backend(), sleep: { async: async () => {}, sync: () => {} } });
  const bar = opts.progress && !opts.json;
  const report = await liveMigrate(xc, {
    domain: 9,
    pages: opts.pages,
    onCleanFault: opts.strategy,
    onTick: () => guest.step(Math.ceil(opts.pages / 500)),
    sendPages: (gfns) => {
      guest.step(Math.ceil(opts.pages / 1000));
      for (const g of gfns) dest.set(dom.page(g), g * PAGE_BYTES);
    },
    onRound: (r) => {
      if (bar) {
        const width = 30;
        const filled = Math.round((width * (r.round + 1)) / 7);
        io.err(`\r[${'#'.repeat(Math.min(width, filled)).padEnd(width)}] round ${r.round}${r.final ? ' (final)' : ''}: ${r.sent} pages sent${r.cleanFaults ? `, ${r.cleanFaults} CLEAN faults` : ''}   `);
      }
      if (!opts.json) io.out(`${bar ? '\n' : ''}round ${r.round}${r.final ? ' final' : ''}: ${r.dirty} dirty, ${r.sent} sent, ${r.cleanFaults} CLEAN faults, ${r.continued} continued${r.allDirty ? ', resent everything' : ''}\n`);
    },
  });
  const stats = xc.stats();
  xc.close();
  let mismatched = 0;
  for (let g = 0; g < opts.pages; g++) {
    if (!Buffer.from(dom.page(g)).equals(Buffer.from(dest.subarray(g * PAGE_BYTES, (g + 1) * PAGE_BYTES)))) mismatched++;
  }
  const retries = Object.values(stats).reduce((s, c) => s + c.retries, 0);
  const refusals = Object.values(stats).reduce((s, c) => s + c.refused, 0);
  const summary: SaveRestoreJson = {
    seed: opts.seed,
    fault_rate: opts.rate,
    strategy: opts.strategy,
    pages: opts.pages,
    rounds: report.rounds.length,
    pages_sent: report.pagesSent,
    faults_injected: hv.history.faults().length,
    clean_faults: report.cleanFaults,
    continuations_finished: report.continued,
    retries,
    refusals,
    identical: mismatched === 0,
    pages_differing: mismatched,
  };
  if (opts.json) io.out(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    io.out(
      `${summary.rounds} rounds, ${summary.pages_sent} pages sent, ${summary.faults_injected} copy faults injected, ${summary.clean_faults} CLEAN faults, ${summary.continuations_finished} continuations finished, ${retries} retries, ${refusals} refusals\n` +
        `destination ${mismatched === 0 ? 'identical to the source' : `DIFFERS from the source in ${mismatched} pages`}\n`,
    );
  }
  return mismatched === 0 ? EXIT.ok : EXIT.failed;
}
