// Table rows for __HYPERVISOR_domctl. Every domctl enters through do_domctl
// (xen/common/domctl.c), which copies the whole struct xen_domctl in first, checks the
// interface version (-EACCES), takes domctl_lock (on contention it continues *before* acting),
// runs the sub-op, and finally, only for sub-ops that set `copyback`, copies the struct back
// out. So: the entry copy can only fault before any effect; the copy-back faults after it.

import { z } from 'zod';
import { defineRow, type Citation } from '../row.js';
import { DOMCTL, SHADOW_OP } from '../numbers.js';
import {
  xen_domctl_createdomain,
  xen_domctl_getdomaininfo,
  xen_domctl_getpageframeinfo3,
  xen_domctl_max_mem,
  xen_domctl_max_vcpus,
  xen_domctl_shadow_op,
} from '../structs.js';
import { domainHandle, domid, u32, u64 } from '../schemas.js';

const DO_DOMCTL: Citation = { file: 'xen/common/domctl.c', function: 'do_domctl' };
const ARCH_DO_DOMCTL: Citation = { file: 'xen/arch/x86/domctl.c', function: 'arch_do_domctl' };
const PAGING_DOMCTL: Citation = { file: 'xen/arch/x86/mm/paging.c', function: 'paging_domctl' };
const LOG_DIRTY_OP: Citation = { file: 'xen/arch/x86/mm/paging.c', function: 'paging_log_dirty_op' };

const byDomain = z.object({ domain: domid }).strict();

const shadowMode = (mode: keyof typeof SHADOW_OP) => ({ field: 'op', value: SHADOW_OP[mode] }) as const;

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
      'domain_create() runs first; do_domctl then sets op->domain and copies the struct back. An EFAULT on that copy-back comes after the domain exists: a re-issue would create a second domain.',
    source: [DO_DOMCTL, { file: 'xen/common/domain.c', function: 'domain_create' }],
    recovery:
      'Create with a handle (UUID) of your own; after EFAULT list domains (sysctl.getdomaininfolist) and find the one with that handle, then adopt or destroy it.',
    verified: true,
    args: z
      .object({
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
    faults: 'copies',
    longRunning: false,
    reason:
      'Read-only: getdomaininfo() fills the struct and the copy-back may fault, but nothing changed. Xen rewrites op->domain to the domain it found, so a re-issue must restore the requested id.',
    source: [DO_DOMCTL, { file: 'xen/common/domctl.c', function: 'getdomaininfo' }],
    verified: true,
    args: byDomain,
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
    args: z.object({ domain: domid, max_memkb: u64 }).strict(),
  }),
  defineRow({
    name: 'domctl.max_vcpus',
    hypercall: 'domctl',
    subop: DOMCTL.max_vcpus,
    layout: xen_domctl_max_vcpus,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'Entry copy only, then vcpus are allocated up to max; no copy-back, and a repeat with the same max is a no-op.',
    source: [DO_DOMCTL],
    verified: false,
    args: z.object({ domain: domid, max: u32.min(1) }).strict(),
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
    reason:
      'arch_do_domctl sets copyback after paging_domctl(), so an EFAULT can follow the switch-off; switching off log-dirty mode again is a no-op, so a re-issue is harmless.',
    source: [ARCH_DO_DOMCTL, PAGING_DOMCTL],
    verified: false,
    args: byDomain,
  }),
  defineRow({
    name: 'domctl.shadow_op.enable_logdirty',
    hypercall: 'domctl',
    subop: DOMCTL.shadow_op,
    mode: shadowMode('ENABLE_LOGDIRTY'),
    layout: xen_domctl_shadow_op,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: true,
    reason:
      'Log-dirty mode is enabled before the copy-back of the domctl; an EFAULT there leaves it on, and a re-issue fails (it is already enabled) instead of reporting success.',
    source: [ARCH_DO_DOMCTL, PAGING_DOMCTL, { file: 'xen/arch/x86/mm/paging.c', function: 'paging_log_dirty_enable' }],
    recovery: 'Check with shadow_op PEEK (no bitmap) whether log-dirty is on; if it is, carry on as if the call succeeded.',
    verified: false,
    args: byDomain,
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
      'paging_log_dirty_op copies the bitmap out one 4 KiB chunk at a time and clears each chunk right after copying it; an EFAULT on chunk k leaves chunks before k cleared, and the final copy-back can fault after all were cleared. A re-issue returns those dirty bits as clean: pages are lost.',
    source: [ARCH_DO_DOMCTL, PAGING_DOMCTL, LOG_DIRTY_OP],
    recovery:
      'Keep the bitmap the failed CLEAN wrote, issue a second CLEAN into a fresh zeroed bitmap and OR the two; or treat every page of the range as dirty for this round.',
    verified: true,
    args: z.object({ domain: domid, pages: u64 }).strict(),
  }),
  defineRow({
    name: 'domctl.shadow_op.peek',
    hypercall: 'domctl',
    subop: DOMCTL.shadow_op,
    mode: shadowMode('PEEK'),
    layout: xen_domctl_shadow_op,
    verdict: 'safe',
    faults: 'copies',
    longRunning: true,
    reason: 'PEEK copies the bitmap and stats out without clearing anything, so every EFAULT leaves the state unchanged.',
    source: [ARCH_DO_DOMCTL, LOG_DIRTY_OP],
    verified: true,
    args: z.object({ domain: domid, pages: u64 }).strict(),
  }),
  defineRow({
    name: 'domctl.shadow_op.get_allocation',
    hypercall: 'domctl',
    subop: DOMCTL.shadow_op,
    mode: shadowMode('GET_ALLOCATION'),
    layout: xen_domctl_shadow_op,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'Read-only: the allocation is written to mb and copied back; nothing changes.',
    source: [ARCH_DO_DOMCTL, PAGING_DOMCTL],
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
      'Sets the paging pool to an absolute size (preemptible); the copy-back can fault after the pool was resized, but setting the same size again is a no-op.',
    source: [ARCH_DO_DOMCTL, PAGING_DOMCTL],
    verified: false,
    args: z.object({ domain: domid, mb: u32 }).strict(),
  }),
  defineRow({
    name: 'domctl.getpageframeinfo3',
    hypercall: 'domctl',
    subop: DOMCTL.getpageframeinfo3,
    layout: xen_domctl_getpageframeinfo3,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason:
      'Read-only, but in place: for each element Xen copies the gfn in and writes its type back over it, so an EFAULT mid-array leaves earlier gfns overwritten. A re-issue is safe only from the pristine array (libxc\'s own retry re-issues the overwritten one).',
    source: [ARCH_DO_DOMCTL, { file: 'tools/libs/ctrl/xc_private.c', function: 'xc_get_pfn_type_batch' }],
    verified: true,
    args: z
      .object({ domain: domid, gfns: z.array(u64).min(1).max(1024) })
      .strict(),
  }),
];
