// One source of truth, checked on the sources themselves: the table is data (nothing in
// src/hypercalls reaches the handle, its buffers or a backend at run time), and a failed
// hypercall becomes an error in one function only.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from './docs-blocks.js';

const SRC = join(ROOT, 'src');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The modules a file imports at run time: `import type` and `export type` are erased, so they do not count. */
export function valueImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?(?:[^;'"]*?\s+from\s+)?'([^']+)'/gms)) {
    if (m[1]) continue;
    const spec = m[2]!;
    out.push(spec.startsWith('.') ? resolve(dirname(file), spec.replace(/\.js$/, '.ts')) : spec);
  }
  return out;
}

/** Every module reachable at run time from `entries`. */
function closure(entries: string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...entries];
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    if (f.startsWith(SRC)) todo.push(...valueImports(f));
  }
  return seen;
}

describe('one source of truth', () => {
  it('the table is data: nothing in src/hypercalls reaches buffers, backends, the handle or the mock at run time', () => {
    const reach = [...closure(tsFiles(join(SRC, 'hypercalls')))].filter((f) => f.startsWith(SRC)).map((f) => relative(SRC, f));
    const outside = reach.filter((f) => !f.startsWith('hypercalls/'));
    // What the rows may use besides themselves: struct codecs, the gfn-list converter, errors.
    assert.deepEqual(outside.sort(), ['errno-table.ts', 'errors.ts', 'gfn-list.ts', 'layout.ts']);
    // And the check can fail: the handle's own module reaches the buffers.
    assert.ok([...closure([join(SRC, 'xencall.ts')])].includes(join(SRC, 'buffers.ts')));
  });

  it('one function turns a failed hypercall into a HypercallError', () => {
    const builders = tsFiles(SRC).filter((f) => /new HypercallError\(/.test(readFileSync(f, 'utf8')));
    assert.deepEqual(builders.map((f) => relative(SRC, f)), ['errors.ts']);
    const errors = readFileSync(join(SRC, 'errors.ts'), 'utf8');
    assert.equal(errors.match(/new HypercallError\(/g)?.length, 1, 'errors.ts builds it in hypercallError() alone');
  });
});
