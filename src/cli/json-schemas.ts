// The shapes of `xencall <command> --json`, as zod schemas: the commands' output objects are typed
// from them (z.infer, a type-only import, so running a command never loads this module or zod),
// docs/cli.md shows them as JSON Schema (z.toJSONSchema, scripts/gen-cli-doc.ts), and the tests
// parse every command's output with them. Objects are strict: a field that is not here (a struct's
// padding, say) fails the tests. JSON_RULES says what holds for all of them.

import { z } from 'zod';
import type { TableRowOutput } from '../hypercalls/render.js';
import type { CommandName } from './spec.js';

/** What holds for every command's --json output (docs/cli.md prints it). */
export const JSON_RULES = [
  'With `--json` a command prints one JSON document on stdout and nothing else there; progress and messages go to stderr.',
  "**64-bit values**: an integer that is 64 bits wide in Xen's ABI (a `uint64_aligned_t` field such as `tot_pages`, `cpu_time` or `max_mfn`; a hypercall's `long` result and its register arguments) is always a decimal string, whatever its size, so its type never depends on its value and nothing is rounded past 2^53. Every other integer is a JSON number, and exact.",
  'Fields ending in `_mib`, `_s` or `_ms` are derived for people (MiB = pages / 256, seconds, milliseconds); the exact value is beside them (`tot_pages` beside `mem_mib`, `cpu_time` in nanoseconds beside `cpu_time_s`).',
  "**Flags**: a field of bits keeps Xen's name and raw number, and `<field>_names` lists its set bits by the header's names without the prefix (`XEN_DOMINF_paused` is `paused`); a bit the Xen 4.17 headers do not name is `bit<N>`.",
  "Objects have exactly the fields shown (no struct padding, nothing extra); a field that may be absent is marked so, and a value that may be missing is `null`.",
  'When a command fails with `--json`, stdout holds `{ "error": … }` (below) and the exit status says what kind of failure it was.',
] as const;

const u64 = z.string().regex(/^\d+$/).describe("a 64-bit unsigned integer of Xen's ABI, as a decimal string");
const i64 = z.string().regex(/^-?\d+$/).describe("a 64-bit signed integer of Xen's ABI, as a decimal string");
const u32 = z.int().min(0).max(0xffffffff);
const u16 = z.int().min(0).max(0xffff);
const count = z.int().min(0);
const flagNames = (what: string) =>
  z.array(z.string()).describe(`the set bits of the field before it, by ${what} name (without the prefix); a bit the 4.17 headers do not name is "bit<N>"`);
const mib = z.number().min(0).describe('MiB (pages / 256), derived for reading');

export const infoJson = z.strictObject({
  version: z.string().describe('as Xen prints it: major.minor then extraversion ("4.17.7")'),
  major: u16,
  minor: u16,
  extraversion: z.string(),
  capabilities: z.string().describe('XENVER_capabilities: the guest ABIs Xen runs ("xen-3.0-x86_64 hvm-3.0-x86_32 ...")'),
  changeset: z.string(),
  pagesize: count,
  physinfo: z.strictObject({
    threads_per_core: u32,
    cores_per_socket: u32,
    nr_cpus: u32,
    max_cpu_id: u32,
    nr_nodes: u32,
    max_node_id: u32,
    cpu_khz: u32,
    capabilities: u32.describe('XEN_SYSCTL_PHYSCAP_* bits'),
    capabilities_names: flagNames('XEN_SYSCTL_PHYSCAP_*'),
    arch_capabilities: u32.describe('XEN_SYSCTL_PHYSCAP_X86_* bits (the 4.17 headers name none)'),
    arch_capabilities_names: flagNames('XEN_SYSCTL_PHYSCAP_X86_*'),
    total_pages: u64,
    free_pages: u64,
    scrub_pages: u64,
    outstanding_pages: u64,
    max_mfn: u64,
    total_mib: mib,
    free_mib: mib,
    hw_cap: z.array(u32).length(8),
  }),
  buffers_never_fault: z.boolean().describe('true when hypercall buffers come from /dev/xen/hypercall (they cannot fault)'),
  backend: z.enum(['privcmd', 'mock']),
});

