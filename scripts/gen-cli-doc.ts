// Writes docs/cli.md from the CLI's spec and --json schemas (run by `npm run docs:cli`).
// test/docs-current.test.ts fails when the committed file differs from this output.

import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliMarkdown } from '../src/cli/markdown.js';

const target = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'cli.md');
writeFileSync(target, cliMarkdown());
console.log(`wrote ${target}`);
