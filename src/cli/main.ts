// The xencall command line, for toolstack shell scripts. Every command takes --json for
// machine-readable output and --backend mock|privcmd (default privcmd); exit codes: 0 success,
// 1 a hypercall or runtime failure, 2 bad usage.

import { parseArgs } from 'node:util';
import { XencallError } from '../errors.js';

// The commands are imported when one runs: --help and usage errors load none of them (nor the
// hypercall table, the typed calls or the mock), so they cost little more than starting node.
const commands = () => import('./command-modules.js');

const USAGE = `usage: xencall <command> [options]

commands:
  info         Xen version, capabilities and physinfo
  domains      one row per domain (what \`xl list\` shows that the hypervisor knows)
  table        the retry table: every hypercall and sub-op, its verdict and why
  doctor       what this machine offers: privcmd node, /dev/xen/hypercall, kernel,
               compaction of locked pages, restriction, whether a hypercall works
  call OP [A1..A5]  a raw hypercall (OP a number or a name like domctl; A a number, or a
               buffer the CLI makes: buf:SIZE zeroed, buf:@FILE with the file's bytes);
               prints the result and the buffers. Only calls the table marks read-only
               run without --allow-writes, and numbers that could be addresses are refused
  demo         a scripted toolstack scenario on the mock hypervisor under injected copy
               faults: what was retried, what was refused and why
  save DOMID FILE   save a running HVM/PVH guest into an image (docs/saverestore.md);
               the domain is destroyed afterwards unless --keep (--live: copy while it runs)
  restore FILE  build a new domain from an image and start it; prints its domid
  migrate DOMID move a guest into a new domain on this host (--live: while it runs);
               prints source, destination, rounds, pages sent, downtime and total time
  saverestore  the live-migration loop on the mock (--backend mock): a guest that keeps
               writing, faults in CLEAN, and a byte-for-byte comparison at the end

options:
  --json            machine-readable output
  --markdown        (table) as a Markdown document
  --backend NAME    privcmd (default) or mock
  --seed N          (demo, mock) seed of the fault generator (default 1)
  --fault-rate R    (demo) probability that any other guest copy faults (default 0.001);
                    (saverestore) that a copy of CLEAN or its continuation faults (default 0.05)
  --pages N         (saverestore) guest pages (default 70000)
  --strategy S      (saverestore) after a failed CLEAN: merge (default), all-dirty, or naive
                    (a plain re-issue, to show the pages it loses)
  --live            (save, migrate) copy memory while the guest runs, then a final round
  --keep            (save) leave the guest running after the image is taken
  --paused          (restore, migrate) leave the new domain paused
  --keep-source     (migrate) leave the source paused instead of destroying it
  --no-progress     (saverestore, save, restore, migrate) no progress on stderr
                    (progress is shown only when stderr is a terminal)
  --allow-writes    (call) also issue calls that can change state (anything the table does
                    not mark read-only, or whose struct holds pointers it cannot check)
  -h, --help        this text
`;

export interface CliIO {
  out: (s: string) => void;
  err: (s: string) => void;
}

