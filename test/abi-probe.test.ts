// The ABI probe: every number, struct layout, errno and ioctl in src/ is checked against Xen's own
// headers (Debian libxen-dev, Xen 4.17) by a C program generated from the TypeScript data.
//
// For each value the TypeScript side holds, the probe prints the C expression that should equal
// it ("XEN_DOMCTL_getdomaininfo 5", "offsetof(struct xen_domctl_getdomaininfo, tot_pages) 8"),
// compiled with -D__XEN_TOOLS__ exactly as the tools see the headers. compareAbi(), a pure
// function, then lists every difference; the test fails once, naming each of them.
//
// Coverage is automatic: every export of structs.ts, numbers.ts and privcmd.ts is visited, and an
// export the probe does not know how to check is itself reported as a difference.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import * as privcmdModule from '../src/backends/privcmd.js';
import { GFN_LIMIT } from '../src/foreign-memory.js';
import { MAX_RESERVATION_EXTENTS } from '../src/hypercalls/rows/memory-op.js';
import { XEN_ERRNO } from '../src/errno-table.js';
import * as numbersModule from '../src/hypercalls/numbers.js';
import * as structsModule from '../src/hypercalls/structs.js';
import { widthOf, type FieldType, type StructLayout } from '../src/layout.js';

// ---- what the headers are allowed not to define ----------------------------------------------

/**
 * C names that src/ carries but the headers do not define for tools (-D__XEN_TOOLS__, latest
 * interface version). Each entry says why keeping it in src/ is still right. A name listed here
 * that the headers do define is reported too, so the list cannot go stale.
 */
const ALLOWED_UNDEFINED: ReadonlyMap<string, string> = new Map([
  // domctl.h: `#ifdef __XEN__` — the hypervisor's own continuation of soft_reset; Xen-internal,
  // never issued by a toolstack, but its number is reserved and may show up in traces.
  ['XEN_DOMCTL_soft_reset_cont', 'Xen-internal (#ifdef __XEN__ in domctl.h)'],
  // event_channel.h: `#ifdef __XEN__` — internal continuation of EVTCHNOP_reset.
  ['EVTCHNOP_reset_cont', 'Xen-internal (#ifdef __XEN__ in event_channel.h)'],
  // hvm/hvm_op.h: only for __XEN_INTERFACE_VERSION__ < 0x00040900; replaced by the XEN_DMOP_*
  // ops of the same names. Kept so old numbers can still be named.
  ['HVMOP_set_pci_intx_level', 'old interface (__XEN_INTERFACE_VERSION__ < 0x00040900 in hvm/hvm_op.h)'],
  ['HVMOP_set_isa_irq_level', 'old interface (__XEN_INTERFACE_VERSION__ < 0x00040900 in hvm/hvm_op.h)'],
  ['HVMOP_set_pci_link_route', 'old interface (__XEN_INTERFACE_VERSION__ < 0x00040900 in hvm/hvm_op.h)'],
  // domctl.h keeps the #define inside a comment: "No longer supported, was equiv. to ENABLE with
  // mode flags ENABLE_REFCOUNT and ENABLE_TRANSLATE". Xen returns -EINVAL for it.
  ['XEN_DOMCTL_SHADOW_OP_ENABLE_TRANSLATE', 'old interface (commented out in domctl.h: no longer supported)'],
  // errno.h: `#ifdef __XEN__ /* Internal only, should never be exposed to the guest. */`. The
  // table keeps them to name host errnos that Linux (privcmd, signals) can hand back.
  ['XEN_EINTR', 'Xen-internal (#ifdef __XEN__ in errno.h); also a host errno privcmd can return'],
  ['XEN_ERESTART', 'Xen-internal (#ifdef __XEN__ in errno.h)'],
  // Not in any public header: Xen's own xen/include/xen/hypercall.h ("cmd[:6] == start_extent"),
  // which says they are not a formal part of the ABI. src/ needs them to read memory_op
  // continuations; their values are pinned in the golden test below instead.
  ['MEMOP_EXTENT_SHIFT', 'Xen-internal (xen/include/xen/hypercall.h, not a public header)'],
  ['MEMOP_CMD_MASK', 'Xen-internal (xen/include/xen/hypercall.h, not a public header)'],
]);

