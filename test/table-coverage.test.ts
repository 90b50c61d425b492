// The table covers Xen 4.17: every sub-op the installed headers define, and every hypercall, has
// a row; and every row says what the table promises (a citation, a reason, a recovery where the
// verdict is not safe, a condition where it is conditional). The headers are Debian's libxen-dev
// (/usr/include/xen), parsed the way numbers.ts was made: `#define PREFIX_<name> <number>`.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HYPERCALLS, type HypercallName } from '../src/hypercalls/hypercalls.js';
import * as NUMBERS from '../src/hypercalls/numbers.js';
import type { Row } from '../src/hypercalls/row.js';
import { HEADER_CONSTANTS } from '../src/hypercalls/rows/constants.js';
import { TABLE } from '../src/hypercalls/table.js';

const XEN_INCLUDE = '/usr/include/xen';
const HEADERS = [
  'xen.h',
  'domctl.h',
  'sysctl.h',
  'memory.h',
  'version.h',
  'event_channel.h',
  'grant_table.h',
  'sched.h',
  'physdev.h',
  'hvm/hvm_op.h',
  'hvm/dm_op.h',
];

interface Family {
  /** The export of numbers.ts that holds this family. */
  readonly key: 'DOMCTL' | 'SYSCTL' | 'XENMEM' | 'XENVER' | 'EVTCHNOP' | 'GNTTABOP' | 'SCHEDOP' | 'HVMOP' | 'PHYSDEVOP' | 'DMOP' | 'CONSOLEIO';
  readonly hypercall: HypercallName;
  readonly prefix: string;
  readonly header: string;
  /** Sub-sub-op families that share the prefix and are left out, as numbers.ts leaves them out. */
  readonly exclude?: RegExp;
  /** Command names that are not lowercase. */
  readonly extra?: readonly string[];
}

const FAMILIES: readonly Family[] = [
  { key: 'DOMCTL', hypercall: 'domctl', prefix: 'XEN_DOMCTL_', header: 'domctl.h', exclude: /^vmtrace_(?!op$)/ },
  { key: 'SYSCTL', hypercall: 'sysctl', prefix: 'XEN_SYSCTL_', header: 'sysctl.h', exclude: /^(pm_op_|cpu_featureset_|cpu_policy_)/ },
  {
    key: 'XENMEM',
    hypercall: 'memory_op',
    prefix: 'XENMEM_',
    header: 'memory.h',
    exclude: /^(paging_op_|access_op_|sharing_op_|resource_)/,
  },
  { key: 'XENVER', hypercall: 'xen_version', prefix: 'XENVER_', header: 'version.h' },
  { key: 'EVTCHNOP', hypercall: 'event_channel_op', prefix: 'EVTCHNOP_', header: 'event_channel.h' },
  { key: 'GNTTABOP', hypercall: 'grant_table_op', prefix: 'GNTTABOP_', header: 'grant_table.h' },
  { key: 'SCHEDOP', hypercall: 'sched_op', prefix: 'SCHEDOP_', header: 'sched.h' },
  { key: 'HVMOP', hypercall: 'hvm_op', prefix: 'HVMOP_', header: 'hvm/hvm_op.h', exclude: /^altp2m_/ },
  { key: 'PHYSDEVOP', hypercall: 'physdev_op', prefix: 'PHYSDEVOP_', header: 'physdev.h', extra: ['IRQ_UNMASK_NOTIFY'] },
  { key: 'DMOP', hypercall: 'dm_op', prefix: 'XEN_DMOP_', header: 'hvm/dm_op.h' },
  { key: 'CONSOLEIO', hypercall: 'console_io', prefix: 'CONSOLEIO_', header: 'xen.h' },
];

const FAMILY_HYPERCALLS = new Set<HypercallName>(FAMILIES.map((f) => f.hypercall));

/** Reads a header; a missing /usr/include/xen fails the test (never skips it). */
function header(name: string): string {
  assert.ok(
    existsSync(XEN_INCLUDE),
    `${XEN_INCLUDE} is missing: install Debian's libxen-dev (apt-get install libxen-dev; .ci/run installs it)`,
  );
  const path = join(XEN_INCLUDE, name);
  assert.ok(existsSync(path), `${path} is missing: install Debian's libxen-dev (.ci/run installs it)`);
  return readFileSync(path, 'utf8');
}

/** Every `#define <prefix><name> <number>` in the text (preprocessor conditionals ignored). */
function defines(text: string, prefix: string): Map<string, number> {
  const out = new Map<string, number>();
  const esc = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^[ \\t]*#[ \\t]*define[ \\t]+${esc}([A-Za-z0-9_]+)[ \\t]+(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*\\b`, 'gm');
  for (const m of text.matchAll(re)) out.set(m[1]!, Number(m[2]!));
  return out;
}

function familyOps(f: Family): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, value] of defines(header(f.header), f.prefix)) {
    const command = /^[a-z][a-z0-9_]*$/.test(name) || f.extra?.includes(name);
    if (command && !f.exclude?.test(name)) out.set(name, value);
  }
  return out;
}

const hypercallNumber = (r: Row) => HYPERCALLS[r.hypercall].number;

