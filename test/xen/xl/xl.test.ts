// Xen's own toolstack beside xencall, in one dom0 (xen-vm/run.sh --with-xl; scripts/test-xen.sh
// runs this in its first boot). xl boots, saves, restores, live-migrates and destroys the PVH test
// guest (xl-guest.c); xencall's typed calls read the same domains and Xen's console. Expected values
// come from xl's own answers, from libxl's source, or from the guest's words on Xen's console —
// never from xencall agreeing with itself. Timings are printed (`# xl timing: ...`), never asserted.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HypercallError, open, type DomainInfo, type Xencall } from '../../../src/index.js';
import { vm } from '../vm-env.js';
import { GuestConsole } from './guest-console.js';
import {
  formatXlTiming,
  xl,
  xlAvailable,
  xlCreate,
  xlDestroy,
  xlList,
  xlListLong,
  xlMigrateLocal,
  xlOk,
  xlRestore,
  xlSave,
  xlScratchDir,
  xlTiming,
  type XlTiming,
} from './xl.js';

const MEMORY_MB = 16;
/** libxl's max_mem slack on x86 (tools/libs/light/libxl_internal.h:108 LIBXL_MAXMEM_CONSTANT, libxl_x86.c:550). */
const LIBXL_MAXMEM_CONSTANT_KB = 1024;
const XL_TIMEOUT_MS = 120_000;

const isGone = (e: unknown) => e instanceof HypercallError && e.errnoName === 'ESRCH';

