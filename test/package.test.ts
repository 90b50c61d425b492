// The package as users get it: both module formats, the "./testing" export, and no koffi load
// at import time (importing xencall must work on a machine without Xen or koffi).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const run = (args: string[]) => spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 30_000, cwd: process.cwd() });

describe('the built package', () => {
  it('imports as ESM and CJS by its own name, with the testing export, and runs a mock call', () => {
    const esm = run(['--input-type=module', '-e', "import { open } from 'xencall'; import { MockHypervisor } from 'xencall/testing'; const xc = await open({ backend: new MockHypervisor().backend() }); console.log((await xc.xen_version.version()).minor);"]);
    assert.equal(esm.status, 0, esm.stderr);
    assert.equal(esm.stdout.trim(), '17');
    const cjs = run(['-e', "const { openSync, ErrorCodes } = require('xencall'); const { MockHypervisor } = require('xencall/testing'); const xc = openSync({ backend: new MockHypervisor().backend() }); console.log(String(xc.call2Sync(17, 0, 0)), ErrorCodes.HYPERCALL);"]);
    assert.equal(cjs.status, 0, cjs.stderr);
    assert.equal(cjs.stdout.trim(), '262161 XEN_ERR_HYPERCALL');
  });

  it("ships the test guest's source and finds it from the bundle, in both module formats", () => {
    const esm = run(['--input-type=module', '-e', "import { testGuestSourceDir } from 'xencall/testing'; console.log(testGuestSourceDir());"]);
    assert.equal(esm.status, 0, esm.stderr);
    const cjs = run(['-e', "console.log(require('xencall/testing').testGuestSourceDir());"]);
    assert.equal(cjs.status, 0, cjs.stderr);
    assert.equal(esm.stdout.trim(), join(process.cwd(), 'src', 'testing', 'guest'));
    assert.equal(cjs.stdout.trim(), esm.stdout.trim());
    const pack = spawnSync('npm', ['pack', '--dry-run', '--json'], { encoding: 'utf8', timeout: 60_000, cwd: process.cwd() });
    assert.equal(pack.status, 0, pack.stderr);
    const files = (JSON.parse(pack.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    assert.ok(files.includes('src/testing/guest/test-guest.s') && files.includes('src/testing/guest/test-guest.ld'), 'package.json "files" ships the guest source');
  });

  it('never loads koffi at import time, and says so with a typed error when it is needed and missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xencall-nokoffi-'));
    // A resolve hook that makes koffi unavailable, as on a machine where it cannot install.
    writeFileSync(join(dir, 'hook.mjs'), "export async function resolve(s, c, next) { if (s === 'koffi') throw new Error('koffi is not installed here'); return next(s, c); }\n");
    writeFileSync(join(dir, 'reg.mjs'), `import { register } from 'node:module'; register(${JSON.stringify(`file://${join(dir, 'hook.mjs')}`)});\n`);
    const r = run(['--import', join(dir, 'reg.mjs'), '--input-type=module', '-e', "import * as x from 'xencall'; import { MockHypervisor } from 'xencall/testing'; const xc = await x.open({ backend: new MockHypervisor().backend() }); await xc.sysctl.physinfo(); try { x.openPrivcmd(); } catch (e) { console.log(e.code); }"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'XEN_ERR_BACKEND_UNAVAILABLE');
  });
});
