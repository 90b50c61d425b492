// The xencall command line, for toolstack shell scripts. What each command takes, its help and
// the exit statuses are data in spec.ts; every command takes --json (its shapes: docs/cli.md,
// from the schemas in json-schemas.ts). Options a command does not take are usage errors.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ErrorCodes, ValidationError, XencallError } from '../errors.js';
import type { ErrorJson } from './json-schemas.js';
import { COMMANDS, EXIT, OPTIONS, commandHelp, isCommand, mainHelp, usageLine, type CommandName, type OptionName } from './spec.js';

// The commands are imported when one runs: --help, --version and usage errors load none of them
// (nor the hypercall table, the typed calls or the mock), so they cost little more than starting node.
const commands = () => import('./command-modules.js');

export interface CliIO {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** The options as node:util parseArgs takes them. */
type ParseOptions = Record<string, { type: 'boolean' | 'string'; short?: string }>;

const parseOptions = (names: readonly OptionName[]): ParseOptions =>
  Object.fromEntries(names.map((n) => [n, { type: OPTIONS[n].type, ...('short' in OPTIONS[n] ? { short: OPTIONS[n].short as string } : {}) }]));

const ALL_OPTIONS = parseOptions(Object.keys(OPTIONS) as OptionName[]);

/** A usage error found while reading argv: exit 2, the message and the command's usage line. */
class UsageError extends ValidationError {}

export async function main(argv: string[], io: CliIO = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  // A first, lenient pass finds the command wherever the options put it (`--json info` works).
  const { tokens } = parseArgs({ args: argv, options: ALL_OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const at = tokens.find((t) => t.kind === 'positional');
  const json = tokens.some((t) => t.kind === 'option' && t.name === 'json');
  if (!at) return topLevel(argv, io);
  const command = at.value;
  if (!isCommand(command)) {
    io.err(`xencall: unknown command "${command}"\n\n${mainHelp()}`);
    return EXIT.usage;
  }
  try {
    const rest = [...argv.slice(0, at.index), ...argv.slice(at.index + 1)];
    const { values, positionals } = parseCommand(command, rest);
    if (values.help) {
      io.out(commandHelp(command));
      return EXIT.ok;
    }
    return await run(command, positionals, values, io);
  } catch (e) {
    return failed(command, e, json, io);
  }
}

/** `xencall`, `xencall --help`, `xencall --version`: no command. */
function topLevel(argv: string[], io: CliIO): number | Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { help: ALL_OPTIONS.help!, version: { type: 'boolean' } }, strict: true, allowPositionals: false }));
  } catch (e) {
    io.err(`xencall: ${(e as Error).message}\n\n${mainHelp()}`);
    return EXIT.usage;
  }
  if (values.version) {
    io.out(`${packageVersion()}\n`);
    return EXIT.ok;
  }
  (values.help ? io.out : io.err)(mainHelp());
  return values.help ? EXIT.ok : EXIT.usage;
}

/** The package's version, from its package.json (above both dist/cli.js and src/cli/main.ts). */
function packageVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'xencall' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // No package.json here: look further up.
    }
    if (dirname(dir) === dir) throw new Error("cannot find xencall's package.json");
  }
}

type Values = Partial<Record<OptionName, string | boolean>>;

