// Table rows for xen_version and console_io.

import { defineRow, type Citation } from '../row.js';
import { CONSOLEIO, XENVER } from '../numbers.js';
import { noArgs } from '../schemas.js';

const DO_XEN_VERSION: Citation = { file: 'xen/common/kernel.c', function: 'do_xen_version' };
const DO_CONSOLE_IO: Citation = { file: 'xen/drivers/char/console.c', function: 'do_console_io' };


const versionString = <Op extends keyof typeof XENVER & string>(name: Op, what: string, typed = true) =>
  defineRow({
    name: `xen_version.${name}`,
    hypercall: 'xen_version',
    subop: XENVER[name],
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: false,
    reason: `Read-only: ${what} is copied out to the caller's buffer; an EFAULT changes nothing.`,
    source: [DO_XEN_VERSION],
    verified: true,
    ...(typed ? { args: noArgs } : {}),
  });

export const XEN_VERSION_ROWS = [
  defineRow({
    name: 'xen_version.version',
    hypercall: 'xen_version',
    subop: XENVER.version,
    verdict: 'safe',
    readOnly: true,
    faults: 'no-pointer',
    longRunning: false,
    reason: 'Returns (major << 16) | minor in the result; no argument points at memory, so it cannot fault.',
    source: [DO_XEN_VERSION],
    verified: true,
    args: noArgs,
  }),
  versionString('extraversion', 'the extraversion string (16 bytes)'),
  versionString('compile_info', 'struct xen_compile_info'),
  versionString('capabilities', 'the capabilities string (1024 bytes)'),
  versionString('changeset', 'the changeset string (64 bytes)'),
  versionString('platform_parameters', 'struct xen_platform_parameters'),
  defineRow({
    name: 'xen_version.get_features',
    hypercall: 'xen_version',
    subop: XENVER.get_features,
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: false,
    reason: 'Copies struct xen_feature_info in (submap_idx) and back out (submap); read-only.',
    source: [DO_XEN_VERSION],
    verified: true,
    args: ({ z, u32 }) => z.object({ submap_idx: u32.default(0) }).strict(),
  }),
  defineRow({
    name: 'xen_version.pagesize',
    hypercall: 'xen_version',
    subop: XENVER.pagesize,
    verdict: 'safe',
    readOnly: true,
    faults: 'no-pointer',
    longRunning: false,
    reason: 'Returns the page size in the result and touches no caller memory.',
    source: [DO_XEN_VERSION],
    verified: true,
    args: noArgs,
  }),
  versionString('guest_handle', 'the calling domain\'s 16-byte handle', false),
  versionString('commandline', 'the 1024-byte hypervisor command line', false),
  defineRow({
    name: 'xen_version.build_id',
    hypercall: 'xen_version',
    subop: XENVER.build_id,
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: false,
    reason: 'Read-only: the len header is copied in and the build id copied out after it (a NULL argument returns just the size); an EFAULT on either copy changes nothing.',
    source: [DO_XEN_VERSION],
    verified: true,
  }),
];

export const CONSOLE_IO_ROWS = [
  defineRow({
    name: 'console_io.write',
    hypercall: 'console_io',
    subop: CONSOLEIO.write,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: true,
    reason:
      'The text is copied in and printed in chunks of at most 127 bytes, with a continuation between chunks that keeps the progress only in registers; an EFAULT on chunk k comes after chunks 0..k-1 went out, and a re-issue prints them again. A write of at most 127 bytes is one chunk whose copy precedes any output, and would be safe, but count is a register argument the table cannot decode, so the row is unsafe.',
    source: [DO_CONSOLE_IO, { file: 'xen/drivers/char/console.c', function: 'guest_console_write' }],
    recovery: 'Write at most 127 bytes per call: then an EFAULT means nothing was printed and the call can be re-issued. For longer writes accept duplicated output on a retry, or drop the message.',
    verified: true,
  }),
  defineRow({
    name: 'console_io.read',
    hypercall: 'console_io',
    subop: CONSOLEIO.read,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'Reads the 128-byte serial input ring (not the console output ring) in at most two chunks, advancing the consumer after each successful copy: when the ring wraps, the first chunk is consumed and the second chunk\'s copy can then fault. Those bytes are gone; a re-issue returns only the input after them. If the first copy faults nothing is consumed.',
    source: [DO_CONSOLE_IO],
    recovery: 'Re-issue to get the remaining input; the consumed chunk cannot be recovered. A buffer that does not cross a page boundary, or count = 1, makes the split unlikely.',
    verified: true,
  }),
];
