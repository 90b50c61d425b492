// docs/api.md must stay true: every ```ts block runs against the mock hypervisor (after the
// page's preamble block), and every typed call in TYPED_OPS is called in one of them. The same
// blocks type-check, under strict settings, against the published types (dist/*.d.ts, as a
// user's project sees them), and those types hide the internals.
//
// Each example is written to its own temporary module, with the package's 'xencall' and
// 'xencall/testing' imports pointed at src/; one `node --import tsx` process imports them in
// turn and reports each one's outcome, so a failure names its example.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { TYPED_OPS } from '../src/ops/index.js';
import { ROOT, pointAtSrc, tsBlocks } from './docs-blocks.js';

/** Internal helpers that were once exported: neither package entry point may offer them. */
const HIDDEN: Record<'xencall' | 'xencall/testing', readonly string[]> = {
  xencall: [
    'toU64', 'toGfnArray', 'GFN_LIMIT', 'MAX_FOREIGN_PAGES', 'classify', 'rowsOf', 'pointersVisible', 'Classification', 'MemoryReader',
    'XEN_SOURCE', 'mayRetry', 'resolvePolicy', 'delayBeforeAttempt', 'tableRowsForOutput', 'TableRowOutput', 'IOCTL_PRIVCMD_HYPERCALL',
    'IOCTL_PRIVCMD_RESTRICT', 'IOCTL_PRIVCMD_MMAPBATCH_V2', 'IOCTL_PRIVCMD_MMAP_RESOURCE', 'PRIVCMD_PATHS', 'HYPERCALL_BUF_PATH',
  ],
  'xencall/testing': [
    'xorshift32', 'recogniseTestGuest', 'testGuestSymbols', 'checkWriteSet', 'isWritableTestGuestGfn', 'LOGDIRTY_NODE_ENTRIES',
    'LOG_DIRTY_LEAF_PAGES', 'LOG_DIRTY_CHUNK_BYTES', 'MAX_CONTROLLER_PAUSE_COUNT', 'DEFAULT_MAX_GRANT_FRAMES', 'ALL_CPUS', 'DEFAULT_PREEMPT',
    'TEST_GUEST_IMAGE_HEADER', 'TEST_GUEST_CONTROL', 'TEST_GUEST_COUNTER', 'TEST_GUEST_WORK', 'TEST_GUEST_PATTERN', 'TEST_GUEST_DEFAULT_WRITE_SET',
  ],
};

/** The handle's members marked @internal: the library uses them, the published types omit them. */
const INTERNAL_MEMBERS = ['pool', 'retryStats', 'host', 'syncSleep', 'env', 'runSync', 'runAsync', 'checkOpen', 'checkXenVersion'];

const DIST = path.join(ROOT, 'dist');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

const DOC = path.join(ROOT, 'docs', 'api.md');
const PREAMBLE_MARK = '// Preamble:';

/** Every typed call's path below the handle, e.g. "domctl.shadow_op.clean". */
function typedCallPaths(node: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(node).flatMap(([k, v]) => {
    const p = prefix ? `${prefix}.${k}` : k;
    return typeof v === 'object' && v !== null && 'run' in v && 'row' in v ? [p] : typedCallPaths(v as Record<string, unknown>, p);
  });
}

const markdown = fs.readFileSync(DOC, 'utf8');
const blocks = tsBlocks(markdown);
const preamble = blocks.find((b) => b.code.trimStart().startsWith(PREAMBLE_MARK));
const examples = blocks.filter((b) => b !== preamble);

