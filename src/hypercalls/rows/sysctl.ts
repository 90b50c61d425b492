// Table rows for __HYPERVISOR_sysctl. do_sysctl (xen/common/sysctl.c) copies struct xen_sysctl
// in, checks the interface version (-EACCES), spins for sysctl_lock (continuing before acting
// when preempted), runs the sub-op and copies the struct back for sub-ops that ask for it: by
// default only when the sub-op returned 0, always for coverage_op and livepatch_op, never for
// debug_keys, page_offline_op and the arch sub-ops (which copy what they need themselves). So
// every default sub-op can return -EFAULT after its effect; whether that matters depends on it.

import { defineRow, type Citation, subopRows, withArgs, withLayout } from '../row.js';
import { SYSCTL } from '../numbers.js';
import {
  xen_sysctl_cpupool_op,
  xen_sysctl_cputopoinfo,
  xen_sysctl_debug_keys,
  xen_sysctl_getcpuinfo,
  xen_sysctl_getdomaininfolist,
  xen_sysctl_livepatch_op,
  xen_sysctl_numainfo,
  xen_sysctl_perfc_op,
  xen_sysctl_physinfo,
  xen_sysctl_pm_op,
  xen_sysctl_readconsole,
  xen_sysctl_sched_id,
  xen_sysctl_tbuf_op,
} from '../structs.js';
import { noArgs } from '../schemas.js';
import { XEN_SYSCTL_CPUPOOL_OP, XEN_SYSCTL_LIVEPATCH, XEN_SYSCTL_PERFCOP, XEN_SYSCTL_PM_OP, XEN_SYSCTL_TBUFOP } from './constants.js';

const DO_SYSCTL: Citation = { file: 'xen/common/sysctl.c', function: 'do_sysctl' };
const ARCH_DO_SYSCTL: Citation = { file: 'xen/arch/x86/sysctl.c', function: 'arch_do_sysctl' };
const CPUPOOL_DO_SYSCTL: Citation = { file: 'xen/common/sched/cpupool.c', function: 'cpupool_do_sysctl' };

const sysctl = subopRows('sysctl', SYSCTL);

const readOnly = <Op extends keyof typeof SYSCTL & string>(op: Op, what: string, source: readonly Citation[], extra = '') =>
  sysctl(op, {
    verdict: 'safe',
    readOnly: true,
    reason: `Read-only: ${what}; an EFAULT on any copy changes nothing.${extra ? ` ${extra}` : ''}`,
    source,
  });


const cpupoolMode = (op: keyof typeof XEN_SYSCTL_CPUPOOL_OP) => ({ field: 'op', value: XEN_SYSCTL_CPUPOOL_OP[op] }) as const;

