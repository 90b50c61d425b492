// docs/testing.md's runnable examples (```ts blocks whose first line is the marker below) run
// against the mock as printed, and print what their `// → ...` lines say, in order.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT, pointAtSrc, tsBlocks } from './docs-blocks.js';

const MARK = '// example: runs against the mock';
const examples = tsBlocks(fs.readFileSync(path.join(ROOT, 'docs', 'testing.md'), 'utf8')).filter((b) => b.code.startsWith(MARK));

describe('docs/testing.md', () => {
  it('has runnable examples', () => assert.ok(examples.length > 0, `no block starts with "${MARK}"`));

  for (const b of examples) {
    it(`the example at line ${b.line} runs and prints what it says`, () => {
      const expected = b.code
        .split('\n')
        .filter((l) => l.trimStart().startsWith('// → '))
        .map((l) => l.trimStart().slice('// → '.length));
      assert.ok(expected.length > 0, 'the example says what it prints');
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-docs-testing-')), 'example.mts');
      fs.writeFileSync(file, pointAtSrc(b.code));
      try {
        const out = execFileSync(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
        assert.deepEqual(out.trimEnd().split('\n'), expected);
      } finally {
        fs.rmSync(path.dirname(file), { recursive: true, force: true });
      }
    });
  }
});
