// One row per hypercall that has no sub-op family in numbers.ts. Existence and arguments are
// those of the x86 pv64 column of Xen 4.17's dispatch table (xen/include/hypercall-defs.c);
// a hypercall missing there returns -ENOSYS.
//
// Many of these act on the *calling* vcpu or domain: for a toolstack that is the dom0 kernel,
// whose state would change behind its back. Those rows are `unsafe` with the recovery "do not
// issue it from a toolstack", whatever their copy order, so nothing re-issues them on its own.
// Where the notes give a rule that depends on a value outside the argument struct (a register
// count, the sub-command of platform_op), the row cannot decide it and is `unsafe` too, with the
// rule in its reason and recovery.

import { defineRow, type Citation, type RowInput, type RowSpec } from '../row.js';
import type { HypercallName } from '../hypercalls.js';

const DEFS: Citation = { file: 'xen/include/hypercall-defs.c', function: 'hypercall table (pv64)' };

type Spec = Omit<RowInput, 'name' | 'hypercall' | 'subop' | 'longRunning' | 'verified' | 'args'> &
  Partial<Pick<RowSpec, 'longRunning' | 'verified'>>;

const call = <H extends HypercallName>(hypercall: H, spec: Spec) =>
  defineRow({ name: hypercall, hypercall, subop: null, longRunning: false, verified: true, ...spec });

const NOT_FOR_TOOLSTACKS = 'Do not issue it from a toolstack: it acts on the calling vcpu or domain, i.e. the dom0 kernel.';

/** A hypercall that changes the calling vcpu's or domain's own state. */
const guestOnly = <H extends HypercallName>(hypercall: H, what: string, spec: Partial<Spec> & Pick<Spec, 'faults'>) =>
  call(hypercall, {
    verdict: 'unsafe',
    reason:
      spec.faults === 'no-pointer'
        ? `${what}. No argument points at memory, so it cannot fault; it is unsafe because it changes the dom0 kernel's own state.`
        : `${what}. It changes the dom0 kernel's own state, so it is unsafe whatever its copy order.`,
    source: [DEFS],
    recovery: NOT_FOR_TOOLSTACKS,
    ...spec,
  });

const absent = <H extends HypercallName>(hypercall: H, what: string) =>
  call(hypercall, {
    verdict: 'safe',
    faults: 'no-pointer',
    reason: `${what}: the dispatcher returns -ENOSYS without reading any argument, so it cannot fault and has no effect.`,
    source: [DEFS],
  });