export async function main(argv: string[], io: CliIO = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        markdown: { type: 'boolean', default: false },
        backend: { type: 'string', default: 'privcmd' },
        seed: { type: 'string', default: '1' },
        'fault-rate': { type: 'string' },
        pages: { type: 'string', default: '70000' },
        strategy: { type: 'string', default: 'merge' },
        'no-progress': { type: 'boolean', default: false },
        'allow-writes': { type: 'boolean', default: false },
        live: { type: 'boolean', default: false },
        keep: { type: 'boolean', default: false },
        paused: { type: 'boolean', default: false },
        'keep-source': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    io.err(`xencall: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    (values.help ? io.out : io.err)(USAGE);
    return values.help ? 0 : 2;
  }
  if (values.backend !== 'privcmd' && values.backend !== 'mock') {
    io.err(`xencall: --backend must be privcmd or mock, got "${values.backend}"\n`);
    return 2;
  }
  // Plain decimal only: Number() would take '' as 0, '1e300' as an integer and '0x10' as 16.
  const seed = /^-?\d{1,10}$/.test(values.seed) ? Number(values.seed) : NaN;
  const rateText = values['fault-rate'] ?? (command === 'saverestore' ? '0.05' : '0.001');
  const rate = /^(\d+(\.\d*)?|\.\d+)$/.test(rateText) ? Number(rateText) : NaN;
  if (!(Number.isInteger(seed) && seed >= -(2 ** 31) && seed <= 0xffffffff) || !(rate >= 0 && rate <= 1)) {
    io.err('xencall: --seed must be a decimal integer from -2147483648 to 4294967295 (the fault generator is 32-bit) and --fault-rate a decimal number from 0 to 1\n');
    return 2;
  }
  const opts = { json: values.json, markdown: values.markdown, backend: values.backend, seed, rate, allowWrites: values['allow-writes'] };
  try {
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
        return await (await commands()).runCall(rest, opts, io);
      case 'save':
      case 'restore':
      case 'migrate': {
        const o = { ...opts, live: values.live, keep: values.keep, paused: values.paused, keepSource: values['keep-source'], progress: !values['no-progress'] && Boolean(process.stderr.isTTY) };
        const { runMigrate, runRestore, runSave } = await commands();
        const run = command === 'save' ? runSave : command === 'restore' ? runRestore : runMigrate;
        return await run(rest, o, io);
      }
      case 'saverestore': {
        const pages = /^\d{1,8}$/.test(values.pages) ? Number(values.pages) : NaN;
        const strategy = values.strategy as 'merge' | 'all-dirty' | 'naive';
        if (!Number.isInteger(pages) || pages < 1 || pages > 1 << 22 || !['merge', 'all-dirty', 'naive'].includes(strategy)) {
          io.err('xencall saverestore: --pages must be an integer from 1 to 4194304 and --strategy merge, all-dirty or naive\n');
          return 2;
        }
        const { runSaveRestore } = await commands();
        return await runSaveRestore({ ...opts, pages, strategy, progress: !values['no-progress'] && Boolean(process.stderr.isTTY) }, io);
      }
      default:
        io.err(`xencall: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (isOutputError(e)) return outputFailed(e, io);
    try {
      if (e instanceof XencallError) {
        if (opts.json) io.out(`${JSON.stringify({ error: { code: e.code, message: e.message, ...errorFields(e) } })}\n`);
        io.err(`xencall ${command}: ${e.code}: ${e.message}\n`);
        return e.code === 'XEN_ERR_VALIDATION' ? 2 : 1;
      }
      // A bug, not a usage error: its message, without a stack trace a user cannot act on.
      io.err(`xencall ${command}: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    } catch (e2) {
      if (isOutputError(e2)) return outputFailed(e2, io);
      throw e2;
    }
  }
}

/** Exit status for a reader that closed the pipe: what a shell reports for SIGPIPE. */
export const EXIT_CLOSED_PIPE = 141;

/** A failed write to stdout (ENOSPC on /dev/full, EPIPE when the reader went away, EIO...). */
export function isOutputError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && (e as NodeJS.ErrnoException).syscall === 'write';
}

/**
 * Ends the run after stdout failed: a clean one-line message and a non-zero exit. A closed pipe
 * (`xencall table | head`) is the reader's choice, so it exits as SIGPIPE would, quietly.
 */
export function outputFailed(e: NodeJS.ErrnoException, io: CliIO): number {
  if (e.code === 'EPIPE') return EXIT_CLOSED_PIPE;
  try {
    io.err(`xencall: cannot write output: ${e.code}${e.code === 'ENOSPC' ? ' (no space left on the device)' : ''}\n`);
  } catch {
    // stderr is gone too: the exit status is all that is left.
  }
  return 1;
}

function errorFields(e: XencallError): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ['errnoName', 'errno', 'opName', 'attempts', 'verdict', 'reason', 'recovery', 'field'] as const) {
    const v = (e as unknown as Record<string, unknown>)[k];
    if (v !== undefined && v !== null) out[k] = v;
  }
  return out;
}