// ---- how each export maps to C ------------------------------------------------------------------

/** numbers.ts object exports and the prefix of their C names. */
const NUMBER_PREFIXES: Readonly<Record<string, string>> = {
  HYPERCALL: '__HYPERVISOR_',
  DOMCTL: 'XEN_DOMCTL_',
  SYSCTL: 'XEN_SYSCTL_',
  XENMEM: 'XENMEM_',
  XENMEM_RESOURCE: 'XENMEM_resource_',
  XENMEM_RESOURCE_GRANT_TABLE_ID: 'XENMEM_resource_grant_table_id_',
  XENVER: 'XENVER_',
  EVTCHNOP: 'EVTCHNOP_',
  GNTTABOP: 'GNTTABOP_',
  SCHEDOP: 'SCHEDOP_',
  HVMOP: 'HVMOP_',
  PHYSDEVOP: 'PHYSDEVOP_',
  DMOP: 'XEN_DMOP_',
  CONSOLEIO: 'CONSOLEIO_',
  SHADOW_OP: 'XEN_DOMCTL_SHADOW_OP_',
  XEN_DOMCTL_SHADOW: 'XEN_DOMCTL_SHADOW_',
  DOMID: 'DOMID_',
  XEN_DOMINF: 'XEN_DOMINF_',
  XEN_DOMCTL_CDF: 'XEN_DOMCTL_CDF_',
  XEN_DOMCTL_PFINFO: 'XEN_DOMCTL_PFINFO_',
  XEN_SYSCTL_PHYSCAP: 'XEN_SYSCTL_PHYSCAP_',
  EVTCHNSTAT: 'EVTCHNSTAT_',
};

/**
 * numbers.ts scalar exports whose C spelling is not simply their own name (a scalar export not
 * listed here is looked up under its own name, e.g. XEN_DOMCTL_INTERFACE_VERSION).
 */
const NUMBER_SCALAR_EXPRS: Readonly<Record<string, { expr: string; guard: string }>> = {
  // The public headers define neither XEN_PAGE_SIZE nor PAGE_SIZE for tools. xen/io/ring.h has
  // XEN_PAGE_SHIFT, "The PAGE_SIZE for ring protocols and hypercall interfaces is always 4K".
  XEN_PAGE_SIZE: { expr: '(1L << XEN_PAGE_SHIFT)', guard: 'XEN_PAGE_SHIFT' },
};

/** structs.ts exports that are plain numbers, and the C expression each stands for. */
const STRUCT_SCALAR_EXPRS: Readonly<Record<string, string>> = {
  DOMCTL_PAYLOAD_OFFSET: 'offsetof(struct xen_domctl, u)',
  SYSCTL_PAYLOAD_OFFSET: 'offsetof(struct xen_sysctl, u)',
  HVM_SAVE_CODE_MAX: 'HVM_SAVE_CODE_MAX',
};

/** structs.ts exports that are records of typedef name -> sizeof. */
const STRUCT_SIZE_RECORDS: ReadonlySet<string> = new Set(['XEN_VERSION_STRING_SIZES']);

/**
 * structs.ts exports that are records of HVM save type name -> { code, length }: each is checked
 * as HVM_SAVE_CODE(name) and HVM_SAVE_LENGTH(name) (hvm/save.h). Other members (perVcpu) come
 * from Xen's registrations in its .c files, which no header states.
 */
const HVM_SAVE_TYPE_RECORDS: ReadonlySet<string> = new Set(['HVM_SAVE_TYPES']);

