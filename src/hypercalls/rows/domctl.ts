// Table rows for __HYPERVISOR_domctl. Every domctl enters through do_domctl
// (xen/common/domctl.c), which copies the whole struct xen_domctl in first, checks the
// interface version (-EACCES), takes domctl_lock (on contention it continues *before* acting),
// runs the sub-op, and finally, only for sub-ops that set `copyback`, copies the struct back
// out. So: the entry copy can only fault before any effect; the copy-back faults after it.
// Multi-slice sub-ops re-enter through a continuation that repeats the entry copy, so on them
// an EFAULT can also follow the slices already done. Every row here copies the struct in, so
// every row's fault class is `copies`, even where the sub-op touches no other caller memory.

import { defineRow, type Citation, subopRows, withArgs, withLayout } from '../row.js';
import { DOMCTL, SHADOW_OP } from '../numbers.js';
import {
  xen_domctl_createdomain,
  xen_domctl_getdomaininfo,
  xen_domctl_getpageframeinfo3,
  xen_domctl_getvcpuinfo,
  xen_domctl_hvmcontext,
  xen_domctl_max_mem,
  xen_domctl_setdomainhandle,
  xen_domctl_max_vcpus,
  xen_domctl_monitor_op,
  xen_domctl_shadow_op,
  xen_domctl_vcpuaffinity,
  xen_domctl_vcpucontext,
  xen_domctl_vm_event_op,
  xen_domctl_vmtrace_op,
} from '../structs.js';
import { sharedSchema } from '../schemas.js';
import { XEN_DOMCTL_MONITOR_OP, XEN_DOMCTL_VMTRACE, XEN_VM_EVENT } from './constants.js';

const DO_DOMCTL: Citation = { file: 'xen/common/domctl.c', function: 'do_domctl' };
const ARCH_DO_DOMCTL: Citation = { file: 'xen/arch/x86/domctl.c', function: 'arch_do_domctl' };
const PAGING_DOMCTL: Citation = { file: 'xen/arch/x86/mm/paging.c', function: 'paging_domctl', lines: '684-758' };
const LOG_DIRTY_OP: Citation = { file: 'xen/arch/x86/mm/paging.c', function: 'paging_log_dirty_op', lines: '407-596' };
const PAGING_CONT: Citation = { file: 'xen/arch/x86/mm/paging.c', function: 'do_paging_domctl_cont', lines: '760-800' };
/** ERESTART from paging_domctl becomes a continuation of hypercall 49, with no copy-back. */
const ARCH_SHADOW_OP: Citation = { file: 'xen/arch/x86/domctl.c', function: 'arch_do_domctl', lines: '215-221, 1405-1406' };
const HAP_CLEAN: Citation = { file: 'xen/arch/x86/mm/hap/hap.c', function: 'hap_clean_dirty_bitmap', lines: '230-238' };
const HAP_FAULT: Citation = { file: 'xen/arch/x86/hvm/hvm.c', function: 'hvm_hap_nested_page_fault', lines: '1949-1970' };
const SHADOW_DOMCTL: Citation = { file: 'xen/arch/x86/mm/shadow/common.c', function: 'shadow_domctl' };
const HAP_DOMCTL: Citation = { file: 'xen/arch/x86/mm/hap/hap.c', function: 'hap_domctl' };
const PCI_DOMCTL: Citation = { file: 'xen/drivers/passthrough/pci.c', function: 'iommu_do_pci_domctl' };

const byDomain = sharedSchema(({ z, domid }) => z.object({ domain: domid }).strict());

const byVcpu = sharedSchema(({ z, domid, u32 }) => z.object({ domain: domid, vcpu: u32 }).strict());
/**
 * Physical cpu numbers. Xen's NR_CPUS is at most 4095 (xen/arch/Kconfig, `range 1 4095`), so no
 * host has a cpu 4095 or above; whether this host has the cpu is checked against physinfo.
 */
const cpuList = sharedSchema(({ z }) => z.array(z.number().int().min(0).max(4094)).max(4095));
/**
 * Log-dirty bitmap sizes: one bit per guest page, for guests up to 16 TiB (2^32 pages), the most
 * Xen 4.17 supports (SUPPORT.md, "Memory": x86 guests "less than 16 TiB"). A larger count only
 * asks for a bitmap buffer of half a GiB and more for pages no guest can have.
 */
const logDirtyPages = sharedSchema(({ z, u64 }) => u64.pipe(z.bigint().max(1n << 32n, 'must be at most 2^32 pages (16 TiB, the largest guest Xen 4.17 supports)')));

/** getpageframeinfo3's batch limit: arch_do_domctl refuses num > 1024 with -E2BIG (xen/arch/x86/domctl.c lines 258-263). */
export const GETPAGEFRAMEINFO3_MAX = 1024;

const shadowMode = (mode: keyof typeof SHADOW_OP) => ({ field: 'op', value: SHADOW_OP[mode] }) as const;

/**
 * What a stuck log-dirty continuation looks like (shared by OFF, CLEAN, PEEK). Xen checks for
 * preemption after every 512-leaf node while i3 < 511, so also after the last one, and after
 * every l4 entry: even a small guest's op can continue through hypercall 49.
 */
const STUCK_CONTINUATION =
  'Xen may preempt it at any node of the bitmap, the last included (paging_log_dirty_op lines 521-538; paging_free_log_dirty_bitmap lines 168-189 for OFF) and continue it through hypercall 49, whose entry copies the struct in again (do_paging_domctl_cont line 767). If that copy faults the caller gets -EFAULT while the op stays pending and the domain paused (domain_pause at line 427 or 245, undone only at the end), and every new shadow_op except GET_ALLOCATION returns -EBUSY (paging_domctl lines 710-722), so a plain re-issue meets -EBUSY.';