export const NO_SUBOP_ROWS = [
  guestOnly('set_trap_table', 'Installs trap entries, copied in batch by batch with continuations, into the calling vcpu\'s trap table', {
    faults: 'copies',
    longRunning: true,
    source: [DEFS, { file: 'xen/arch/x86/pv/traps.c', function: 'do_set_trap_table' }],
    verified: false,
  }),
  call('mmu_update', {
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: true,
    reason:
      'Requests are copied in one at a time, each just before it is applied, and the count done is written to *pdone at the end (a fault there is ignored): an EFAULT on request i follows requests 0..i-1. With count = 1 the fault always comes first and a re-issue is safe, but count is a register argument the table cannot decode.',
    source: [{ file: 'xen/arch/x86/mm.c', function: 'do_mmu_update' }],
    recovery: 'Issue one request per call (count = 1), or read *pdone and re-issue only the rest (re-applying ordinary PTE and M2P updates is idempotent).',
  }),
  guestOnly('set_gdt', 'Loads a frame list, copied in, as the calling vcpu\'s GDT', {
    faults: 'copies',
    source: [DEFS, { file: 'xen/arch/x86/pv/descriptor-tables.c', function: 'do_set_gdt' }],
    verified: false,
  }),
  guestOnly('stack_switch', 'Sets the calling vcpu\'s kernel stack (ss and esp passed by value)', { faults: 'no-pointer' }),
  guestOnly('set_callbacks', 'Sets the calling domain\'s event, failsafe and syscall entry points (addresses passed by value)', {
    faults: 'no-pointer',
  }),
  guestOnly('fpu_taskswitch', 'Sets or clears CR0.TS for the calling vcpu', { faults: 'no-pointer' }),
  guestOnly('sched_op_compat', 'Deprecated yield, block or shutdown of the calling domain (shutdown would stop dom0)', {
    faults: 'no-pointer',
  }),
  call('platform_op', {
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: true,
    reason:
      'do_platform_op copies xen_platform_op in (checking XENPF_INTERFACE_VERSION, -EACCES), runs the sub-command and copies result fields out. Readers and idempotent setters are safe, but XENPF_add_memtype copies the register out after mtrr_add_page() and its rollback on a fault passes -EFAULT as the register, so the MTRR reference leaks; efi_runtime_call copies out after the service ran. The sub-command lies before the payload the table decodes, so the row is unsafe.',
    source: [{ file: 'xen/arch/x86/platform_hypercall.c', function: 'do_platform_op' }, { file: 'xen/arch/x86/cpu/mtrr/main.c', function: 'mtrr_del_page' }],
    recovery:
      'Readers (read_memtype, firmware_info, get_cpuinfo, getidletime, ...) and setters without copy-out may be re-issued. add_memtype: re-issue, then del_memtype the returned register once more to drop the leaked reference.',
    verified: false,
  }),
  guestOnly('set_debugreg', 'Sets a debug register of the calling vcpu', { faults: 'no-pointer' }),
  call('get_debugreg', {
    verdict: 'safe',
    faults: 'no-pointer',
    reason: 'Returns a debug register of the calling vcpu as the result: no pointer, no effect (and no use to a toolstack).',
    source: [DEFS],
  }),
  guestOnly('update_descriptor', 'Writes a descriptor (passed by value) into a frame of the caller\'s own GDT or LDT', {
    faults: 'no-pointer',
  }),
  call('multicall', {
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: true,
    reason:
      'Each entry is copied in, its call run, and its result copied back, which can fault after the entry ran; continuations keep the remaining list in registers. An EFAULT can follow any number of executed calls.',
    source: [{ file: 'xen/common/multicall.c', function: 'do_multicall' }],
    recovery: 'Do not batch calls that are not idempotent; issue them one by one, each under its own row.',
  }),
  guestOnly('update_va_mapping', 'Updates a PTE in the caller\'s own page tables (the UVMF_MULTI form reads a vcpu mask pointer from flags after the update)', {
    faults: 'copies',
    source: [DEFS, { file: 'xen/arch/x86/mm.c', function: 'do_update_va_mapping' }],
    verified: false,
  }),
  guestOnly('set_timer_op', 'Sets the calling vcpu\'s single-shot timer (an absolute value)', { faults: 'no-pointer' }),
  call('event_channel_op_compat', {
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'Deprecated wrapper: copies the whole evtchn_op in and runs do_event_channel_op on it, so each command behaves as its event_channel_op row, including the allocating ones that leak a port on a copy-back fault. The command is inside the struct, which the table does not decode here.',
    source: [DEFS, { file: 'xen/common/event_channel.c', function: 'do_event_channel_op' }],
    recovery: 'Use event_channel_op (32) and its per-sub-op rows instead.',
    verified: false,
  }),
  call('physdev_op_compat', {
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'Deprecated wrapper: copies the whole physdev_op in and runs do_physdev_op on it, so each command behaves as its physdev_op row (map_pirq copies results out after acting). The command is inside the struct, which the table does not decode here.',
    source: [DEFS, { file: 'xen/arch/x86/physdev.c', function: 'do_physdev_op' }],
    recovery: 'Use physdev_op (33) and its per-sub-op rows instead.',
    verified: false,
  }),
  guestOnly('vm_assist', 'Enables or disables a VM assist on the calling domain', { faults: 'no-pointer' }),
  guestOnly(
    'update_va_mapping_otherdomain',
    'Maps another domain\'s frame into the caller\'s own page tables (the UVMF_MULTI form reads a vcpu mask pointer from flags)',
    { faults: 'copies', source: [DEFS, { file: 'xen/arch/x86/mm.c', function: 'do_update_va_mapping_otherdomain' }], verified: false },
  ),
  guestOnly('iret', 'Returns from an exception frame of the calling vcpu, read from its stack (a failed read crashes the caller rather than returning -EFAULT)', {
    faults: 'no-pointer',
    source: [DEFS, { file: 'xen/arch/x86/pv/iret.c', function: 'do_iret' }],
  }),
  guestOnly(
    'vcpu_op',
    'Brings up, stops or configures vcpus of the calling domain. Per the sub-op reading, setters copy in before acting and readers only copy out; the one exposure is initialise, whose continuation re-entry can fault after a partial context was set',
    {
      faults: 'copies',
      longRunning: true,
      source: [DEFS, { file: 'xen/common/domain.c', function: 'common_vcpu_op' }, { file: 'xen/arch/x86/domain.c', function: 'do_vcpu_op' }],
      recovery: `${NOT_FOR_TOOLSTACKS} Use the domctl equivalents for other domains.`,
      verified: false,
    },
  ),
  guestOnly('set_segment_base', 'Sets the FS or GS base of the calling vcpu', { faults: 'no-pointer' }),
  call('mmuext_op', {
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: true,
    reason:
      'Ops are copied in one at a time, each just before it runs, and the count done is written to *pdone at the end (a fault there is ignored): an EFAULT on op i follows ops 0..i-1, and pin/unpin are not idempotent (a second pin is -EINVAL). With count = 1 the fault always comes first, but count is a register argument the table cannot decode.',
    source: [{ file: 'xen/arch/x86/mm.c', function: 'do_mmuext_op' }],
    recovery: 'Issue one op per call (count = 1), or read *pdone and re-issue only the rest.',
  }),
  call('xsm_op', {
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'Without XSM the dummy handler returns -ENOSYS and reads nothing. With FLASK, do_flask_op copies the op in and copies it back only for queries and idempotent ops (sid_to_context, access, context_to_sid, setbool, ...); the setters without copy-out fault only before acting.',
    source: [{ file: 'xen/include/xsm/dummy.h', function: 'xsm_do_xsm_op' }, { file: 'xen/xsm/flask/flask_op.c', function: 'do_flask_op' }],
    verified: false,
    recovery:
      'Without XSM it is -ENOSYS anyway; with FLASK read the state back with the matching query before re-issuing a setter.',
  }),
  guestOnly('nmi_op', 'Registers or unregisters the calling domain\'s NMI callback (copied in)', {
    faults: 'copies',
    verified: false,
  }),
  guestOnly('callback_op', 'Registers entry points of the calling domain (copied in)', {
    faults: 'copies',
    verified: false,
  }),
  call('xenoprof_op', {
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'A stateful profiler: init, get_buffer and set_passive copy results out after acting (get_buffer shares buffer pages), and repeats run into state checks (-EPERM, -EBUSY).',
    source: [{ file: 'xen/common/xenoprof.c', function: 'do_xenoprof_op' }],
    recovery: 'Out of scope for xencall: never re-issue automatically; restart the profiling session.',
    verified: false,
  }),
  call('kexec_op', {
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason:
      'load copies the struct, segment list and segment data in before kexec_load_slot() swaps the image in (an earlier fault frees the image); unload, status and exec copy only at entry; get_range is read-only.',
    source: [{ file: 'xen/common/kexec.c', function: 'kexec_load' }, { file: 'xen/common/kexec.c', function: 'kexec_get_range' }],
  }),
  absent('tmem_op', 'Removed in 4.13 (the 4.17 table lists it with no handler)'),
  call('argo_op', {
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'Without CONFIG_ARGO (the default) it returns -ENOSYS. When built, it manages the caller\'s own rings: sendv commits only after the whole message is copied and notify and unregister are idempotent, but if register_ring over an existing ring faults reading the gfn array, Xen removes that ring.',
    source: [{ file: 'xen/common/argo.c', function: 'do_argo_op' }, { file: 'xen/common/argo.c', function: 'register_ring' }],
    recovery: 'register_ring: re-issue (it creates the ring afresh), then notify again for any pending space waits.',
  }),
  call('xenpmu_op', {
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'mode_set and feature_set copy in before an idempotent set, and the getters are read-only; but init, finish, lvtpc_set and flush act on the calling vcpu\'s vPMU, and the sub-op is a register argument the table cannot decode.',
    source: [{ file: 'xen/arch/x86/cpu/vpmu.c', function: 'do_xenpmu_op' }],
    recovery: 'mode/feature get and set may be re-issued; never issue init, finish, lvtpc_set or flush from a toolstack.',
  }),
  call('hypfs_op', {
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason:
      'The path is copied in first; read copies the entry out (read-only); write_contents copies the value into a Xen buffer before applying it and copies nothing out, and writing a parameter is idempotent.',
    source: [{ file: 'xen/common/hypfs.c', function: 'do_hypfs_op' }, { file: 'xen/common/hypfs.c', function: 'hypfs_write_leaf' }],
  }),
  call('arch_0', {
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'mca on x86 (do_mca). fetch does not remove telemetry (only an ack does), so losing the final copy-out just makes a re-fetch return the same record; ack and physcpuinfo fault only on copies around a read or an idempotent ack; the inject commands copy in before injecting.',
    source: [{ file: 'xen/arch/x86/cpu/mcheck/mce.c', function: 'do_mca' }],
    verified: false,
    recovery:
      'Re-fetch telemetry with fetch (it does not consume it); re-issue an inject only after checking it was not delivered.',
  }),
  call('arch_1', {
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: true,
    reason:
      'paging_domctl_cont on x86: the continuation of a preempted log-dirty shadow_op (CLEAN, PEEK, OFF), taking the same xen_domctl. It copies the whole struct in (an EFAULT there leaves the op pending and the domain paused), resumes the op where d->arch.paging.preempt says (paging_domctl with resuming set: -EBUSY unless that very op is pending), and copies back only u.shadow_op, on every outcome but another continuation. A resumed CLEAN or PEEK can fault on a leaf copy like the first call (goto out: the op dropped, the domain unpaused, a CLEAN not re-armed), and the copy-back can fault after the op completed: the EFAULT alone does not say which. With nothing pending it answers -EBUSY and has no effect.',
    source: [
      { file: 'xen/arch/x86/mm/paging.c', function: 'do_paging_domctl_cont', lines: '760-800' },
      { file: 'xen/arch/x86/mm/paging.c', function: 'paging_domctl', lines: '710-722' },
      { file: 'xen/arch/x86/mm/paging.c', function: 'paging_log_dirty_op', lines: '442-449, 581-595' },
      { file: 'xen/include/hypercall-defs.c', function: 'paging_domctl_cont', lines: '193, 289' },
    ],
    recovery:
      'Issue it again with a pristine struct for the same op until it returns 0 (the op finished) or -EBUSY (nothing pending any more). After an EFAULT followed by -EBUSY, treat a CLEAN as not re-armed: CLEAN again.',
  }),
  absent('arch_2', 'Not in the 4.17 x86 table'),
  absent('arch_3', 'Not in the 4.17 x86 table'),
  absent('arch_4', 'Not in the 4.17 x86 table'),
  absent('arch_5', 'Not in the 4.17 x86 table'),
  absent('arch_6', 'Not in the 4.17 x86 table'),
  absent('arch_7', 'Not in the 4.17 x86 table'),
];