const HEADERS = [
  // The xen headers use uint*_t without including stdint.h; xen.h must precede the others.
  'stdint.h',
  'stddef.h',
  'stdio.h',
  'sys/ioctl.h', // _IOC for xen/sys/privcmd.h
  'xen/xen.h',
  'xen/domctl.h',
  'xen/sysctl.h',
  'xen/memory.h',
  'xen/version.h',
  'xen/event_channel.h',
  'xen/grant_table.h',
  'xen/sched.h',
  'xen/physdev.h',
  'xen/hvm/hvm_op.h',
  'xen/hvm/dm_op.h',
  'xen/hvm/save.h', // the HVM context's records (includes arch-x86/hvm/save.h)
  'xen/io/ring.h', // XEN_PAGE_SHIFT
  // libxen-dev's copy of Linux's privcmd uapi (tools/include/xen-sys/Linux/privcmd.h), what
  // libxencall builds against. /usr/include/xen/privcmd.h is linux-libc-dev's and wants
  // <xen/interface/xen.h>, which no package installs.
  'xen/sys/privcmd.h',
];

const ERRNO_KEY = 'xen/errno.h:';
const MISSING_HEADER = '/usr/include/xen/domctl.h';
const INSTALL_HINT = 'install libxen-dev: .ci/run does apt-get install libxen-dev';

// ---- expectations: what TypeScript says, and the C expression that must agree ------------------

interface Expectation {
  /** Where the value lives in src/, e.g. "structs.xen_domctl_getdomaininfo.tot_pages". */
  readonly label: string;
  /** What is compared: "offset", "size", "sizeof", "value", ... (used in the message). */
  readonly what: string;
  /** The C expression; also the key of its line in the probe's output. */
  readonly expr: string;
  readonly ts: bigint;
  /** A macro that must be defined for expr to exist; the probe prints "undefined" otherwise. */
  readonly guard?: string;
  /** Printed by the probe by other means (the errno list); a missing line means "undefined". */
  readonly implicit?: boolean;
  /** Values compared as text instead (signedness, type names). */
  readonly describe?: (v: bigint) => string;
}

type ProbeOutput = ReadonlyMap<string, bigint | 'undefined'>;

function isStructLayout(v: unknown): v is StructLayout {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.ctype === 'string' && typeof o.size === 'number' && typeof o.fields === 'object' && o.fields !== null;
}

const SIGNEDNESS = (v: bigint) => (v === 1n ? 'signed integer' : v === 0n ? 'unsigned integer' : 'not an integer');

function layoutExpectations(label: string, layout: StructLayout): Expectation[] {
  const out: Expectation[] = [{ label, what: 'sizeof', expr: `sizeof(${layout.ctype})`, ts: BigInt(layout.size) }];
  const walk = (prefixLabel: string, prefixC: string, base: number, l: StructLayout) => {
    for (const [name, f] of Object.entries(l.fields)) {
      const member = prefixC + (f.cname ?? name);
      const flabel = `${prefixLabel}.${name}`;
      const lvalue = `((${layout.ctype} *)0)->${member}`;
      out.push({ label: flabel, what: 'offset', expr: `offsetof(${layout.ctype}, ${member})`, ts: BigInt(base + f.offset) });
      out.push({ label: flabel, what: 'size', expr: `sizeof(${lvalue})`, ts: BigInt(widthOf(f.type)) });
      out.push(...typeExpectations(flabel, lvalue, f.type));
      if (f.type.kind === 'struct') walk(flabel, `${member}.`, base + f.offset, f.type.layout);
    }
  };
  walk(label, '', 0, layout);
  return out;
}

/** The kind of a field beyond its size: signedness of scalars, element size, nested type. */
function typeExpectations(label: string, lvalue: string, t: FieldType): Expectation[] {
  switch (t.kind) {
    case 'u8':
    case 'u16':
    case 'u32':
    case 'u64':
      return [{ label, what: 'type', expr: `SIGNEDNESS(${lvalue})`, ts: 0n, describe: SIGNEDNESS }];
    case 'i32':
    case 'i64':
      return [{ label, what: 'type', expr: `SIGNEDNESS(${lvalue})`, ts: 1n, describe: SIGNEDNESS }];
    case 'handle':
      // A XEN_GUEST_HANDLE(_64) is a struct (or union) wrapping the pointer, never an integer.
      return [{ label, what: 'type', expr: `SIGNEDNESS(${lvalue})`, ts: -1n, describe: (v) => (v === -1n ? 'a guest handle' : SIGNEDNESS(v)) }];
    case 'array':
      return [{ label, what: 'element size', expr: `sizeof((${lvalue})[0])`, ts: t.of === 'u32' ? 4n : 8n }];
    case 'struct':
      return [
        {
          label,
          what: 'type',
          expr: `__builtin_types_compatible_p(__typeof__(${lvalue}), ${t.layout.ctype})`,
          ts: 1n,
          describe: (v) => (v === 1n ? t.layout.ctype : `not ${t.layout.ctype}`),
        },
      ];
    case 'bytes':
      return [];
  }
}

