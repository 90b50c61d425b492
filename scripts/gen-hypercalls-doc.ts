// Writes docs/hypercalls.md from the table (run by `npm run docs:table`).
// test/docs-current.test.ts fails when the committed file differs from this output.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableMarkdown } from '../src/hypercalls/markdown.js';

const target = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'hypercalls.md');
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, tableMarkdown());
console.log(`wrote ${target}`);
