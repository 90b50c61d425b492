// The README's mock-with-faults recipe must run as printed (against src/, not a build); its set-up
// commands are the two the project promises; its exit-status table is the CLI's own.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { exitTableMarkdown } from '../src/cli/markdown.js';

const ROOT = process.cwd();

describe('README', () => {
  it('the mock-with-faults recipe runs and recovers the orphan domain', () => {
    const md = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = md.indexOf('## Testing your toolstack code against the mock');
    assert.ok(section > 0, 'the README has the mock recipe section');
    const start = md.indexOf('```ts\n', section) + 6;
    const code = md.slice(start, md.indexOf('```\n', start));
    const src = (p: string) => JSON.stringify(pathToFileURL(path.join(ROOT, p)).href);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-readme-')), 'recipe.mts');
    fs.writeFileSync(file, code.replace(/from 'xencall\/testing'/g, `from ${src('src/testing/index.ts')}`).replace(/from 'xencall'/g, `from ${src('src/index.ts')}`));
    const out = execFileSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', cwd: ROOT, timeout: 60_000 });
    assert.match(out, /created domain 1 anyway; adopting it/);
    assert.match(out, /^1$/m);
  });

  it('sets up with exactly two commands: `npm ci && npm run demo` and `npm test`', () => {
    const md = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const start = md.indexOf('## Set up\n');
    assert.ok(start > 0, 'the README has a Set up section');
    const section = md.slice(start, md.indexOf('\n## ', start + 1));
    const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
    assert.deepEqual(blocks, ['npm ci && npm run demo', 'npm test']);
    assert.ok(md.indexOf('```sh\nnpm ci && npm run demo\n```') === md.indexOf('```sh'), 'the first command in the README is the demo');
  });

  it("the exit-status table is the CLI's own (src/cli/spec.ts)", () => {
    const md = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    assert.ok(md.includes(`${exitTableMarkdown()}\n`), 'README.md has the exit-status table of src/cli/spec.ts, as docs/cli.md shows it');
  });
});