interface Sources {
  readonly structs: Readonly<Record<string, unknown>>;
  readonly numbers: Readonly<Record<string, unknown>>;
  readonly privcmd: Readonly<Record<string, unknown>>;
  readonly errno: readonly { readonly num: number; readonly name: string }[];
}

/** Turns every export of the modules into expectations; exports it cannot map become problems. */
function buildExpectations(src: Sources): { expectations: Expectation[]; problems: string[] } {
  const expectations: Expectation[] = [];
  const problems: string[] = [];
  const macro = (label: string, name: string, value: unknown) => {
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      problems.push(`${label}: not an integer (${String(value)})`);
      return;
    }
    expectations.push({ label, what: 'value', expr: name, guard: name, ts: BigInt(value) });
  };

  for (const [name, v] of Object.entries(src.structs)) {
    const label = `structs.${name}`;
    if (isStructLayout(v)) expectations.push(...layoutExpectations(label, v));
    else if (name in STRUCT_SCALAR_EXPRS && typeof v === 'number') {
      expectations.push({ label, what: 'value', expr: STRUCT_SCALAR_EXPRS[name]!, ts: BigInt(v) });
    } else if (STRUCT_SIZE_RECORDS.has(name) && typeof v === 'object' && v !== null) {
      for (const [t, size] of Object.entries(v)) {
        expectations.push({ label: `${label}.${t}`, what: 'sizeof', expr: `sizeof(${t})`, ts: BigInt(size as number) });
      }
    } else if (HVM_SAVE_TYPE_RECORDS.has(name) && typeof v === 'object' && v !== null) {
      for (const [t, rec] of Object.entries(v as Record<string, { code: number; length: number }>)) {
        expectations.push({ label: `${label}.${t}.code`, what: 'value', expr: `HVM_SAVE_CODE(${t})`, ts: BigInt(rec.code) });
        expectations.push({ label: `${label}.${t}.length`, what: 'value', expr: `HVM_SAVE_LENGTH(${t})`, ts: BigInt(rec.length) });
      }
    } else if (typeof v !== 'function') {
      problems.push(`${label}: the ABI probe does not know how to check this export; teach test/abi-probe.test.ts`);
    }
  }

  for (const [name, v] of Object.entries(src.numbers)) {
    const label = `numbers.${name}`;
    if (typeof v === 'number') {
      const alt = NUMBER_SCALAR_EXPRS[name];
      if (alt) expectations.push({ label, what: 'value', expr: alt.expr, guard: alt.guard, ts: BigInt(v) });
      else macro(label, name, v);
    } else if (typeof v === 'object' && v !== null) {
      const prefix = NUMBER_PREFIXES[name];
      if (prefix === undefined) {
        problems.push(`${label}: no C prefix known for this export; add it to NUMBER_PREFIXES in test/abi-probe.test.ts`);
        continue;
      }
      for (const [k, x] of Object.entries(v)) macro(`${label}.${k}`, prefix + k, x);
    } else if (typeof v !== 'function') {
      problems.push(`${label}: the ABI probe does not know how to check this export; teach test/abi-probe.test.ts`);
    }
  }

  for (const [name, v] of Object.entries(src.privcmd)) {
    if (name.startsWith('IOCTL_PRIVCMD_')) macro(`privcmd.${name}`, name, v);
  }

  const seen = new Set<string>();
  for (const e of src.errno) {
    if (seen.has(e.name)) problems.push(`errno.${e.name}: listed twice in XEN_ERRNO`);
    seen.add(e.name);
    expectations.push({ label: `errno.${e.name}`, what: 'value', expr: `${ERRNO_KEY}XEN_${e.name}`, ts: BigInt(e.num), implicit: true });
  }
  return { expectations, problems };
}