const domain = z.strictObject({
  domid: u16,
  handle: z.string().describe('the domain handle as a UUID'),
  state: z.string().regex(/^[r-][b-][p-][s-][c-][d-]$/).describe("xl's six letters: running, blocked, paused, shutdown, crashed, dying"),
  flags: u32.describe('XEN_DOMINF_* bits; bits 16 and up hold the shutdown code'),
  flags_names: flagNames('XEN_DOMINF_*'),
  shutdown_reason: z.int().min(0).max(255).describe('the SHUTDOWN_* code in flags (255 while the domain has not shut down)'),
  shutdown_reason_name: z.string().nullable().describe('its SHUTDOWN_* name when the shutdown flag is set, else null'),
  tot_pages: u64,
  max_pages: u64,
  outstanding_pages: u64,
  shr_pages: u64,
  paged_pages: u64,
  shared_info_frame: u64,
  mem_mib: mib.describe('tot_pages / 256, derived for reading'),
  max_mem_mib: mib.describe('max_pages / 256, derived for reading'),
  vcpus: u32.describe('nr_online_vcpus'),
  max_vcpu_id: u32,
  cpu_time: u64.describe('nanoseconds of CPU time over all vcpus'),
  cpu_time_s: z.number().min(0).describe('cpu_time in seconds, derived for reading'),
  ssidref: u32,
  cpupool: u32,
  gpaddr_bits: z.int().min(0).max(255),
  arch_config: z.strictObject({
    emulation_flags: u32.describe('XEN_X86_EMU_* bits'),
    emulation_flags_names: flagNames('XEN_X86_EMU_*'),
    misc_flags: u32.describe('XEN_X86_MISC_* bits'),
    misc_flags_names: flagNames('XEN_X86_MISC_*'),
  }),
});

export const domainsJson = z.array(domain).describe('every domain, by domid');

const tableRow = z.strictObject({
  name: z.string(),
  hypercall: count,
  hypercall_name: z.string(),
  subop: count.nullable(),
  mode: z.strictObject({ field: z.string(), value: count }).nullable().describe('for rows told apart by a field other than the sub-op (shadow_op modes)'),
  verdict: z.enum(['safe', 'unsafe', 'conditional']),
  condition: z.string().nullable(),
  faults: z.string(),
  long_running: z.boolean(),
  reason: z.string(),
  source: z.array(z.string()).describe("Xen's source the verdict rests on: repository@tag:file function (lines)"),
  recovery: z.string().nullable(),
  verified: z.boolean(),
  struct: z.string().nullable(),
  typed: z.boolean(),
  read_only: z.union([z.boolean(), z.string()]).describe('true, false, or the rule for when it acts'),
});

export const tableJson = z.array(tableRow).describe('every row of the retry table (docs/hypercalls.md)');

export const doctorJson = z.strictObject({
  findings: z.array(
    z.strictObject({
      check: z.string(),
      status: z.enum(['ok', 'warn', 'fail', 'info']),
      detail: z.string(),
      advice: z.string().nullable().describe('what to do, or null'),
    }),
  ),
});

export const callJson = z.strictObject({
  op: u32.describe('the hypercall number'),
  op_name: z.string().nullable().describe('its name, or null for a number Xen 4.17 does not name'),
  args: z.array(u64).max(5).describe('the register arguments issued (a buffer argument as its address)'),
  result: i64.describe("the hypercall's result (a long)"),
  result_hex: z.string().regex(/^0x[0-9a-f]+$/),
  buffers: z.array(
    z.strictObject({
      arg: z.string().regex(/^A[1-5]$/),
      spec: z.string().describe('buf:SIZE or buf:@FILE, as given'),
      size: count,
      hex: z.string().regex(/^([0-9a-f]{2})*$/).describe("the buffer's bytes after the call"),
    }),
  ),
});

