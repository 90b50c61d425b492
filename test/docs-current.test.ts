// The generated docs must match what their sources say now: docs/hypercalls.md the table,
// docs/cli.md the CLI's spec and --json schemas.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { cliMarkdown } from '../src/cli/markdown.js';
import { tableMarkdown } from '../src/hypercalls/markdown.js';

const DOCS = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs');

function assertCurrent(file: string, expected: string, script: string): void {
  const path = join(DOCS, file);
  assert.ok(existsSync(path), `docs/${file} is missing: run \`npm run ${script}\``);
  const actual = readFileSync(path, 'utf8');
  if (actual === expected) return;
  const a = actual.split('\n');
  const e = expected.split('\n');
  let line = 0;
  while (line < a.length && line < e.length && a[line] === e[line]) line++;
  assert.fail(
    `docs/${file} is stale (first difference at line ${line + 1}): run \`npm run ${script}\` and commit the result.\n` +
      `  file:      ${a[line] ?? '(end of file)'}\n  generated: ${e[line] ?? '(end of output)'}`,
  );
}

it('docs/hypercalls.md is generated from the current table', () => {
  assertCurrent('hypercalls.md', tableMarkdown(), 'docs:table');
});

it("docs/cli.md is generated from the CLI's current spec and --json schemas", () => {
  assertCurrent('cli.md', cliMarkdown(), 'docs:cli');
});
