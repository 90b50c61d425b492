// What the `xencall` command takes and what its exit statuses mean, as data: main.ts parses argv
// and prints --help from it, and scripts/gen-cli-doc.ts writes docs/cli.md from it, so the help
// text, the parser and the documentation cannot disagree. Imports nothing, so that `--help`,
// `--version` and usage errors load no part of the library.

/** Exit statuses: one meaning each, the same for every command. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  unavailable: 3,
  internal: 4,
  closedPipe: 141,
} as const;

/** What each exit status means: `brief` for --help, `meaning` for docs/cli.md and the README. */
export const EXIT_MEANINGS: readonly { readonly code: number; readonly brief: string; readonly meaning: string }[] = [
  { code: EXIT.ok, brief: 'success', meaning: 'success (`doctor`: no check failed)' },
  {
    code: EXIT.failed,
    brief: 'the command failed: a hypercall or typed error (its code on stderr)',
    meaning:
      'the command ran and failed: a hypercall error, a refused or exhausted retry, a bad save image, a guest that cannot be saved or moved (the error\'s `code` on stderr; with `--json` also `{ "error": … }` on stdout); stdout could not be written; `saverestore`: the destination differs',
  },
  {
    code: EXIT.usage,
    brief: 'bad usage: unknown command or option, or a bad value; nothing was issued',
    meaning: 'bad usage: an unknown command or option, an option the command does not take, a bad value or argument (`XEN_ERR_VALIDATION`); nothing was issued',
  },
  {
    code: EXIT.unavailable,
    brief: 'no Xen here: no privcmd node, or koffi could not load (doctor: a check failed)',
    meaning: 'no Xen to talk to: no privcmd node could be opened, or koffi could not load (`XEN_ERR_BACKEND_UNAVAILABLE`); `doctor`: a check failed (not on Xen, no privcmd, or the hypercall was refused)',
  },
  { code: EXIT.internal, brief: 'a bug in xencall (an unexpected error)', meaning: 'internal error: a bug in xencall (its message on stderr, no stack trace)' },
  { code: EXIT.closedPipe, brief: 'the reader of stdout closed the pipe', meaning: 'the reader of stdout closed the pipe (`xencall table` into `head`), as for a process killed by SIGPIPE' },
];

export type OptionName = keyof typeof OPTIONS;

export interface OptionSpec {
  readonly type: 'boolean' | 'string';
  readonly short?: string;
  /** The value's placeholder in help text ("NAME"). */
  readonly value?: string;
  /** What it does, unless the command says it otherwise. */
  readonly help: string;
}

export const OPTIONS = {
  json: { type: 'boolean', help: 'machine-readable output: one JSON document on stdout (docs/cli.md has its schema)' },
  backend: { type: 'string', value: 'NAME', help: 'privcmd (default: /dev/xen/privcmd in a dom0) or mock (the mock hypervisor, no Xen needed)' },
  markdown: { type: 'boolean', help: 'as a Markdown document (what docs/hypercalls.md holds)' },
  seed: { type: 'string', value: 'N', help: 'seed of the mock\'s fault and preemption generator, a 32-bit integer (default 1)' },
  'fault-rate': { type: 'string', value: 'R', help: 'probability that a copy faults, from 0 to 1' },
  pages: { type: 'string', value: 'N', help: 'guest pages, from 1 to 4194304 (default 70000)' },
  strategy: { type: 'string', value: 'S', help: 'after a failed CLEAN: merge (default), all-dirty, or naive (a plain re-issue, to show the pages it loses)' },
  live: { type: 'boolean', help: 'copy memory while the guest runs, then a final round with it paused' },
  keep: { type: 'boolean', help: 'leave the guest running after the image is taken (default: destroy it)' },
  paused: { type: 'boolean', help: 'leave the new domain paused' },
  'keep-source': { type: 'boolean', help: 'leave the source paused instead of destroying it' },
  'no-progress': { type: 'boolean', help: 'no progress line on stderr (it is shown only when stderr is a terminal)' },
  'allow-writes': {
    type: 'boolean',
    help: 'also issue calls that can change state (anything the table does not mark read-only, or whose struct holds pointers it cannot check)',
  },
  help: { type: 'boolean', short: 'h', help: 'this text' },
} as const satisfies Record<string, OptionSpec>;

export interface CommandSpec {
  /** Positional arguments, as the usage line shows them. */
  readonly args: string;
  readonly minArgs: number;
  readonly maxArgs: number;
  /** One line for `xencall --help`. */
  readonly summary: string;
  /** More, for `xencall <command> --help`. */
  readonly detail?: string;
  /** The options it takes: true for the option's own help, or this command's wording. */
  readonly options: Partial<Record<Exclude<OptionName, 'help'>, true | string>>;
}

const mockSeed = 'seed of the mock\'s preemption generator and guest workload, a 32-bit integer (default 1; with --backend mock)';