const FINISH_CONTINUATION =
  'After any EFAULT, issue hypercall 49 (arch_1, paging_domctl_cont) with a pristine struct for the same op until it returns 0 (it finished the pending op) or -EBUSY (nothing of that op is pending; it had no effect). Do so before destroying the domain: with a CLEAN or PEEK pending its teardown fails with -EBUSY (paging_free_log_dirty_bitmap lines 134-139), and once it is dying paging ops are ignored (paging_domctl lines 696-701), so the op can never be finished. The typed calls do this themselves.';
const FREE_BITMAP: Citation = { file: 'xen/arch/x86/mm/paging.c', function: 'paging_free_log_dirty_bitmap', lines: '114-214' };

const domctl = subopRows('domctl', DOMCTL);

/**
 * CLEAN and PEEK: the pages to report on, whether this is a save's final round (LOGDIRTY_FINAL),
 * and where Xen copies the bitmap: the call's own buffer (omitted), the caller's (xc.allocBuffer:
 * zeroed and kept, so what a failed CLEAN copied out stays there, as the recovery asks), or none
 * (null: a CLEAN then clears and re-arms, copying nothing).
 */
const logDirtyReadArgs = sharedSchema((s) =>
  s.z.object({ domain: s.domid, pages: logDirtyPages(s), final: s.z.boolean().default(false), bitmap: s.hypercallBuffer.nullable().optional() }).strict(),
);

/** The common shape: the struct is only copied in, the effect follows, nothing is copied back. */
const entryOnly = <Op extends keyof typeof DOMCTL & string>(op: Op, effect: string, source: readonly Citation[], extra = '') =>
  domctl(op, {
    verdict: 'safe',
    reason: `The entry copy of the struct is the only guest copy and comes before ${effect}; there is no copy-back, so an EFAULT means nothing happened.${extra ? ` ${extra}` : ''}`,
    source,
  });

/** Read-only sub-ops: the results are copied out, nothing in Xen changes. */
const readOnly = <Op extends keyof typeof DOMCTL & string>(op: Op, what: string, source: readonly Citation[], extra = '') =>
  domctl(op, {
    verdict: 'safe',
    readOnly: true,
    reason: `Read-only: ${what}; an EFAULT on any copy leaves Xen unchanged.${extra ? ` ${extra}` : ''}`,
    source,
  });

/** Obsolete or Arm-only numbers: x86 ends in arch_do_domctl's default case. */
const noopOnX86 = <Op extends keyof typeof DOMCTL & string>(op: Op, what: string) =>
  domctl(op, {
    verdict: 'safe',
    reason: `${what}; on x86 it falls to arch_do_domctl's default case and returns -ENOSYS after the entry copy, with no effect.`,
    source: [ARCH_DO_DOMCTL],
  });

