// Shared by the tests that run the docs' examples: the ```ts blocks of a markdown page, and the
// package's imports pointed at src/.

import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface Block {
  /** The line of the block's first code line (1-based). */
  readonly line: number;
  readonly code: string;
}

export function tsBlocks(markdown: string): Block[] {
  const out: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```ts') continue;
    const start = i + 1;
    let j = start;
    while (j < lines.length && lines[j]!.trim() !== '```') j++;
    out.push({ line: start + 1, code: lines.slice(start, j).join('\n') });
    i = j;
  }
  return out;
}

/** Rewrites the 'xencall' and 'xencall/testing' imports to the sources. */
export const pointAtSrc = (code: string): string =>
  code
    .replace(/from 'xencall\/testing'/g, `from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/testing/index.ts')).href)}`)
    .replace(/from 'xencall'/g, `from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/index.ts')).href)}`);