/** The strict pass: only the options `command` takes, and as many arguments as it takes. */
function parseCommand(command: CommandName, argv: string[]): { values: Values; positionals: string[] } {
  const takes = [...(Object.keys(COMMANDS[command].options) as OptionName[]), 'help' as const];
  // Say which option is wrong and why, before parseArgs would (its message names no command).
  const { tokens } = parseArgs({ args: argv, options: ALL_OPTIONS, strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) {
    if (t.kind !== 'option' || takes.includes(t.name as OptionName)) continue;
    const why = !Object.hasOwn(OPTIONS, t.name) ? 'no such option' : `xencall ${command} does not take it`;
    throw new UsageError(t.rawName, `${why}${t.rawName === '--version' ? ' (xencall --version, without a command, prints the version)' : ''}`);
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: parseOptions(takes), strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError('', (e as Error).message);
  }
  const { minArgs, maxArgs, args } = COMMANDS[command];
  const n = parsed.positionals.length;
  if (!parsed.values.help && (n < minArgs || n > maxArgs)) {
    throw new UsageError('arguments', `xencall ${command} takes ${args || 'none'}, got ${n === 0 ? 'none' : parsed.positionals.map((p) => JSON.stringify(p)).join(' ')}`);
  }
  return { values: parsed.values as Values, positionals: parsed.positionals };
}

const str = (v: Values, k: OptionName, dflt: string): string => (typeof v[k] === 'string' ? (v[k] as string) : dflt);

/** Checks the option values and runs the command. */
async function run(command: CommandName, args: string[], values: Values, io: CliIO): Promise<number> {
  const backend = str(values, 'backend', command === 'saverestore' ? 'mock' : 'privcmd');
  if (backend !== 'privcmd' && backend !== 'mock') throw new UsageError('--backend', `must be privcmd or mock, got "${backend}"`);
  // Plain decimal only: Number() would take '' as 0, '1e300' as an integer and '0x10' as 16.
  const seedText = str(values, 'seed', '1');
  const seed = /^-?\d{1,10}$/.test(seedText) ? Number(seedText) : NaN;
  if (!(Number.isInteger(seed) && seed >= -(2 ** 31) && seed <= 0xffffffff)) {
    throw new UsageError('--seed', 'must be a decimal integer from -2147483648 to 4294967295 (the fault generator is 32-bit)');
  }
  const rateText = str(values, 'fault-rate', command === 'saverestore' ? '0.05' : '0.001');
  const rate = /^(\d+(\.\d*)?|\.\d+)$/.test(rateText) ? Number(rateText) : NaN;
  if (!(rate >= 0 && rate <= 1)) throw new UsageError('--fault-rate', 'must be a decimal number from 0 to 1');
  const json = values.json === true;
  const opts = { json, markdown: values.markdown === true, backend, seed, rate, allowWrites: values['allow-writes'] === true };
  const progress = values['no-progress'] !== true && Boolean(process.stderr.isTTY);
  switch (command) {
    case 'table':
      return (await commands()).runTable(opts, io);
    case 'demo':
      return await (await commands()).runDemo(opts, io);
    case 'info':
      return await (await commands()).runInfo(opts, io);
    case 'doctor':
      return await (await commands()).runDoctor(opts, io);
    case 'domains':
      return await (await commands()).runDomains(opts, io);
    case 'call':
      return await (await commands()).runCall(args, opts, io);
    case 'save':
    case 'restore':
    case 'migrate': {
      const o = { ...opts, live: values.live === true, keep: values.keep === true, paused: values.paused === true, keepSource: values['keep-source'] === true, progress };
      const { runMigrate, runRestore, runSave } = await commands();
      const runner = command === 'save' ? runSave : command === 'restore' ? runRestore : runMigrate;
      return await runner(args, o, io);
    }
    case 'saverestore': {
      const pagesText = str(values, 'pages', '70000');
      const pages = /^\d{1,8}$/.test(pagesText) ? Number(pagesText) : NaN;
      if (!(pages >= 1 && pages <= 1 << 22)) throw new UsageError('--pages', 'must be an integer from 1 to 4194304');
      const strategy = str(values, 'strategy', 'merge');
      if (strategy !== 'merge' && strategy !== 'all-dirty' && strategy !== 'naive') throw new UsageError('--strategy', 'must be merge, all-dirty or naive');
      const { runSaveRestore } = await commands();
      return await runSaveRestore({ ...opts, pages, strategy, progress }, io);
    }
  }
}

/** The exit status a command's error gives, with its message on stderr (and on stdout with --json). */
function failed(command: CommandName, e: unknown, json: boolean, io: CliIO): number {
  if (isOutputError(e)) return outputFailed(e, io);
  try {
    if (e instanceof XencallError) {
      if (json) io.out(`${JSON.stringify({ error: errorJson(e) }, null, 2)}\n`);
      if (e instanceof UsageError) io.err(`xencall ${command}: ${e.message}\n${usageLine(command)}\n`);
      else io.err(`xencall ${command}: ${e.code}: ${e.message}\n`);
      return exitFor(e);
    }
    // A bug, not a usage error: its message, without a stack trace a user cannot act on.
    io.err(`xencall ${command}: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.internal;
  } catch (e2) {
    if (isOutputError(e2)) return outputFailed(e2, io);
    throw e2;
  }
}

/** The exit status for a typed error: the error's code decides, never its message. */
export function exitFor(e: XencallError): number {
  if (e.code === ErrorCodes.VALIDATION) return EXIT.usage;
  if (e.code === ErrorCodes.BACKEND_UNAVAILABLE) return EXIT.unavailable;
  return EXIT.failed;
}

/** A failed write to stdout (ENOSPC on /dev/full, EPIPE when the reader went away, EIO...). */
export function isOutputError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && (e as NodeJS.ErrnoException).syscall === 'write';
}

/**
 * Ends the run after stdout failed: a clean one-line message and a non-zero exit. A closed pipe
 * (`xencall table | head`) is the reader's choice, so it exits as SIGPIPE would, quietly.
 */
export function outputFailed(e: NodeJS.ErrnoException, io: CliIO): number {
  if (e.code === 'EPIPE') return EXIT.closedPipe;
  try {
    io.err(`xencall: cannot write output: ${e.code}${e.code === 'ENOSPC' ? ' (no space left on the device)' : ''}\n`);
  } catch {
    // stderr is gone too: the exit status is all that is left.
  }
  return EXIT.failed;
}

/** A typed error as --json prints it: its code and message, and the fields it carries. */
function errorJson(e: XencallError): ErrorJson {
  const out: ErrorJson = { code: e.code, message: e.message };
  const fields = e as unknown as Record<string, unknown>;
  for (const k of ['field', 'errno', 'errnoName', 'opName', 'attempts', 'verdict', 'reason', 'recovery', 'problem', 'offset', 'done', 'requested'] as const) {
    const v = fields[k];
    if (v !== undefined && v !== null) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}
