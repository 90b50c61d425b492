// `xencall table`: the retry table as text, JSON or Markdown.

import { tableMarkdown } from '../hypercalls/markdown.js';
import { tableRowsForOutput } from '../hypercalls/render.js';
import type { CliIO } from './main.js';

export interface CliOptions {
  json: boolean;
  markdown: boolean;
  backend: string;
  seed: number;
  rate: number;
}

export function runTable(opts: CliOptions, io: CliIO): number {
  const rows = tableRowsForOutput();
  if (opts.json) {
    io.out(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  if (opts.markdown) {
    io.out(tableMarkdown());
    return 0;
  }
  const w = Math.max(...rows.map((r) => r.name.length));
  io.out(`${'name'.padEnd(w)}  op/sub     verdict      reason\n`);
  for (const r of rows) {
    const num = `${r.hypercall}/${r.subop ?? '-'}${r.mode ? `:${r.mode.value}` : ''}`;
    const verdict = r.verdict === 'conditional' ? `conditional` : r.verdict;
    io.out(`${r.name.padEnd(w)}  ${num.padEnd(9)}  ${verdict.padEnd(11)}  ${firstSentence(r.condition ? `${r.condition}; ${r.reason}` : r.reason)}\n`);
  }
  io.out(`\n${rows.length} rows: ${count(rows, 'safe')} safe, ${count(rows, 'unsafe')} unsafe, ${count(rows, 'conditional')} conditional. --json for every field.\n`);
  return 0;
}


function count(rows: { verdict: string }[], v: string): number {
  return rows.filter((r) => r.verdict === v).length;
}

function firstSentence(s: string): string {
  const i = s.indexOf('. ');
  const one = i === -1 ? s : s.slice(0, i + 1);
  return one.length > 110 ? `${one.slice(0, 107)}...` : one;
}