describe('the table covers the Xen 4.17 headers', () => {
  it('finds the installed Xen headers', () => {
    for (const h of HEADERS) header(h);
  });

  it('parses the same sub-op families numbers.ts holds', () => {
    for (const f of FAMILIES) {
      const parsed = Object.fromEntries(familyOps(f));
      assert.deepEqual(parsed, { ...NUMBERS[f.key] }, `${f.prefix}* in ${f.header} differ from numbers.ts ${f.key}`);
    }
    const calls = Object.fromEntries(defines(header('xen.h'), '__HYPERVISOR_'));
    assert.deepEqual(calls, { ...NUMBERS.HYPERCALL }, '__HYPERVISOR_* in xen.h differ from numbers.ts HYPERCALL');
  });

  it('has a row for every sub-op the headers define', () => {
    const missing: string[] = [];
    for (const f of FAMILIES) {
      const number = HYPERCALLS[f.hypercall].number;
      for (const [name, subop] of familyOps(f)) {
        if (!TABLE.some((r) => hypercallNumber(r) === number && r.subop === subop)) {
          missing.push(`${f.hypercall}.${name.toLowerCase()} (${f.prefix}${name} = ${subop})`);
        }
      }
    }
    assert.deepEqual(missing, [], `header sub-ops without a table row:\n  ${missing.join('\n  ')}`);
  });

  it('has a row for every hypercall, and a plain row for each without a sub-op family', () => {
    const missing: string[] = [];
    for (const [name, number] of defines(header('xen.h'), '__HYPERVISOR_')) {
      const rows = TABLE.filter((r) => hypercallNumber(r) === number);
      if (rows.length === 0) missing.push(`${name} (__HYPERVISOR_${name} = ${number})`);
      else if (!FAMILY_HYPERCALLS.has(name as HypercallName) && !rows.some((r) => r.subop === null)) {
        missing.push(`${name} (no row with subop null)`);
      }
    }
    assert.deepEqual(missing, [], `hypercalls without a table row:\n  ${missing.join('\n  ')}`);
  });

  it('uses the header values for every mode and condition constant', () => {
    const text = HEADERS.map(header).join('\n');
    const wrong: string[] = [];
    for (const { prefix, values } of HEADER_CONSTANTS) {
      const found = defines(text, prefix);
      for (const [name, value] of Object.entries(values)) {
        if (found.get(name) !== value) wrong.push(`${prefix}${name}: rows say ${value}, headers say ${found.get(name) ?? 'nothing'}`);
      }
    }
    assert.deepEqual(wrong, [], `constants in src/hypercalls/rows/constants.ts differ from the headers:\n  ${wrong.join('\n  ')}`);
  });
});

describe('every table row', () => {
  const problems = (check: (r: Row) => string | undefined) =>
    TABLE.flatMap((r) => {
      const p = check(r);
      return p ? [`${r.name}: ${p}`] : [];
    });

  it('has a well-formed name whose first part is the hypercall', () => {
    const bad = problems((r) => {
      if (!/^[a-z0-9_]+(\.[a-z0-9_]+){0,2}$/.test(r.name)) return 'name is not lowercase dotted (at most three parts)';
      if (r.name.split('.')[0] !== r.hypercall) return `first part is not the hypercall ${r.hypercall}`;
      return undefined;
    });
    assert.deepEqual(bad, []);
  });

  it('names its sub-op as the header does', () => {
    const bad = problems((r) => {
      const f = FAMILIES.find((x) => x.hypercall === r.hypercall);
      if (!f) return r.subop === null ? undefined : 'a hypercall without a sub-op family has subop null';
      if (r.subop === null) return `a ${f.hypercall} row needs a sub-op number`;
      const names = [...Object.entries(NUMBERS[f.key])].filter(([, v]) => v === r.subop).map(([k]) => k.toLowerCase());
      const second = r.name.split('.')[1];
      return second && names.includes(second) ? undefined : `second part should be one of ${names.join(', ') || '(no such sub-op)'}`;
    });
    assert.deepEqual(bad, []);
  });

  it('cites Xen source by file and function', () => {
    const bad = problems((r) => {
      if (r.source.length === 0) return 'no citation';
      const c = r.source.find((s) => !/^(xen|tools)\/\S+\.[ch]$/.test(s.file) || s.function.trim() === '' || (s.lines !== undefined && !/^\d+(-\d+)?(, \d+(-\d+)?)*$/.test(s.lines)));
      return c ? `citation ${JSON.stringify(c)} lacks a source file or a function, or its lines are not like "407-597, 612"` : undefined;
    });
    assert.deepEqual(bad, []);
  });

  it('treats every row not traced in Xen\'s source as unsafe until proven otherwise', () => {
    const wrong = TABLE.filter((r) => !r.verified && r.verdict !== 'unsafe').map((r) => `${r.name} (${r.verdict})`);
    assert.deepEqual(wrong, [], `unverified rows that would be re-issued: ${wrong.join(', ')}`);
    assert.ok(TABLE.some((r) => !r.verified), 'some rows are honestly marked unverified');
  });

  it('gives a reason, a recovery unless safe, and a condition when conditional', () => {
    const bad = problems((r) => {
      if (r.reason.trim() === '') return 'empty reason';
      if (r.verdict !== 'safe' && !r.recovery?.trim()) return `a ${r.verdict} row needs a recovery`;
      if (r.verdict === 'conditional' && !(r.condition?.text.trim() && r.layout)) return 'a conditional row needs condition text and a layout';
      if (r.mode && !(r.layout && r.mode.field in r.layout.fields)) return `mode field ${r.mode.field} is not in the layout`;
      return undefined;
    });
    assert.deepEqual(bad, []);
  });

  it('is the only row for its hypercall, sub-op and mode', () => {
    const seen = new Map<string, string>();
    const dups: string[] = [];
    for (const r of TABLE) {
      const key = `${hypercallNumber(r)}/${r.subop ?? '-'}/${r.mode ? `${r.mode.field}=${r.mode.value}` : '-'}`;
      const other = seen.get(key);
      if (other) dups.push(`${r.name} and ${other} share ${key}`);
      seen.set(key, r.name);
    }
    assert.deepEqual(dups, []);
  });
});
