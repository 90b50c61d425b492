// The package as users get it: both module formats, the "./testing" export, and no koffi load
// at import time (importing xencall must work on a machine without Xen or koffi); then the packed
// tarball itself, installed into a fresh project that type-checks and runs a consumer.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { after, before, describe, it } from 'node:test';

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
    const files = packedFiles(['--dry-run']).files;
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

/** `npm pack --json` (without the prepack build: the tests run against the build in dist/). */
function packedFiles(args: string[]): { filename: string; files: string[] } {
  const pack = spawnSync('npm', ['pack', '--json', '--ignore-scripts', ...args], { encoding: 'utf8', timeout: 120_000, cwd: process.cwd() });
  assert.equal(pack.status, 0, pack.stderr);
  const [entry] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  return { filename: entry!.filename, files: entry!.files.map((f) => f.path) };
}

const ROOT = process.cwd();
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** Strict settings a careful consumer uses; the package's own .d.ts files are checked too (no skipLibCheck). */
const STRICT = {
  target: 'ES2022',
  strict: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  noImplicitOverride: true,
  noPropertyAccessFromIndexSignature: true,
  skipLibCheck: false,
  types: ['node'],
  typeRoots: [join(ROOT, 'node_modules', '@types')],
};

// An ESM consumer (nodenext): typed calls, the mock, an error matched on its code, package.json.
const ESM_CONSUMER = `import { open, ErrorCodes, XencallError, type DomainInfo } from 'xencall';
import { MockHypervisor } from 'xencall/testing';
import pkg from 'xencall/package.json' with { type: 'json' };

const hv = new MockHypervisor({ strict: true });
hv.addDomain({ domid: 5, totPages: 4096 });
const xc = await open({ backend: hv.backend() });
const v: { major: number; minor: number } = await xc.xen_version.version();
const d: DomainInfo = await xc.domctl.getdomaininfo({ domain: 5 });
const pages: bigint = d.tot_pages;
// @ts-expect-error a domain id is a number: the types are real, not any
await xc.domctl.getdomaininfo({ domain: 'five' }).catch(() => undefined);
let code = '';
try {
  await xc.domctl.getdomaininfo({ domain: 77 });
} catch (e) {
  if (!(e instanceof XencallError) || e.code !== ErrorCodes.HYPERCALL) throw e;
  code = e.code;
}
xc.close();
console.log(\`esm \${pkg.name} \${v.major}.\${v.minor} \${pages} \${code}\`);
`;

// A CommonJS consumer in the same project (.cts, compiled to require()): the "require" types.
const CJS_CONSUMER = `import { openSync, ErrorCodes } from 'xencall';
import { MockHypervisor } from 'xencall/testing';
const xc = openSync({ backend: new MockHypervisor().backend() });
const r: bigint = xc.call2Sync(17, 0, 0);
const code: string = ErrorCodes.VALIDATION;
xc.close();
console.log(\`cjs \${r} \${code} \${require.resolve('xencall').endsWith('index.cjs')}\`);
`;

// TypeScript's node10 resolution ("moduleResolution": "node"), which reads no "exports".
const NODE10_CONSUMER = `import { openSync, type DomainInfo } from 'xencall';
import { MockHypervisor, FaultPlan } from 'xencall/testing';
const hv = new MockHypervisor();
const plan: FaultPlan = hv.faults;
plan.inject({ op: 'xen_version.extraversion', direction: 'out' });
const xc = openSync({ backend: hv.backend() });
const dom0: DomainInfo = xc.sync.domctl.getdomaininfo({ domain: 0 });
xc.close();
console.log(\`node10 \${dom0.domid} \${hv.faults.pending().length}\`);
`;

