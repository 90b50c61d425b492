// The xl helpers of the real-Xen checks (test/xen/xl/), on the host: how an xl run is reported
// (exit, signal, timeout — never hidden), what is parsed from xl's output and the guest's console
// lines, and the guest config. A fake `xl` on PATH stands in for Xen's; the real one runs in
// test/xen/xl/xl.test.ts.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseGuestLine } from './xen/xl/guest-console.js';
import { XlFailure, describeXlRun, pvhConfig, xl, xlAvailable, xlDomid, xlList, xlOk, xlTiming } from './xen/xl/xl.js';

describe('xl helpers (host, a fake xl on PATH)', () => {
  let dir: string;
  const savedPath = process.env.PATH;
  /** Makes `xl` run this shell script body. */
  const fakeXl = (body: string) => fs.writeFileSync(path.join(dir, 'xl'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-fake-xl-'));
    process.env.PATH = `${dir}:${savedPath}`;
  });
  after(() => {
    process.env.PATH = savedPath;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reports exit status, output and arguments', async () => {
    fakeXl('echo "out $*"; echo err >&2; exit 7');
    const r = await xl(['save', '3', '/tmp/x']);
    assert.deepEqual([r.code, r.signal, r.timedOut, r.stdout, r.stderr], [7, null, false, 'out save 3 /tmp/x\n', 'err\n']);
    assert.ok(r.ms > 0);
    assert.match(describeXlRun(r), /^xl save 3 \/tmp\/x: exit 7 after \d+ ms; stderr: err; stdout: out save 3 \/tmp\/x$/);
    await assert.rejects(xlOk(['save']), (e: unknown) => e instanceof XlFailure && e.run.code === 7);
  });

  it('reports an xl killed by a signal (the malloc abort seen here) as such', async () => {
    fakeXl('echo "malloc(): corrupted top size" >&2; kill -ABRT $$');
    const r = await xl(['save', '1', '/tmp/x']);
    assert.deepEqual([r.code, r.signal, r.timedOut], [null, 'SIGABRT', false]);
    assert.match(describeXlRun(r), /KILLED by SIGABRT .*corrupted top size/);
  });

  it('ends a hung xl and what it started at the timeout, and says it timed out', async () => {
    const marker = path.join(dir, 'grandchild-survived');
    // A child of xl (as libxl-save-helper is) that would leave a mark if it outlived the timeout.
    fakeXl(`(sleep 3; touch ${marker}) & sleep 30`);
    const r = await xl(['list'], { timeoutMs: 300 });
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, 'SIGTERM');
    assert.match(describeXlRun(r), /^xl list: TIMED OUT after \d+ ms \(ended by SIGTERM\)/);
    await new Promise((res) => setTimeout(res, 3500));
    assert.equal(fs.existsSync(marker), false, "xl's child outlived the timeout: the process group was not ended");
  });

  it('does not wait for a daemon that keeps xl\'s pipes open', async () => {
    const marker = path.join(dir, 'daemon-done');
    // As `xl create` leaves a monitoring daemon behind: it holds stdout until it exits.
    fakeXl(`setsid sh -c 'sleep 3; touch ${marker}' & echo created`);
    const r = await xl(['create', 'x.cfg']);
    assert.equal(r.code, 0);
    assert.equal(fs.existsSync(marker), false, 'xl() waited for the daemon to close the pipe');
  });

  it('parses xl list and xl domid', async () => {
    fakeXl(`cat <<'EOF'
Name                                        ID   Mem VCPUs\tState\tTime(s)
Domain-0                                     0  1024     1     r-----      23.4
xl-guest-1                                   3    16     1     -b----       0.5
EOF`);
    assert.deepEqual(await xlList(), [
      { name: 'Domain-0', domid: 0, memMb: 1024, vcpus: 1, state: 'r-----', timeS: 23.4 },
      { name: 'xl-guest-1', domid: 3, memMb: 16, vcpus: 1, state: '-b----', timeS: 0.5 },
    ]);
    fakeXl('echo 12');
    assert.equal(await xlDomid('g'), 12);
    fakeXl('echo "Domain g does not exist." >&2; exit 1');
    await assert.rejects(xlDomid('g'), XlFailure);
  });

  it('is unavailable outside the VM, without --with-xl, or when the toolstack failed, saying which', () => {
    assert.deepEqual(xlAvailable({}), { ok: false, reason: 'not inside the real-Xen VM (xen-vm/run.sh)' });
    assert.deepEqual(xlAvailable({ XENCALL_VM: '1', XENCALL_VM_WITH_XL: '0' }), { ok: false, reason: 'the VM was booted without --with-xl' });
    assert.deepEqual(xlAvailable({ XENCALL_VM: '1', XENCALL_VM_WITH_XL: '1', XENCALL_VM_XL: 'failed', XENCALL_VM_XL_ERROR: 'xenstored exited 1' }), {
      ok: false,
      reason: 'the toolstack did not start: xenstored exited 1',
    });
    assert.deepEqual(xlAvailable({ XENCALL_VM: '1', XENCALL_VM_WITH_XL: '1', XENCALL_VM_XL: 'ready' }), { ok: true });
  });
});

describe('the xl test guest and its config', () => {
  it('a PVH config booting the kernel directly', () => {
    const cfg = pvhConfig({ name: 'g', kernel: '/k/xl-guest.elf', memoryMb: 16 });
    assert.equal(
      cfg,
      ['name = "g"', 'type = "pvh"', 'kernel = "/k/xl-guest.elf"', 'memory = 16', 'maxmem = 16', 'vcpus = 1', 'tsc_mode = "native"', 'on_crash = "preserve"', ''].join('\n'),
    );
    assert.doesNotMatch(pvhConfig({ name: 'g', kernel: '/k', memoryMb: 4, tscNative: false }), /tsc_mode/);
    assert.throws(() => pvhConfig({ name: 'a"b', kernel: '/k', memoryMb: 4 }), /cannot put/);
  });

  it("reads the guest's console lines as Xen prints them", () => {
    assert.deepEqual(parseGuestLine('(d3) xl-guest started'), { domid: 3, kind: 'started' });
    assert.deepEqual(parseGuestLine('(d3) xl-guest 00000300'), { domid: 3, kind: 'count', count: 0x300 });
    assert.deepEqual(parseGuestLine('(d3) xl-guest suspending at 00c33e2a'), { domid: 3, kind: 'suspending', count: 0xc33e2a });
    assert.deepEqual(parseGuestLine('(d14) xl-guest resumed at 00c33e2a'), { domid: 14, kind: 'resumed', count: 0xc33e2a });
    assert.equal(parseGuestLine('(XEN) HVM d3v0 save: CPU'), undefined);
    assert.equal(parseGuestLine('(d3) xl-guest 0300'), undefined);
  });

  it('timings as pages per second', () => {
    const t = xlTiming('xl save', { args: [], code: 0, signal: null, timedOut: false, stdout: '', stderr: '', ms: 2000 }, 4096);
    assert.deepEqual(t, { op: 'xl save', ms: 2000, pages: 4096, pagesPerSecond: 2048 });
  });
});
