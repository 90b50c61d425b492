#!/usr/bin/env node
// The `xencall` executable: runs the CLI and turns its result into the exit code. Output errors
// end the run with a one-line message, never a stack trace (main.ts, outputFailed).
import { isOutputError, main, outputFailed } from './main.js';
import { EXIT } from './spec.js';

const io = { out: (s: string) => void process.stdout.write(s), err: (s: string) => void process.stderr.write(s) };

// Writes to a pipe fail later, as an 'error' event (EPIPE once `| head` has what it wants);
// writes to a file or device fail at once, inside main (ENOSPC on /dev/full).
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  process.exit(isOutputError(e) ? outputFailed(e, io) : EXIT.internal);
});

main(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`xencall: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = EXIT.internal;
  },
);