export const SYSCTL_ROWS = [
  defineRow({
    name: 'sysctl.readconsole',
    hypercall: 'sysctl',
    subop: SYSCTL.readconsole,
    layout: xen_sysctl_readconsole,
    verdict: 'conditional',
    condition: { text: 'unsafe when clear != 0', unsafeWhen: (a) => a.clear !== 0 },
    readOnly: { text: 'acts when clear != 0 (the text read is taken out of the ring)', actsWhen: (a) => a.clear !== 0 },
    faults: 'copies',
    longRunning: false,
    reason:
      'read_console_ring copies the ring out in pieces and returns EFAULT before touching the ring; with clear set it then moves the consumer index, and do_sysctl\'s copy-back of count and index can fault after that: a re-issue finds the text gone. Without clear nothing changes.',
    source: [DO_SYSCTL, { file: 'xen/drivers/char/console.c', function: 'read_console_ring' }],
    recovery:
      'Read with clear=0 (incremental, from your own index) and clear separately. If clear is needed, zero the buffer first: after an EFAULT the text that arrived is in the buffer up to the first NUL (count was not updated); keep it, and re-read incrementally for anything newer.',
    verified: true,
    args: ({ z, u32, hypercallBuffer }) =>
      z.object({
        clear: z.boolean().default(false),
        incremental: z.boolean().default(false),
        index: u32.default(0),
        // Bytes to read; 16384 when neither size nor buffer is given.
        size: z.number().int().min(1).max(16 << 20).optional(),
        // The caller's own buffer (xc.allocBuffer): it is zeroed, read into and kept, so after a
        // refused clear the bytes Xen copied are still there (see recoverConsole).
        buffer: hypercallBuffer.optional(),
      })
      .strict(),
  }),
  defineRow({
    name: 'sysctl.tbuf_op',
    hypercall: 'sysctl',
    subop: SYSCTL.tbuf_op,
    layout: xen_sysctl_tbuf_op,
    verdict: 'conditional',
    condition: { text: 'unsafe when cmd is XEN_SYSCTL_TBUFOP_set_size (3)', unsafeWhen: (a) => a.cmd === XEN_SYSCTL_TBUFOP.set_size },
    faults: 'copies',
    longRunning: false,
    reason:
      'tb_control acts before the final copy-back, which can fault. get_info is read-only and the mask, enable and disable setters store absolute values, so a repeat is harmless; set_size allocates the trace buffers once, and a re-issue returns -EBUSY.',
    source: [DO_SYSCTL, { file: 'xen/common/trace.c', function: 'tb_control' }, { file: 'xen/common/trace.c', function: 'alloc_trace_bufs' }],
    recovery: 'set_size: read -EBUSY on a retry as "already allocated", and confirm the size with get_info.',
    verified: true,
  }),
  defineRow({
    name: 'sysctl.physinfo',
    hypercall: 'sysctl',
    subop: SYSCTL.physinfo,
    layout: xen_sysctl_physinfo,
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: false,
    reason: 'Read-only: the struct is filled and copied back; an EFAULT on either copy changes nothing.',
    source: [DO_SYSCTL, { file: 'xen/arch/x86/sysctl.c', function: 'arch_do_physinfo' }],
    verified: true,
    args: noArgs,
  }),
  withArgs(withLayout(readOnly('sched_id', 'the scheduler id is copied back', [DO_SYSCTL]), xen_sysctl_sched_id), noArgs),
  defineRow({
    name: 'sysctl.perfc_op',
    hypercall: 'sysctl',
    subop: SYSCTL.perfc_op,
    layout: xen_sysctl_perfc_op,
    verdict: 'conditional',
    condition: { text: 'unsafe when cmd is XEN_SYSCTL_PERFCOP_reset (1)', unsafeWhen: (a) => a.cmd === XEN_SYSCTL_PERFCOP.reset },
    faults: 'copies',
    longRunning: false,
    reason:
      'perfc_copy_info copies descriptions and values out; reset then zeroes the counters whatever that copy returned, and the copy-back follows. After an EFAULT on reset the counters are gone and the snapshot was not delivered. query is read-only. Only in CONFIG_PERF_COUNTERS builds (otherwise -ENOSYS).',
    source: [DO_SYSCTL, { file: 'xen/common/perfc.c', function: 'perfc_control' }],
    recovery: 'Query first, then reset with desc and val NULL; after an EFAULT on reset the snapshot is lost, and resetting again is harmless.',
    verified: true,
  }),
  defineRow({
    name: 'sysctl.getdomaininfolist',
    hypercall: 'sysctl',
    subop: SYSCTL.getdomaininfolist,
    layout: xen_sysctl_getdomaininfolist,
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: false,
    reason:
      'Read-only: one getdomaininfo record is copied out per domain from first_domain on, then num_domains is copied back; an EFAULT anywhere changes no state.',
    source: [DO_SYSCTL],
    verified: true,
    // Without max_domains the typed call pages through every domain from first_domain.
    args: ({ z, domid }) => z.object({ first_domain: domid.default(0), max_domains: z.number().int().min(1).max(4096).optional() }).strict(),
  }),
  defineRow({
    name: 'sysctl.debug_keys',
    hypercall: 'sysctl',
    subop: SYSCTL.debug_keys,
    layout: xen_sysctl_debug_keys,
    verdict: 'conditional',
    condition: { text: 'unsafe when nr_keys > 1', unsafeWhen: (a) => a.nr_keys > 1 },
    faults: 'copies',
    longRunning: false,
    reason:
      'Each key is copied in just before handle_keypress() runs it, and nothing is copied back: an EFAULT on key i follows keys 0..i-1, some of which are not idempotent (toggles, log levels, reboot). With a single key the fault always comes first.',
    source: [DO_SYSCTL, { file: 'xen/common/keyhandler.c', function: 'handle_keypress' }],
    recovery: 'Send one key per call (nr_keys = 1); then an EFAULT means "not run" and the call can be re-issued.',
    verified: true,
  }),
  withArgs(
    withLayout(readOnly('getcpuinfo', 'idle time per CPU is copied out, then the count copied back', [DO_SYSCTL]), xen_sysctl_getcpuinfo),
    // Default: every cpu id (physinfo's max_cpu_id + 1), as libxc's callers size it.
    ({ z }) => z.object({ max_cpus: z.number().int().min(1).max(4096).optional() }).strict(),
  ),
  readOnly('availheap', 'the free heap size is copied back', [DO_SYSCTL]),
  sysctl('get_pmstat', {
    verdict: 'safe',
    reason:
      'get_* copy statistics out (read-only); reset_pxstat/reset_cxstat reset statistics and can then fault on the final copy-back, but resetting again is harmless.',
    source: [DO_SYSCTL, { file: 'xen/drivers/acpi/pmstat.c', function: 'do_get_pm_info' }],
  }),
  sysctl('cpu_hotplug', {
    verdict: 'safe',
    longRunning: true,
    reason:
      'The entry copy is the only copy: the work runs later through continue_hypercall_on_cpu(), there is no copy-back, and the helper\'s result overwrites the return value. Online/offline and SMT switching are idempotent anyway.',
    source: [ARCH_DO_SYSCTL, { file: 'xen/common/domain.c', function: 'continue_hypercall_on_cpu' }],
  }),
  defineRow({
    name: 'sysctl.pm_op',
    hypercall: 'sysctl',
    subop: SYSCTL.pm_op,
    layout: xen_sysctl_pm_op,
    verdict: 'conditional',
    condition: {
      text: 'unsafe when cmd is XEN_SYSCTL_pm_op_set_sched_opt_smt (0x21)',
      unsafeWhen: (a) => a.cmd === XEN_SYSCTL_PM_OP.set_sched_opt_smt,
    },
    faults: 'copies',
    longRunning: false,
    reason:
      'do_pm_op acts on the local copy and the final copy-back can fault after it. Get commands are read-only and set commands store absolute values, so a repeat is harmless; set_sched_opt_smt, though, returns the previous value, and a re-issue reports the new one as "previous". GET_CPUFREQ_PARA reports an array copy fault as a positive count of uncopied bytes, not -EFAULT.',
    source: [DO_SYSCTL, { file: 'xen/drivers/acpi/pmstat.c', function: 'do_pm_op' }],
    recovery: 'set_sched_opt_smt: the new setting is in force; the previous value the failed call read is lost, so record it yourself beforehand if it matters.',
    verified: true,
  }),
  sysctl('page_offline_op', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'Every page in [start, end] is offlined, onlined or queried before the status array is copied out at the end, so an EFAULT means all transitions happened; repeating them reaches the same state, though the per-page status codes of the retry can differ (an already-online page reports 0, not ONLINED).',
    source: [DO_SYSCTL, { file: 'xen/common/page_alloc.c', function: 'offline_page' }, { file: 'xen/common/page_alloc.c', function: 'online_page' }],
    recovery: 'If the exact status codes matter, query the range with the query sub-command after the retry.',
    verified: false,
  }),
  sysctl('lockprof_op', {
    verdict: 'safe',
    reason: 'query copies lock records out (read-only); reset is idempotent and can only fault on the final copy-back. Only in CONFIG_DEBUG_LOCK_PROFILE builds (otherwise -ENOSYS).',
    source: [DO_SYSCTL, { file: 'xen/common/spinlock.c', function: 'spinlock_profile_control' }],
  }),
  withArgs(withLayout(readOnly('cputopoinfo', 'per-CPU topology is copied out, then num_cpus', [DO_SYSCTL]), xen_sysctl_cputopoinfo), noArgs),
  withArgs(withLayout(readOnly('numainfo', 'per-node memory and distances are copied out, then num_nodes', [DO_SYSCTL]), xen_sysctl_numainfo), noArgs),
  defineRow({
    name: 'sysctl.cpupool_op.create',
    hypercall: 'sysctl',
    subop: SYSCTL.cpupool_op,
    mode: cpupoolMode('CREATE'),
    layout: xen_sysctl_cpupool_op,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'cpupool_create() makes the pool before the final copy-back that reports its id. After an EFAULT, a re-issue with cpupool_id = PAR_ANY creates a second pool and orphans the first; with an explicit id it returns -EEXIST.',
    source: [DO_SYSCTL, CPUPOOL_DO_SYSCTL, { file: 'xen/common/sched/cpupool.c', function: 'cpupool_create' }],
    recovery:
      'Pass an explicit cpupool_id (a free one from an INFO walk) and read -EEXIST on the retry as success; or walk INFO after the EFAULT and compare with the pool list taken before.',
    verified: true,
  }),
  defineRow({
    name: 'sysctl.cpupool_op.destroy',
    hypercall: 'sysctl',
    subop: SYSCTL.cpupool_op,
    mode: cpupoolMode('DESTROY'),
    layout: xen_sysctl_cpupool_op,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason: 'cpupool_destroy() completes before the final copy-back can fault; a re-issue is harmless but returns -ENOENT.',
    source: [DO_SYSCTL, { file: 'xen/common/sched/cpupool.c', function: 'cpupool_destroy' }],
    recovery: 'Re-issue once and read -ENOENT on the retry as "already destroyed".',
    verified: true,
  }),
  defineRow({
    name: 'sysctl.cpupool_op.info',
    hypercall: 'sysctl',
    subop: SYSCTL.cpupool_op,
    mode: cpupoolMode('INFO'),
    layout: xen_sysctl_cpupool_op,
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: false,
    reason: 'Read-only: the cpumap is copied out and the struct copied back. cpupool_id is rewritten with the pool found: iterate with the echoed id, re-issue with the requested one.',
    source: [DO_SYSCTL, CPUPOOL_DO_SYSCTL],
    verified: true,
  }),
  defineRow({
    name: 'sysctl.cpupool_op.addcpu',
    hypercall: 'sysctl',
    subop: SYSCTL.cpupool_op,
    mode: cpupoolMode('ADDCPU'),
    layout: xen_sysctl_cpupool_op,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'The cpu is assigned before the final copy-back can fault. With cpu = PAR_ANY a re-issue adds another free cpu; with an explicit cpu it returns -ENODEV (no longer free).',
    source: [DO_SYSCTL, CPUPOOL_DO_SYSCTL],
    recovery: 'Use explicit cpu numbers; after an EFAULT read the pool\'s INFO cpumap to see whether the cpu is in it.',
    verified: true,
  }),
  defineRow({
    name: 'sysctl.cpupool_op.rmcpu',
    hypercall: 'sysctl',
    subop: SYSCTL.cpupool_op,
    mode: cpupoolMode('RMCPU'),
    layout: xen_sysctl_cpupool_op,
    verdict: 'safe',
    faults: 'copies',
    longRunning: true,
    reason:
      'The removal runs later via continue_hypercall_on_cpu(), whose result overwrites the return value, so an EFAULT from the copy-back never reaches the caller: only the entry copy can fault, before anything happened.',
    source: [CPUPOOL_DO_SYSCTL, { file: 'xen/common/sched/cpupool.c', function: 'cpupool_unassign_cpu' }, { file: 'xen/common/domain.c', function: 'continue_hypercall_on_cpu' }],
    verified: true,
  }),
  defineRow({
    name: 'sysctl.cpupool_op.movedomain',
    hypercall: 'sysctl',
    subop: SYSCTL.cpupool_op,
    mode: cpupoolMode('MOVEDOMAIN'),
    layout: xen_sysctl_cpupool_op,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'The domain is moved before the final copy-back can fault; a re-issue finds it already in the target pool and returns 0.',
    source: [DO_SYSCTL, CPUPOOL_DO_SYSCTL],
    verified: true,
  }),
  defineRow({
    name: 'sysctl.cpupool_op.freeinfo',
    hypercall: 'sysctl',
    subop: SYSCTL.cpupool_op,
    mode: cpupoolMode('FREEINFO'),
    layout: xen_sysctl_cpupool_op,
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: false,
    reason: 'Read-only: the map of free cpus is copied out and the struct copied back.',
    source: [DO_SYSCTL, CPUPOOL_DO_SYSCTL],
    verified: true,
  }),
  sysctl('scheduler_op', {
    verdict: 'unsafe',
    reason:
      'getinfo is read-only; putinfo sets absolute scheduler parameters and reads them back before the final copy-back, so a repeat after an EFAULT is harmless.',
    source: [DO_SYSCTL, { file: 'xen/common/sched/core.c', function: 'sched_adjust_global' }, { file: 'xen/common/sched/credit.c', function: 'csched_sys_cntl' }],
    verified: false,
    recovery:
      'Read the parameters back with getinfo and re-issue putinfo only if they differ.',
  }),
  sysctl('coverage_op', {
    verdict: 'safe',
    reason:
      'The struct is always copied back, after the op: read copies the gcov data out (read-only) and reset zeroes counters (idempotent). Without CONFIG_COVERAGE it returns -EOPNOTSUPP.',
    source: [DO_SYSCTL, { file: 'xen/common/coverage/coverage.c', function: 'sysctl_cov_op' }],
  }),
  readOnly('psr_cmt_op', 'the CMT query result is copied back', [ARCH_DO_SYSCTL]),
  readOnly(
    'pcitopoinfo',
    'device ids are copied in and their nodes copied out one by one',
    [DO_SYSCTL],
    'A preempted call reports the count done in num_devs and the caller continues from it.',
  ),
  readOnly('psr_alloc', 'only the get_*_info queries exist; their result is copied back', [ARCH_DO_SYSCTL]),
  readOnly('get_cpu_levelling_caps', 'the capability mask is copied back', [ARCH_DO_SYSCTL]),
  readOnly('get_cpu_featureset', 'the featureset words and their count are copied out', [ARCH_DO_SYSCTL]),
  defineRow({
    name: 'sysctl.livepatch_op',
    hypercall: 'sysctl',
    subop: SYSCTL.livepatch_op,
    layout: xen_sysctl_livepatch_op,
    verdict: 'conditional',
    condition: {
      text: 'unsafe when cmd is XEN_SYSCTL_LIVEPATCH_UPLOAD (0) or _ACTION (3)',
      unsafeWhen: (a) => a.cmd === XEN_SYSCTL_LIVEPATCH.UPLOAD || a.cmd === XEN_SYSCTL_LIVEPATCH.ACTION,
    },
    faults: 'copies',
    longRunning: true,
    reason:
      'The struct is always copied back, after the upload, unload or scheduled action. Nothing breaks on a repeat, but its answer differs: UPLOAD returns -EEXIST, ACTION returns -EBUSY (work still scheduled), 0 (already in the target state) or -ENOENT (already unloaded). GET and LIST are read-only. Actions complete asynchronously.',
    source: [DO_SYSCTL, { file: 'xen/common/livepatch.c', function: 'livepatch_op' }, { file: 'xen/common/livepatch.c', function: 'livepatch_action' }],
    recovery: 'After an EFAULT query the payload with GET for its state and rc instead of re-issuing; on a retry read -EEXIST (upload) and -ENOENT (unload) as success.',
    verified: true,
  }),
  readOnly(
    'get_cpu_policy',
    'the CPUID leaves and MSRs are copied out and their counts written back',
    [ARCH_DO_SYSCTL],
  ),
];