// ---- the C probe ----------------------------------------------------------------------------

const cString = (s: string) => JSON.stringify(s); // keys are plain ASCII: JSON quoting is C quoting

/** The C source printing "<expr> <value>" (or "<expr> undefined") for every expectation. */
function generateProbe(expectations: readonly Expectation[]): string {
  const lines: string[] = [
    '/* Generated by test/abi-probe.test.ts from src/; compiled against libxen-dev. */',
    ...HEADERS.map((h) => `#include <${h}>`),
    '',
    '/* 1 for a signed integer type, 0 for an unsigned one, -1 for anything else. */',
    '#define SIGNEDNESS(x) _Generic((x), \\',
    '  signed char: 1, short: 1, int: 1, long: 1, long long: 1, \\',
    '  unsigned char: 0, unsigned short: 0, unsigned int: 0, unsigned long: 0, unsigned long long: 0, \\',
    '  char: ((char)-1 < 0), _Bool: 0, default: -1)',
    '',
    '#define P(key, v) printf("%s %lld\\n", key, (long long)(v))',
    '',
    '/* Every entry of the header\'s own list, as the header invites: the includer defines XEN_ERRNO. */',
    'static void print_errno(void) {',
    `#define XEN_ERRNO(name, value) P(${cString(ERRNO_KEY + 'XEN_')} #name, value);`,
    '#include <xen/errno.h>',
    '}',
    '',
    'int main(void) {',
    '  print_errno();',
  ];
  const done = new Set<string>();
  for (const e of expectations) {
    if (e.implicit || done.has(e.expr)) continue;
    done.add(e.expr);
    // The label sits on the same line, so a compiler error quotes it.
    const print = `  P(${cString(e.expr)}, ${e.expr}); /* ${e.label.replace(/\*\//g, '* /')} */`;
    if (e.guard) {
      lines.push(`#ifdef ${e.guard}`, print, '#else', `  printf("%s undefined\\n", ${cString(e.expr)});`, '#endif');
    } else {
      lines.push(print);
    }
  }
  lines.push('  return 0;', '}', '');
  return lines.join('\n');
}

function parseProbeOutput(stdout: string): Map<string, bigint | 'undefined'> {
  const out = new Map<string, bigint | 'undefined'>();
  for (const line of stdout.split('\n')) {
    if (!line) continue;
    const sp = line.lastIndexOf(' ');
    if (sp < 0) throw new Error(`unparseable probe line: ${line}`);
    const key = line.slice(0, sp);
    const value = line.slice(sp + 1);
    out.set(key, value === 'undefined' ? 'undefined' : BigInt(value));
  }
  return out;
}

// ---- the comparison (pure) ----------------------------------------------------------------------

const show = (v: bigint) => (v >= 0x10000n || v < -0xffffn ? `${v} (0x${(v < 0n ? -v : v).toString(16)}${v < 0n ? ' negated' : ''})` : `${v}`);

/** The C name an expectation stands for, as the allow-list spells it. */
const cName = (e: Expectation) => e.guard ?? (e.implicit ? e.expr.slice(e.expr.indexOf(':') + 1) : e.expr);

/**
 * Every difference between what TypeScript says and what the compiled headers print, one message
 * per difference, e.g. "structs.xen_domctl_getdomaininfo.tot_pages: offset 8 in TS, 16 in C".
 */