describe('the packed tarball, installed into a fresh project', () => {
  let dir = '';
  let files: string[] = [];
  let app = '';

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'xencall-consumer-'));
    const packed = packedFiles(['--pack-destination', dir]);
    files = packed.files;
    app = join(dir, 'app');
    mkdirSync(join(app, 'src'), { recursive: true });
    mkdirSync(join(app, 'node10'), { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    // koffi and zod come from npm's cache (npm ci put them there), else from the registry.
    const install = spawnSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, packed.filename)], { cwd: app, encoding: 'utf8', timeout: 300_000 });
    assert.equal(install.status, 0, install.stderr);
    writeFileSync(join(app, 'src', 'esm.ts'), ESM_CONSUMER);
    writeFileSync(join(app, 'src', 'cjs.cts'), CJS_CONSUMER);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { ...STRICT, module: 'nodenext', moduleResolution: 'nodenext', resolveJsonModule: true, outDir: 'out', rootDir: 'src' }, include: ['src'] }),
    );
    // A CommonJS project of its own, so that its compiled output runs as CommonJS.
    writeFileSync(join(app, 'node10', 'package.json'), JSON.stringify({ type: 'commonjs' }));
    writeFileSync(join(app, 'node10', 'main.ts'), NODE10_CONSUMER);
    // esModuleInterop, as most node10 projects have it: zod's own CommonJS types need it.
    writeFileSync(
      join(app, 'node10', 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { ...STRICT, module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true, outDir: 'out' }, files: ['main.ts'] }),
    );
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  const tsc = (project: string) => spawnSync(process.execPath, [TSC, '-p', project], { cwd: app, encoding: 'utf8', timeout: 120_000 });
  const node = (args: string[]) => spawnSync(process.execPath, args, { cwd: app, encoding: 'utf8', timeout: 60_000 });

  it('ships the licence, the docs, both module formats and the ESM-only CLI, and nothing unused', () => {
    for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts', 'dist/testing.js', 'dist/testing.cjs', 'dist/testing.d.ts', 'dist/testing.d.cts', 'dist/cli.js', 'docs/cli.md']) {
      assert.ok(files.includes(f), `the tarball lacks ${f}`);
    }
    assert.deepEqual(files.filter((f) => f.startsWith('dist/cli.') && !f.startsWith('dist/cli.js')), [], 'no CommonJS build of the CLI');
    const pkg = JSON.parse(readFileSync(join(app, 'node_modules', 'xencall', 'package.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(pkg.license, 'MIT');
    assert.match(readFileSync(join(app, 'node_modules', 'xencall', 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) \d{4} the xencall authors\n/);
    assert.equal(pkg.sideEffects, false);
    for (const k of ['repository', 'homepage', 'bugs', 'keywords']) assert.ok(pkg[k], `package.json has ${k}`);
  });

  it('every relative link in the shipped README and docs points at a file the tarball has', () => {
    const shipped = new Set(files);
    const broken: string[] = [];
    for (const doc of files.filter((f) => f.endsWith('.md'))) {
      const text = readFileSync(join(app, 'node_modules', 'xencall', doc), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!) || target!.startsWith('#')) continue;
        const file = posix.normalize(posix.join(posix.dirname(doc), target!.split('#')[0]!));
        if (!shipped.has(file)) broken.push(`${doc} -> ${target}`);
      }
    }
    assert.deepEqual(broken, []);
  });

  it('type-checks a strict consumer: nodenext ESM and CommonJS, and node10 resolution of xencall/testing', () => {
    const next = tsc('tsconfig.json');
    assert.equal(next.status, 0, `nodenext:\n${next.stdout}${next.stderr}`);
    const old = tsc('node10/tsconfig.json');
    assert.equal(old.status, 0, `node10:\n${old.stdout}${old.stderr}`);
  });

  it('runs the consumer against the mock: ESM import, CommonJS require, node10 output', () => {
    const esm = node(['out/esm.js']);
    assert.equal(esm.status, 0, esm.stderr);
    assert.equal(esm.stdout, 'esm xencall 4.17 4096 XEN_ERR_HYPERCALL\n');
    const cjs = node(['out/cjs.cjs']);
    assert.equal(cjs.status, 0, cjs.stderr);
    assert.equal(cjs.stdout, 'cjs 262161 XEN_ERR_VALIDATION true\n');
    const old = node(['node10/out/main.js']);
    assert.equal(old.status, 0, old.stderr);
    assert.equal(old.stdout, 'node10 0 1\n');
  });

  it('installs the xencall executable: --version, a command on the mock, and the package.json export', () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const bin = join(app, 'node_modules', '.bin', 'xencall');
    const v = spawnSync(bin, ['--version'], { cwd: app, encoding: 'utf8', timeout: 30_000 });
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout, `${version}\n`);
    const info = spawnSync(bin, ['info', '--backend', 'mock', '--json'], { cwd: app, encoding: 'utf8', timeout: 30_000 });
    assert.equal(info.status, 0, info.stderr);
    assert.equal((JSON.parse(info.stdout) as { version: string }).version, '4.17.7');
    const required = node(['-p', "require('xencall/package.json').version"]);
    assert.equal(required.stdout.trim(), version, required.stderr);
    assert.equal(dirname(bin), join(app, 'node_modules', '.bin'));
  });
});