export const COMMANDS = {
  info: {
    args: '',
    minArgs: 0,
    maxArgs: 0,
    summary: 'Xen version, capabilities and physinfo',
    options: { json: true, backend: true },
  },
  domains: {
    args: '',
    minArgs: 0,
    maxArgs: 0,
    summary: 'one row per domain (what `xl list` shows that the hypervisor knows)',
    options: { json: true, backend: true },
  },
  table: {
    args: '',
    minArgs: 0,
    maxArgs: 0,
    summary: 'the retry table: every hypercall and sub-op, its verdict and why',
    options: { json: true, markdown: true },
  },
  doctor: {
    args: '',
    minArgs: 0,
    maxArgs: 0,
    summary: 'what this machine offers a hypercall caller, and what to do about it',
    detail:
      'Checks: Xen, the privcmd node, /dev/xen/hypercall, the kernel, compaction of locked pages, privileges, and whether a hypercall works. With --backend mock it presents a healthy dom0.',
    options: { json: true, backend: true },
  },
  call: {
    args: 'OP [A1 .. A5]',
    minArgs: 1,
    maxArgs: 6,
    summary: 'one raw hypercall, made hard to misuse',
    detail: [
      'OP is a hypercall name (domctl, xen_version, ...) or number. Each A is a decimal or 0x-hex',
      'number, or a buffer the CLI makes: buf:SIZE (zeroed) or buf:@FILE (the file\'s bytes). Prints',
      'the result and every buffer after the call, in hex. Only calls the table marks read-only run',
      'without --allow-writes, and numbers that could be addresses are refused (docs/errors.md).',
    ].join('\n'),
    options: { json: true, backend: true, 'allow-writes': true },
  },
  demo: {
    args: '',
    minArgs: 0,
    maxArgs: 0,
    summary: 'a scripted toolstack scenario on the mock hypervisor under injected copy faults',
    detail: 'Shows what was retried, what was refused and why, and how each refusal was recovered. Always runs on the mock.',
    options: { json: true, seed: 'seed of the fault generator, a 32-bit integer (default 1)', 'fault-rate': 'probability that any other guest copy faults, from 0 to 1 (default 0.001)' },
  },
  save: {
    args: 'DOMID FILE',
    minArgs: 2,
    maxArgs: 2,
    summary: 'save a running HVM/PVH guest into an image (docs/saverestore.md)',
    detail: 'The domain is destroyed after the image is taken, unless --keep.',
    options: { json: true, backend: true, live: true, keep: true, 'no-progress': true, seed: mockSeed },
  },
  restore: {
    args: 'FILE',
    minArgs: 1,
    maxArgs: 1,
    summary: 'build a new domain from an image and start it; prints its domid',
    options: { json: true, backend: true, paused: true, 'no-progress': true, seed: mockSeed },
  },
  migrate: {
    args: 'DOMID',
    minArgs: 1,
    maxArgs: 1,
    summary: 'move a guest into a new domain on this host',
    detail: 'Prints source, destination, rounds, pages sent, downtime and total time.',
    options: { json: true, backend: true, live: true, 'keep-source': true, paused: 'leave the destination paused', 'no-progress': true, seed: mockSeed },
  },
  saverestore: {
    args: '',
    minArgs: 0,
    maxArgs: 0,
    summary: 'the live-migration loop on the mock (--backend mock): faults in CLEAN, byte-for-byte check',
    detail: 'A guest that keeps writing, seeded copy faults in CLEAN and its continuations, and a byte-for-byte comparison of source and destination at the end.',
    options: {
      json: true,
      backend: 'mock: the only backend it runs on',
      seed: true,
      'fault-rate': 'probability that a copy of CLEAN or its continuation faults, from 0 to 1 (default 0.05)',
      pages: true,
      strategy: true,
      'no-progress': true,
    },
  },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

/** The options a command takes, with their help in its words; --help last. */
export function commandOptions(command: CommandName): { name: OptionName; spec: OptionSpec; help: string }[] {
  const own = Object.entries(COMMANDS[command].options as CommandSpec['options']) as [Exclude<OptionName, 'help'>, true | string][];
  return [...own.map(([name, h]) => ({ name, spec: OPTIONS[name] as OptionSpec, help: h === true ? OPTIONS[name].help : h })), { name: 'help' as const, spec: OPTIONS.help, help: OPTIONS.help.help }];
}

const optionLabel = (name: OptionName, spec: OptionSpec) => `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.value ? ` ${spec.value}` : ''}`;

/** `usage: xencall save DOMID FILE [--json] ...`: one line. */
export function usageLine(command: CommandName): string {
  const c = COMMANDS[command];
  const opts = commandOptions(command)
    .filter((o) => o.name !== 'help')
    .map((o) => `[--${o.name}${o.spec.value ? ` ${o.spec.value}` : ''}]`);
  return ['usage: xencall', command, c.args, ...opts].filter(Boolean).join(' ');
}

/** What `xencall <command> --help` prints. */
export function commandHelp(command: CommandName): string {
  const c: CommandSpec = COMMANDS[command];
  const rows = commandOptions(command).map((o) => [optionLabel(o.name, o.spec), o.help] as const);
  const w = Math.max(...rows.map(([l]) => l.length));
  return [
    `usage: xencall ${command}${c.args ? ` ${c.args}` : ''} [options]`,
    '',
    `${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.`,
    ...(c.detail ? [c.detail] : []),
    '',
    'options:',
    ...rows.map(([l, h]) => `  ${l.padEnd(w)}  ${h}`),
    '',
  ].join('\n');
}

/** What `xencall --help` prints. */
export function mainHelp(): string {
  const names = Object.keys(COMMANDS) as CommandName[];
  const w = Math.max(...names.map((n) => n.length));
  return [
    'usage: xencall <command> [options]',
    '       xencall <command> --help     that command\'s arguments and options',
    '       xencall --version',
    '',
    'commands:',
    ...names.map((n) => `  ${n.padEnd(w)}  ${COMMANDS[n].summary}`),
    '',
    'Every command takes --json; those that talk to Xen take --backend mock to run on the mock',
    'hypervisor instead. Exit status:',
    ...EXIT_MEANINGS.map((e) => `  ${String(e.code).padStart(3)}  ${e.brief}`),
    '',
  ].join('\n');
}
