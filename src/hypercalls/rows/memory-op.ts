// Table rows for __HYPERVISOR_memory_op. do_memory_op (xen/common/memory.c) takes the op in the
// low 6 bits of cmd and a continuation's progress above them (a toolstack always passes 0 there);
// each op copies its own argument struct. The reservation ops never return -EFAULT: they report
// progress as a count. Ops not handled in common code go to arch_memory_op (xen/arch/x86/mm.c)
// and subarch_memory_op (xen/arch/x86/x86_64/mm.c).

import { defineRow, type Citation, subopRows } from '../row.js';
import { XENMEM } from '../numbers.js';
import { xen_add_to_physmap, xen_add_to_physmap_batch, xen_mem_paging_op, xen_memory_domain, xen_memory_reservation } from '../structs.js';
import { noArgs, sharedSchema } from '../schemas.js';
import { XENMAPSPACE } from './constants.js';

const DO_MEMORY_OP: Citation = { file: 'xen/common/memory.c', function: 'do_memory_op' };
const ARCH_MEMORY_OP: Citation = { file: 'xen/arch/x86/mm.c', function: 'arch_memory_op' };
const SUBARCH_MEMORY_OP: Citation = { file: 'xen/arch/x86/x86_64/mm.c', function: 'subarch_memory_op' };
const ADD_TO_PHYSMAP: Citation = { file: 'xen/common/memory.c', function: 'xenmem_add_to_physmap' };
const ADD_TO_PHYSMAP_ONE: Citation = { file: 'xen/arch/x86/mm/p2m.c', function: 'xenmem_add_to_physmap_one' };

const memop = subopRows('memory_op', XENMEM);

const readOnly = <Op extends keyof typeof XENMEM & string>(op: Op, what: string, source: readonly Citation[]) =>
  memop(op, { verdict: 'safe', readOnly: true, reason: `Read-only: ${what}; an EFAULT changes nothing.`, source });

const space = (s: keyof typeof XENMAPSPACE) => ({ field: 'space', value: XENMAPSPACE[s] }) as const;

/**
 * do_memory_op gives up at once, returning the start extent, when nr_extents exceeds
 * UINT_MAX >> MEMOP_EXTENT_SHIFT ("Is size too large for us to encode a continuation?",
 * xen/common/memory.c lines 1410-1412 at RELEASE-4.17.7).
 */
export const MAX_RESERVATION_EXTENTS = 0xffffffff >>> 6;

const byDomid = sharedSchema(({ z, domidOrSelf }) => z.object({ domid: domidOrSelf }).strict());

const SHORT_COUNT =
  'It never returns -EFAULT: every failure, a faulting copy included (the entry copy on a continuation too), ends the call early and the result is the absolute number of extents done. The caller resumes from that count, re-issuing the rest (extent_start advanced, nr_extents reduced) from pristine inputs.';