function compareAbi(
  expectations: readonly Expectation[],
  c: ProbeOutput,
  allowedUndefined: ReadonlyMap<string, string> = ALLOWED_UNDEFINED,
): string[] {
  const diffs: string[] = [];
  const covered = new Set<string>();
  for (const e of expectations) {
    covered.add(e.expr);
    const got = c.get(e.expr) ?? (e.implicit ? 'undefined' : undefined);
    const name = cName(e);
    const what = e.what === 'value' ? '' : `${e.what} `;
    if (got === undefined) {
      diffs.push(`${e.label}: the probe printed nothing for ${e.expr}`);
    } else if (got === 'undefined') {
      if (!allowedUndefined.has(name)) {
        diffs.push(`${e.label}: ${name} is not defined by the headers for tools (-D__XEN_TOOLS__); fix src or add it, with the reason, to ALLOWED_UNDEFINED`);
      }
    } else {
      if (allowedUndefined.has(name)) {
        diffs.push(`${e.label}: ${name} is in ALLOWED_UNDEFINED but the headers define it (= ${show(got)}); remove it from the allow-list`);
      }
      if (got !== e.ts) {
        const fmt = e.describe ?? show;
        diffs.push(`${e.label}: ${what}${fmt(e.ts)} in TS, ${fmt(got)} in C (${e.expr})`);
      }
    }
  }
  // The errno list is checked both ways: an entry of the header missing from XEN_ERRNO is a gap.
  for (const [key, v] of c) {
    if (key.startsWith(ERRNO_KEY) && !covered.has(key) && v !== 'undefined') {
      const name = key.slice(ERRNO_KEY.length);
      diffs.push(`errno.${name.replace(/^XEN_/, '')}: xen/errno.h defines ${name} = ${v} but XEN_ERRNO lacks it`);
    }
  }
  return diffs;
}

// ---- running the probe --------------------------------------------------------------------------

const sources: Sources = {
  structs: structsModule as Record<string, unknown>,
  numbers: numbersModule as Record<string, unknown>,
  privcmd: privcmdModule as Record<string, unknown>,
  errno: XEN_ERRNO,
};

const CC = process.env.CC || 'cc';

/** Why the probe cannot run here, or null when it can. */
function toolchainProblem(): string | null {
  if (!fs.existsSync(MISSING_HEADER)) return `${MISSING_HEADER} is missing: ${INSTALL_HINT}`;
  try {
    execFileSync(CC, ['--version'], { stdio: 'pipe', timeout: 30_000 });
  } catch (e) {
    return `no working C compiler (${CC}: ${(e as Error).message.split('\n')[0]}); the ABI probe needs one: apt-get install gcc, and ${INSTALL_HINT}`;
  }
  return null;
}

let probeRun: { output: ProbeOutput; source: string } | undefined;
let probeFailure: string | undefined;