describe(`Xen's own toolstack (xl) beside xencall on real Xen ${vm.xenVersion}`, () => {
  const name = `xl-guest-${process.pid}`;
  let xc: Xencall;
  let guestConsole: GuestConsole;
  /** The guest's current domid, as xl moves it (-1 when none exists). */
  let domid = -1;
  const timings: XlTiming[] = [];

  before(async () => {
    const avail = xlAvailable();
    if (!avail.ok) throw new Error(`xl is not available in this dom0: ${avail.reason}. Run with xen-vm/run.sh --with-xl (npm run test:xen does).`);
    // Measured here: with two dom0 vcpus, multi-threaded dom0 processes (this runner's workers,
    // tsx's esbuild, xl itself) crash or read corrupt memory while a guest runs (xen-vm/README.md).
    if (vm.vcpus !== 1) throw new Error(`dom0 has ${vm.vcpus} vcpus: run the xl checks with --vcpus 1 (npm run test:xen does)`);
    const kernel = process.env.XENCALL_XL_GUEST_KERNEL;
    if (!kernel || !fs.existsSync(kernel)) {
      throw new Error(`XENCALL_XL_GUEST_KERNEL=${kernel ?? '(unset)'} is not a file: scripts/test-xen.sh builds it (scripts/build-xl-guest.sh)`);
    }
    xc = await open();
    guestConsole = await GuestConsole.open(xc);
  });

  after(async () => {
    // Never leave the guest behind, whatever failed: xl first (it also cleans xenstore), then
    // xencall directly should xl itself be the thing that failed.
    if (domid > 0) {
      await xl(['destroy', String(domid)], { timeoutMs: 30_000 }).catch(() => undefined);
      await xc.domctl.destroydomain({ domain: domid }).catch(() => undefined);
    }
    for (const t of timings) console.log(`# xl timing: ${formatXlTiming(t)}`);
    xc?.close();
  });

  const needGuest = () => assert.ok(domid > 0, 'no guest: the create step failed (see above)');
  const info = (id: number) => xc.domctl.getdomaininfo({ domain: id });
  const pagesOf = async (id: number) => Number((await info(id)).tot_pages);

  it('xl info describes the hypervisor xencall talks to', async () => {
    const r = await xlOk(['info'], { timeoutMs: XL_TIMEOUT_MS });
    const field = (k: string) => {
      const m = new RegExp(`^${k}\\s*: (.*)$`, 'm').exec(r.stdout);
      assert.ok(m, `xl info printed no ${k}`);
      return m[1]!.trim();
    };
    const v = await xc.xen_version.version();
    assert.equal(field('xen_version'), `${v.major}.${v.minor}${await xc.xen_version.extraversion()}`);
    const p = await xc.sysctl.physinfo();
    assert.equal(Number(field('nr_cpus')), p.nr_cpus);
    // xl prints total_pages in MiB, rounded down (tools/xl/xl_info.c, output_physinfo).
    assert.equal(Number(field('total_memory')), Math.floor((Number(p.total_pages) * 4096) / (1 << 20)));
    assert.equal(field('xen_scheduler'), (await xc.sysctl.sched_id()).name);
    const dom0 = (await xlList()).find((row) => row.domid === 0);
    assert.ok(dom0, 'xl list shows no domain 0');
    assert.equal(dom0.name, 'Domain-0', 'xen-init-dom0 names dom0 in xenstore');
    assert.equal(dom0.vcpus, vm.vcpus);
    assert.equal(dom0.memMb, vm.dom0MemMb);
  });

  it('xl create boots the PVH guest; xl list, xl list --long and xencall getdomaininfo agree on it', async () => {
    const created = await xlCreate(
      { name, kernel: process.env.XENCALL_XL_GUEST_KERNEL!, memoryMb: MEMORY_MB, vcpus: 1 },
      { timeoutMs: XL_TIMEOUT_MS },
    );
    domid = created.domid;
    timings.push(xlTiming('xl create', created.run, await pagesOf(domid)));

    const row = (await xlList()).find((r) => r.domid === domid);
    assert.ok(row, `xl list does not show domain ${domid}`);
    assert.deepEqual([row.name, row.vcpus, row.memMb], [name, 1, MEMORY_MB]);

    const long = await xlListLong(domid);
    assert.equal(long.config.c_info.type, 'pvh');
    assert.equal(long.config.c_info.name, name);
    assert.equal(long.config.b_info.max_vcpus, 1);
    assert.equal(long.config.b_info.target_memkb, MEMORY_MB * 1024);

    const d = await info(domid);
    assert.equal(d.handle, long.config.c_info.uuid, 'the domain handle is the uuid libxl gave it');
    assert.equal(d.hvm_guest, true, 'PVH is an HVM container');
    assert.equal(d.hap, true);
    assert.equal(d.max_vcpu_id, 0);
    assert.equal(d.nr_online_vcpus, 1);
    // libxl_dom.c:363 (libxl__build_pre): max_mem = target + the x86 slack.
    assert.equal(d.max_pages * 4n, BigInt(long.config.b_info.target_memkb + LIBXL_MAXMEM_CONSTANT_KB));
    assert.equal(d.shutdown, false);

    // It runs: it says so on Xen's console, and Xen gives it CPU time.
    const first = await guestConsole.waitForCount(domid, 'count', 'a count from the new guest');
    const before = (await info(domid)).cpu_time;
    await guestConsole.waitForCount(domid, 'count', 'a later count', first + 1);
    assert.ok((await info(domid)).cpu_time > before, 'the guest got no CPU time');
  });

  it('xl save writes the image and removes the domain; xl restore brings the guest back where it stopped', async () => {
    needGuest();
    const old = domid;
    const pages = await pagesOf(old);
    const file = path.join(xlScratchDir(), `${name}.save`);
    const saved = await xlSave(old, file, { timeoutMs: XL_TIMEOUT_MS });
    domid = -1;
    timings.push(xlTiming('xl save', saved, pages));
    assert.ok(fs.statSync(file).size > pages * 4096, `the image (${fs.statSync(file).size} bytes) is smaller than the guest's ${pages} pages`);
    await assert.rejects(info(old), isGone, `domain ${old} still exists after xl save`);
    const suspendedAt = await guestConsole.waitForCount(old, 'suspending', 'the guest acknowledging the suspend');

    const restored = await xlRestore(file, name, { timeoutMs: XL_TIMEOUT_MS });
    domid = restored.domid;
    timings.push(xlTiming('xl restore', restored.run, pages));
    assert.notEqual(domid, old);
    await expectContinued(old, domid, suspendedAt);
  });

  it('a live xl migrate to this host moves the guest to a new domid, where it goes on from where it stopped', async () => {
    needGuest();
    const old = domid;
    const pages = await pagesOf(old);
    const migrated = await xlMigrateLocal(old, name, { timeoutMs: XL_TIMEOUT_MS });
    domid = migrated.domid;
    timings.push(xlTiming('xl migrate (live, localhost)', migrated.run, pages));
    assert.notEqual(domid, old);
    await assert.rejects(info(old), isGone, `domain ${old} still exists after the migration`);
    const suspendedAt = await guestConsole.waitForCount(old, 'suspending', 'the guest acknowledging the final suspend');
    await expectContinued(old, domid, suspendedAt);
    assert.equal((await xlList()).filter((r) => r.name === name).length, 1, 'one guest of that name after the migration');
  });

  it('xl destroy removes the guest, and xencall sees it gone', async () => {
    needGuest();
    const old = domid;
    timings.push(xlTiming('xl destroy', await xlDestroy(old, { timeoutMs: XL_TIMEOUT_MS }), 0));
    domid = -1;
    await assert.rejects(info(old), isGone);
    assert.equal((await xlList()).some((r) => r.name === name), false);
  });

  /**
   * The restored guest's first words are "resumed at N" with N the count it suspended at in the
   * old domain: its memory and CPU state came across. Then it goes on counting, as Xen's CPU time
   * and its console both show.
   */
  async function expectContinued(oldDomid: number, newDomid: number, suspendedAt: number) {
    const d: DomainInfo = await info(newDomid);
    assert.equal(d.shutdown, false, `the new domain ${newDomid} is shut down (reason ${d.shutdown_reason})`);
    assert.equal(d.paused, false, `the new domain ${newDomid} is still paused`);
    const resumedAt = await guestConsole.waitForCount(newDomid, 'resumed', 'the guest resuming in the new domain');
    assert.equal(resumedAt, suspendedAt, `d${oldDomid} suspended at ${suspendedAt.toString(16)}, d${newDomid} resumed at ${resumedAt.toString(16)}`);
    const next = await guestConsole.waitForCount(newDomid, 'count', 'a count after resuming');
    assert.ok(next > suspendedAt, `counting went on from ${suspendedAt.toString(16)}: next ${next.toString(16)}`);
  }
});
