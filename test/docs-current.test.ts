// docs/hypercalls.md is generated from the table; it must match what the table says now.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { tableMarkdown } from '../src/hypercalls/markdown.js';

const DOC = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'hypercalls.md');

it('docs/hypercalls.md is generated from the current table', () => {
  assert.ok(existsSync(DOC), 'docs/hypercalls.md is missing: run `npm run docs:table`');
  const expected = tableMarkdown();
  const actual = readFileSync(DOC, 'utf8');
  if (actual === expected) return;
  const a = actual.split('\n');
  const e = expected.split('\n');
  let line = 0;
  while (line < a.length && line < e.length && a[line] === e[line]) line++;
  assert.fail(
    `docs/hypercalls.md is stale (first difference at line ${line + 1}): run \`npm run docs:table\` and commit the result.\n` +
      `  file:  ${a[line] ?? '(end of file)'}\n  table: ${e[line] ?? '(end of output)'}`,
  );
});
