// The README's mock-with-faults recipe must run as printed (against src/, not a build).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

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
});