describe('docs/api.md', () => {
  it('has a preamble block and examples', () => {
    assert.ok(preamble, `docs/api.md needs a \`\`\`ts block starting with "${PREAMBLE_MARK}"`);
    assert.ok(examples.length > 0);
  });

  it('calls every typed call in an example', () => {
    const code = examples.map((b) => b.code).join('\n');
    const missing = typedCallPaths(TYPED_OPS).filter((p) => !code.includes(`xc.${p}(`) && !code.includes(`xc.sync.${p}(`));
    assert.deepEqual(missing, [], `typed calls without an example in docs/api.md: ${missing.join(', ')}`);
  });

  describe('every example runs against the mock', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-docs-api-'));
    const files = examples.map((b, i) => {
      // .mts: a module whatever package.json sits above the temporary directory.
      const file = path.join(dir, `example-${i}-line-${b.line}.mts`);
      fs.writeFileSync(file, `${pointAtSrc(preamble?.code ?? '')}\n// ---- docs/api.md line ${b.line}\n${pointAtSrc(b.code)}\n`);
      return file;
    });
    const runner = path.join(dir, 'run.mts');
    fs.writeFileSync(
      runner,
      [
        `const files = ${JSON.stringify(files)};`,
        'const results = [];',
        'for (const f of files) {',
        '  try {',
        '    await import(new URL(`file://${f}`).href);',
        '    results.push({ ok: true });',
        '  } catch (e) {',
        '    results.push({ ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });',
        '  }',
        '}',
        'process.stdout.write(JSON.stringify(results));',
      ].join('\n'),
    );
    let results: { ok: boolean; error?: string }[] = [];
    let runError: unknown;
    try {
      // tsx resolves from the working directory: run from the repository.
      results = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', runner], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 }));
    } catch (e) {
      runError = e;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }

    examples.forEach((b, i) => {
      const firstCall = b.code.match(/xc\.(?:sync\.)?[a-z_]+\.[a-z_0-9.]+\(/)?.[0] ?? b.code.split('\n')[0];
      it(`line ${b.line}: ${firstCall}`, () => {
        assert.equal(runError, undefined, `the example runner failed: ${String(runError)}`);
        const r = results[i];
        assert.ok(r, 'no result for this example');
        assert.ok(r.ok, `docs/api.md line ${b.line} threw:\n${r.error}`);
      });
    });
  });

  describe('against the published types', () => {
    const built = fs.existsSync(path.join(DIST, 'index.d.ts')) && fs.existsSync(path.join(DIST, 'testing.d.ts'));

    it('dist/*.d.ts declare none of the hidden names (comments aside)', () => {
      assert.ok(built, 'dist/index.d.ts is missing: run `npm run build` first');
      const declared = fs
        .readdirSync(DIST)
        .filter((f) => f.endsWith('.d.ts'))
        .map((f) => fs.readFileSync(path.join(DIST, f), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, ''))
        .join('\n');
      const found = Object.values(HIDDEN).flat().filter((n) => new RegExp(`\\b${n}\\b`).test(declared));
      assert.deepEqual(found, []);
      const handle = /declare class Xencall \{([\s\S]*?)\n\}/.exec(declared)?.[1];
      assert.ok(handle, 'no Xencall class in dist/*.d.ts');
      assert.deepEqual(INTERNAL_MEMBERS.filter((m) => new RegExp(`^\\s*(readonly )?${m}\\b`, 'm').test(handle)), []);
    });

    it('save/restore, live migration and the recovery helpers use only what a user can: no @internal member of the handle, no internal call program', () => {
      const files = ['src/saverestore.ts', 'src/recovery.ts', ...fs.readdirSync(path.join(ROOT, 'src', 'saverestore')).map((f) => `src/saverestore/${f}`)];
      const internal = new RegExp(`\\bxc\\.(${INTERNAL_MEMBERS.join('|')})\\b`);
      // Value imports from the typed calls' modules would be their programs (types are fine).
      const programs = /^import \{[^}]*\} from '\.{1,2}\/(?:\.\.\/)?ops\//m;
      const found = files.flatMap((f) => {
        const text = fs.readFileSync(path.join(ROOT, f), 'utf8');
        return [...(internal.test(text) ? [`${f}: ${internal.exec(text)![0]}`] : []), ...(programs.test(text) ? [`${f}: ${programs.exec(text)![0]}`] : [])];
      });
      assert.ok(files.length > 4);
      assert.deepEqual(found, []);
    });

    it('the built modules export none of them at run time', async () => {
      assert.ok(built, 'dist is missing: run `npm run build` first');
      for (const [entry, file] of [['xencall', 'index.js'], ['xencall/testing', 'testing.js']] as const) {
        const names = Object.keys(await import(path.join(DIST, file)));
        assert.ok(names.includes(entry === 'xencall' ? 'open' : 'MockHypervisor'));
        assert.deepEqual(names.filter((n) => HIDDEN[entry].includes(n)), [], entry);
      }
    });

    it('every example type-checks under strict settings; importing a hidden name or using an internal member does not', () => {
      assert.ok(built, 'dist/index.d.ts is missing: run `npm run build` first');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-docs-types-'));
      try {
        // A consumer project: 'xencall' resolves through package.json's exports to dist/.
        fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
        fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'xencall'));
        fs.symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'));
        const files = examples.map((b) => {
          const f = `example-line-${b.line}.mts`;
          fs.writeFileSync(path.join(dir, f), `${preamble?.code ?? ''}\n${b.code}\nexport {};\n`);
          return f;
        });
        // Each line below must be an error: an unused @ts-expect-error is one itself.
        const hidden = [
          ...Object.entries(HIDDEN).flatMap(([entry, names]) => names.map((n) => `// @ts-expect-error ${n} is internal\nimport { ${n} } from '${entry}';`)),
          "import type { Xencall } from 'xencall';",
          'declare const xc: Xencall;',
          ...INTERNAL_MEMBERS.map((m) => `// @ts-expect-error ${m} is @internal\nvoid xc.${m};`),
          'export {};',
        ].join('\n');
        fs.writeFileSync(path.join(dir, 'hidden.mts'), `${hidden}\n`);
        files.push('hidden.mts');
        const compilerOptions = { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022'], types: ['node'], strict: true, noEmit: true };
        fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files }));
        const r = spawnSync(process.execPath, [TSC, '-p', dir], { encoding: 'utf8', timeout: 120_000 });
        assert.equal(r.status, 0, `tsc found errors (example-line-N is docs/api.md's line N):\n${r.stdout}${r.stderr}`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