export const DOMCTL_ROWS = [
  defineRow({
    name: 'domctl.createdomain',
    hypercall: 'domctl',
    subop: DOMCTL.createdomain,
    layout: xen_domctl_createdomain,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'domain_create() runs first; do_domctl then sets op->domain and copies the struct back. An EFAULT on that copy-back comes after the domain exists (paused): with an auto-allocated domid (domain 0 or >= 0x7ff0) a re-issue creates a second domain; with an explicit free domid a re-issue returns -EEXIST instead, which still needs the handle to tell apart.',
    source: [DO_DOMCTL, { file: 'xen/common/domain.c', function: 'domain_create' }],
    recovery:
      'Create with a handle (UUID) of your own, preferably with an explicit domid; after EFAULT list domains (sysctl.getdomaininfolist) and find the one with that handle, then adopt it (it is exactly what a successful create returns) or destroy it.',
    verified: true,
    args: ({ z, domid, domainHandle, u32 }) =>
      z.object({
        domain: z.union([domid, z.literal(0x7ff4)]).default(0x7ff4),
        handle: domainHandle,
        ssidref: u32.default(0),
        flags: u32.default(0),
        iommu_opts: u32.default(0),
        max_vcpus: u32.min(1).default(1),
        max_evtchn_port: u32.default(1023),
        max_grant_frames: z.number().int().min(-1).max(0x7fffffff).default(-1),
        max_maptrack_frames: z.number().int().min(-1).max(0x7fffffff).default(-1),
        // XEN_DOMCTL_GRANT_version(1): PV guests need grant table v1.
        grant_opts: u32.default(1),
        vmtrace_size: u32.default(0),
        cpupool_id: u32.default(0),
        arch: z.object({ emulation_flags: u32.default(0), misc_flags: u32.default(0) }).strict().default({ emulation_flags: 0, misc_flags: 0 }),
      })
      .strict(),
  }),
  defineRow({
    name: 'domctl.destroydomain',
    hypercall: 'domctl',
    subop: DOMCTL.destroydomain,
    verdict: 'safe',
    faults: 'copies',
    longRunning: true,
    reason:
      'No copy-back. domain_kill() is preemptible: the continuation re-enters do_domctl, whose entry copy can fault after earlier slices ran; re-issuing resumes the kill of a dying domain, and ESRCH after a retry means it is gone.',
    source: [DO_DOMCTL, { file: 'xen/common/domain.c', function: 'domain_kill' }],
    verified: true,
    args: byDomain,
  }),
  defineRow({
    name: 'domctl.pausedomain',
    hypercall: 'domctl',
    subop: DOMCTL.pausedomain,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason:
      'The only guest copy is do_domctl\'s entry copy, before domain_pause_by_systemcontroller() raises the pause count; no copy-back follows, so an EFAULT never comes after the count moved.',
    source: [DO_DOMCTL, { file: 'xen/common/domain.c', function: 'domain_pause_by_systemcontroller' }],
    verified: true,
    args: byDomain,
  }),
  defineRow({
    name: 'domctl.unpausedomain',
    hypercall: 'domctl',
    subop: DOMCTL.unpausedomain,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason:
      'The only guest copy is the entry copy, before domain_unpause_by_systemcontroller() lowers the pause count; no copy-back.',
    source: [DO_DOMCTL, { file: 'xen/common/domain.c', function: 'domain_unpause_by_systemcontroller' }],
    verified: true,
    args: byDomain,
  }),
  defineRow({
    name: 'domctl.getdomaininfo',
    hypercall: 'domctl',
    subop: DOMCTL.getdomaininfo,
    layout: xen_domctl_getdomaininfo,
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: false,
    reason:
      'Read-only: getdomaininfo() fills the struct and the copy-back may fault, but nothing changed. Xen rewrites op->domain to the domain it found, so a re-issue must restore the requested id.',
    source: [DO_DOMCTL, { file: 'xen/common/domctl.c', function: 'getdomaininfo' }],
    verified: true,
    args: byDomain,
  }),
  withArgs(
    domctl('setvcpuaffinity', {
      verdict: 'safe',
      reason:
        'The hard and soft masks are each copied in, applied, and the effective mask copied back over the caller\'s bitmap, so an EFAULT can follow either change; setting the same masks again is harmless, provided the re-issue uses the pristine input bitmaps. With both masks, an EFAULT on the hard mask\'s copy-back is lost (ret is reassigned by the soft half) and the call returns 0: the typed call detects the unwritten map and re-issues.',
      source: [DO_DOMCTL, { file: 'xen/common/sched/core.c', function: 'vcpu_affinity_domctl' }, { file: 'xen/common/bitmap.c', function: 'bitmap_to_xenctl_bitmap' }],
    }),
    (s) =>
      s.z
        .object({ domain: s.domid, vcpu: s.u32, hard: cpuList(s).optional(), soft: cpuList(s).optional(), force: s.z.boolean().default(false) })
        .strict()
        .refine((a) => a.hard !== undefined || a.soft !== undefined, { message: 'give hard, soft or both', path: ['hard'] }),
  ),
  defineRow({
    name: 'domctl.shadow_op',
    hypercall: 'domctl',
    subop: DOMCTL.shadow_op,
    layout: xen_domctl_shadow_op,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason:
      'Fallback for an op value the header does not define: paging_domctl passes it to hap_domctl/shadow_domctl, whose default case returns -EINVAL with no effect before the copy-back.',
    source: [PAGING_DOMCTL, HAP_DOMCTL, SHADOW_DOMCTL],
    verified: true,
  }),
  defineRow({
    name: 'domctl.shadow_op.off',
    hypercall: 'domctl',
    subop: DOMCTL.shadow_op,
    mode: shadowMode('OFF'),
    layout: xen_domctl_shadow_op,
    verdict: 'safe',
    faults: 'copies',
    longRunning: true,
    reason: `paging_log_dirty_disable switches log-dirty mode off and frees the bitmap (lines 239-261) before arch_do_domctl copies the struct back, so an EFAULT can follow the switch-off; switching off again is a no-op that returns 0. ${STUCK_CONTINUATION}`,
    source: [ARCH_SHADOW_OP, PAGING_DOMCTL, { file: 'xen/arch/x86/mm/paging.c', function: 'paging_log_dirty_disable', lines: '239-261' }, FREE_BITMAP, PAGING_CONT],
    recovery: `${FINISH_CONTINUATION} A hypercall 49 that returns 0 completed the OFF.`,
    verified: true,
    args: byDomain,
  }),
  defineRow({
    name: 'domctl.shadow_op.enable_test',
    hypercall: 'domctl',
    subop: DOMCTL.shadow_op,
    mode: shadowMode('ENABLE_TEST'),
    layout: xen_domctl_shadow_op,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'shadow_test_enable() turns shadow test mode on before the copy-back, so an EFAULT can follow the enable; the state is fine, but a re-issue returns -EINVAL (mode already set) instead of 0. On HAP domains it is -EINVAL with no effect.',
    source: [ARCH_DO_DOMCTL, SHADOW_DOMCTL, { file: 'xen/arch/x86/mm/shadow/common.c', function: 'shadow_test_enable' }],
    recovery: 'Re-issue once: -EINVAL on the retry means the first attempt enabled test mode; carry on as if it succeeded.',
    verified: true,
  }),
  defineRow({
    name: 'domctl.shadow_op.enable_logdirty',
    hypercall: 'domctl',
    subop: DOMCTL.shadow_op,
    mode: shadowMode('ENABLE_LOGDIRTY'),
    layout: xen_domctl_shadow_op,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'Log-dirty mode is enabled, and every page made read-only (p2m_ram_logdirty), before the copy-back of the domctl; an EFAULT there leaves it on, and a re-issue fails with -EINVAL (already enabled) instead of reporting success. -EINVAL also comes from a domain with passthrough devices, so the retry alone is ambiguous. Enabling resets neither the bitmap nor the counters.',
    source: [ARCH_SHADOW_OP, PAGING_DOMCTL, { file: 'xen/arch/x86/mm/paging.c', function: 'paging_log_dirty_enable', lines: '216-237' }, { file: 'xen/arch/x86/mm/hap/hap.c', function: 'hap_enable_log_dirty', lines: '182-211' }],
    recovery:
      'Issue shadow_op OFF (harmless whether log-dirty is on or not) and enable again; or, for a domain without passthrough devices, read -EINVAL on a retry as "already on".',
    verified: true,
    args: byDomain,
  }),
  defineRow({
    name: 'domctl.shadow_op.enable_translate',
    hypercall: 'domctl',
    subop: DOMCTL.shadow_op,
    mode: shadowMode('ENABLE_TRANSLATE'),
    layout: xen_domctl_shadow_op,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: '4.17 no longer implements it: hap_domctl and shadow_domctl return -EINVAL from their default case, with no effect before the copy-back.',
    source: [PAGING_DOMCTL, HAP_DOMCTL, SHADOW_DOMCTL],
    verified: true,
  }),
  defineRow({
    name: 'domctl.shadow_op.clean',
    hypercall: 'domctl',
    subop: DOMCTL.shadow_op,
    mode: shadowMode('CLEAN'),
    layout: xen_domctl_shadow_op,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: true,
    reason:
      `Tracking works by making pages read-only: a guest's first write to one faults, is logged and makes the page writable, so its later writes go unseen until tracking is re-armed (hvm_hap_nested_page_fault lines 1949-1970). paging_log_dirty_op copies the bitmap out one 4 KiB leaf at a time and clears each leaf right after copying it (lines 489-517); only when every leaf is done does it zero the counters and re-arm every page (ops->clean = hap_clean_dirty_bitmap, lines 545-578). An EFAULT on leaf k is goto out (lines 581-595): the leaves before k were copied and cleared, leaf k may be part-written and is not cleared, the domain is unpaused, and the re-arm is skipped; an EFAULT on the final copy-back comes after everything. A re-issue returns the cleared bits as clean: pages are lost. ${STUCK_CONTINUATION}`,
    source: [ARCH_SHADOW_OP, PAGING_DOMCTL, LOG_DIRTY_OP, HAP_CLEAN, HAP_FAULT, PAGING_CONT],
    recovery:
      `Zero the bitmap before each CLEAN and keep whatever a failed one wrote. ${FINISH_CONTINUATION} If that finishes the CLEAN, the bitmap holds all of it (the first slices' leaves plus the rest) and tracking is re-armed. Otherwise CLEAN again into a fresh zeroed bitmap and OR the two; only a CLEAN that completes re-arms. To resend every page instead, first complete a CLEAN with a null bitmap (it clears and re-arms without copying), or pages left writable take writes unseen after the copy. Stats of a failed round are lost.`,
    verified: true,
    args: logDirtyReadArgs,
  }),
  defineRow({
    name: 'domctl.shadow_op.peek',
    hypercall: 'domctl',
    subop: DOMCTL.shadow_op,
    mode: shadowMode('PEEK'),
    layout: xen_domctl_shadow_op,
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: true,
    reason: `PEEK copies the bitmap and stats out without clearing anything and never re-arms tracking (paging_log_dirty_op lines 489-517, 572-577), so an EFAULT leaves the log-dirty state unchanged. ${STUCK_CONTINUATION}`,
    source: [ARCH_SHADOW_OP, PAGING_DOMCTL, LOG_DIRTY_OP, PAGING_CONT],
    recovery: `${FINISH_CONTINUATION} That lets the pending PEEK finish and unpause the domain; then re-issue.`,
    verified: true,
    args: logDirtyReadArgs,
  }),
  defineRow({
    name: 'domctl.shadow_op.get_allocation',
    hypercall: 'domctl',
    subop: DOMCTL.shadow_op,
    mode: shadowMode('GET_ALLOCATION'),
    layout: xen_domctl_shadow_op,
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: false,
    reason: 'Read-only: the allocation is written to mb and copied back; nothing changes. It is the one shadow_op let through while a log-dirty op is pending (paging_domctl lines 713-714).',
    source: [ARCH_SHADOW_OP, PAGING_DOMCTL, { file: 'xen/arch/x86/mm/hap/hap.c', function: 'hap_domctl', lines: '685-689' }],
    verified: true,
    args: byDomain,
  }),
  defineRow({
    name: 'domctl.shadow_op.set_allocation',
    hypercall: 'domctl',
    subop: DOMCTL.shadow_op,
    mode: shadowMode('SET_ALLOCATION'),
    layout: xen_domctl_shadow_op,
    verdict: 'safe',
    faults: 'copies',
    longRunning: true,
    reason:
      'Sets the paging pool to an absolute size, preemptibly (a domctl continuation repeats the entry copy); an EFAULT can come at a slice entry or on the copy-back after the resize, but setting the same size again converges. The copy-back overwrites mb with the size reached: re-issue from the pristine struct.',
    source: [ARCH_DO_DOMCTL, PAGING_DOMCTL, HAP_DOMCTL, SHADOW_DOMCTL],
    verified: true,
    args: ({ z, domid, u32 }) => z.object({ domain: domid, mb: u32 }).strict(),
  }),
  defineRow({
    name: 'domctl.shadow_op.enable',
    hypercall: 'domctl',
    subop: DOMCTL.shadow_op,
    mode: shadowMode('ENABLE'),
    layout: xen_domctl_shadow_op,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'paging_enable() (or, with the LOG_DIRTY mode bit, paging_log_dirty_enable()) acts before the copy-back, so an EFAULT can follow the enable. The enable refuses to run twice: a re-issue returns -EINVAL (shadow, log-dirty) or -EEXIST (HAP) instead of 0.',
    source: [ARCH_DO_DOMCTL, PAGING_DOMCTL, { file: 'xen/arch/x86/mm/paging.c', function: 'paging_enable' }, { file: 'xen/arch/x86/mm/hap/hap.c', function: 'hap_enable' }],
    recovery: 'Re-issue once and read -EINVAL/-EEXIST on the retry as "already enabled by the first attempt".',
    verified: true,
  }),
  defineRow({
    name: 'domctl.max_mem',
    hypercall: 'domctl',
    subop: DOMCTL.max_mem,
    layout: xen_domctl_max_mem,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'Entry copy only, then d->max_pages is set; no copy-back. Setting the same limit twice is harmless.',
    source: [DO_DOMCTL],
    verified: true,
    args: ({ z, domid, u64 }) => z.object({ domain: domid, max_memkb: u64 }).strict(),
  }),
  domctl('setvcpucontext', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'The context is copied in before domain_pause and arch_set_info_guest(); there is no copy-back. vcpu_reset or arch_set_info_guest may continue (-ERESTART), and a later slice\'s entry copy can fault after earlier slices ran, but the continuation is itself a re-issue of the same call, so a toolstack re-issue is equivalent.',
    source: [DO_DOMCTL, { file: 'xen/common/domain.c', function: 'vcpu_reset' }],
    verified: false,
    recovery:
      'Read the context back with getvcpucontext and re-issue only if it differs from the one you set.',
  }),
  withArgs(
    withLayout(
      readOnly('getvcpucontext', 'the vcpu is paused just long enough to read its context, which is copied out, then the struct is copied back', [DO_DOMCTL]),
      xen_domctl_vcpucontext,
    ),
    byVcpu,
  ),
  withArgs(withLayout(readOnly('getvcpuinfo', 'runstate and flags are read and copied back', [DO_DOMCTL]), xen_domctl_getvcpuinfo), byVcpu),
  defineRow({
    name: 'domctl.max_vcpus',
    hypercall: 'domctl',
    subop: DOMCTL.max_vcpus,
    layout: xen_domctl_max_vcpus,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'Entry copy only, then vcpus are allocated up to max; no copy-back, and a repeat with the same max skips the vcpus that exist.',
    source: [DO_DOMCTL],
    verified: true,
    args: ({ z, domid, u32 }) => z.object({ domain: domid, max: u32.min(1) }).strict(),
  }),
  domctl('scheduler_op', {
    verdict: 'unsafe',
    reason:
      'The struct is always copied back after sched_adjust(), and RTDS putvcpuinfo copies vcpu entries in one at a time, so an EFAULT can follow a partial or complete update; every parameter set (weight, cap, period, budget) is absolute, so re-issuing the pristine request reaches the same state. getinfo/getvcpuinfo are read-only. nr_vcpus is rewritten with the count done: restore it.',
    source: [DO_DOMCTL, { file: 'xen/common/sched/core.c', function: 'sched_adjust' }, { file: 'xen/common/sched/rt.c', function: 'rt_dom_cntl' }],
    verified: false,
    recovery:
      'Read the parameters back (SCHEDOP_getinfo / getvcpuinfo) and re-issue only what differs, from the pristine request.',
  }),
  withArgs(
    domctl('setdomainhandle', {
      layout: xen_domctl_setdomainhandle,
      verdict: 'safe',
      reason:
        'The entry copy of the struct is the only guest copy and comes before the handle is copied into the domain (a memcpy into d->handle, lines 895-898); there is no copy-back, so an EFAULT means nothing happened, and setting the same handle twice is idempotent anyway.',
      source: [{ ...DO_DOMCTL, lines: '895-898' }],
    }),
    ({ z, domid, domainHandle }) => z.object({ domain: domid, handle: domainHandle }).strict(),
  ),
  entryOnly('setdebugging', 'debugger_attached is set', [DO_DOMCTL]),
  entryOnly('irq_permission', 'the IRQ is permitted or denied', [DO_DOMCTL]),
  entryOnly('iomem_permission', 'the MMIO range is permitted or denied', [DO_DOMCTL]),
  entryOnly('ioport_permission', 'the I/O port range is permitted or denied', [DO_DOMCTL, ARCH_DO_DOMCTL]),
  entryOnly(
    'hypercall_init',
    'the hypercall page is written into the target domain\'s frame (mapped by Xen, not a caller buffer)',
    [ARCH_DO_DOMCTL],
  ),
  domctl('soft_reset_cont', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'Xen-internal: the command number a preempted soft_reset writes into the caller\'s struct before its continuation; public/domctl.h exposes it only for that. It resumes the reset from d->next_evtchn, and an EFAULT can follow closed ports exactly as for soft_reset.',
    source: [DO_DOMCTL, { file: 'xen/common/domain.c', function: 'domain_soft_reset' }],
    recovery: 'A toolstack issues it only as the documented recovery of domctl.soft_reset (after a re-issued soft_reset returns -EBUSY), repeating it until it returns 0.',
  }),
  withArgs(
    entryOnly('settimeoffset', 'domain_set_time_offset() sets an absolute offset', [DO_DOMCTL]),
    ({ z, domid, i64 }) => z.object({ domain: domid, time_offset_seconds: i64 }).strict(),
  ),
  withArgs(
    withLayout(
      readOnly(
        'getvcpuaffinity',
        'the hard and soft masks are copied out to the caller\'s bitmaps',
        [DO_DOMCTL, { file: 'xen/common/sched/core.c', function: 'vcpu_affinity_domctl' }],
        'With both masks an EFAULT on the hard one is lost (ret is reassigned): the typed call detects the unwritten map and re-issues.',
      ),
      xen_domctl_vcpuaffinity,
    ),
    byVcpu,
  ),
  noopOnX86('real_mode_area', 'Obsolete (PowerPC)'),
  entryOnly('resumedomain', 'domain_resume() clears the shutdown state', [DO_DOMCTL, { file: 'xen/common/domain.c', function: 'domain_resume' }]),
  entryOnly('sendtrigger', 'the NMI, power or sleep trigger is delivered', [ARCH_DO_DOMCTL], 'A re-issue after EFAULT cannot deliver it twice.'),
  entryOnly('subscribe', 'the suspend event channel is recorded', [DO_DOMCTL]),
  withArgs(
    withLayout(
      readOnly(
        'gethvmcontext',
        'hvm_save() fills an internal buffer while the domain is paused, then it is copied out and the struct copied back',
        [ARCH_DO_DOMCTL, { file: 'xen/arch/x86/hvm/save.c', function: 'hvm_save' }],
        'hvm_save can itself return -EFAULT when its internal buffer is too small; that is not a caller-buffer fault.',
      ),
      xen_domctl_hvmcontext,
    ),
    byDomain,
  ),
  withArgs(
    domctl('sethvmcontext', {
      verdict: 'safe',
      reason: 'The context buffer is copied in before domain_pause and hvm_load(); there is no copy-back, so an EFAULT means nothing was loaded.',
      source: [ARCH_DO_DOMCTL],
    }),
    ({ z, domid, bytes }) =>
      z.object({ domain: domid, context: bytes.refine((b) => b.length >= 1 && b.length <= 1 << 26, 'an HVM context is 1 byte to 64 MiB') }).strict(),
  ),
  entryOnly('set_address_size', 'switch_compat() (a no-op when the size is already set)', [ARCH_DO_DOMCTL]),
  readOnly('get_address_size', 'the address size is copied back', [ARCH_DO_DOMCTL]),
  domctl('assign_device', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'No copy-back; the assignment may continue (-ERESTART) with the unchanged struct, so an EFAULT comes only at a slice entry. If an earlier slice finished the assignment, a re-issue gets -EBUSY from device_assigned() rather than assigning twice.',
    source: [DO_DOMCTL, PCI_DOMCTL, { file: 'xen/drivers/passthrough/pci.c', function: 'device_assigned' }],
    verified: false,
    recovery:
      'Check with test_assign_device whether the device is now assigned (-EBUSY) before re-issuing.',
  }),
  entryOnly('bind_pt_irq', 'pt_irq_create_bind()', [ARCH_DO_DOMCTL]),
  domctl('memory_mapping', {
    verdict: 'safe',
    longRunning: true,
    reason:
      'The entry copy is the only guest copy and precedes map_mmio_regions/unmap_mmio_regions; no copy-back. A partial mapping is reported as a positive count the caller continues from (not a continuation).',
    source: [DO_DOMCTL],
  }),
  entryOnly('ioport_mapping', 'the guest-to-machine port mapping and its permission change', [ARCH_DO_DOMCTL]),
  entryOnly('set_ext_vcpucontext', 'the extended vcpu state is installed', [ARCH_DO_DOMCTL]),
  readOnly('get_ext_vcpucontext', 'the extended state is read with the vcpu paused and copied back', [ARCH_DO_DOMCTL]),
  noopOnX86('set_opt_feature', 'Obsolete (IA64)'),
  domctl('test_assign_device', {
    verdict: 'safe',
    reason: 'Read-only query of device_assigned(); the entry copy is the only guest copy.',
    source: [PCI_DOMCTL],
  }),
  entryOnly('set_target', 'd->target is set', [DO_DOMCTL]),
  entryOnly('deassign_device', 'deassign_device()', [PCI_DOMCTL]),
  entryOnly('unbind_pt_irq', 'pt_irq_destroy_bind()', [ARCH_DO_DOMCTL]),
  readOnly('get_device_group', 'the group\'s devices are copied out one by one, then the count field', [
    PCI_DOMCTL,
    { file: 'xen/drivers/passthrough/pci.c', function: 'iommu_get_device_group' },
  ]),
  entryOnly('debug_op', 'hvm_debug_op() switches single-stepping', [ARCH_DO_DOMCTL]),
  readOnly('gethvmcontext_partial', 'hvm_save_one() reads one record and copies it out', [
    ARCH_DO_DOMCTL,
    { file: 'xen/arch/x86/hvm/save.c', function: 'hvm_save_one' },
  ]),
  defineRow({
    name: 'domctl.vm_event_op',
    hypercall: 'domctl',
    subop: DOMCTL.vm_event_op,
    layout: xen_domctl_vm_event_op,
    verdict: 'conditional',
    condition: {
      text: 'unsafe when op is XEN_VM_EVENT_ENABLE (0) or XEN_VM_EVENT_DISABLE (1)',
      unsafeWhen: (a) => a.op === XEN_VM_EVENT.ENABLE || a.op === XEN_VM_EVENT.DISABLE,
    },
    faults: 'copies',
    longRunning: false,
    reason:
      'The struct is copied back after vm_event_domctl() succeeds. ENABLE maps the ring and allocates a Xen event channel whose port reaches the caller only through that copy-back: after an EFAULT the ring is on, the port unknown, and a re-issue returns -EBUSY. DISABLE tears the ring down first, so a re-issue returns -EINVAL. GET_VERSION and RESUME are safe (read-only; draining the ring again finds nothing).',
    source: [DO_DOMCTL, { file: 'xen/common/vm_event.c', function: 'vm_event_domctl' }, { file: 'xen/common/vm_event.c', function: 'vm_event_enable' }],
    recovery:
      'ENABLE: issue DISABLE for the same mode (frees ring and event channel; -EBUSY while vcpus still wait on the ring), then ENABLE again. DISABLE: read -EINVAL on a retry as "already disabled".',
    verified: true,
  }),
  entryOnly('mem_sharing_op', 'mem_sharing_control() switches sharing', [ARCH_DO_DOMCTL, { file: 'xen/arch/x86/mm/mem_sharing.c', function: 'mem_sharing_domctl' }]),
  readOnly('gettscinfo', 'the TSC parameters are read with the domain paused and copied back', [ARCH_DO_DOMCTL]),
  entryOnly('settscinfo', 'tsc_set_info()', [ARCH_DO_DOMCTL]),
  defineRow({
    name: 'domctl.getpageframeinfo3',
    hypercall: 'domctl',
    subop: DOMCTL.getpageframeinfo3,
    layout: xen_domctl_getpageframeinfo3,
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: true,
    reason:
      'Read-only apart from an idempotent P2M populate, but in place: for each element Xen copies the gfn in and writes its type back over it, and for translated guests a preemption rewrites num and array in the caller\'s struct before the continuation. An EFAULT mid-array leaves earlier gfns overwritten: a re-issue is safe only from the pristine struct and array (libxc\'s own retry re-issues the overwritten one).',
    source: [ARCH_DO_DOMCTL, { file: 'tools/libs/ctrl/xc_private.c', function: 'xc_get_pfn_type_batch' }],
    verified: true,
    // A BigUint64Array, Uint32Array, Float64Array or array of integers, converted in bulk.
    args: ({ z, domid, gfnList }) => z.object({ domain: domid, gfns: gfnList(GETPAGEFRAMEINFO3_MAX) }).strict(),
  }),
  domctl('setvcpuextstate', {
    verdict: 'safe',
    reason: 'The xsave buffer is copied in before validation, vcpu_pause and the install; no copy-back.',
    source: [ARCH_DO_DOMCTL],
  }),
  readOnly('getvcpuextstate', 'xcr0, xcr0_accum and the xsave area are copied out with the vcpu paused, then the struct copied back', [ARCH_DO_DOMCTL]),
  entryOnly('set_access_required', 'the access-required flag is set', [DO_DOMCTL]),
  readOnly('audit_p2m', 'audit counters are copied back (only in P2M_AUDIT builds; otherwise -ENOSYS)', [ARCH_DO_DOMCTL]),
  entryOnly('set_virq_handler', 'set_global_virq_handler()', [DO_DOMCTL]),
  entryOnly('set_broken_page_p2m', 'the pfn is retyped p2m_ram_broken', [ARCH_DO_DOMCTL]),
  domctl('setnodeaffinity', {
    verdict: 'safe',
    reason: 'The node map is copied in before domain_set_node_affinity(); no copy-back.',
    source: [DO_DOMCTL, { file: 'xen/common/domain.c', function: 'domain_set_node_affinity' }],
  }),
  readOnly('getnodeaffinity', 'the node map is copied out', [DO_DOMCTL]),
  noopOnX86('cacheflush', 'Arm only'),
  readOnly('get_vcpu_msrs', 'MSRs are copied out one by one with the vcpu paused, then the struct copied back (PV guests only)', [ARCH_DO_DOMCTL]),
  domctl('set_vcpu_msrs', {
    verdict: 'safe',
    reason:
      'MSRs are copied in and written one at a time, so an EFAULT on entry i follows writes 0..i-1; each write sets an absolute value, so a full re-issue reaches the same state. On failure Xen copies msr_count back as the index reached: re-issue with the original count.',
    source: [ARCH_DO_DOMCTL],
  }),
  domctl('setvnumainfo', {
    verdict: 'safe',
    reason: 'vnuma_init() copies every array into a fresh allocation before vnuma_replace() installs it; no copy-back.',
    source: [DO_DOMCTL, { file: 'xen/common/domctl.c', function: 'vnuma_init' }],
  }),
  domctl('psr_cmt_op', {
    verdict: 'safe',
    reason: 'ATTACH and DETACH act after the entry copy and copy nothing back; QUERY_RMID is read-only and copies the struct back.',
    source: [ARCH_DO_DOMCTL],
  }),
  defineRow({
    name: 'domctl.monitor_op',
    hypercall: 'domctl',
    subop: DOMCTL.monitor_op,
    layout: xen_domctl_monitor_op,
    verdict: 'conditional',
    condition: {
      text: 'unsafe when op is XEN_DOMCTL_MONITOR_OP_ENABLE (0) or _DISABLE (1)',
      unsafeWhen: (a) => a.op === XEN_DOMCTL_MONITOR_OP.ENABLE || a.op === XEN_DOMCTL_MONITOR_OP.DISABLE,
    },
    faults: 'copies',
    longRunning: false,
    reason:
      'The struct is copied back after a successful monitor_domctl(). ENABLE/DISABLE toggle an event before it; a re-issue finds the event already in the requested state and returns -EEXIST. GET_CAPABILITIES is read-only; EMULATE_EACH_REP and CONTROL_REGISTERS are idempotent setters.',
    source: [DO_DOMCTL, { file: 'xen/common/monitor.c', function: 'monitor_domctl' }, { file: 'xen/arch/x86/monitor.c', function: 'arch_monitor_domctl_event' }],
    recovery: 'Re-issue once and read -EEXIST on the retry as success: after the EFAULT the configuration in force is the one you sent.',
    verified: true,
  }),
  domctl('psr_alloc', {
    verdict: 'safe',
    reason: 'SET_* act after the entry copy and copy nothing back; GET_* are read-only and copy the struct back.',
    source: [ARCH_DO_DOMCTL],
  }),
  domctl('soft_reset', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'evtchn_reset() closes ports preemptibly: before each continuation Xen writes cmd = soft_reset_cont (23) into the caller\'s struct, and that write or the next slice\'s entry copy can fault after ports were closed. A re-issued soft_reset then returns -EBUSY (a reset is in progress); only soft_reset_cont resumes it. A completed reset cannot be repeated (-EINVAL).',
    source: [DO_DOMCTL, { file: 'xen/common/domain.c', function: 'domain_soft_reset' }, { file: 'xen/common/event_channel.c', function: 'evtchn_reset' }],
    recovery: 'Re-issue with cmd = soft_reset (79); if it returns -EBUSY, re-issue with cmd = soft_reset_cont (23) until it returns 0.',
  }),
  noopOnX86('vuart_op', 'Arm only (there it allocates an event channel returned through the copy-back)'),
  readOnly(
    'get_cpu_policy',
    'the CPUID leaves and MSRs are copied out element by element, then the counts copied back',
    [ARCH_DO_DOMCTL],
    'nr_leaves/nr_msrs are rewritten: re-issue from the pristine struct.',
  ),
  domctl('set_cpu_policy', {
    verdict: 'safe',
    reason:
      'The leaves and MSRs are copied into a private policy before it is audited and swapped in; the struct is copied back only when the op failed (no effect).',
    source: [ARCH_DO_DOMCTL, { file: 'xen/arch/x86/domctl.c', function: 'update_domain_cpu_policy' }],
  }),
  defineRow({
    name: 'domctl.vmtrace_op',
    hypercall: 'domctl',
    subop: DOMCTL.vmtrace_op,
    layout: xen_domctl_vmtrace_op,
    verdict: 'conditional',
    condition: {
      text: 'unsafe when cmd is vmtrace_enable (1), _disable (2) or _reset_and_enable (3)',
      unsafeWhen: (a) =>
        a.cmd === XEN_DOMCTL_VMTRACE.enable || a.cmd === XEN_DOMCTL_VMTRACE.disable || a.cmd === XEN_DOMCTL_VMTRACE.reset_and_enable,
    },
    faults: 'copies',
    longRunning: false,
    reason:
      'The struct is copied back after a successful op. enable/disable/reset_and_enable switch tracing before it; a re-issue finds tracing already in that state and returns -EINVAL. output_position and get_option are read-only; set_option is an idempotent setter.',
    source: [ARCH_DO_DOMCTL, { file: 'xen/arch/x86/domctl.c', function: 'do_vmtrace_op' }, { file: 'xen/arch/x86/hvm/vmx/vmx.c', function: 'vmtrace_control' }],
    recovery: 'Re-issue once and read -EINVAL on the retry as "already in the requested state".',
    verified: true,
  }),
  readOnly('get_paging_mempool_size', 'the pool size is copied back', [DO_DOMCTL, { file: 'xen/arch/x86/mm/paging.c', function: 'arch_get_paging_mempool_size' }]),
  domctl('set_paging_mempool_size', {
    verdict: 'safe',
    longRunning: true,
    reason:
      'No copy-back; the resize continues (-ERESTART) with the unchanged struct, so an EFAULT comes only at a slice entry, possibly after a partial resize. The size is absolute: re-issuing converges.',
    source: [DO_DOMCTL, { file: 'xen/arch/x86/mm/paging.c', function: 'arch_set_paging_mempool_size' }],
  }),
  domctl('gdbsx_guestmemio', {
    verdict: 'safe',
    reason:
      'Reads copy guest memory out, writes copy the same bytes in again: a re-issue is harmless. Beware: faults on the caller\'s buffer inside the page loop are ignored (a write stores zero padding, a read leaves garbage, and success is reported); -EFAULT means an unmapped guest address or a failed final copy-back.',
    source: [ARCH_DO_DOMCTL, { file: 'xen/arch/x86/gdbsx.c', function: 'dbg_rw_guest_mem' }],
  }),
  entryOnly('gdbsx_pausevcpu', 'the vcpu\'s controller pause count is raised', [ARCH_DO_DOMCTL]),
  entryOnly('gdbsx_unpausevcpu', 'the vcpu\'s controller pause count is lowered', [ARCH_DO_DOMCTL]),
  domctl('gdbsx_domstatus', {
    verdict: 'unsafe',
    reason:
      'The "read" consumes the pending debug event (gdbsx_vcpu_event is cleared) before the copy-back; if the copy-back faults the event is lost, and a re-issue reports the next one or none.',
    source: [ARCH_DO_DOMCTL],
    recovery: 'Assume some vcpu stopped on a debug event: inspect every vcpu (getvcpucontext) to find it, or treat it as a spurious stop.',
  }),
];