/** Generates, compiles and runs the probe for `expectations` (memoized: one compile per run). */
function runProbe(expectations: readonly Expectation[]): { output: ProbeOutput; source: string } {
  if (probeRun) return probeRun;
  if (probeFailure) assert.fail(probeFailure); // reported once already; do not compile again
  const problem = toolchainProblem();
  if (problem) assert.fail((probeFailure = problem));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-abi-probe-'));
  const exe = path.join(dir, 'probe');
  const cfile = `${exe}.c`;
  const source = generateProbe(expectations);
  fs.writeFileSync(cfile, source);
  try {
    execFileSync(CC, ['-D__XEN_TOOLS__', '-D_GNU_SOURCE', '-I/usr/include', '-o', exe, cfile], { stdio: 'pipe', timeout: 120_000 });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    // The directory is kept, so the compiler's line numbers can be read against the source.
    probeFailure = `the ABI probe did not compile against the installed headers; see the first test (${cfile})`;
    assert.fail(
      `the ABI probe did not compile against the installed headers (a struct, member or typedef in src/ the headers do not have?). Source kept at ${cfile}.\n${err.stderr?.toString() ?? err.message}`,
    );
  }
  try {
    const stdout = execFileSync(exe, [], { encoding: 'utf8', timeout: 30_000 });
    // ABI_PROBE_DUMP=<dir> keeps the generated source and its output for reading.
    const dump = process.env.ABI_PROBE_DUMP;
    if (dump) {
      fs.mkdirSync(dump, { recursive: true });
      fs.writeFileSync(path.join(dump, 'probe.c'), source);
      fs.writeFileSync(path.join(dump, 'probe.out'), stdout);
    }
    probeRun = { output: parseProbeOutput(stdout), source };
    return probeRun;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the tests --------------------------------------------------------------------------------

test('every number, struct layout, errno and ioctl in src/ matches Xen 4.17 headers (libxen-dev)', () => {
  const { expectations, problems } = buildExpectations(sources);
  // Sanity: the walk did find the modules' contents.
  assert.ok(expectations.some((e) => e.label === 'structs.xen_domctl_getdomaininfo.tot_pages'), 'layouts were not picked up');
  assert.ok(expectations.some((e) => e.label === 'numbers.DOMCTL.getdomaininfo'), 'numbers were not picked up');
  assert.ok(expectations.some((e) => e.label === 'privcmd.IOCTL_PRIVCMD_HYPERCALL'), 'ioctls were not picked up');
  const { output } = runProbe(expectations);
  const diffs = [...problems, ...compareAbi(expectations, output)];
  if (diffs.length > 0) {
    assert.fail(`${diffs.length} difference(s) between src/ and Xen's headers:\n  ${diffs.join('\n  ')}`);
  }
});

test('the probe catches a corrupted layout, number and errno (the comparison can fail)', () => {
  const real = structsModule.xen_domctl_getdomaininfo;
  const corrupted: StructLayout = {
    ...real,
    fields: { ...real.fields, tot_pages: { ...real.fields.tot_pages, offset: 12 } },
  };
  const { expectations } = buildExpectations({
    structs: { xen_domctl_getdomaininfo: corrupted, xen_sysctl_physinfo: { ...structsModule.xen_sysctl_physinfo, size: 120 } },
    numbers: { DOMCTL: { getdomaininfo: 6 } },
    privcmd: {},
    errno: XEN_ERRNO.map((e) => (e.name === 'EWOULDBLOCK' ? { ...e, num: 35 } : e)),
  });
  const { expectations: all } = buildExpectations(sources);
  const { output } = runProbe(all); // the real C output for the real src/ (same compile)
  assert.deepEqual(compareAbi(expectations, output), [
    'structs.xen_domctl_getdomaininfo.tot_pages: offset 12 in TS, 8 in C (offsetof(struct xen_domctl_getdomaininfo, tot_pages))',
    'structs.xen_sysctl_physinfo: sizeof 120 in TS, 112 in C (sizeof(struct xen_sysctl_physinfo))',
    'numbers.DOMCTL.getdomaininfo: 6 in TS, 5 in C (XEN_DOMCTL_getdomaininfo)',
    'errno.EWOULDBLOCK: 35 in TS, 11 in C (xen/errno.h:XEN_EWOULDBLOCK)',
  ]);
});

test('compareAbi: undefined names, the allow-list, type kinds and missing lines (no compiler needed)', () => {
  const { expectations } = buildExpectations({
    structs: {},
    numbers: { DOMCTL: { soft_reset_cont: 23, bogus_op: 99, getdomaininfo: 5 }, HVMOP: { set_param: 0 }, MYSTERY: { a: 1 } },
    privcmd: {},
    errno: [
      { num: 1, name: 'EPERM' },
      { num: 4, name: 'EINTR' },
    ],
  });
  const c = new Map<string, bigint | 'undefined'>([
    ['XEN_DOMCTL_soft_reset_cont', 'undefined'],
    ['XEN_DOMCTL_bogus_op', 'undefined'],
    ['XEN_DOMCTL_getdomaininfo', 5n],
    [`${ERRNO_KEY}XEN_EPERM`, 1n],
    [`${ERRNO_KEY}XEN_ENOENT`, 2n],
  ]);
  assert.deepEqual(compareAbi(expectations, c, new Map([...ALLOWED_UNDEFINED, ['XEN_DOMCTL_getdomaininfo', 'stale']])), [
    'numbers.DOMCTL.bogus_op: XEN_DOMCTL_bogus_op is not defined by the headers for tools (-D__XEN_TOOLS__); fix src or add it, with the reason, to ALLOWED_UNDEFINED',
    'numbers.DOMCTL.getdomaininfo: XEN_DOMCTL_getdomaininfo is in ALLOWED_UNDEFINED but the headers define it (= 5); remove it from the allow-list',
    'numbers.HVMOP.set_param: the probe printed nothing for HVMOP_set_param',
    'errno.ENOENT: xen/errno.h defines XEN_ENOENT = 2 but XEN_ERRNO lacks it',
  ]);
  // An export the probe cannot map is reported, not silently skipped.
  assert.deepEqual(
    buildExpectations({ structs: { NEW_THING: 'x' }, numbers: { MYSTERY: { a: 1 } }, privcmd: {}, errno: [] }).problems,
    [
      'structs.NEW_THING: the ABI probe does not know how to check this export; teach test/abi-probe.test.ts',
      'numbers.MYSTERY: no C prefix known for this export; add it to NUMBER_PREFIXES in test/abi-probe.test.ts',
    ],
  );
  // Signedness of a field is compared as a kind, not a number.
  const signedField = buildExpectations({
    structs: { s: { ctype: 'struct s', size: 4, fields: { x: { offset: 0, type: { kind: 'i32' } } } } },
    numbers: {},
    privcmd: {},
    errno: [],
  }).expectations;
  const typeKey = signedField.find((e) => e.what === 'type')!.expr;
  const out = new Map<string, bigint | 'undefined'>(signedField.map((e) => [e.expr, e.ts]));
  out.set(typeKey, 0n);
  assert.deepEqual(compareAbi(signedField, out), [`structs.s.x: type signed integer in TS, unsigned integer in C (${typeKey})`]);
});

/** Linux's _IOC on x86: dir in bits 30-31, size in 16-29, type in 8-15, nr in 0-7. */
function ioc(dir: number, type: string, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (type.charCodeAt(0) << 8) | nr) >>> 0;
}

test('golden privcmd values (pinned, independent of the headers)', () => {
  assert.equal(privcmdModule.IOCTL_PRIVCMD_HYPERCALL, 0x00305000);
  assert.equal(privcmdModule.IOCTL_PRIVCMD_RESTRICT, 0x00025006);
  assert.equal(structsModule.privcmd_hypercall.size, 48);
  // _IOC(_IOC_NONE, 'P', 0, sizeof(privcmd_hypercall_t)) and _IOC(_IOC_NONE, 'P', 6, sizeof(domid_t)).
  assert.equal(privcmdModule.IOCTL_PRIVCMD_HYPERCALL, ioc(0, 'P', 0, 48));
  assert.equal(privcmdModule.IOCTL_PRIVCMD_RESTRICT, ioc(0, 'P', 6, 2));
  assert.equal(ioc(0, 'P', 0, structsModule.privcmd_hypercall.size), 0x00305000);
  // _IOC(_IOC_NONE, 'P', 4, sizeof(privcmd_mmapbatch_v2_t)) and (..., 7, sizeof(privcmd_mmap_resource_t)).
  assert.equal(privcmdModule.IOCTL_PRIVCMD_MMAPBATCH_V2, 0x00205004);
  assert.equal(privcmdModule.IOCTL_PRIVCMD_MMAP_RESOURCE, 0x00205007);
  assert.equal(privcmdModule.IOCTL_PRIVCMD_MMAPBATCH_V2, ioc(0, 'P', 4, structsModule.privcmd_mmapbatch_v2.size));
  assert.equal(privcmdModule.IOCTL_PRIVCMD_MMAP_RESOURCE, ioc(0, 'P', 7, structsModule.privcmd_mmap_resource.size));
});

test('golden values the headers cannot check (allow-listed as Xen-internal)', () => {
  // xen/include/xen/hypercall.h: MEMOP_EXTENT_SHIFT 6, MEMOP_CMD_MASK ((1 << MEMOP_EXTENT_SHIFT) - 1).
  assert.equal(numbersModule.MEMOP_EXTENT_SHIFT, 6);
  assert.equal(numbersModule.MEMOP_CMD_MASK, 0x3f);
  // xen/arch/x86/include/asm/x86_64/page.h: PADDR_BITS 52, so a frame number has 52 - 12 bits.
  assert.equal(GFN_LIMIT, 2 ** (52 - 12));
  // xen/common/memory.c do_memory_op: nr_extents above UINT_MAX >> MEMOP_EXTENT_SHIFT is refused.
  assert.equal(MAX_RESERVATION_EXTENTS, 0xffffffff >>> numbersModule.MEMOP_EXTENT_SHIFT);
  assert.equal(MAX_RESERVATION_EXTENTS, 67_108_863);
});