export const demoJson = z.strictObject({
  seed: z.int(),
  fault_rate: z.number().min(0).max(1),
  injected_faults: count,
  attempts: count,
  efaults: count,
  retries: count,
  refused: count,
  steps: z.array(z.strictObject({ step: z.string(), outcome: z.enum(['ok', 'recovered', 'refused', 'exhausted']), detail: z.string() })),
  events: z.array(z.string()).describe('every retry and refusal, in order, as printed without --json'),
});

const ms = z.number().min(0).describe('milliseconds, to 0.1');

export const saveJson = z.strictObject({
  domid: u16,
  file: z.string(),
  live: z.boolean(),
  rounds: count,
  pages_sent: count,
  bytes: count.describe("the image's size"),
  downtime_ms: ms,
  total_ms: ms,
  source: z.enum(['running', 'destroyed']).describe('what became of the saved domain'),
});

export const restoreJson = z.strictObject({ domid: u16, file: z.string(), pages: count, paused: z.boolean(), total_ms: ms });

export const migrateJson = z.strictObject({
  source: u16,
  destination: u16,
  live: z.boolean(),
  rounds: count,
  pages_sent: count,
  downtime_ms: ms,
  total_ms: ms,
});

export const saverestoreJson = z.strictObject({
  seed: z.int(),
  fault_rate: z.number().min(0).max(1),
  strategy: z.enum(['merge', 'all-dirty', 'naive']),
  pages: count,
  rounds: count,
  pages_sent: count,
  faults_injected: count,
  clean_faults: count,
  continuations_finished: count,
  retries: count,
  refusals: count,
  identical: z.boolean(),
  pages_differing: count,
});

/** What every command prints on stdout with --json when it fails (exit 1, 2 or 3). */
export const errorJson = z.strictObject({
  error: z.strictObject({
    code: z.string().regex(/^XEN_ERR_[A-Z_]+$/).describe('the XencallError code (README: Error codes)'),
    message: z.string(),
    field: z.string().optional().describe('XEN_ERR_VALIDATION: the argument or option at fault'),
    errno: count.optional(),
    errnoName: z.string().optional(),
    opName: z.string().optional(),
    attempts: count.optional(),
    verdict: z.enum(['safe', 'unsafe']).optional(),
    reason: z.string().optional(),
    recovery: z.string().optional(),
    problem: z.string().optional().describe('XEN_ERR_IMAGE_INVALID: what is wrong with the image'),
    offset: count.optional().describe('XEN_ERR_IMAGE_INVALID: where, in bytes from the start'),
    done: count.optional().describe('XEN_ERR_SHORT_COUNT: extents in place'),
    requested: count.optional(),
  }),
});

/** Each command's --json schema, in the order docs/cli.md shows them. */
export const COMMAND_JSON = {
  info: infoJson,
  domains: domainsJson,
  table: tableJson,
  doctor: doctorJson,
  call: callJson,
  demo: demoJson,
  save: saveJson,
  restore: restoreJson,
  migrate: migrateJson,
  saverestore: saverestoreJson,
} as const satisfies Record<CommandName, z.ZodType>;

export type InfoJson = z.infer<typeof infoJson>;
export type DomainJson = z.infer<typeof domain>;
export type DoctorJson = z.infer<typeof doctorJson>;
export type CallJson = z.infer<typeof callJson>;
export type DemoJson = z.infer<typeof demoJson>;
export type SaveJson = z.infer<typeof saveJson>;
export type RestoreJson = z.infer<typeof restoreJson>;
export type MigrateJson = z.infer<typeof migrateJson>;
export type SaveRestoreJson = z.infer<typeof saverestoreJson>;
export type ErrorJson = z.infer<typeof errorJson>['error'];

// The table's rows are the library's TableRowOutput (render.ts): the schema must say the same.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const tableRowMatches: Same<z.infer<typeof tableRow>, TableRowOutput> = true;
void tableRowMatches;