export const MEMORY_OP_ROWS = [
  defineRow({
    name: 'memory_op.increase_reservation',
    hypercall: 'memory_op',
    subop: XENMEM.increase_reservation,
    layout: xen_memory_reservation,
    verdict: 'safe',
    faults: 'short-count',
    longRunning: true,
    reason: `${SHORT_COUNT} Caveat: for a PV target with an extent list the MFN is written back after the extent was allocated; a fault there leaves that extent out of the count, so resuming allocates one extent more than asked (it stays with the domain until it is destroyed).`,
    source: [DO_MEMORY_OP, { file: 'xen/common/memory.c', function: 'increase_reservation' }],
    recovery: 'For a PV target, compare current_reservation with what you expect after a short count to spot the extra extent.',
    verified: true,
  }),
  defineRow({
    name: 'memory_op.decrease_reservation',
    hypercall: 'memory_op',
    subop: XENMEM.decrease_reservation,
    layout: xen_memory_reservation,
    verdict: 'safe',
    faults: 'short-count',
    longRunning: true,
    reason: `${SHORT_COUNT} Each gmfn is read before its extent is removed, so a fault only shortens the count and resuming is exact.`,
    source: [DO_MEMORY_OP, { file: 'xen/common/memory.c', function: 'decrease_reservation' }],
    verified: true,
  }),
  // xen/common/memory.c at RELEASE-4.17.7: do_memory_op's reservation case lines 1404-1475 (the
  // struct copy and every early exit return start_extent), populate_physmap lines 157-311 (per
  // extent: preemption check, gpfn copy-in, allocation, guest_physmap_add_page, PV MFN copy-out).
  defineRow({
    name: 'memory_op.populate_physmap',
    hypercall: 'memory_op',
    subop: XENMEM.populate_physmap,
    layout: xen_memory_reservation,
    verdict: 'safe',
    faults: 'short-count',
    longRunning: true,
    reason: `${SHORT_COUNT} Each gpfn is read before its extent is allocated. Caveat: for a PV target the MFN is written back after allocation and guest_physmap_add_page; a fault there leaves that extent out of the count, and resuming allocates a second page for the same gpfn (one extent leaks until the domain is destroyed).`,
    source: [DO_MEMORY_OP, { file: 'xen/common/memory.c', function: 'populate_physmap' }],
    recovery: 'For a PV target, compare current_reservation with what you expect after a short count to spot the leaked extent.',
    verified: true,
    args: ({ z, domidOrSelf, gfnList, u32 }) =>
      z.object({
        domid: domidOrSelf,
        // A BigUint64Array, Uint32Array, Float64Array or array of integers, converted in bulk.
        gfns: gfnList(MAX_RESERVATION_EXTENTS),
        // Xen allows up to max_order() of the caller (18 for dom0) and reports more as 0 extents done.
        extent_order: u32.default(0),
        mem_flags: u32.default(0),
      })
      .strict(),
  }),
  defineRow({
    name: 'memory_op.maximum_ram_page',
    hypercall: 'memory_op',
    subop: XENMEM.maximum_ram_page,
    verdict: 'safe',
    readOnly: true,
    faults: 'no-pointer',
    longRunning: false,
    reason: 'Returns max_page in the result (it can exceed 2^31: keep all 64 bits); no caller memory is touched.',
    source: [DO_MEMORY_OP],
    verified: true,
    args: noArgs,
  }),
  defineRow({
    name: 'memory_op.current_reservation',
    hypercall: 'memory_op',
    subop: XENMEM.current_reservation,
    layout: xen_memory_domain,
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: false,
    reason: 'Copies the domid in and returns the domain\'s page count as the result; read-only.',
    source: [DO_MEMORY_OP],
    verified: true,
    args: byDomid,
  }),
  defineRow({
    name: 'memory_op.maximum_reservation',
    hypercall: 'memory_op',
    subop: XENMEM.maximum_reservation,
    layout: xen_memory_domain,
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: false,
    reason: 'Copies the domid in and returns the domain\'s page limit as the result; read-only.',
    source: [DO_MEMORY_OP],
    verified: true,
    args: byDomid,
  }),
  defineRow({
    name: 'memory_op.maximum_gpfn',
    hypercall: 'memory_op',
    subop: XENMEM.maximum_gpfn,
    layout: xen_memory_domain,
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: false,
    reason: 'Copies the domid in and returns the highest gpfn as the result; read-only.',
    source: [DO_MEMORY_OP],
    verified: true,
    args: byDomid,
  }),
  defineRow({
    name: 'memory_op.exchange',
    hypercall: 'memory_op',
    subop: XENMEM.exchange,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: true,
    reason:
      'memory_exchange() works chunk by chunk and keeps its progress in nr_exchanged in the caller\'s struct. Several copies follow committed chunks: the nr_exchanged write before a continuation, the out-list gpfn read and (PV) MFN write after the input pages were freed and the output pages assigned, and the final nr_exchanged write, which does not count that chunk. A re-issue redoes committed chunks whose input pages are already gone.',
    source: [DO_MEMORY_OP, { file: 'xen/common/memory.c', function: 'memory_exchange' }],
    recovery:
      'Do not re-issue. Treat the range as indeterminate: inspect the P2M/M2P for the in and out lists (nr_exchanged may be stale), or fail and tear down the guest build. Exchange one chunk per call to keep the damage small.',
    verified: true,
  }),
  readOnly('machphys_mfn_list', 'the M2P chunk MFNs are copied out, then the struct', [SUBARCH_MEMORY_OP]),
  readOnly('machphys_compat_mfn_list', 'the compat M2P chunk MFNs are copied out, then the struct (-EOPNOTSUPP without 32-bit PV)', [SUBARCH_MEMORY_OP]),
  readOnly('machphys_mapping', 'the M2P virtual range and max MFN are copied out', [ARCH_MEMORY_OP]),
  defineRow({
    name: 'memory_op.add_to_physmap.shared_info',
    hypercall: 'memory_op',
    subop: XENMEM.add_to_physmap,
    mode: space('shared_info'),
    layout: xen_add_to_physmap,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'The struct is copied in before the shared-info frame is mapped and nothing is copied out; mapping the same frame at the same gpfn again is idempotent anyway.',
    source: [DO_MEMORY_OP, ADD_TO_PHYSMAP, ADD_TO_PHYSMAP_ONE],
    verified: true,
  }),
  defineRow({
    name: 'memory_op.add_to_physmap.grant_table',
    hypercall: 'memory_op',
    subop: XENMEM.add_to_physmap,
    mode: space('grant_table'),
    layout: xen_add_to_physmap,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'The struct is copied in before the grant frame is mapped (growing the table if needed) and nothing is copied out; the mapping is idempotent.',
    source: [DO_MEMORY_OP, ADD_TO_PHYSMAP, ADD_TO_PHYSMAP_ONE],
    verified: true,
  }),
  defineRow({
    name: 'memory_op.add_to_physmap.gmfn',
    hypercall: 'memory_op',
    subop: XENMEM.add_to_physmap,
    mode: space('gmfn'),
    layout: xen_add_to_physmap,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'The struct is copied in before the page moves from idx to gpfn and nothing is copied out, so an EFAULT means nothing moved. (A repeat after success fails: idx is empty.)',
    source: [DO_MEMORY_OP, ADD_TO_PHYSMAP, ADD_TO_PHYSMAP_ONE],
    verified: true,
  }),
  defineRow({
    name: 'memory_op.add_to_physmap.gmfn_range',
    hypercall: 'memory_op',
    subop: XENMEM.add_to_physmap,
    mode: space('gmfn_range'),
    layout: xen_add_to_physmap,
    verdict: 'conditional',
    condition: { text: 'unsafe when size > 1', unsafeWhen: (a) => a.size > 1 },
    faults: 'copies',
    longRunning: true,
    reason:
      'Moves size pages, continuing every 16 pages (IOMMU) or on preemption with progress only in the continuation\'s cmd; each re-entry copies the struct in again and can fault after earlier pages moved. The caller gets -EFAULT with no progress, and a blind re-issue fails at the first moved idx. A single page cannot continue.',
    source: [DO_MEMORY_OP, ADD_TO_PHYSMAP],
    recovery: 'Move pages one per call (space gmfn or size 1); or after the EFAULT find which idx slots are already empty and re-issue the rest.',
    verified: true,
  }),
  defineRow({
    name: 'memory_op.add_to_physmap.gmfn_foreign',
    hypercall: 'memory_op',
    subop: XENMEM.add_to_physmap,
    mode: space('gmfn_foreign'),
    layout: xen_add_to_physmap,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'Only add_to_physmap_batch accepts this space: the single call returns -ENOSYS after the entry copy, with no effect.',
    source: [DO_MEMORY_OP],
    verified: true,
  }),
  defineRow({
    name: 'memory_op.add_to_physmap.dev_mmio',
    hypercall: 'memory_op',
    subop: XENMEM.add_to_physmap,
    mode: space('dev_mmio'),
    layout: xen_add_to_physmap,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'x86 has no dev_mmio case: after the entry copy and permission check it fails with -EINVAL (or -EACCES), with no effect.',
    source: [ADD_TO_PHYSMAP_ONE],
    verified: true,
  }),
  defineRow({
    name: 'memory_op.add_to_physmap_batch',
    hypercall: 'memory_op',
    subop: XENMEM.add_to_physmap_batch,
    layout: xen_add_to_physmap_batch,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: true,
    reason:
      'Per entry: idx and gpfn are copied in, the frame is mapped, then its errs slot is written, which can fault after the mapping; continuations re-read the struct. With several entries an EFAULT follows entries already mapped, and a re-issue reports errors for them; for gmfn_foreign even one entry is unsafe, because mapping over an existing foreign entry is refused (-ENXIO in errs). A single shared_info or grant_table entry is idempotent.',
    source: [{ file: 'xen/common/memory.c', function: 'xenmem_add_to_physmap_batch' }, ADD_TO_PHYSMAP_ONE, { file: 'xen/arch/x86/mm/p2m.c', function: 'p2m_add_foreign' }],
    recovery:
      'Re-issue into fresh (unpopulated) gpfns and remove the first attempt\'s partial mappings with remove_from_physmap; or re-issue the batch and read errors on already-mapped entries as "possibly done".',
    verified: false,
  }),
  memop('remove_from_physmap', {
    verdict: 'safe',
    reason: 'The struct is copied in before guest_physmap_remove_page() and nothing is copied out, so an EFAULT means nothing was removed.',
    source: [DO_MEMORY_OP],
  }),
  readOnly('memory_map', 'the calling domain\'s pseudo-e820 is copied out, then the entry count', [ARCH_MEMORY_OP]),
  readOnly('machine_memory_map', 'the host e820 is copied out entry by entry, then the entry count', [ARCH_MEMORY_OP]),
  memop('set_memory_map', {
    verdict: 'safe',
    reason: 'The struct and the e820 buffer are copied in before the map is swapped into the domain; nothing is copied out. It is also an absolute setter.',
    source: [ARCH_MEMORY_OP],
  }),
  memop('set_pod_target', {
    verdict: 'safe',
    longRunning: true,
    reason:
      'The target is set (preemptibly, a continuation re-reading the struct) before the struct with the resulting counts is copied back, so an EFAULT can follow a partial or complete change; the target is absolute, so a re-issue converges.',
    source: [ARCH_MEMORY_OP],
  }),
  readOnly('get_pod_target', 'the PoD counts are copied back', [ARCH_MEMORY_OP]),
  memop('get_sharing_freed_pages', {
    verdict: 'safe',
    faults: 'no-pointer',
    reason: 'Returns the count of pages freed by sharing as the result; the argument is not read, so it cannot fault.',
    source: [SUBARCH_MEMORY_OP],
  }),
  memop('get_sharing_shared_pages', {
    verdict: 'safe',
    faults: 'no-pointer',
    reason: 'Returns the count of shared pages as the result; the argument is not read, so it cannot fault.',
    source: [SUBARCH_MEMORY_OP],
  }),
  defineRow({
    name: 'memory_op.paging_op',
    hypercall: 'memory_op',
    subop: XENMEM.paging_op,
    layout: xen_mem_paging_op,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'Without CONFIG_MEM_PAGING (the default) it returns -ENOSYS. When built, nominate and evict fault only on the entry copy; prep pages the gfn in and then copies the struct back, so an EFAULT can follow it and a re-issue on the prepared gfn fails.',
    source: [{ file: 'xen/arch/x86/mm/mem_paging.c', function: 'mem_paging_memop' }],
    recovery: 'prep: read a failure on the retry as "possibly done" and check the gfn\'s p2m type.',
    verified: false,
  }),
  memop('access_op', {
    verdict: 'safe',
    longRunning: true,
    reason:
      'set_access and set_access_multi apply absolute access types (continuing with progress in cmd, re-reading the struct and lists), so a fault after partial progress is repaired by a re-issue; get_access is read-only.',
    source: [{ file: 'xen/common/mem_access.c', function: 'mem_access_memop' }],
  }),
  memop('sharing_op', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'Without CONFIG_MEM_SHARING (the default) it returns -ENOSYS. When built, the struct is copied back after the op: nominate_gfn/nominate_gref return a new handle only that way, so after an EFAULT a re-issue nominates again and the first handle is lost; range_share and fork continue.',
    source: [{ file: 'xen/arch/x86/mm/mem_sharing.c', function: 'mem_sharing_memop' }],
    recovery: 'Not needed on default builds. With sharing built, do not re-issue nominate; re-nominate the gfn and use the handle it returns.',
    verified: false,
  }),
  memop('claim_pages', {
    verdict: 'safe',
    reason: 'The reservation struct is copied in before domain_set_outstanding_pages() and nothing is copied out.',
    source: [DO_MEMORY_OP],
  }),
  readOnly('reserved_device_memory_map', 'reserved regions are copied out entry by entry, then the entry count', [
    DO_MEMORY_OP,
    { file: 'xen/common/memory.c', function: 'get_reserved_device_memory' },
  ]),
  memop('acquire_resource', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'Frames are acquired in batches of 32 (a continuation re-reads the struct); the side effects (growing the grant table, allocating ioreq pages) are idempotent, and reporting the same MFNs or setting the same foreign entries again is harmless, so a re-issue of the whole request is fine.',
    source: [{ file: 'xen/common/memory.c', function: 'acquire_resource' }, { file: 'xen/common/grant_table.c', function: 'gnttab_acquire_resource' }],
    verified: false,
    recovery:
      'Query the resource\'s size (nr_frames = 0) and re-issue the whole request; discard the first call\'s partial frame list.',
  }),
  readOnly('get_vnumainfo', 'the vNUMA ranges, distances and vcpu map are copied out, then the counts', [DO_MEMORY_OP]),
];
