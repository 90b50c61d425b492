// `xencall demo`: a scripted toolstack scenario on the mock hypervisor, with seeded copy faults
// injected at a given rate, that shows what xencall retried, what it refused and why, and how
// each refusal was recovered. It needs no Xen: the README's first command runs it.

import diagnostics_channel from 'node:diagnostics_channel';
import { open } from '../xencall.js';
import { HypercallError, ErrorCodes } from '../errors.js';
import { findDomainByHandle, findLeakedPorts, recoverConsole } from '../recovery.js';
import { CHANNELS } from '../retry/runner.js';
import { MockHypervisor } from '../testing/hypervisor.js';
import type { DemoJson } from './json-schemas.js';
import type { CliIO } from './main.js';
import type { CliOptions } from './table.js';

interface Step {
  step: string;
  outcome: 'ok' | 'recovered' | 'refused' | 'exhausted';
  detail: string;
}

export async function runDemo(opts: CliOptions, io: CliIO): Promise<number> {
  const hv = new MockHypervisor({ consoleText: '(XEN) mock boot\n(XEN) Freed 620kB init memory\n' });
  // One scripted fault per interesting op, where page migration would hurt most, then seeded
  // random faults on top at the given rate.
  hv.faults.inject({ op: 'xen_version.extraversion', direction: 'out', label: 'extraversion copy-out' });
  hv.faults.inject({ op: 'domctl.createdomain', direction: 'out', label: 'createdomain copy-back (after the domain exists)' });
  hv.faults.inject({ op: 'domctl.getpageframeinfo3', direction: 'out', nth: 100, label: 'getpageframeinfo3 element 99 (mid-array)' });
  hv.faults.inject({ op: 'domctl.shadow_op.clean', direction: 'out', nth: 2, label: 'CLEAN copy-back (after the bits were cleared)' });
  hv.faults.inject({ op: 'event_channel_op.alloc_unbound', direction: 'out', label: 'alloc_unbound copy-back (after the port exists)' });
  hv.faults.inject({ op: 'sysctl.readconsole', direction: 'out', nth: 2, label: 'readconsole copy-back (after the clear)' });
  hv.faults.random({ rate: opts.rate, seed: opts.seed });
  const xc = await open({ backend: hv.backend() });
  const events: string[] = [];
  const say = (s: string) => {
    events.push(s);
    if (!opts.json) io.out(`${s}\n`);
  };
  const onRetry = (m: unknown) => {
    const e = m as { name: string; attempt: number; errnoName: string };
    say(`  retry   ${e.name}: ${e.errnoName} on attempt ${e.attempt}; re-issued from pristine inputs`);
  };
  const onRefuse = (m: unknown) => {
    const e = m as { name: string | null; errnoName: string; kind: string; reason: string };
    say(`  refuse  ${e.name}: ${e.errnoName} (${e.kind}): ${e.reason}`);
  };
  diagnostics_channel.subscribe(CHANNELS.retry, onRetry);
  diagnostics_channel.subscribe(CHANNELS.refuse, onRefuse);
  const steps: Step[] = [];
  const run = async (step: string, fn: () => Promise<string>, recover?: (e: HypercallError) => Promise<string>) => {
    if (!opts.json) io.out(`${step}\n`);
    const before = hv.history.faults().length;
    try {
      const detail = await fn();
      const faulted = hv.history.faults().length > before;
      steps.push({ step, outcome: faulted ? 'recovered' : 'ok', detail });
      if (!opts.json) io.out(`  ${faulted ? 'ok after retry' : 'ok'}: ${detail}\n`);
    } catch (e) {
      if (e instanceof HypercallError && e.code === ErrorCodes.RETRY_EXHAUSTED) {
        // A safe op that kept faulting: a typed error after the attempt budget, never a wrong
        // answer. The scenario goes on without this step's result.
        steps.push({ step, outcome: 'exhausted', detail: `${e.code} after ${e.attempts} attempts` });
        if (!opts.json) io.out(`  gave up: ${e.code} after ${e.attempts} attempts (typed, never a wrong result)\n`);
        return;
      }
      if (!(e instanceof HypercallError) || !recover) throw e;
      const detail = await recover(e);
      steps.push({ step, outcome: 'refused', detail: `${e.code} ${e.errnoName}; recovery: ${detail}` });
      if (!opts.json) io.out(`  recovered by the caller: ${detail}\n`);
    }
  };

  try {
    await run('xen_version', async () => {
      const v = await xc.xen_version.version();
      return `Xen ${v.major}.${v.minor}${await xc.xen_version.extraversion()}`;
    });
    await run('physinfo', async () => `${(await xc.sysctl.physinfo()).nr_cpus} cpus`);

    const handle = randomUUIDSeeded(opts.seed);
    let domid = -1;
    await run(
      `createdomain (handle ${handle})`,
      async () => {
        domid = (await xc.domctl.createdomain({ handle, max_vcpus: 2 })).domid;
        return `domain ${domid}`;
      },
      async (e) => {
        // The domain may exist: find it by the handle we chose.
        const [found] = await retryRead(() => findDomainByHandle(xc, handle));
        if (!found) return `${e.errnoName} before creation; no orphan`;
        domid = found.domid;
        return `found the created domain ${domid} by its handle instead of creating a second one`;
      },
    );
    if (domid < 0) domid = (await xc.domctl.createdomain({ handle, max_vcpus: 2 })).domid;
    const dom = hv.domain(domid)!;
    dom.populate(0, 4096);

    // Xen refuses paging ops on a domain without vcpus (paging_domctl): create them first.
    await run('max_vcpus 2', async () => {
      await xc.domctl.max_vcpus({ domain: domid, max: 2 });
      return 'vcpus created';
    });
    await run('max_mem 16 MiB', async () => {
      await xc.domctl.max_mem({ domain: domid, max_memkb: 16384n });
      return 'set';
    });
    await run('unpausedomain', async () => {
      await xc.domctl.unpausedomain({ domain: domid });
      return `pause count ${hv.domain(domid)!.controllerPauseCount}`;
    });
    await run('getpageframeinfo3, 4 batches of 256', async () => {
      let tabs = 0;
      for (let b = 0; b < 4; b++) {
        const gfns = Array.from({ length: 256 }, (_, i) => BigInt(b * 256 + i));
        const { types } = await xc.domctl.getpageframeinfo3({ domain: domid, gfns });
        tabs += types.filter((t) => t !== 0).length;
      }
      return `${tabs} page-table pages in 1024`;
    });
    await run('shadow_op enable_logdirty', async () => {
      await xc.domctl.shadow_op.enable_logdirty({ domain: domid });
      return 'log-dirty on';
    }, async () => {
      // A second ENABLE would fail if the first took effect; OFF is idempotent, so start over.
      const on = await untilDone(async () => {
        await xc.domctl.shadow_op.off({ domain: domid });
        await xc.domctl.shadow_op.enable_logdirty({ domain: domid });
        return true;
      });
      return on ? 'switched log-dirty off and on again' : 'could not switch log-dirty on under these faults';
    });
    for (const g of [5, 77, 1000, 4000]) dom.writePage(g);
    await run(
      'shadow_op clean (4096 pages)',
      async () => {
        const r = await xc.domctl.shadow_op.clean({ domain: domid, pages: 4096n });
        return `${countBits(r.bitmap)} dirty pages`;
      },
      async () => {
        // The failed CLEAN's bitmap is gone with its buffer, so this round resends every page;
        // a second CLEAN collects what Xen still holds and re-arms tracking for the next round.
        const again = await untilDone(() => xc.domctl.shadow_op.clean({ domain: domid, pages: 4096n }));
        return again
          ? `resent all 4096 pages this round; a second CLEAN returned ${countBits(again.bitmap)} more and re-armed tracking`
          : 'resent all 4096 pages this round; the next round\'s CLEAN re-arms tracking';
      },
    );
    await run(
      'event_channel_op alloc_unbound',
      async () => `port ${(await xc.event_channel_op.alloc_unbound({ dom: 0, remote_dom: domid })).port}`,
      async () => {
        const leaked = await retryRead(() => findLeakedPorts(xc, { dom: 0, remote_dom: domid, known: [] }));
        return leaked.length ? `found the leaked port ${leaked.join(', ')} with status; adopted it` : 'no port was allocated';
      },
    );
    const consoleBuf = xc.allocBuffer(16384);
    await run(
      'readconsole clear (into our own buffer)',
      async () => `${(await xc.sysctl.readconsole({ clear: true, buffer: consoleBuf })).count} bytes`,
      async (e) => {
        // The ring was cleared before the reply was lost: the text is only in our buffer now.
        const got = await recoverConsole(xc, e, { buffer: consoleBuf, index: 0 });
        return `recovered ${got.text.length} bytes of console text from the buffer: ${JSON.stringify(got.text.split('\n')[0])}...`;
      },
    );
    xc.freeBuffer(consoleBuf);
    await run('destroydomain', async () => {
      await xc.domctl.destroydomain({ domain: domid });
      return `domain ${domid} gone`;
    });
  } finally {
    diagnostics_channel.unsubscribe(CHANNELS.retry, onRetry);
    diagnostics_channel.unsubscribe(CHANNELS.refuse, onRefuse);
  }
  const stats = xc.stats();
  const total = Object.values(stats).reduce(
    (t, c) => ({ attempts: t.attempts + c.attempts, efaults: t.efaults + c.efaults, retries: t.retries + c.retries, refused: t.refused + c.refused }),
    { attempts: 0, efaults: 0, retries: 0, refused: 0 },
  );
  xc.close();
  const injected = hv.history.faults().length;
  if (opts.json) {
    const out: DemoJson = { seed: opts.seed, fault_rate: opts.rate, injected_faults: injected, ...total, steps, events };
    io.out(`${JSON.stringify(out, null, 2)}\n`);
  } else {
    io.out(`\n${injected} copy faults injected (seed ${opts.seed}, rate ${opts.rate}); ${total.attempts} hypercalls, ${total.efaults} EFAULT, ${total.retries} retried, ${total.refused} refused and recovered by the caller.\n`);
  }
  return 0;
}

/** Reads during recovery are safe ops: retry them until the random faults let them through. */
async function retryRead<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i > 20 || !(e instanceof HypercallError) || e.code !== ErrorCodes.RETRY_EXHAUSTED) throw e;
    }
  }
}

/** A recovery step that may itself meet a fault: a few tries, then null (the caller says so). */
async function untilDone<T>(fn: () => Promise<T>, tries = 4): Promise<T | null> {
  for (let i = 0; i < tries; i++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof HypercallError) || (e.code !== ErrorCodes.RETRY_REFUSED && e.code !== ErrorCodes.RETRY_EXHAUSTED)) throw e;
    }
  }
  return null;
}

function countBits(b: Uint8Array): number {
  let n = 0;
  for (const x of b) for (let v = x; v; v &= v - 1) n++;
  return n;
}

/** A UUID that depends on the seed only, so a demo run is reproducible. */
function randomUUIDSeeded(seed: number): string {
  const h = (seed >>> 0).toString(16).padStart(8, '0');
  return `${h}-0000-4000-8000-${h}feed`;
}
