// docs/api.md must stay true: every ```ts block runs against the mock hypervisor (after the
// page's preamble block), and every typed call in TYPED_OPS is called in one of them.
//
// Each example is written to its own temporary module, with the package's 'xencall' and
// 'xencall/testing' imports pointed at src/; one `node --import tsx` process imports them in
// turn and reports each one's outcome, so a failure names its example.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { TYPED_OPS } from '../src/ops/index.js';
import { ROOT, pointAtSrc, tsBlocks } from './docs-blocks.js';

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
});
